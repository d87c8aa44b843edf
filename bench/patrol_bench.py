"""The grid worker's workbench on the Dalian demo: checking a batch of patrol positions, the buildings
unvisited this month, and the whole workbench page's data.

    .venv/bin/python bench/patrol_bench.py [--points 500] [--repeat 5]

Builds the demo on SQLite in a temporary folder and acts as the demo's ``worker`` account. Prints,
from the same run, gridmap's figure and its peer's:

- ``points``: :func:`gridmap.dispatch.patrol.check_points` on a batch of ``--points`` positions (a walk
  across the worker's grid at 1.4 m/s, every 7th fix 300 m wide, every 11th a 400 m jump) against a
  plain peer that checks each position with shapely (distance to the served grids, projected with
  pyproj) and pyproj's Geod for the speed — and whether both keep the same positions; then
  :func:`~gridmap.dispatch.patrol.add_points` with its writes, one request's work.
- ``unvisited``: :func:`gridmap.dispatch.patrol.unvisited` against GeoPandas (``sjoin`` of every
  building with the served grids, minus this month's check-ins with pandas), and whether both agree.
- ``page``: :func:`gridmap.pages.worker.workbench` (inbox, households with last visits, unvisited,
  track), the data of one ``GET /worker/``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def _ms(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    import geopandas as gpd
    import numpy as np
    import pandas as pd
    import pyproj
    import shapely
    from sqlalchemy import select

    from conftest import make_app
    from gridmap import accounts, demo, dispatch
    from gridmap.dispatch import patrol
    from gridmap.pages import worker as worker_page
    from gridmap.store import models as m

    app, _ = make_app(Path(tempfile.mkdtemp()), "sqlite")
    store = app.extensions["gridmap.store"]
    demo.build(store)
    snap = app.extensions["gridmap.snapshots"].get()
    with store.session() as s:
        user = s.scalar(select(m.User).where(m.User.username == "worker"))
        area = accounts.area_of(s, user.id, user.role, user.worker_id)
        worker_id = user.worker_id
    actor = dispatch.Actor("worker", "grid_worker", area)
    grids = snap.grids[snap.grids["code"].isin(sorted(area.grids))]
    print(f"worker serves {sorted(area.grids)}; {len(snap.grids)} published grids")

    # a walk across the grid: 1.4 m/s every 5 s, with wide fixes and jumps mixed in
    now = dispatch.utcnow()
    metric = snap.metric
    cx, cy = metric.xy(*grids.geometry.union_all().representative_point().coords[0])
    rng = np.random.default_rng(7)
    heading = rng.uniform(0, 2 * np.pi, args.points).cumsum() * 0.1
    xs = cx + np.cumsum(7 * np.cos(heading))
    ys = cy + np.cumsum(7 * np.sin(heading))
    acc = np.where(np.arange(args.points) % 7 == 3, 300.0, 8.0)
    xs = np.where(np.arange(args.points) % 11 == 5, xs + 400, xs)
    lons, lats = metric.lonlat(xs, ys)
    start = now - dt.timedelta(seconds=5 * args.points + 60)
    batch = [{"lon": float(lo), "lat": float(la), "accuracy_m": float(a), "at": start + dt.timedelta(seconds=5 * i + 30)}
             for i, (lo, la, a) in enumerate(zip(lons, lats, acc))]

    def ours():
        with store.transaction() as s:
            p, _ = patrol.start_patrol(s, actor=actor, worker_id=worker_id, now=start)
            out = patrol.add_points(s, snap, p.id, batch, actor=actor, worker_id=worker_id, now=now)
            patrol.stop_patrol(s, p.id, actor=actor, worker_id=worker_id, now=now)
            return out
    geod = pyproj.Geod(ellps="WGS84")
    utm = pyproj.Transformer.from_crs(4326, grids.estimate_utm_crs(), always_xy=True)
    served_m = shapely.transform(grids.geometry.union_all(), lambda xy: np.column_stack(utm.transform(xy[:, 0], xy[:, 1])))

    def peer():
        kept, prev = [], None
        for i, p in enumerate(sorted(batch, key=lambda q: q["at"])):
            if p["accuracy_m"] > patrol.MAX_ACCURACY_M or (prev is not None and p["at"] <= prev["at"]):
                continue
            x, y = utm.transform(p["lon"], p["lat"])
            if served_m.distance(shapely.Point(x, y)) > patrol.NEAR_M:
                continue
            if prev is not None:
                _, _, d = geod.inv(prev["lon"], prev["lat"], p["lon"], p["lat"])
                if max(0.0, d - p["accuracy_m"]) / (p["at"] - prev["at"]).total_seconds() > patrol.MAX_SPEED_MPS:
                    continue
            kept.append(i)
            prev = p
        return kept
    def ours_check():
        return patrol.check_points(snap, area, batch, since=start, now=now)[0]
    t_check, mine = _ms(ours_check, args.repeat)
    t_peer, kept = _ms(peer, args.repeat)
    t_write, out = _ms(ours, args.repeat)
    print(f"points    {args.points} positions checked: gridmap {t_check:8.1f} ms (kept {len(mine)}), "
          f"peer shapely+Geod per point {t_peer:8.1f} ms (kept {len(kept)}); same positions: {sorted(mine) == kept}")
    print(f"          the whole request's work (patrol started, checked, {out['accepted']} rows written, stopped): "
          f"gridmap {t_write:8.1f} ms")

    # check-ins at a third of the buildings this month, some last month
    buildings = patrol.served_buildings(store.session().__enter__(), snap, area)
    with store.transaction() as s:
        for i, b in enumerate(buildings):
            if i % 3 == 0:
                when = now - dt.timedelta(days=40 if i % 2 else 0, minutes=5)
                s.add(m.Checkin(idempotency_key=str(uuid.uuid4()), worker_id=worker_id, building_id=b["id"],
                                grid_code=b["grid_code"], at=when, recorded_at=when, note=""))

    def ours_unvisited():
        with store.session() as s:
            return sorted(b["id"] for b in patrol.unvisited(s, snap, area, now=now))

    def peer_unvisited():
        with store.session() as s:
            frame = pd.DataFrame(s.execute(select(m.Building.id, m.Building.lon, m.Building.lat)).all(),
                                 columns=["id", "lon", "lat"])
            visits = pd.DataFrame(s.execute(select(m.Checkin.building_id, m.Checkin.at)).all(),
                                  columns=["building_id", "at"])
        points = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs=4326)
        mine = gpd.sjoin(points, grids[["code", "geometry"]].set_crs(4326, allow_override=True), predicate="within")
        month = patrol.local_month_start(now)
        seen = set(visits.loc[visits["at"] >= month, "building_id"])
        return sorted(set(mine["id"]) - seen)
    t_ours, a = _ms(ours_unvisited, args.repeat)
    t_peer, b = _ms(peer_unvisited, args.repeat)
    print(f"unvisited {len(a)} of {len(buildings)} buildings: gridmap {t_ours:8.1f} ms, "
          f"peer GeoPandas sjoin {t_peer:8.1f} ms; same buildings: {a == b}")

    def page():
        with store.session() as s:
            return worker_page.workbench(s, snap, role="grid_worker", area=area, worker_id=worker_id, now=now)
    t_page, view = _ms(page, args.repeat)
    people = sum(len(h["residents"]) for b in view["buildings"] for h in b["households"])
    print(f"page      workbench data ({len(view['buildings'])} buildings, {people} residents, "
          f"{len(view['inbox'])} open incidents): gridmap {t_page:8.1f} ms")
    store.dispose()


if __name__ == "__main__":
    main()
