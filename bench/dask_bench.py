"""Batch work on Dask beside the single-process path, same run, same data.

    .venv/bin/python bench/dask_bench.py [--scale 1.0] [--only assign,join] [--workers 2] [--points 30000000]

assign  `gridmap assign --all` at the bench city (bench/synthetic_city.py: 625 communities, 15,000
        grids, 60,000 buildings, 3,000,000 households, one party member per 20 households, a grid
        branch a grid, 50,000 cameras, 250,000 responders): the in-process path (`--workers 1`:
        assign.run in one transaction) beside Dask with `--workers` worker processes (the
        LocalCluster's start included), and every stored row of both runs compared.
join    `gridmap join` of `--points` points (uniform over the city, generated a million at a time
        into a Parquet file of lon/lat/id) against the city's 15,000 grids: the command in a fresh
        process, on Dask and in-process, its time and the peak resident memory it reports for
        itself and each worker; 200,000 sampled output rows compared with points_to_grids.

The store is made once and cached beside the city (bench/out/city-*/assign-store-v1.db); the points
file is made once too (bench/out/points-<n>.parquet, ~24 bytes a point) and the output removed after.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import synthetic_city  # noqa: E402

STORE_FORMAT = 1
HOUSEHOLDS_PER_MEMBER = 20
OUT = ROOT / "bench" / "out"


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


# -- the store ---------------------------------------------------------------------------------

def prepare_store(city):
    """A SQLite store holding what `assign --all` reads; cached beside the city."""
    folder = synthetic_city.cache_dir(city.scale, city.seed)
    path = folder / f"assign-store-v{STORE_FORMAT}.db"
    done = folder / f"assign-store-v{STORE_FORMAT}.ok"
    url = f"sqlite:///{path}"
    if path.exists() and done.exists():
        return url
    import geopandas as gpd
    from sqlalchemy import insert, select

    from gridmap import importer
    from gridmap.geo.crs import parse_crs
    from gridmap.geo.io import RawLayer
    from gridmap.geo.pointindex import points_to_grids
    from gridmap.store import Store
    from gridmap.store import models as m
    from gridmap.store.bulk import bulk_insert
    from gridmap.store.types import encode_many

    path.unlink(missing_ok=True)
    store = Store(url)
    store.upgrade()
    t0 = time.perf_counter()
    with store.transaction() as session:
        for kind, frame in [("communities", city.communities),
                            ("grids", city.grids[["code", "name", "community_code", "geometry"]]),
                            ("responders", city.responders[["name", "kind", "skills", "available", "geometry"]]),
                            ("cameras", city.cameras[["name", "bearing", "fov", "range_m", "geometry"]])]:
            frame = frame.copy()
            if "kind" in frame:
                frame["kind"] = frame["kind"].astype(str)
            importer.import_layer(session, kind, RawLayer(frame=frame, crs=parse_crs(4326), source=f"synthetic:{kind}"),
                                  publish=(kind == "grids"))
            print(f"  store: {kind} in {time.perf_counter() - t0:.0f} s", flush=True)
        session.execute(insert(m.PartyOrganization), [
            {"kind": "grid_branch", "name": f"{name}党支部", "community_code": community, "grid_code": code}
            for code, name, community in zip(city.grids["code"], city.grids["name"], city.grids["community_code"])])
        branch = dict(session.execute(select(m.PartyOrganization.grid_code, m.PartyOrganization.id)).all())
        b = city.buildings
        grid_of = points_to_grids(b, city.grids)
        community = np.where(grid_of >= 0, city.grids["community_code"].to_numpy(dtype=object)[grid_of], None)
        hh_per_building = np.bincount(city.household_building, minlength=len(b))
        points = gpd.GeoSeries(gpd.points_from_xy(b[:, 0], b[:, 1]), crs=4326).values
        bulk_insert(session, m.Building, pd.DataFrame({
            "id": np.arange(1, len(b) + 1), "community_code": community,
            "address": [f"合成路{i}号" for i in range(len(b))], "name": "", "households": hh_per_building,
            "geom": encode_many(np.asarray(points, dtype=object), "sqlite"), "lon": b[:, 0], "lat": b[:, 1]}))
        n = len(city.household_building)
        bulk_insert(session, m.Household, pd.DataFrame({
            "id": np.arange(1, n + 1), "building_id": city.household_building + 1, "unit": "", "size": 2}))
        print(f"  store: {len(b):,} buildings, {n:,} households in {time.perf_counter() - t0:.0f} s", flush=True)
        rng = np.random.default_rng(city.seed)
        hh = rng.choice(n, n // HOUSEHOLDS_PER_MEMBER, replace=False)
        hb = city.household_building[hh]
        grid_codes = city.grids["code"].to_numpy(dtype=object)
        org = [branch.get(grid_codes[g]) if g >= 0 else None for g in grid_of[hb]]
        bulk_insert(session, m.PartyMember, pd.DataFrame({
            "id": np.arange(1, len(hh) + 1), "name": [f"党员{i}" for i in range(len(hh))], "phone": "",
            "building_id": hb + 1, "organization_id": pd.array(org, dtype="Int64"), "in_service": False,
            "employer": ""}))
        print(f"  store: {len(hh):,} party members in {time.perf_counter() - t0:.0f} s", flush=True)
    store.dispose()
    done.write_text(json.dumps({"seconds": round(time.perf_counter() - t0, 1)}))
    return url


# -- assign --all ------------------------------------------------------------------------------

def stored_rows(store):
    """Each assignment table as a DataFrame sorted by its key; each run's summary without its seconds."""
    from gridmap.store import models as m
    out = {}
    with store.engine.connect() as conn:
        for model in (m.BuildingGrid, m.MemberGrid, m.ContactLink, m.EntityGrid):
            table = model.__table__
            keys = [c.name for c in table.primary_key.columns]
            frame = pd.read_sql_table(table.name, conn)
            out[table.name] = frame.sort_values(keys).reset_index(drop=True)
        runs = pd.read_sql_table(m.AssignmentRun.__table__.name, conn)
    out["assignment_run"] = sorted((int(p), json.dumps({k: v for k, v in json.loads(s).items() if k != "seconds"},
                                                       sort_keys=True)) for p, s in zip(runs["plan_id"], runs["summary"]))
    return out


def bench_assign(city, args, table):
    from gridmap.cli import batch
    from gridmap.store import Store
    from gridmap.geo.warm import warm

    print("assign: preparing the store (cached after the first run) …", flush=True)
    url = prepare_store(city)
    store = Store(url)
    warm()
    capacity = 15
    t1, single = timed(lambda: _single(store, capacity))
    print(f"  in-process (--workers 1): {t1:.1f} s", flush=True)
    rows1 = stored_rows(store)
    import distributed  # noqa: F401  (imported before the clock, as the in-process path's modules are)
    t2, summaries = timed(lambda: batch.assign_all(store, capacity, workers=args.workers))
    print(f"  Dask, {args.workers} workers: {t2:.1f} s", flush=True)
    rows2 = stored_rows(store)
    same = {k: (rows1[k].equals(rows2[k]) if isinstance(rows1[k], pd.DataFrame) else rows1[k] == rows2[k])
            for k in rows1}
    counts = {k: len(v) for k, v in rows1.items()}
    store.dispose()
    table.append(("assign", f"assign --all, {len(single)} communities (s)", f"{t2:.1f} ({args.workers} workers)",
                  f"{t1:.1f} (in-process)", f"{t1 / t2:.2f}×"))
    table.append(("assign", "stored rows identical, per table", json.dumps(same), json.dumps(counts), ""))
    return all(same.values())


def _single(store, capacity):
    from gridmap import assign
    with store.transaction() as session:
        return assign.run(session, capacity=capacity)


# -- join --------------------------------------------------------------------------------------

def points_file(city, n):
    path = OUT / f"points-{n}-scale{city.scale:g}.parquet"
    if path.exists():
        return path
    import pyarrow as pa
    import pyarrow.parquet as pq
    tmp = path.with_suffix(".tmp")
    writer = None
    step = 1_000_000
    for i in range(0, n, step):
        k = min(step, n - i)
        xy = city.random_points(k, seed=i // step, margin=-0.002)  # a little outside the city, too
        t = pa.table({"id": np.arange(i, i + k, dtype=np.int64), "lon": xy[:, 0], "lat": xy[:, 1]})
        writer = writer or pq.ParquetWriter(tmp, t.schema)
        writer.write_table(t, row_group_size=step)
    writer.close()
    tmp.rename(path)
    return path


def bench_join(city, args, table):
    import pyarrow.parquet as pq

    from gridmap.geo.pointindex import points_to_grids

    t0 = time.perf_counter()
    src = points_file(city, args.points)
    print(f"join: {args.points:,} points in {src} ({src.stat().st_size / 2**20:,.0f} MB, "
          f"{time.perf_counter() - t0:.0f} s to make or find)", flush=True)
    grids_path = synthetic_city.cache_dir(city.scale, city.seed) / "grids.gpkg"
    if not grids_path.exists():
        city.grids[["code", "geometry"]].to_file(grids_path, driver="GPKG")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRIDMAP_INSTANCE_PATH": str(OUT / "dask-bench-instance")}
    for workers in args.join_workers:
        out = OUT / f"joined-{workers}.parquet"
        cmd = [sys.executable, "-m", "gridmap", "join", str(src), "--grids", str(grids_path), "--out", str(out),
               "--workers", str(workers)]
        t, proc = timed(lambda: subprocess.run(cmd, env=env, capture_output=True, text=True, check=False))
        if proc.returncode:
            raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-3000:])
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(("Joined", "Peak"))]
        print("  " + "\n  ".join(lines), flush=True)
        # a sample of the output against points_to_grids on the same points
        pf = pq.ParquetFile(out)
        groups = sorted({0, pf.metadata.num_row_groups - 1, pf.metadata.num_row_groups // 2})
        sample = pd.concat([pf.read_row_group(g).to_pandas() for g in groups]).iloc[::15]
        pos = points_to_grids(sample[["lon", "lat"]].to_numpy(), city.grids)
        codes = city.grids["code"].to_numpy(dtype=object)
        expected = np.where(pos >= 0, codes[np.maximum(pos, 0)], None)
        got = np.array([None if pd.isna(v) else v for v in sample["grid_code"]], dtype=object)
        differ = int((got != expected).sum())
        peak = lines[-1].split(":", 1)[1].strip() if lines else "?"
        table.append(("join", f"gridmap join, {args.points:,} points, --workers {workers} (s)", f"{t:.1f}",
                      f"peak RSS MB: {peak}", f"{args.points / t / 1e6:.2f} M points/s"))
        table.append(("join", f"  sampled rows differing from points_to_grids (of {len(sample):,})", str(differ), "", ""))
        out.unlink()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--only", default="assign,join")
    ap.add_argument("--workers", type=int, default=2, help="Dask workers for assign (2)")
    ap.add_argument("--points", type=int, default=30_000_000, help="points for join (30,000,000)")
    ap.add_argument("--join-workers", default="2,1", help="join runs: Dask workers of each (1 = in-process)")
    args = ap.parse_args()
    args.join_workers = [int(w) for w in args.join_workers.split(",")]
    parts = args.only.split(",")
    city = synthetic_city.load(args.scale, args.seed)
    print(f"city: {city.counts()}", flush=True)
    table = []
    load0 = os.getloadavg()[0]
    if "assign" in parts:
        bench_assign(city, args, table)
    if "join" in parts:
        bench_join(city, args, table)
    print(f"\ndask bench, scale {args.scale:g}, {os.cpu_count()} cores; load average {load0:.2f} at start, "
          f"{os.getloadavg()[0]:.2f} at end (other work on the machine shows in every figure)")
    widths = [max(len(str(r[i])) for r in table) for i in range(5)] if table else []
    for r in table:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)))
    stamp = time.strftime("%Y-%m-%dT%H%M%S")
    (OUT / f"dask_bench-{stamp}.json").write_text(json.dumps(table, ensure_ascii=False, indent=1))
    shutil.rmtree(OUT / "dask-bench-instance", ignore_errors=True)


if __name__ == "__main__":
    main()
