"""No function over 80 lines (from its ``def`` to its last line) anywhere in the tree, but
the Numba kernels (decorated with ``njit``/``jit``), where splitting can cost speed.

Functions still too long are listed in KNOWN with the issue that splits them; an entry that
is no longer too long fails the test until it is removed, so the list can only shrink.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 80
SKIP_DIRS = {".git", ".venv", "build", "__pycache__", ".hypothesis", ".pytest_cache"}

#: (file, qualified name) → the issue that splits it
KNOWN = {
}


def is_numba_kernel(node: ast.FunctionDef) -> bool:
    """Decorated with numba's njit or jit (bare, called, or as numba.njit / numba.jit)."""
    for deco in node.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name in ("njit", "jit"):
            return True
    return False


def long_functions(source: str, limit: int = MAX_LINES) -> dict[str, int]:
    """Qualified name → length in lines of every function longer than ``limit`` that is not
    a Numba kernel (methods as Class.method, nested functions as outer.inner)."""
    out = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                if not isinstance(child, ast.ClassDef) and not is_numba_kernel(child):
                    length = child.end_lineno - child.lineno + 1
                    if length > limit:
                        out[name] = length
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return out


def python_files():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if not SKIP_DIRS.intersection(rel.parts):
            yield rel


def test_no_function_is_over_80_lines():
    found = {(str(rel), name): n for rel in python_files()
             for name, n in long_functions((ROOT / rel).read_text()).items()}
    new = {k: n for k, n in found.items() if k not in KNOWN}
    assert not new, f"functions over {MAX_LINES} lines (split them into named steps): {new}"
    fixed = sorted(set(KNOWN) - set(found))
    assert not fixed, f"no longer over {MAX_LINES} lines, remove from KNOWN: {fixed}"


def test_the_checker_measures_and_exempts_kernels():
    body = "\n".join(f"    x{i} = {i}" for i in range(80))
    src = (f"def long():\n{body}\n\n"
           f"@njit(cache=True)\ndef kernel():\n{body}\n\n"
           f"@numba.jit\ndef kernel2():\n{body}\n\n"
           f"class A:\n    def method(self):\n    {body.replace(chr(10), chr(10) + '    ')}\n"
           f"        def inner():\n            pass\n\n"
           f"def short():\n    pass\n")
    assert long_functions(src) == {"long": 81, "A.method": 83}
    assert long_functions(src, limit=200) == {}

