"""Upsert benchmark: imports matched by source key beside today's append and a bare GeoPandas load, same run.

    .venv/bin/python bench/upsert_bench.py [--rows 1000000] [--osm 100000] [--postgis URL] [--before /work/main]
                                           [--repeat 2] [--no-postgis] [--no-sqlite]

Cases, on SQLite and PostGIS (``$GRIDMAP_BENCH_DATABASE_URL``, else ``$GRIDMAP_TEST_DATABASE_URL``,
in a schema ``bench_upsert`` dropped after):

- N building points from a CSV with a ``code`` column, into an empty store: ``--mode append`` (no
  keys: the path every import took before batches) and the default upsert with keys; the key may
  cost at most 1.5× append;
- the same file again (every row unchanged: counted, nothing rewritten), and once more with 1 %
  of the rows edited (updated, previous values kept for undo);
- ``--before CHECKOUT``: the same first import by another checkout of gridmap (e.g. main before
  batches), in a subprocess, on a fresh store of the same backend;
- a synthetic OpenStreetMap file of ``--osm`` square buildings (``w`` ids, ``addr:*``), imported and
  re-imported (keys from OSM type and id).

Peer: geopandas read → to_file(GPKG) / to_postgis, which matches nothing and validates nothing.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from gridmap import importer  # noqa: E402
from gridmap.store import Store  # noqa: E402
from import_bench import peer_geopandas  # noqa: E402

SCHEMA = "bench_upsert"


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def fresh_url(kind, workdir, pg_url):
    if kind == "sqlite":
        return f"sqlite:///{Path(workdir) / f'upsert-{time.monotonic_ns()}.db'}"
    engine = sa.create_engine(pg_url)
    with engine.begin() as c:
        c.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        c.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
    engine.dispose()
    return sa.engine.make_url(pg_url).update_query_dict({"options": f"-csearch_path={SCHEMA},public"}) \
        .render_as_string(hide_password=False)


def fresh_store(kind, workdir, pg_url):
    store = Store(fresh_url(kind, workdir, pg_url))
    store.upgrade()
    return store


def make_csv(path, n, seed=1, edit=0.0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"code": [f"B{i:07d}" for i in range(n)],
                          "address": [f"测试路{i}号" for i in range(n)], "households": rng.integers(1, 200, n),
                          "lon": rng.uniform(121.45, 121.75, n).round(7),
                          "lat": rng.uniform(38.85, 39.10, n).round(7)})
    if edit:
        rows = rng.choice(n, int(n * edit), replace=False)
        frame.loc[rows, "households"] += 1
    frame.to_csv(path, index=False)


def make_osm(path, n, seed=2):
    """``n`` 10 m square buildings on a jittered lattice near Helsinki, one closed way each."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n)))
    d = 10 / 111_320  # ≈ 10 m in degrees of latitude
    with open(path, "w", encoding="utf-8") as f:
        f.write("<?xml version='1.0' encoding='UTF-8'?>\n<osm version='0.6' generator='upsert_bench'>\n")
        ways = []
        node = 1
        for i in range(n):
            x0 = 24.80 + (i % side) * 3 * d * 2 + rng.uniform(0, d)
            y0 = 60.10 + (i // side) * 3 * d + rng.uniform(0, d)
            ids = []
            for x, y in ((x0, y0), (x0 + 2 * d, y0), (x0 + 2 * d, y0 + d), (x0, y0 + d)):
                f.write(f"<node id='{node}' version='1' lat='{y:.7f}' lon='{x:.7f}'/>\n")
                ids.append(node)
                node += 1
            ways.append(ids)
        for i, ids in enumerate(ways):
            refs = "".join(f"<nd ref='{r}'/>" for r in ids + ids[:1])
            f.write(f"<way id='{i + 1}' version='1'>{refs}<tag k='building' v='yes'/>"
                    f"<tag k='addr:street' v='Testikatu'/><tag k='addr:housenumber' v='{i + 1}'/></way>\n")
        f.write("</osm>\n")


_BEFORE = """
import sys, time
from gridmap import importer
from gridmap.store import Store
store = Store(sys.argv[1]); store.upgrade()
t0 = time.perf_counter()
s = importer.import_file(store, "buildings", sys.argv[2])
print(time.perf_counter() - t0, s.imported)
"""


def before(checkout, url, path):
    """The first import by another checkout (e.g. main before batches), timed inside its own process."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    out = subprocess.run([sys.executable, "-c", _BEFORE, url, str(path)], env=env, capture_output=True, text=True,
                         check=True)
    secs, n = out.stdout.split()[-2:]
    return float(secs), int(n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--osm", type=int, default=100_000)
    ap.add_argument("--postgis", default=os.environ.get("GRIDMAP_BENCH_DATABASE_URL")
                    or os.environ.get("GRIDMAP_TEST_DATABASE_URL"))
    ap.add_argument("--before", help="another gridmap checkout whose first import is timed beside (e.g. /work/main)")
    ap.add_argument("--no-postgis", action="store_true")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--repeat", type=int, default=2, help="runs of append and of the first keyed import (fastest kept)")
    args = ap.parse_args()
    backends = ([] if args.no_sqlite else ["sqlite"]) + (["postgis"] if args.postgis and not args.no_postgis else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        csv, edited, osm = Path(tmp) / "points.csv", Path(tmp) / "points-edited.csv", Path(tmp) / "buildings.osm"
        make_csv(csv, args.rows)
        make_csv(edited, args.rows, edit=0.01)
        if args.osm:
            make_osm(osm, args.osm)
        warm = Path(tmp) / "warm.csv"
        make_csv(warm, 1000, seed=3)
        store = fresh_store("sqlite", tmp, None)
        importer.import_file(store, "buildings", warm)  # first-call costs (imports, caches) in no case's figure
        store.dispose()
        for backend in backends:
            def case(label, fn, n_peer=None, peer=None):
                secs, s = timed(fn)
                counts = f"{s.created}/{s.updated}/{s.unchanged}/{s.retired}"
                rows.append((label, backend, s.imported, secs, counts))
                print(f"{label:28} {backend:8} {s.imported:9d} rows {secs:8.2f} s  c/u/n/r {counts}", flush=True)
                return secs

            # append and the first keyed import alternate, each on a fresh store, fastest of --repeat
            # kept: on a shared machine one slow run must not decide the ratio
            appends, keyeds = [], []
            for attempt in range(args.repeat):
                store = fresh_store(backend, tmp, args.postgis)
                appends.append(case(f"csv append (no keys) #{attempt + 1}",
                                    lambda: importer.import_file(store, "buildings", csv, mode="append")))
                store.dispose()
                store = fresh_store(backend, tmp, args.postgis)
                keyeds.append(case(f"csv upsert, first #{attempt + 1}", lambda: importer.import_file(store, "buildings", csv)))
                if attempt + 1 < args.repeat:
                    store.dispose()
            append, keyed = min(appends), min(keyeds)
            case("csv upsert, same file", lambda: importer.import_file(store, "buildings", csv))
            case("csv upsert, 1 % edited", lambda: importer.import_file(store, "buildings", edited))
            store.dispose()
            rows.append(("  keys ÷ append", backend, 0, keyed / append, ""))
            print(f"  first import with keys / append: {keyed / append:.2f}× (at most 1.5×)", flush=True)
            if args.before:
                url = fresh_url(backend, tmp, args.postgis)
                secs, n = before(args.before, url, csv)
                rows.append((f"csv first, {Path(args.before).name}", backend, n, secs, ""))
                print(f"{'csv first, ' + str(args.before):28} {backend:8} {n:9d} rows {secs:8.2f} s", flush=True)
            target = str(Path(tmp) / "peer.gpkg") if backend == "sqlite" else args.postgis
            if backend == "postgis":  # import_bench's peer writes to the schema "bench"
                engine = sa.create_engine(args.postgis)
                with engine.begin() as c:
                    c.execute(sa.text("CREATE SCHEMA IF NOT EXISTS bench"))
                engine.dispose()
            psecs, n = timed(lambda: peer_geopandas(csv, target, backend))
            rows.append(("csv geopandas load (peer)", backend, n, psecs, ""))
            print(f"{'csv geopandas load (peer)':28} {backend:8} {n:9d} rows {psecs:8.2f} s", flush=True)
            if args.osm:
                store = fresh_store(backend, tmp, args.postgis)
                case("osm buildings, first", lambda: importer.import_file(store, "buildings", osm, layer="buildings"))
                case("osm buildings, same file", lambda: importer.import_file(store, "buildings", osm, layer="buildings"))
                store.dispose()
        if "postgis" in backends:
            engine = sa.create_engine(args.postgis)
            with engine.begin() as c:
                c.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
                c.execute(sa.text("DROP SCHEMA IF EXISTS bench CASCADE"))
            engine.dispose()
    print(f"\n{'case':28} {'store':8} {'rows':>9} {'seconds':>9} {'rows/s':>10}  created/updated/unchanged/retired")
    for label, backend, n, secs, counts in rows:
        if label.startswith("  keys"):
            print(f"{label:28} {backend:8} {'':9} {secs:8.2f}×")
        else:
            print(f"{label:28} {backend:8} {n:9d} {secs:9.2f} {n / secs:10.0f}  {counts}")


if __name__ == "__main__":
    main()
