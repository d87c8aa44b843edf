"""Tiles drawn by PostGIS: ``ST_AsMVT`` over ``ST_AsMVTGeom`` in one query.

Nothing of the tile is drawn in Python.

The steps match :mod:`.python`: clip to the tile and its buffer in degrees (a Web Mercator box is
a box in degrees too), project, simplify for the zoom, then let ``ST_AsMVTGeom`` quantise to the
4096 grid within ``ST_TileEnvelope``.
"""
from __future__ import annotations

from sqlalchemy import func, select

from ..store import models as m
from .areas import OPEN_STATUSES
from .layers import BUFFER, EXTENT, lonlat_bounds, tolerance


def _run(session, inner, layer):
    t = inner.subquery("t")
    out = session.execute(
        select(func.ST_AsMVT(t.table_valued(), layer, EXTENT, "geom"))
        .select_from(t).where(t.c.geom.is_not(None))).scalar()
    return bytes(out) if out else b""


def _envelope(z, x, y):
    return func.ST_TileEnvelope(z, x, y)


def area_tile(session, generation, layer, z, x, y, *, private):
    box = func.ST_MakeEnvelope(*lonlat_bounds(z, x, y, buffer=BUFFER), 4326)
    a = m.TileArea.__table__
    geom = func.ST_AsMVTGeom(
        func.ST_SimplifyPreserveTopology(func.ST_Transform(func.ST_ClipByBox2D(a.c.geom, box), 3857), tolerance(z)),
        _envelope(z, x, y), EXTENT, BUFFER, True)
    inner = (select(a.c.code, a.c.name, a.c.households, a.c.workers,
                    (a.c.open_all if private else a.c.open_public).label("open_incidents"), geom.label("geom"))
             .where(a.c.generation == generation, a.c.level == layer, a.c.geom.op("&&")(box))
             .order_by(a.c.code))
    return _run(session, inner, layer)


def incident_tile(session, z, x, y, where):
    box = func.ST_MakeEnvelope(*lonlat_bounds(z, x, y, buffer=BUFFER), 4326)
    i = m.Incident.__table__
    geom = func.ST_AsMVTGeom(func.ST_Transform(i.c.geom, 3857), _envelope(z, x, y), EXTENT, BUFFER, True)
    inner = (select(i.c.id, i.c.category, i.c.status, i.c.level, geom.label("geom"))
             .where(i.c.status.in_(OPEN_STATUSES), i.c.geom.op("&&")(box)).order_by(i.c.id))
    if where is not None:
        inner = inner.where(where)
    return _run(session, inner, "incidents")
