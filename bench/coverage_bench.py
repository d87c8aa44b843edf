"""Camera coverage benchmarks: view polygons among city buildings, cameras seeing a point, placement vs spopt MCLP.

    .venv/bin/python bench/coverage_bench.py                       # 50,000 cameras, measured (3–4 min)
    .venv/bin/python bench/coverage_bench.py --cameras 5000 --repeat 1 --skip-mclp --skip-store   # a quick look
    .venv/bin/python bench/coverage_bench.py --only-demo           # placement in the demo (和合大院, 城志社区)

Buildings are a jittered lattice of rotated rectangular footprints (8–25 m sides, 35 m pitch,
Dalian-like block density), 1.2 per camera; cameras hang 0.3 m off a random wall looking roughly
outward (fov 50–110°, range 20–60 m). The views of all cameras are computed with ``--processes``
workers (best of ``--repeat``: other work shares the 2 cores) and once in one process; the two
answers are compared. "Cameras seeing a point" is timed per call over ``--points`` points, half
inside some view and half anywhere: on a plain STRtree of the metric views, and through what the
dispatcher uses, ``Snapshot.from_frames(grids, cameras=...)`` over WGS84 cameras with their
stored views in a ``view`` column (and without it: plain sectors). The city is placed on the
ground at 121.6E 38.9N through ``local_metric_crs`` for that. The store part imports the
buildings and the cameras into a fresh SQLite file with ``importer.import_layer`` (which computes
and stores every view) and times ``coverage.refresh_views`` of all of them. ``--demo`` (or
``--only-demo``) builds the demo in a scratch SQLite file and times ``placement_for`` on its
courtyard 和合大院 and its community 城志社区. Results also go to ``bench/out/coverage-bench.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridmap import coverage as cv  # noqa: E402

RESULTS = {}


def city(n_buildings, seed=1, pitch=35.0):
    rng = np.random.default_rng(seed)
    side = int(math.ceil(math.sqrt(n_buildings)))
    ij = np.array([(i, j) for i in range(side) for j in range(side)][:n_buildings], dtype=float)
    centre = ij * pitch + rng.uniform(-4, 4, ij.shape)
    w, h = rng.uniform(8, 25, len(ij)), rng.uniform(8, 18, len(ij))
    boxes = shapely.box(centre[:, 0] - w / 2, centre[:, 1] - h / 2, centre[:, 0] + w / 2, centre[:, 1] + h / 2)
    angles = rng.uniform(0, 30, len(ij))
    return np.array([shapely.affinity.rotate(b, a) for b, a in zip(boxes, angles)], dtype=object)


def cameras_on_walls(footprints, n, seed=2):
    rng = np.random.default_rng(seed)
    obs = cv.Obstacles(footprints)
    k = rng.integers(0, len(obs.a), n)
    a, b = obs.a[k], obs.b[k]
    t = rng.uniform(0.1, 0.9, n)[:, None]
    ab = b - a
    normal = np.column_stack([ab[:, 1], -ab[:, 0]]) / np.hypot(*ab.T)[:, None]
    xy = a + t * ab + 0.3 * normal
    outward = np.degrees(np.arctan2(normal[:, 0], normal[:, 1]))
    return gpd.GeoDataFrame({"bearing": (outward + rng.uniform(-60, 60, n)) % 360,
                             "fov": rng.uniform(50, 110, n), "range_m": rng.uniform(20, 60, n)},
                            geometry=shapely.points(xy))


def best_of(repeat, fn):
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def cpu_seconds():
    """CPU time of this process and its reaped children (the view workers), user + system."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(repeat, fn):
    """Best wall time of ``repeat`` runs, the CPU seconds of that run, and its answer."""
    best = (math.inf, math.nan, None)
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), cpu_seconds()
        out = fn()
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        if wall < best[0]:
            best = (wall, cpu, out)
    return best


def bench_views(n_cameras, processes, repeat, single=True):
    t0 = time.perf_counter()
    footprints = city(int(n_cameras * 1.2))
    cams = cameras_on_walls(footprints, n_cameras)
    t_city = time.perf_counter() - t0
    t_obs, obs = best_of(1, lambda: cv.Obstacles(footprints))
    print(f"views: {len(footprints):,} buildings, {n_cameras:,} cameras on walls "
          f"(city made in {t_city:.1f} s, obstacles prepared in {t_obs:.2f} s)")
    row = {"buildings": len(footprints), "cameras": n_cameras, "obstacles_s": t_obs}
    views = None
    if processes > 1:
        tp, cp, views = timed(repeat, lambda: cv.view_polygons(cams, obs, processes=processes))
        print(f"  {processes} processes: {tp:.2f} s = {n_cameras / tp:,.0f} views/s (best of {repeat}; "
              f"{cp:.1f} CPU s = {1000 * cp / n_cameras:.2f} ms a view)")
        row.update({"processes": processes, "seconds": tp, "views_per_s": n_cameras / tp, "cpu_s": cp})
    if single or views is None:
        t1, c1, one = timed(1, lambda: cv.view_polygons(cams, obs))
        print(f"  1 process : {t1:.2f} s = {n_cameras / t1:,.0f} views/s ({c1:.1f} CPU s)")
        row.update({"seconds_1_process": t1, "cpu_s_1_process": c1})
        if views is None:
            views = one
            row.update({"processes": 1, "seconds": t1, "views_per_s": n_cameras / t1, "cpu_s": c1})
        else:
            same = sum(a.equals_exact(b, 0) or (a.is_empty and b.is_empty) for a, b in zip(views.values, one.values))
            print(f"  {same:,} of {n_cameras:,} views identical between the two runs")
            row["identical"] = same
    empty = int(shapely.is_empty(views.values).sum())
    print(f"  empty views {empty}, mean view {np.mean(shapely.area(views.values)):.0f} m²")
    row.update({"empty": empty, "mean_view_m2": float(np.mean(shapely.area(views.values)))})
    RESULTS["views"] = row
    return cams, views, footprints


class ViewIndex:
    """The reference "which cameras see (x, y)": an STRtree over the metric views, GEOS deciding.

    The plain way to answer from view polygons, without the snapshot's k-d tree of cameras and
    its one ``sees()`` test; both must give the same cameras.
    """

    def __init__(self, views, positions, ids):
        self.views = np.asarray(getattr(views, "values", views), dtype=object)
        self.tree = shapely.STRtree(self.views)
        self.xy = np.asarray(positions, dtype=float).reshape(len(self.views), 2)
        self.ids = list(ids)

    def __len__(self):
        return len(self.views)

    def seeing(self, x, y):
        hit = self.tree.query(shapely.Point(x, y), predicate="intersects")
        d = np.hypot(self.xy[hit, 0] - x, self.xy[hit, 1] - y)
        return [(self.ids[hit[i]], float(d[i])) for i in np.lexsort((hit, d))]


def bench_seeing(cams, views, n_queries=100_000, repeat=3):
    t_build, index = best_of(1, lambda: ViewIndex(views, shapely.get_coordinates(cams.geometry.values), cams.index))
    pts = query_points(views, n_queries)
    best = latency(index.seeing, pts, repeat)
    hits = np.mean([len(index.seeing(x, y)) for x, y in pts[:5000].tolist()])
    print(f"ViewIndex.seeing over {len(index):,} views ({len(pts):,} points, index built in {t_build:.2f} s): "
          f"p50 {best[0]:.3f} ms, p99 {best[1]:.3f} ms (best p99 of {repeat}; mean {hits:.2f} cameras per answer)")
    RESULTS["seeing"] = {"views": len(index), "points": len(pts), "p50_ms": float(best[0]),
                         "p99_ms": float(best[1]), "mean_cameras": float(hits), "index_s": t_build}


def bench_placement(repeat, skip_mclp):
    footprints = city(16, seed=5)
    area = shapely.box(*shapely.total_bounds(footprints)).buffer(5, join_style="mitre")
    obs = cv.Obstacles(footprints)
    blocked = shapely.union_all(footprints)
    public = area.difference(blocked)
    candidates = cv.candidate_sites(obs, area)
    kw = dict(fov=90, range_m=40, bearings=(0, 90, 180, 270), cell_m=4.0)
    target = 90.0
    print(f"placement: public {public.area:.0f} m², {len(candidates)} sites × 4 bearings, target {target:.0f} %")
    for label, extra in (("ilp", {}), ("greedy", {"max_exact": 0})):
        t, r = best_of(repeat, lambda: cv.place_cameras(area, obs, candidates, target_percent=target, **kw, **extra))
        print(f"  gridmap {label:6s}: {r['cameras']} cameras, {r['percent']:.1f} % ({r['method']}), {t:.2f} s "
              f"[{r['cells']} cells, {r['candidates']} candidates]")
        RESULTS.setdefault("placement", {})[f"gridmap_{label}"] = {
            "cameras": r["cameras"], "percent": r["percent"], "method": r["method"], "seconds": t,
            "cells": r["cells"], "candidates": r["candidates"]}
        if label == "ilp":
            p = r["cameras"]
    if skip_mclp:
        return
    from spopt.locate import MCLP
    import pulp
    t0 = time.perf_counter()
    A, s, _, sites = cv.candidate_matrix(public, obs, candidates, **kw)
    t_matrix = time.perf_counter() - t0

    def mclp():
        # spopt wants a cost matrix and a radius: 0 where the candidate sees the cell, 1 elsewhere
        cost = 1.0 - A.toarray()
        model = MCLP.from_cost_matrix(cost, s.weight, service_radius=0.5, p_facilities=p)
        return model.solve(pulp.PULP_CBC_CMD(msg=False))

    # one run: CBC through PuLP takes about a minute here, so a best-of would only lengthen the run
    t, model = best_of(1, mclp)
    chosen = [j for j, v in enumerate(model.fac_vars) if v.value() > 0.5]
    seen = np.asarray(A[:, chosen].sum(axis=1)).ravel() > 0
    print(f"  spopt MCLP  : {len(chosen)} cameras (p fixed to gridmap's), "
          f"{100 * s.weight[seen].sum() / s.weight.sum():.1f} %, {t + t_matrix:.2f} s "
          f"({t_matrix:.2f} s of it building the same candidate matrix)")
    RESULTS["placement"]["spopt_mclp"] = {"cameras": len(chosen), "seconds": t + t_matrix, "matrix_s": t_matrix,
                                          "percent": 100 * s.weight[seen].sum() / s.weight.sum()}


# Where the metric city is put on the ground for the parts that need lon/lat (Dalian, as synthetic_city.py).
ANCHOR = (121.6, 38.9)


def on_the_ground(cams, views, footprints):
    """The city in WGS84: centred on ANCHOR in ``local_metric_crs(*ANCHOR)``, a shift and nothing else.

    Returns the cameras (with ``id``, ``name`` and ``view``, each camera's view polygon in WGS84, as
    the store hands them to the snapshot), the footprints, the metric CRS and the shift (metres).
    """
    from gridmap.geo.crs import local_metric_crs

    crs = local_metric_crs(*ANCHOR)
    x0, y0, x1, y1 = shapely.total_bounds(np.asarray(footprints, dtype=object))
    shift = np.array([-(x0 + x1) / 2, -(y0 + y1) / 2])

    def wgs84(geoms):
        return gpd.GeoSeries(shapely.transform(np.asarray(geoms, dtype=object), lambda xy: xy + shift),
                             crs=crs).to_crs(4326).values

    cams_ll = gpd.GeoDataFrame({"id": np.arange(len(cams)), "name": [f"cam {i:05d}" for i in range(len(cams))],
                                "bearing": cams["bearing"].to_numpy(), "fov": cams["fov"].to_numpy(),
                                "range_m": cams["range_m"].to_numpy()},
                               geometry=wgs84(cams.geometry.values), crs=4326)
    cams_ll["view"] = pd.Series(np.asarray(wgs84(views.values), dtype=object), index=cams_ll.index, dtype=object)
    return cams_ll, wgs84(footprints), crs, shift


def lattice_grids(footprints_ll, side=10):
    """``side`` × ``side`` square grids over the city, WGS84, with 15-digit codes."""
    x0, y0, x1, y1 = shapely.total_bounds(footprints_ll)
    xs, ys = np.linspace(x0, x1, side + 1), np.linspace(y0, y1, side + 1)
    boxes = [shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]) for j in range(side) for i in range(side)]
    return gpd.GeoDataFrame({"code": [f"210202001001{k:03d}" for k in range(len(boxes))]}, geometry=boxes, crs=4326)


def query_points(views, n_queries, seed=4):
    """Half of them a view's inner point, half anywhere over the views (metres), shuffled."""
    x0, y0, x1, y1 = shapely.total_bounds(views.values)
    rng = np.random.default_rng(seed)
    inner = shapely.get_coordinates(shapely.point_on_surface(views.values[~shapely.is_empty(views.values)]))
    pts = np.vstack([inner[rng.integers(0, len(inner), n_queries // 2)],
                     np.column_stack([rng.uniform(x0, x1, n_queries - n_queries // 2),
                                      rng.uniform(y0, y1, n_queries - n_queries // 2)])])
    rng.shuffle(pts)
    return pts


def latency(fn, pts, repeat):
    """p50 and p99 (ms) of ``fn(x, y)`` timed call by call; the run with the best p99 of ``repeat``."""
    best = None
    for _ in range(repeat):
        lat = np.empty(len(pts))
        for i, (x, y) in enumerate(pts.tolist()):
            t0 = time.perf_counter()
            fn(x, y)
            lat[i] = time.perf_counter() - t0
        p = np.percentile(lat, [50, 99]) * 1000
        best = p if best is None or p[1] < best[1] else best
    return best


def bench_snapshot(cams, views, footprints, n_queries=100_000, repeat=3):
    """``Snapshot.cameras_seeing(lon, lat)``: the dispatcher's own path, with stored views and without."""
    from pyproj import Transformer

    from gridmap.index import Snapshot

    t0 = time.perf_counter()
    cams_ll, footprints_ll, crs, shift = on_the_ground(cams, views, footprints)
    grids = lattice_grids(footprints_ll)
    t_ground = time.perf_counter() - t0
    pts = query_points(views, n_queries)
    to_ll = Transformer.from_crs(crs, 4326, always_xy=True)
    lon, lat = to_ll.transform(pts[:, 0] + shift[0], pts[:, 1] + shift[1])
    lonlat = np.column_stack([lon, lat])
    plain_index = ViewIndex(views, shapely.get_coordinates(cams.geometry.values), cams.index)
    print(f"Snapshot.cameras_seeing over {len(cams_ll):,} WGS84 cameras ({len(pts):,} points; "
          f"city put at {ANCHOR[0]}E {ANCHOR[1]}N and converted in {t_ground:.1f} s):")
    RESULTS["snapshot"] = {"cameras": len(cams_ll), "points": len(pts), "to_wgs84_s": t_ground}
    for label, frame in (("with views", cams_ll), ("sectors only", cams_ll.drop(columns="view"))):
        t_build, snap = best_of(1, lambda: Snapshot.from_frames(grids, cameras=frame))
        p = latency(snap.cameras_seeing, lonlat, repeat)
        sample = lonlat[:5000].tolist()
        answers = [{c["id"] for c in snap.cameras_seeing(x, y)} for x, y in sample]
        hits = np.mean([len(a) for a in answers])
        # the metric ViewIndex over the same views is the reference answer
        same = sum(a == {i for i, _ in plain_index.seeing(x, y)} for a, (x, y) in zip(answers, pts[:5000].tolist()))
        print(f"  {label:12s}: p50 {p[0]:.3f} ms, p99 {p[1]:.3f} ms (best p99 of {repeat}; built in {t_build:.1f} s; "
              f"mean {hits:.2f} cameras per answer; {same:,} of {len(sample):,} answers = ViewIndex.seeing)")
        RESULTS["snapshot"]["views" if label == "with views" else "sectors"] = {
            "p50_ms": float(p[0]), "p99_ms": float(p[1]), "build_s": t_build, "mean_cameras": float(hits),
            "same_as_cameraviews": int(same), "compared": len(sample)}


def bench_store(cams, views, footprints):
    """Import the buildings and the cameras into a fresh SQLite store (views computed and stored), refresh all."""
    import tempfile

    from sqlalchemy import func, select

    from gridmap import importer
    from gridmap.geo.crs import parse_crs
    from gridmap.geo.io import RawLayer
    from gridmap.store import Store
    from gridmap.store import models as m

    cams_ll, footprints_ll, crs, shift = on_the_ground(cams, views, footprints)
    buildings = gpd.GeoDataFrame({"address": [f"城志路{i + 1}号" for i in range(len(footprints_ll))],
                                  "households": 24}, geometry=footprints_ll, crs=4326)
    row = {"buildings": len(buildings), "cameras": len(cams_ll), "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="coverage-bench-") as folder:
        store = Store(f"sqlite:///{folder}/store.db")
        store.upgrade()
        with store.transaction() as session:
            for kind, frame in (("buildings", buildings),
                                ("cameras", cams_ll[["name", "bearing", "fov", "range_m", "geometry"]])):
                t0 = time.perf_counter()
                raw = RawLayer(frame=frame.copy(), crs=parse_crs(4326), source=f"synthetic:{kind}")
                summary = importer.import_layer(session, kind, raw)
                row[f"import_{kind}_s"] = time.perf_counter() - t0
                print(f"store: import {summary.imported:,} {kind} in {row[f'import_{kind}_s']:.1f} s "
                      f"({'; '.join(summary.notes)})", flush=True)
            stored = session.scalar(select(func.count()).select_from(m.CameraView))
            ids = session.scalars(select(m.Camera.id)).all()
            t0 = time.perf_counter()
            n = cv.refresh_views(session, camera_ids=ids)
            row["refresh_all_s"] = time.perf_counter() - t0
            print(f"  refresh_views of all {n:,} cameras: {row['refresh_all_s']:.1f} s "
                  f"({stored:,} views stored by the import; default processes: {os.cpu_count()} cores)")
            # the stored views against the bench's own (each tile has its CRS, so not to the bit)
            by_name = dict(session.execute(select(m.Camera.name, m.CameraView.geom)
                                           .join(m.CameraView, m.CameraView.camera_id == m.Camera.id)).all())
        store.dispose()
    k = min(2000, len(cams_ll))
    back = gpd.GeoSeries([by_name[nm] for nm in cams_ll["name"][:k]], crs=4326).to_crs(crs).values
    mine = shapely.transform(views.values[:k], lambda xy: xy + shift)
    area = np.maximum(shapely.area(mine), 1e-9)
    share = shapely.area(shapely.symmetric_difference(back, mine)) / area
    print(f"  stored views vs the bench's (first {k:,}): area differing median {100 * np.median(share):.4f} %, "
          f"max {100 * share.max():.4f} %")
    row.update({"stored": stored, "refreshed": n, "diff_median_pct": float(100 * np.median(share)),
                "diff_max_pct": float(100 * share.max())})
    RESULTS["store"] = row


DEMO_PLACEMENTS = (("和合大院", 90.0), ("和合大院", 95.0), ("城志社区", 90.0))


def bench_demo_placement():
    """``placement_for`` on the demo (fov 90°, range 40 m, 8 bearings), as `gridmap coverage NAME --place`."""
    import tempfile

    from gridmap import demo
    from gridmap.store import Store

    rows = []
    with tempfile.TemporaryDirectory(prefix="coverage-demo-") as folder:
        store = Store(f"sqlite:///{folder}/demo.db")
        t0 = time.perf_counter()
        demo.build(store)
        print(f"demo placement (demo built in {time.perf_counter() - t0:.0f} s):")
        for name, target in DEMO_PLACEMENTS:
            with store.session() as session:
                r = cv.placement_for(session, name, target_percent=target, fov=90, range_m=40)
            print(f"  {name} to {target:g} %: {len(r['sites'])} cameras, {r['percent']:.2f} % on the polygons "
                  f"({r['percent_cells']:.2f} % of the cells, asked {r['cell_target']:.2f} %), {r['method']} "
                  f"(exact: {r['exact']}), {r['seconds']:.1f} s [{r['cells']:,} cells, {r['candidate_sites']:,} "
                  f"sites, {r['candidates']:,} candidates]", flush=True)
            rows.append({"name": name, "target": target, "cameras": len(r["sites"]), "percent": r["percent"],
                         "percent_cells": r["percent_cells"], "cell_target": r["cell_target"],
                         "method": r["method"], "exact": r["exact"], "seconds": r["seconds"],
                         "cells": r["cells"], "candidates": r["candidates"]})
        store.dispose()
    RESULTS["demo_placement"] = rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", type=int, default=50_000, help="cameras (buildings: 1.2 per camera)")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each timing, fastest kept")
    ap.add_argument("--points", type=int, default=100_000, help="points for cameras-seeing-a-point")
    ap.add_argument("--skip-single", action="store_true", help="no one-process run of the views")
    ap.add_argument("--skip-mclp", action="store_true", help="no spopt MCLP peer (needs spopt and pulp)")
    ap.add_argument("--skip-snapshot", action="store_true", help="no Snapshot.cameras_seeing part")
    ap.add_argument("--skip-store", action="store_true", help="no SQLite import and refresh of the views")
    ap.add_argument("--demo", action="store_true", help="also placement_for on the demo's 和合大院 and 城志社区 (≈ 1 min)")
    ap.add_argument("--only-demo", action="store_true", help="only the demo placement")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    print(f"load average at the start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
          "(other work slows every figure)")
    RESULTS["load_start"] = os.getloadavg()[0]
    if not args.only_demo:
        cams, views, footprints = bench_views(args.cameras, args.processes, args.repeat, single=not args.skip_single)
        bench_seeing(cams, views, n_queries=args.points, repeat=args.repeat)
        if not args.skip_snapshot:
            bench_snapshot(cams, views, footprints, n_queries=args.points, repeat=args.repeat)
        bench_placement(args.repeat, args.skip_mclp)
        if not args.skip_store:
            bench_store(cams, views, footprints)
    if args.demo or args.only_demo:
        bench_demo_placement()
    RESULTS["args"] = vars(args)
    RESULTS["total_s"] = time.perf_counter() - t0
    RESULTS["load_end"] = os.getloadavg()[0]
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "coverage-bench.json").write_text(json.dumps(RESULTS, indent=2, ensure_ascii=False))
    print(f"whole run {RESULTS['total_s']:.0f} s, load average at the end {RESULTS['load_end']:.1f}; "
          f"results in bench/out/coverage-bench.json")


if __name__ == "__main__":
    main()
