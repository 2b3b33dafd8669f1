"""PyTorch experiments: multitask sparse parity training and quanta discovery from gradients.

Needs the ``empirical`` extra (``pip install 'quanta[empirical]'``: PyTorch and
scikit-learn); importing this package itself imports neither.
"""
from pathlib import Path

#: The committed CPU-scale parity runs of a source checkout (``results/parity`` beside the
#: packages; an installed wheel has none): the demo's and QDG's default input.
PARITY_RESULTS = Path(__file__).resolve().parents[1] / "results" / "parity"
