"""Read models: the rows a snapshot, a plan check or a page is built from, as plain frames."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import func, select

from . import models as m

COMMUNITY_COLUMNS = ("code", "name", "street_code", "street_name", "district_code", "district_name",
                     "service_centre", "service_address", "service_phone")
# A footprint lies within ~1 km of its representative point: buildings whose point is farther than
# this from a box cannot touch what lies in it.
MARGIN_DEG = 0.01


def snapshot_frames(session, *, on=None):
    """What a snapshot is built from: the published grids (or those valid on ``on``), communities
    with street and district, responders, volunteers, cameras with their stored views, grid workers
    and party branches by grid code, roads and the building register's addresses.

    Returns
    -------
    dict
        ``grids``, ``communities`` (GeoDataFrames); ``responders``, ``volunteers``, ``cameras``,
        ``roads`` (GeoDataFrames or None when the table is empty); ``workers`` (grid code → list of
        ``{id, name, phone}``), ``branches`` (grid code → name), ``addresses`` (list of dicts).
    """
    q = select(m.Grid.code, m.Grid.name, m.Grid.geom, m.GridPlan.community_code).join(m.GridPlan)
    if on is None:
        q = q.where(m.GridPlan.status == "published")
    else:
        q = q.where(m.GridPlan.status.in_(("published", "retired")), m.GridPlan.valid_from <= on,
                    (m.GridPlan.valid_to.is_(None)) | (m.GridPlan.valid_to > on))
    rows = session.execute(q).all()
    grids = gpd.GeoDataFrame({"code": [r.code for r in rows], "name": [r.name for r in rows],
                              "community_code": [r.community_code for r in rows]},
                             geometry=[r.geom for r in rows], crs=4326)
    crows = session.execute(
        select(m.Community.code, m.Community.name, m.Community.geom, m.Community.service_centre,
               m.Community.service_address, m.Community.service_phone,
               m.Street.code.label("street_code"), m.Street.name.label("street_name"),
               m.District.code.label("district_code"), m.District.name.label("district_name"))
        .join(m.Street, m.Community.street_code == m.Street.code)
        .join(m.District, m.Street.district_code == m.District.code)).all()
    communities = gpd.GeoDataFrame([{k: v for k, v in r._mapping.items() if k != "geom"} for r in crows],
                                   columns=list(COMMUNITY_COLUMNS), geometry=[r.geom for r in crows], crs=4326)
    return {
        "grids": grids,
        "communities": communities,
        "responders": _frame(session.execute(select(
            m.Responder.id, m.Responder.name, m.Responder.kind, m.Responder.phone, m.Responder.skills,
            m.Responder.available, m.Responder.geom)).all()),
        "volunteers": _frame(session.execute(select(
            m.Volunteer.id, m.Volunteer.name, m.Volunteer.phone, m.Volunteer.skills, m.Volunteer.available,
            m.Volunteer.geom)).all()),
        "cameras": _frame(session.execute(select(
            m.Camera.id, m.Camera.name, m.Camera.bearing, m.Camera.fov, m.Camera.range_m, m.Camera.geom,
            m.CameraView.geom.label("view"))
            .outerjoin(m.CameraView, m.CameraView.camera_id == m.Camera.id)).all()),
        "workers": grid_workers(session),
        "branches": dict(session.execute(
            select(m.PartyOrganization.grid_code, m.PartyOrganization.name)
            .where(m.PartyOrganization.kind == "grid_branch")).all()),
        "roads": _frame(session.execute(select(m.Road.name, m.Road.kind, m.Road.oneway, m.Road.layer, m.Road.access,
                                                  m.Road.geom)).all()),
        "addresses": [{"building_id": r.id, "address": r.address, "name": r.name, "lon": r.lon, "lat": r.lat,
                       "community_code": r.community_code} for r in session.execute(
            select(m.Building.id, m.Building.address, m.Building.name, m.Building.lon, m.Building.lat,
                   m.Building.community_code)).all()],
    }


def grid_workers(session, codes=None):
    """Grid code → ``[{id, name, phone}]`` of the workers serving it, by worker id."""
    q = (select(m.grid_worker_grid.c.grid_code, m.GridWorker.id, m.GridWorker.name, m.GridWorker.phone)
         .join(m.GridWorker, m.GridWorker.id == m.grid_worker_grid.c.worker_id))
    if codes is not None:
        q = q.where(m.grid_worker_grid.c.grid_code.in_(list(codes)))
    out = {}
    for code, wid, name, phone in session.execute(q.order_by(m.grid_worker_grid.c.grid_code, m.GridWorker.id)):
        out.setdefault(code, []).append({"id": wid, "name": name, "phone": phone})
    return out


def grid_branches(session, codes):
    """Grid code → the name of its party branch (the oldest, as lookups show it)."""
    rows = session.execute(select(m.PartyOrganization.grid_code, m.PartyOrganization.name)
                           .where(m.PartyOrganization.kind == "grid_branch",
                                  m.PartyOrganization.grid_code.in_(list(codes)))
                           .order_by(m.PartyOrganization.id)).all()
    out = {}
    for code, name in rows:
        out.setdefault(code, name)
    return out


def branch_ids(session, codes=None):
    """Grid code → the id of its (oldest) party branch."""
    q = (select(m.PartyOrganization.grid_code, func.min(m.PartyOrganization.id))
         .where(m.PartyOrganization.kind == "grid_branch", m.PartyOrganization.grid_code.is_not(None)))
    if codes is not None:
        q = q.where(m.PartyOrganization.grid_code.in_(list(codes)))
    return dict(session.execute(q.group_by(m.PartyOrganization.grid_code)).all())


def communities(session):
    """Every community with its street and district, by code."""
    rows = session.execute(
        select(m.Community.code, m.Community.name, m.Street.code, m.Street.name, m.District.code, m.District.name)
        .join(m.Street, m.Community.street_code == m.Street.code)
        .join(m.District, m.Street.district_code == m.District.code).order_by(m.Community.code)).all()
    return [{"code": c, "name": n, "street": {"code": sc, "name": sn}, "district": {"code": dc, "name": dn}}
            for c, n, sc, sn, dc, dn in rows]


def published_grids(session, community_code=None):
    """(Grid, community code) rows of every published plan, or of one community's, by grid code."""
    q = select(m.Grid, m.GridPlan.community_code).join(m.GridPlan).where(m.GridPlan.status == "published")
    if community_code:
        q = q.where(m.GridPlan.community_code == community_code)
    return session.execute(q.order_by(m.Grid.code)).all()


def buildings_near(session, boxes, *, margin=MARGIN_DEG, columns=("address", "households")):
    """Buildings whose representative point lies within ``margin`` degrees of the union of ``boxes``
    (WGS84 ``(minx, miny, maxx, maxy)``, None entries skipped), by id: a GeoDataFrame indexed by
    ``building_id`` with ``columns`` and the footprint (or point)."""
    boxes = [b for b in boxes if b is not None]
    x0, y0 = min(b[0] for b in boxes) - margin, min(b[1] for b in boxes) - margin
    x1, y1 = max(b[2] for b in boxes) + margin, max(b[3] for b in boxes) + margin
    return _buildings(session, (m.Building.lon.between(x0, x1), m.Building.lat.between(y0, y1)), columns)


def community_buildings(session, community_code, *, columns=("address", "households")):
    """The buildings registered with a community, by id (as :func:`buildings_near`)."""
    return _buildings(session, (m.Building.community_code == community_code,), columns)


def work_items(session, community_code):
    """The categories ``community_code`` handles itself (a frozenset), or None when it keeps the default list."""
    codes = session.scalars(select(m.WorkItem.category).where(m.WorkItem.community_code == community_code)).all()
    return frozenset(codes) if codes else None


def _buildings(session, where, columns):
    cols = [getattr(m.Building, c) for c in columns]
    rows = session.execute(select(m.Building.id, m.Building.geom, *cols).where(*where)
                           .order_by(m.Building.id)).all()
    data = {}
    for c in columns:
        values = [getattr(r, c) for r in rows]
        data[c] = np.array([v or 0 for v in values], dtype=np.int64) if c == "households" else values
    return gpd.GeoDataFrame(data, geometry=[r.geom for r in rows], crs=4326,
                            index=pd.Index([r.id for r in rows], name="building_id", dtype=np.int64))


def _frame(rows):
    if not rows:
        return None
    return gpd.GeoDataFrame([{k: v for k, v in r._mapping.items() if k != "geom"} for r in rows],
                            geometry=[r.geom for r in rows], crs=4326)
