"""``import fit`` and the light commands load no heavy library they do not use (issue #20):
statsmodels, pandas, matplotlib, torch, scipy.stats and numba stay out of ``sys.modules``
until a function that needs them runs. Each case runs in a fresh interpreter."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("statsmodels", "pandas", "matplotlib", "torch", "scipy.stats", "numba", "sklearn")


def _loaded_after(code: str) -> list[str]:
    """The HEAVY modules a fresh interpreter holds after running ``code``."""
    probe = (f"{code}\nimport sys, json\n"
             f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


FIT_CALLS = """
import numpy as np
import fit
x = np.geomspace(1e6, 1e9, 20)
y = 1.7 + 400 * x ** -0.34 * (1 + 0.01 * np.sin(np.arange(20)))
for form in ("power", "offset"):
    r = fit.fit(form, x, y, bootstrap=50)
    r.summary(); r.to_dict()
"""


@pytest.mark.parametrize("code", [
    "import fit",
    FIT_CALLS,
    "import sys; from quanta.cli import main; sys.argv = ['quanta', '--help']\n"
    "try:\n    main()\nexcept SystemExit:\n    pass",
    "import sys; from quanta.cli import main; main(['theory', '--alpha', '0.4'])",
], ids=["import fit", "power and offset fits", "quanta --help", "quanta theory"])
def test_no_heavy_import(code):
    assert _loaded_after(code) == []
