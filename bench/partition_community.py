"""Partition at community size: the demo's 城志社区 and Shanghai Bund buildings (issue 4: ≤ 2 s for ~5,000 households).

    .venv/bin/python bench/partition_community.py

Shanghai Bund households are a stand-in: footprint area × floors (height / 3 m, 3 when unknown) / 90 m²,
scaled to ~5,000 in all; its roads are the barriers. Best of 3 seeds after one warm-up run.
"""
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", message="Several features with id")  # the Bund file repeats some ids

import time, numpy as np, geopandas as gpd, shapely
from gridmap.partition import partition_community
from gridmap import demo
f = demo.generate()
b = f["buildings"]; c = f["communities"]
for code in ["210213013004"]:
    bb = b[b.community_code == code]; boundary = c[c.code == code].geometry.iloc[0]
    partition_community(bb, boundary, n_grids=18, seed=0)  # warm numba/caches
    ts = []
    for s in range(3):
        t = time.perf_counter(); g, a = partition_community(bb, boundary, n_grids=18, seed=s); ts.append(time.perf_counter() - t)
    r = g.attrs["report"]
    print(code, int(bb.households.sum()), "households", len(bb), "buildings: best", round(min(ts), 2), "s; max dev", round(r["max_deviation_pct"], 2), "% mean PP", round(r["mean_polsby_popper"], 3), "tiling exact", r["tiling"]["exact"])
# Shanghai Bund: a ~5,000+ household real case
sh = gpd.read_file(ROOT.parent / "shared" / "data" / "shanghai_bund" / "buildings.geojson").to_crs(4326)
sh = sh[sh.geom_type.isin(["Polygon", "MultiPolygon"])]
m = sh.to_crs(32651)
h = m.get("height")
levels = (h.fillna(9.0).astype(float) / 3.0).clip(lower=1) if h is not None else 3
sh["households"] = np.maximum(0, np.round(m.area * levels / 90.0)).astype(int)
# scale to ~5,000 households
k = 5000 / sh.households.sum(); sh["households"] = np.round(sh.households * k).astype(int)
boundary = shapely.convex_hull(shapely.union_all(sh.geometry.values))
roads = gpd.read_file(ROOT.parent / "shared" / "data" / "shanghai_bund" / "roads.geojson").to_crs(4326)
roads = roads[roads.geom_type.isin(["LineString", "MultiLineString"])]
ts = []
for s in range(3):
    t = time.perf_counter(); g, a = partition_community(sh, boundary, target_households=300, barriers=roads.geometry, seed=s); ts.append(time.perf_counter() - t)
r = g.attrs["report"]
print("shanghai_bund", int(sh.households.sum()), "households", len(sh), "buildings ->", len(g), "grids: best", round(min(ts), 2), "s; max dev", round(r["max_deviation_pct"], 2), "% mean PP", round(r["mean_polsby_popper"], 3), "tiling exact", r["tiling"]["exact"], "infeasible", [x["kind"] for x in r["infeasible"]][:5])
