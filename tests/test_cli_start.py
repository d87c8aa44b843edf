"""The `gridmap` command starts light: its help and the light commands load no map stack.

No timing here (bench/startup_bench.py measures it): what is asserted is what a start imports.
"""
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from gridmap import cli

ROOT = Path(__file__).resolve().parents[1]
#: What `--help` and `plan list` must not load: the map and geometry stack, Dask, and the store's own
#: heavy parts that a listing never touches (Alembic runs only on init-db; GeoAlchemy2, Shapely and
#: NumPy only when a geometry column is read or written, or on a PostGIS store).
HEAVY = ("folium", "numba", "geopandas", "matplotlib", "scipy", "pandas", "shapely", "pyproj", "numpy", "dask",
         "distributed", "dask_geopandas", "pyarrow", "branca", "PIL", "alembic", "mako", "geoalchemy2", "psycopg")


def _run(code, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRIDMAP_INSTANCE_PATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _invoke_and_list_heavy(args):
    return f"""
import json, sys
from gridmap.__main__ import main
try:
    main({args!r}, prog_name="gridmap")
except SystemExit as end:
    assert not end.code, end.code
print("\\nHEAVY=" + json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
"""


def _heavy(stdout):
    return json.loads(stdout.rsplit("HEAVY=", 1)[1])


def test_help_lists_every_command_and_imports_no_map_stack(tmp_path):
    out = _run(_invoke_and_list_heavy(["--help"]), tmp_path)
    assert _heavy(out) == []
    listed = out.split("Commands:", 1)[1]
    for name in [*cli.COMMANDS, "run", "shell", "routes"]:
        assert f"\n  {name} " in listed, name


def test_plan_list_runs_on_the_bare_app_without_the_map_stack(tmp_path):
    _run(_invoke_and_list_heavy(["init-db"]), tmp_path)
    out = _run(_invoke_and_list_heavy(["plan", "list"]), tmp_path)
    assert out.startswith("id  community") and _heavy(out) == []
    assert (tmp_path / "gridmap.db").exists()


def test_plan_list_of_real_plans_loads_only_sqlalchemy_and_the_store(tmp_path):
    # plans with grids in the store (a partition writes geometries), listed by a fresh process: the rows
    # come back, and the process still loaded no geometry library to read them
    setup = """
import geopandas, shapely
from gridmap.instance import create_bare_app
from gridmap.plans import generations
from gridmap.store import models as m
app = create_bare_app()
store = app.extensions["gridmap.store"]
store.upgrade()
with store.transaction() as s:
    s.add(m.District(code="210202000000", name="中山区"))
    s.add(m.Street(code="210202012000", district_code="210202000000", name="老虎滩街道"))
    s.add(m.Community(code="210202012001", street_code="210202012000", name="城志社区",
                      geom=shapely.MultiPolygon([shapely.box(121.60, 38.90, 121.62, 38.91)])))
    s.flush()
    cells = [shapely.box(121.60, 38.90, 121.61, 38.91), shapely.box(121.61, 38.90, 121.62, 38.91)]
    generations.create_plan(s, "210202012001", geopandas.GeoDataFrame(geometry=cells, crs=4326), name="春季")
"""
    _run(setup, tmp_path)
    out = _run(_invoke_and_list_heavy(["plan", "list", "--community", "210202012001"]), tmp_path)
    header, row = out.splitlines()[:2]
    assert header.split()[:3] == ["id", "community", "status"]
    assert row.split()[1:3] == ["210202012001", "draft"] and row.split()[-2:] == ["2", "春季"]  # its 2 grids
    assert _heavy(out) == []
    modules = _run(_invoke_and_list_modules(["plan", "list"]), tmp_path)
    assert {"sqlalchemy", "gridmap.store.models"} <= set(json.loads(modules.rsplit("MODULES=", 1)[1]))


def _invoke_and_list_modules(args):
    return f"""
import json, sys
from gridmap.__main__ import main
try:
    main({args!r}, prog_name="gridmap")
except SystemExit as end:
    assert not end.code, end.code
print("\\nMODULES=" + json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_each_entry_of_the_table_is_its_command_with_its_own_help(name):
    command = cli.load(name)
    assert isinstance(command, click.Command) and command.name == name
    first = inspect.cleandoc(command.help).split("\n\n")[0].replace("\n", " ")
    assert cli.COMMANDS[name].help == first


def test_the_web_app_still_carries_every_command(sqlite_app):
    assert set(cli.COMMANDS) <= set(sqlite_app.cli.list_commands(None))
    out = sqlite_app.test_cli_runner().invoke(args=["plan", "list"])
    assert out.exit_code == 0 and out.output.startswith("id  community")
