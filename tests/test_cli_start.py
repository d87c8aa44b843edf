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
HEAVY = ("folium", "numba", "geopandas", "matplotlib", "scipy", "pandas")


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
