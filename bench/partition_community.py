"""Partition at community size: the demo's 城志社区, Shanghai Bund and Helsinki buildings (issue 4: ≤ 2 s
for ~5,000 households; issue 11: whole buildings).

    .venv/bin/python bench/partition_community.py

Shanghai Bund households are a stand-in: footprint area × floors (height / 3 m, 3 when unknown) / 90 m²,
scaled to ~5,000 in all; its roads are the barriers. Helsinki (the OSM extract's 446 buildings) the
same with ``building:levels`` as floors. Best of 3 seeds after one warm-up run.

Beside gridmap's own report each line prints an independent check with shapely: how many footprints
are cut by a grid boundary (less than 1 - 1e-9 of the footprint's area inside the community lies in
the grid it is assigned to) and the smallest such share.
"""
import sys
import time
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", message="Several features with id")  # the Bund file repeats some ids

from gridmap import demo  # noqa: E402
from gridmap.geo.crs import local_metric_crs  # noqa: E402
from gridmap.partition import partition_community  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def cut(buildings, boundary, grids, assignment):
    """Footprints not wholly in their grid (shapely, independent of gridmap) and the least share inside."""
    poly = np.isin(shapely.get_type_id(buildings.geometry.array), [3, 6])
    fp = shapely.intersection(buildings.geometry.array[poly], boundary)
    share = shapely.area(shapely.intersection(fp, grids.geometry.array[assignment.to_numpy()[poly]])) / shapely.area(fp)
    return int((share < 1 - 1e-9).sum()), float(share.min())


def run(name, buildings, boundary, **kwargs):
    partition_community(buildings, boundary, seed=0, **kwargs)  # warm caches
    ts = []
    for s in range(3):
        t = time.perf_counter()
        g, a = partition_community(buildings, boundary, seed=s, **kwargs)
        ts.append(time.perf_counter() - t)
    r = g.attrs["report"]
    n_cut, least = cut(buildings, boundary, g, a)
    kinds = sorted({f["kind"] for f in r["infeasible"]})
    print(f"{name}: {int(buildings.households.sum())} households, {len(buildings)} buildings -> {len(g)} grids: "
          f"best {min(ts):.2f} s; max dev {r['max_deviation_pct']:.2f} % mean PP {r['mean_polsby_popper']:.3f} "
          f"tiling exact {r['tiling']['exact']}; cut buildings {n_cut} (least share in own grid {least:.4f}); "
          f"findings {kinds}")


def stand_in(frame, floors):
    metric = frame.to_crs(local_metric_crs(*frame.union_all().centroid.coords[0]))
    return np.round(metric.area.to_numpy() * floors / 90.0).astype(int)


f = demo.generate()
b, c = f["buildings"], f["communities"]
code = "210213013004"
run(code, b[b.community_code == code].reset_index(drop=True), c[c.code == code].geometry.iloc[0], n_grids=18)

sh = gpd.read_file(DATA / "shanghai_bund" / "buildings.geojson").to_crs(4326)
sh = sh[sh.geom_type.isin(["Polygon", "MultiPolygon"])].reset_index(drop=True)
sh["households"] = stand_in(sh, (sh["height"].fillna(9.0).astype(float) / 3.0).clip(lower=1).to_numpy())
sh["households"] = np.round(sh.households * 5000 / sh.households.sum()).astype(int)
roads = gpd.read_file(DATA / "shanghai_bund" / "roads.geojson").to_crs(4326)
roads = roads[roads.geom_type.isin(["LineString", "MultiLineString"])]
hull = shapely.convex_hull(shapely.union_all(sh.geometry.values))
run("shanghai_bund", sh, hull, target_households=300, barriers=roads.geometry)
run("shanghai_bund 6", sh, hull, n_grids=6, barriers=roads.geometry)

try:
    from gridmap.geo.osm import read_buildings
    rows, _, _ = read_buildings(str(DATA / "helsinki" / "Helsinki.osm.pbf"))
    hk = gpd.GeoDataFrame({"floors": rows["floors"]}, geometry=rows["geometry"].values, crs=4326)
    hk["households"] = stand_in(hk, hk["floors"].astype(float).fillna(3).to_numpy())
    run("helsinki 12", hk, shapely.convex_hull(shapely.union_all(hk.geometry.values)), n_grids=12)
except ImportError:
    print("helsinki: this checkout has no OSM reader")
