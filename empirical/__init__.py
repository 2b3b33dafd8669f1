"""PyTorch experiments: multitask sparse parity training and quanta discovery from gradients.

Needs the ``empirical`` extra (``pip install 'quanta[empirical]'``: PyTorch and
scikit-learn); without it, importing any of this layer raises
``common.errors.MissingExtraError`` (an ImportError) that names the extra.
"""
from pathlib import Path

from common.errors import require

require("torch", "empirical")
require("sklearn", "empirical")

#: The committed CPU-scale parity runs of a source checkout (``results/parity`` beside the
#: packages; an installed wheel has none): the demo's and QDG's default input.
PARITY_RESULTS = Path(__file__).resolve().parents[1] / "results" / "parity"
