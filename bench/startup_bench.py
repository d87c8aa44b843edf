"""No blank waits: CLI start, the first map after a fresh install, the notice-board PDF first and cached.

    .venv/bin/python bench/startup_bench.py [--runs 5] [--only cli,map,board]

- ``cli``: median wall time of ``gridmap --help`` and ``gridmap plan list`` (on the demo, built
  once in bench/out/startup-instance) over ``--runs`` starts, beside ``python -c 'import flask'``,
  the floor any Flask command pays; each with its user+sys CPU time, which says less about how
  busy the shared machine was. ``--compare DIR`` times the same two commands with another
  checkout's code (e.g. ``git archive main | tar -x -C /tmp/before``), interleaved with ours, so
  before and after share the machine's load; the modules each start loaded are counted too.
- ``map``: the first ``GET /api/v1/locate`` of a new process (it builds the point index), with the
  numba cache empty (``NUMBA_CACHE_DIR`` a fresh folder: a fresh install) and after ``gridmap warm``
  filled it (what ``make install`` and ``gridmap demo`` now do).
- ``board``: a notice-board PDF drawn (the boards folder emptied) and asked again (served from it).
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
INSTANCE = OUT / "startup-instance"


def _env(root=ROOT, **extra):
    return {**os.environ, "PYTHONPATH": str(root), "GRIDMAP_INSTANCE_PATH": str(INSTANCE), **extra}


def _timed(args, env):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    # run from the checkout measured: `-m` and `-c` put the working directory first on sys.path
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   cwd=env["PYTHONPATH"])
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _median(args, runs, env):
    _timed(args, env)  # one start to fill the OS's file cache: every figure is a warm start
    got = [_timed(args, env) for _ in range(runs)]
    return statistics.median(w for w, _ in got), statistics.median(c for _, c in got)


def _demo():
    if not (INSTANCE / "gridmap.db").exists():
        INSTANCE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "gridmap", "demo"], env=_env(), check=True, stdout=subprocess.DEVNULL)


_MODULES = """
import sys
from gridmap.__main__ import main
try:
    main(sys.argv[1:], prog_name="gridmap")
except SystemExit:
    pass
print("MODULES", len(sys.modules))
"""


def _modules(args, env):
    out = subprocess.run([sys.executable, "-c", _MODULES, *args], env=env, check=True, capture_output=True, text=True,
                         cwd=env["PYTHONPATH"])
    return int(out.stdout.rsplit("MODULES", 1)[1])


def cli(runs, compare=None):
    _demo()
    py = sys.executable
    rows = [("python -c 'import flask' (floor)", [py, "-c", "import flask"], None),
            ("gridmap --help", [py, "-m", "gridmap", "--help"], ["--help"]),
            ("gridmap plan list (demo)", [py, "-m", "gridmap", "plan", "list"], ["plan", "list"])]
    sides = [("", ROOT)] + ([(" [compare]", Path(compare).resolve())] if compare else [])
    print(f"CLI start, median of {runs} (wall / CPU / modules loaded):")
    for label, args, argv in rows:
        for tag, root in (sides if argv else sides[:1]):
            wall, cpu = _median(args, runs, _env(root))
            count = f" / {_modules(argv, _env(root)):4d}" if argv else ""
            print(f"  {label + tag:46} {wall:6.2f} s / {cpu:5.2f} s{count}")


_FIRST_MAP = """
import time
from sqlalchemy import select
from gridmap import create_app
from gridmap.store import models as m
app = create_app()
with app.extensions["gridmap.store"].session() as s:
    lon, lat = s.execute(select(m.Building.lon, m.Building.lat)).first()
client = app.test_client()
t0 = time.perf_counter()
r = client.get(f"/api/v1/locate?lon={lon}&lat={lat}")
assert r.status_code == 200, r.status_code
print(time.perf_counter() - t0)
"""


def first_map():
    _demo()
    with tempfile.TemporaryDirectory(prefix="numba-") as cache:
        env = _env(NUMBA_CACHE_DIR=cache)
        run = lambda: float(subprocess.run([sys.executable, "-c", _FIRST_MAP], env=env, check=True,  # noqa: E731
                                           capture_output=True, text=True).stdout.split()[-1])
        cold = run()
        shutil.rmtree(cache)
        os.mkdir(cache)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gridmap", "warm"], env=env, check=True, stdout=subprocess.DEVNULL)
        warming = time.perf_counter() - t0
        warm = run()
        again = run()
    print("First map (GET /api/v1/locate in a new process, point index built on it):")
    print(f"  numba cache empty (fresh install)    {cold:6.2f} s")
    print(f"  after `gridmap warm` ({warming:4.1f} s)        {warm:6.2f} s")
    print(f"  a later process                      {again:6.2f} s")


_BOARD = """
import shutil, time
from pathlib import Path
from sqlalchemy import select
from gridmap import create_app
from gridmap.store import models as m
app = create_app()
app.config["WTF_CSRF_ENABLED"] = False
with app.extensions["gridmap.store"].session() as s:
    code = s.scalars(select(m.Grid.code).join(m.GridPlan).where(m.GridPlan.status == "published")).first()
shutil.rmtree(Path(app.instance_path) / "boards", ignore_errors=True)
client = app.test_client()
assert client.post("/login", data={"username": "planner", "password": "gridmap-demo"}).status_code == 302
client.get(f"/planner/boards/{code}.png")  # fonts and Matplotlib loaded before the clock starts
times = []
for _ in range(3):
    t0 = time.perf_counter()
    r = client.get(f"/planner/boards/{code}.pdf")
    assert r.status_code == 200 and r.data.startswith(b"%PDF")
    times.append(time.perf_counter() - t0)
print(*times)
"""


def board():
    _demo()
    out = subprocess.run([sys.executable, "-c", _BOARD], env=_env(), check=True, capture_output=True, text=True)
    first, *cached = map(float, out.stdout.split())
    print("Notice-board PDF:")
    print(f"  drawn                                {first:6.2f} s")
    print(f"  cached (median of {len(cached)})                {statistics.median(cached) * 1000:6.1f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="cli,map,board")
    parser.add_argument("--compare", help="another checkout whose CLI start to time beside this one's")
    args = parser.parse_args()
    parts = args.only.split(",")
    if "cli" in parts:
        cli(args.runs, args.compare)
    if "map" in parts:
        first_map()
    if "board" in parts:
        board()


if __name__ == "__main__":
    main()
