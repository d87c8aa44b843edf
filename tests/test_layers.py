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


#: Modules that import inside a function on purpose, and why: each saves a start-up cost that
#: commands and requests which never need the library should not pay (tests/test_cli_start.py).
LAZY = {
    "gridmap/__init__.py": "create_app imports the factory's module when an app is wanted",
    "gridmap/store/db.py": "Alembic (with Mako, Pygments) only to migrate; GeoAlchemy2 only on PostGIS",
    "gridmap/cli/common.py": "Babel's catalogue reader only when a command speaks",
    "gridmap/geo/names.py": "pypinyin's dictionary (~1 s) only when a place needs an English name",
    "gridmap/snapfile.py": "psycopg only in the LISTEN thread, which only a PostgreSQL store starts",
    "gridmap/cli/batch.py": "Dask, distributed and pyarrow only inside the batch commands (assign --all, join)",
    "gridmap/cli/data.py": "the batch module (and Dask with it) only when assign runs on a cluster",
    "gridmap/geo/pointjoin.py": "pyarrow and pyproj only when a point file is joined",
    "gridmap/assign.py": "a Dask worker opens its own store, in its own process, only there",
}


def test_no_module_imports_inside_a_function_but_the_deliberately_lazy_ones():
    found = {str(p.relative_to(ROOT)): lines for p in MODULES
             if (lines := list(_imports_in_functions(ast.parse(p.read_text(encoding="utf-8")))))}
    assert set(found) == set(LAZY), "an import inside a function hides a dependency: move it up, or say why in LAZY"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_opens_with_a_one_line_concern(path):
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert doc, f"{path} has no docstring"
    first = doc.splitlines()[0]
    assert first.endswith((".", ":", ")")) and len(first) <= 120, f"{path}: {first!r}"
