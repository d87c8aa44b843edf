"""Tiles drawn in Python, for the SQLite backend, with ``mapbox_vector_tile``.

Clip to the tile and its buffer, project to Web Mercator, simplify for the zoom and quantise to
the 4096 grid.

The same steps in the same order as :mod:`.postgis` (``ST_ClipByBox2D`` → ``ST_Transform`` →
``ST_SimplifyPreserveTopology`` → ``ST_AsMVTGeom``), so both backends give the same features.
"""
from __future__ import annotations

import threading

import mapbox_vector_tile
import numpy as np
import shapely
from sqlalchemy import select

from ..store import models as m
from .areas import OPEN_STATUSES
from .layers import BUFFER, EXTENT, lonlat_bounds, mercator_bounds, tolerance

R = 6378137.0
_held = {}  # (database, generation) → {level: (columns, STRtree)}: the newest generation of each database
_lock = threading.Lock()


def to_mercator(geom):
    def fwd(xy):
        lon = np.radians(xy[:, 0])
        lat = np.radians(np.clip(xy[:, 1], -85.0511287798, 85.0511287798))
        return np.column_stack((R * lon, R * np.log(np.tan(np.pi / 4 + lat / 2))))
    return shapely.transform(geom, fwd)


def areas_in_memory(session, generation, database=""):
    """The ``tile_area`` rows of ``generation`` by level, with a spatial index, read once a process
    (per ``database``, the store's URL: tests and tools may hold several stores)."""
    with _lock:
        held = _held.get((database, generation))
        if held is not None:
            return held
    rows = session.execute(select(m.TileArea.level, m.TileArea.code, m.TileArea.name, m.TileArea.households,
                                  m.TileArea.workers, m.TileArea.open_public, m.TileArea.open_all, m.TileArea.geom)
                           .where(m.TileArea.generation == generation).order_by(m.TileArea.code)).all()
    held = {}
    for level in {r.level for r in rows}:
        mine = [r for r in rows if r.level == level]
        geoms = np.array([r.geom for r in mine], dtype=object)
        held[level] = ({"code": [r.code for r in mine], "name": [r.name for r in mine],
                        "households": [r.households for r in mine], "workers": [r.workers for r in mine],
                        "open_public": [r.open_public for r in mine], "open_all": [r.open_all for r in mine],
                        "geom": geoms}, shapely.STRtree(geoms))
    with _lock:
        for key in [k for k in _held if k[0] == database]:
            del _held[key]  # an older generation is never asked for again
        _held[(database, generation)] = held
    return held


def area_tile(held, layer, z, x, y, *, private):
    """MVT bytes of the areas of ``layer`` in tile z/x/y (b"" when none). ``private``: count
    open incidents of every category, else only those public in statistics."""
    entry = held.get(layer)
    if entry is None:
        return b""
    cols, tree = entry
    box = lonlat_bounds(z, x, y, buffer=BUFFER)
    hits = np.sort(tree.query(shapely.box(*box), predicate="intersects"))
    if not len(hits):
        return b""
    clipped = shapely.clip_by_rect(cols["geom"][hits], *box)
    geoms = shapely.simplify(to_mercator(clipped), tolerance(z), preserve_topology=True)
    opened = cols["open_all" if private else "open_public"]
    features = [{"geometry": g, "properties": {
        "code": cols["code"][i], "name": cols["name"][i], "households": int(cols["households"][i]),
        "workers": int(cols["workers"][i]), "open_incidents": int(opened[i])}}
        for i, g in zip(hits, geoms) if not g.is_empty and g.area > 0]
    return _encode(layer, features, z, x, y)


def incident_tile(session, z, x, y, where):
    """MVT bytes of the open incidents in tile z/x/y (id, category, status, level) within ``where``."""
    lon0, lat0, lon1, lat1 = lonlat_bounds(z, x, y, buffer=BUFFER)
    q = (select(m.Incident.id, m.Incident.category, m.Incident.status, m.Incident.level, m.Incident.geom)
         .where(m.Incident.status.in_(OPEN_STATUSES), m.Incident.lon.between(lon0, lon1),
                m.Incident.lat.between(lat0, lat1)).order_by(m.Incident.id))
    if where is not None:
        q = q.where(where)
    rows = session.execute(q).all()
    if not rows:
        return b""
    pts = to_mercator(np.array([r.geom for r in rows], dtype=object))
    features = [{"geometry": p, "properties": {"id": r.id, "category": r.category, "status": r.status,
                                               "level": r.level}} for r, p in zip(rows, pts)]
    return _encode("incidents", features, z, x, y)


def _encode(layer, features, z, x, y):
    """Quantise to the tile's 4096 grid here (y down, as MVT counts), not with the encoder's
    ``quantize_bounds``, which goes through the deprecated ``shapely.ops.transform`` one point at a time."""
    if not features:
        return b""
    minx, miny, maxx, maxy = mercator_bounds(z, x, y)
    scale = EXTENT / (maxx - minx)

    def to_tile(xy):
        return np.rint(np.column_stack(((xy[:, 0] - minx) * scale, (maxy - xy[:, 1]) * scale)))
    geoms = shapely.transform(np.array([f["geometry"] for f in features], dtype=object), to_tile)  # one call
    for f, g in zip(features, geoms):
        f["geometry"] = g
    return mapbox_vector_tile.encode(
        [{"name": layer, "features": features}],
        default_options={"extents": EXTENT, "y_coord_down": True,
                         "on_invalid_geometry": mapbox_vector_tile.encoder.on_invalid_geometry_make_valid})
