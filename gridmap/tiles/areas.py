"""The areas of the tiles, built once per published generation into ``tile_area``.

Each level is drawn from what the store keeps: grids from the published plans, communities from
their outlines, streets and districts as the union of their communities (they have no outline of
their own). Households, workers and open incidents are counted per grid and summed upwards, so
a community shows the sum of its grids.
"""
from __future__ import annotations

import threading

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import delete, func, select, text

from .. import catalog
from ..geo.pointindex import points_to_grids
from ..store import models as m
from .layers import AREA_LEVELS

BUILT_KEY = "tile_generation"  # gridmap_meta: the generation tile_area holds
# An incident is open in these statuses (gridmap.dispatch.rules.OPEN_STATUSES; tests/test_tiles.py
# checks they agree: dispatch is a sibling package this one may not import).
OPEN_STATUSES = ("reported", "accepted", "dispatched", "in_progress")
_LOCK_ID = 0x7469_6C65  # "tile": one builder at a time across PostGIS sessions
_local = threading.Lock()


def built_generation(session):
    row = session.get(m.Meta, BUILT_KEY)
    return int(row.value) if row else None


def ensure_built(store, generation):
    """Make ``tile_area`` hold ``generation`` or a newer one, building it unless another process
    already has; returns the generation it holds.

    A process that read the generation a moment before a publish asks for the older one: it gets
    the newer areas, never a rebuild of the old ones over them."""
    with store.session() as session:
        built = built_generation(session)
    if built is not None and built >= generation:
        return built
    with _local, store.transaction() as session:
        if store.is_postgis:
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_ID})
        built = built_generation(session)
        if built is not None and built >= generation:
            return built
        rows = area_rows(session)
        session.execute(delete(m.TileArea))
        if rows:
            session.execute(m.TileArea.__table__.insert(), [{**r, "generation": generation} for r in rows])
        meta = session.get(m.Meta, BUILT_KEY)
        if meta is None:
            session.add(m.Meta(key=BUILT_KEY, value=str(generation)))
        else:
            meta.value = str(generation)
    return generation


def area_rows(session):
    """Every area of every level: dicts of level, code, name, households, workers, open_public,
    open_all and geom (WGS84)."""
    grids = _grids(session)
    counts = _grid_counts(session, grids)
    grids = grids.join(counts, on="code").fillna({c: 0 for c in counts.columns})
    comms = _communities(session)
    sums = grids.groupby("community_code")[list(counts.columns)].sum()
    comms = comms.join(sums, on="code").fillna({c: 0 for c in counts.columns})
    out = [_rows("grids", grids)]
    out.append(_rows("communities", comms))
    for level, key, name in (("streets", "street_code", "street_name"), ("districts", "district_code", "district_name")):
        parts = comms.groupby(key)
        merged = gpd.GeoDataFrame({
            "code": list(parts.groups), "name": [parts.get_group(k)[name].iloc[0] for k in parts.groups],
            **{c: [int(parts.get_group(k)[c].sum()) for k in parts.groups] for c in counts.columns}},
            geometry=[shapely.union_all(shapely.make_valid(parts.get_group(k).geometry.values))
                      for k in parts.groups], crs=4326)
        out.append(_rows(level, merged))
    rows = [r for chunk in out for r in chunk]
    assert {r["level"] for r in rows} <= set(AREA_LEVELS)
    return rows


def _rows(level, frame):
    cols = ("households", "workers", "open_public", "open_all")
    values = {c: frame[c].to_numpy(dtype=np.int64).tolist() for c in cols}
    return [{"level": level, "code": code, "name": name or "", "geom": geom, **{c: values[c][i] for c in cols}}
            for i, (code, name, geom) in enumerate(zip(frame["code"].tolist(), frame["name"].tolist(),
                                                       frame.geometry.values))
            if geom is not None and not geom.is_empty]


def _grids(session):
    rows = session.execute(select(m.Grid.code, m.Grid.name, m.Grid.geom, m.Grid.plan_id, m.GridPlan.community_code)
                           .join(m.GridPlan).where(m.GridPlan.status == "published").order_by(m.Grid.code)).all()
    return gpd.GeoDataFrame({"code": [r.code for r in rows], "name": [r.name for r in rows],
                             "plan_id": [r.plan_id for r in rows],
                             "community_code": [r.community_code for r in rows]},
                            geometry=[r.geom for r in rows], crs=4326)


def _communities(session):
    rows = session.execute(
        select(m.Community.code, m.Community.name, m.Community.geom, m.Street.code.label("street_code"),
               m.Street.name.label("street_name"), m.District.code.label("district_code"),
               m.District.name.label("district_name"))
        .join(m.Street, m.Community.street_code == m.Street.code)
        .join(m.District, m.Street.district_code == m.District.code).order_by(m.Community.code)).all()
    return gpd.GeoDataFrame({k: [getattr(r, k) for r in rows] for k in
                             ("code", "name", "street_code", "street_name", "district_code", "district_name")},
                            geometry=[r.geom for r in rows], crs=4326)


def _grid_counts(session, grids):
    """households, workers, open_public, open_all per grid code (a frame indexed by code)."""
    index = pd.Index(grids["code"], name="code")
    out = pd.DataFrame(0, index=index, columns=["households", "workers", "open_public", "open_all"], dtype=np.int64)
    if not len(grids):
        return out
    out["households"] = pd.Series(_households(session, grids), dtype=np.int64).reindex(index).fillna(0).astype(np.int64)
    workers = dict(session.execute(
        select(m.grid_worker_grid.c.grid_code, func.count(func.distinct(m.GridWorker.id)))
        .join(m.GridWorker, m.GridWorker.id == m.grid_worker_grid.c.worker_id)
        .group_by(m.grid_worker_grid.c.grid_code)).all())
    out["workers"] = [int(workers.get(c, 0)) for c in index]
    private = {c.code for c in catalog.INCIDENT_CATEGORIES if not c.public}
    pub, every = {}, {}
    for code, category, n in session.execute(
            select(m.Incident.grid_code, m.Incident.category, func.count())
            .where(m.Incident.status.in_(OPEN_STATUSES), m.Incident.grid_code.is_not(None))
            .group_by(m.Incident.grid_code, m.Incident.category)):
        every[code] = every.get(code, 0) + n
        if category not in private:
            pub[code] = pub.get(code, 0) + n
    out["open_public"] = [int(pub.get(c, 0)) for c in index]
    out["open_all"] = [int(every.get(c, 0)) for c in index]
    return out


def _households(session, grids):
    """Households per grid code: the stored assignment where a plan has one, else the buildings
    whose representative point lies inside (as the plan export counts them)."""
    plan_ids = set(grids["plan_id"])
    assigned = set(session.scalars(select(m.AssignmentRun.plan_id).where(m.AssignmentRun.plan_id.in_(plan_ids))))
    out = {}
    if assigned:
        for code, hh in session.execute(
                select(m.BuildingGrid.grid_code, func.sum(m.Building.households))
                .join(m.Building, m.Building.id == m.BuildingGrid.building_id)
                .where(m.BuildingGrid.plan_id.in_(assigned)).group_by(m.BuildingGrid.grid_code)):
            out[code] = int(hh or 0)
    pending = grids[~grids["plan_id"].isin(assigned)].reset_index(drop=True)
    if len(pending):
        b = session.execute(select(m.Building.lon, m.Building.lat, m.Building.households)
                            .where(m.Building.community_code.in_(sorted(set(pending["community_code"]))))).all()
        if b:
            xy = np.array([(lon, lat) for lon, lat, _ in b], dtype=float)
            hh = np.array([h or 0 for _, _, h in b], dtype=np.int64)
            pos = points_to_grids(xy, pending[["code", "geometry"]])
            sums = np.bincount(pos[pos >= 0], weights=hh[pos >= 0], minlength=len(pending))
            for code, total in zip(pending["code"], sums):
                out[code] = int(total)
    return out
