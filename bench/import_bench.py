"""Import benchmark: gridmap's validated, one-transaction import beside a bare geopandas load, same run.

    .venv/bin/python bench/import_bench.py [--rows 1000000] [--postgis URL] [--city-scale 1]

Cases: the 10,149 Denver census blocks (EPSG:2232 polygons → WGS84) as buildings, a
generated CSV of N points, and the synthetic city's grids (15,000 at scale 1, in 625
communities) imported and published, each community's plan validated as any publish is.
Peer: geopandas read → to_crs → to_postgis / to_file(GPKG), which validates nothing; the
difference is the price of the border.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridmap import importer  # noqa: E402
from gridmap.store import Store  # noqa: E402

DENVER = ROOT.parent / "shared" / "data" / "denver" / "DenverCo_blocks.zip"


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def fresh_store(kind, workdir, pg_url):
    if kind == "sqlite":
        path = Path(workdir) / f"bench-{time.monotonic_ns()}.db"
        store = Store(f"sqlite:///{path}")
    else:
        engine = sa.create_engine(pg_url)
        with engine.begin() as c:
            c.execute(sa.text("DROP SCHEMA IF EXISTS bench CASCADE"))
            c.execute(sa.text("CREATE SCHEMA bench"))
        engine.dispose()
        store = Store(sa.engine.make_url(pg_url).update_query_dict({"options": "-csearch_path=bench,public"}))
    store.upgrade()
    return store


def make_csv(path, n, seed=1):
    rng = np.random.default_rng(seed)
    lon = rng.uniform(121.45, 121.75, n)
    lat = rng.uniform(38.85, 39.10, n)
    pd.DataFrame({"address": [f"测试路{i}号" for i in range(n)], "households": rng.integers(1, 200, n),
                  "lon": lon.round(7), "lat": lat.round(7)}).to_csv(path, index=False)


def peer_geopandas(path, target, kind, fields=None):
    """geopandas' own way in: read, reproject, write. No validation, no repair, no references."""
    if path.suffix == ".csv":
        df = pd.read_csv(path)
        gdf = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["lon"], df["lat"]), crs=4326)
    else:
        gdf = gpd.read_file(path).to_crs(4326)
    return _peer_write(gdf, target, kind)


def _peer_write(gdf, target, kind):
    if kind == "sqlite":
        gdf.to_file(target, driver="GPKG")
    else:
        engine = sa.create_engine(target)
        gdf.to_postgis("peer_load", engine, schema="bench", if_exists="replace", chunksize=50_000)
        engine.dispose()
    return len(gdf)


def import_city_grids(store, city):
    """The city's communities (not timed), then its grids imported and published in one transaction (timed)."""
    from gridmap.geo.crs import parse_crs
    from gridmap.geo.io import RawLayer
    with store.transaction() as s:
        importer.import_layer(s, "communities", RawLayer(frame=city.communities.copy(), crs=parse_crs(4326),
                                                         source="synthetic:communities"))
    raw = RawLayer(frame=city.grids[["code", "name", "community_code", "geometry"]].copy(), crs=parse_crs(4326),
                   source="synthetic:grids")
    t0 = time.perf_counter()
    with store.transaction() as s:
        summary = importer.import_layer(s, "grids", raw, publish=True)
    return time.perf_counter() - t0, summary


def peer_city_grids(city, target, kind):
    """The same grids written by geopandas: no numbering, no plans, no validation."""
    return _peer_write(city.grids[["code", "name", "community_code", "geometry"]], target, kind)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--postgis", default=os.environ.get("GRIDMAP_TEST_DATABASE_URL"))
    ap.add_argument("--city-scale", type=float, default=1.0,
                    help="synthetic city whose grids are imported and published (bench/synthetic_city.py); 0 skips")
    args = ap.parse_args()
    backends = ["sqlite"] + (["postgis"] if args.postgis else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "points.csv"
        make_csv(csv, args.rows)
        cases = [("csv points", csv, {})]
        if DENVER.exists():
            cases.insert(0, ("denver blocks", DENVER, {"households": "TOTPOP20", "address": "GEOID20"}))
        else:
            print(f"skipping Denver: {DENVER} absent")
        for label, path, fields in cases:
            for backend in backends:
                store = fresh_store(backend, tmp, args.postgis)
                secs, summary = timed(lambda: importer.import_file(store, "buildings", path, fields=fields))
                store.dispose()
                target = str(Path(tmp) / "peer.gpkg") if backend == "sqlite" else args.postgis
                if backend == "postgis":
                    fresh_store(backend, tmp, args.postgis).dispose()
                psecs, n = timed(lambda: peer_geopandas(path, target, backend, fields))
                rows.append((label, backend, summary.imported, secs, n, psecs))
        if args.city_scale:
            sys.path.insert(0, str(ROOT / "bench"))
            import synthetic_city
            city = synthetic_city.load(args.city_scale, 3)
            for backend in backends:
                store = fresh_store(backend, tmp, args.postgis)
                secs, summary = import_city_grids(store, city)
                store.dispose()
                target = str(Path(tmp) / "peer-grids.gpkg") if backend == "sqlite" else args.postgis
                psecs, n = timed(lambda: peer_city_grids(city, target, backend))
                rows.append(("city grids", backend, summary.imported, secs, n, psecs))
    print(f"\n{'case':15} {'store':8} {'rows':>9} {'gridmap s':>10} {'rows/s':>10} "
          f"{'geopandas s':>12} {'ratio':>6}")
    for label, backend, n, secs, pn, psecs in rows:
        print(f"{label:15} {backend:8} {n:9d} {secs:10.2f} {n / secs:10.0f} {psecs:12.2f} {secs / psecs:6.2f}")
    print("\ngridmap: read + validate every feature + convert CRS + one transaction; "
          "geopandas: read + to_crs + to_file(GPKG) / to_postgis, no validation.")
    if args.city_scale:
        print("city grids: numbered, one plan a community, each validated (gaps, overlaps, households …) "
              "and published; geopandas writes the frame as it is.")


if __name__ == "__main__":
    main()
