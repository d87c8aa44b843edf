"""The shape of the code: layers one way (import-linter), imports at the top, one concern a module."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gridmap"
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def test_the_import_contracts_of_setup_cfg_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    out = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    kept = [line for line in out.stdout.splitlines() if line.endswith(" KEPT") or " KEPT (" in line]
    assert len(kept) >= 5 and "BROKEN" not in out.stdout


def _imports_in_functions(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    yield inner.lineno


def test_no_module_imports_inside_a_function_but_the_lazy_app_factory():
    found = {str(p.relative_to(ROOT)): lines for p in MODULES
             if (lines := list(_imports_in_functions(ast.parse(p.read_text(encoding="utf-8")))))}
    # gridmap/__init__.create_app imports the factory's module when an app is wanted (see its comment)
    assert found == {"gridmap/__init__.py": [found.get("gridmap/__init__.py", [0])[0]]}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_opens_with_a_one_line_concern(path):
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert doc, f"{path} has no docstring"
    first = doc.splitlines()[0]
    assert first.endswith((".", ":", ")")) and len(first) <= 120, f"{path}: {first!r}"
