"""Each layer imports only the layers before it: common → theory → simulate → fit → empirical → quanta."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["common", "theory", "simulate", "fit", "empirical", "quanta"]


def imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", ORDER)
def test_layer_imports_only_earlier_layers(layer):
    later = set(ORDER[ORDER.index(layer) + 1:])
    offenders = {}
    for path in sorted((ROOT / layer).rglob("*.py")):
        bad = imported_top_levels(path) & later
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert not offenders, f"{layer} imports later layers: {offenders}"


def test_import_checker_sees_violations(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("import fit.forms\nfrom empirical.parity import x\nfrom . import y\n")
    assert imported_top_levels(bad) == {"fit", "empirical"}
