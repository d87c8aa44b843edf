"""Stored camera views: each camera's occlusion-aware view computed when cameras or buildings change, and read back."""
from __future__ import annotations

import datetime as dt
import math
import os

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import mapping
from sqlalchemy import delete, insert, select, text

from ..geo.crs import metric_for
from ..geo.viewshed import view_polygons
from ..store import models as m
from ..store.types import encode_many

# Cameras are projected per square of this many degrees: a transverse Mercator centred on the
# square keeps distances true to 1 part in 10,000 across it (about 28 km).
_TILE_DEG = 0.25
_M_PER_DEG = 110_574.0  # metres per degree of latitude, the smallest: margins never fall short
# How far a building's representative point may lie from its farthest wall (a large estate block).
_FOOTPRINT_REACH_M = 300.0
# Below this many views a second process costs more to start than it saves.
_PARALLEL_FROM = 2000
_VIEWS_LOCK_KEY = 0x6772_6964_7669_6577  # "gridview": the advisory lock that queues view refreshes


def refresh_views(session, *, changed_bounds=None, camera_ids=None, processes=None, now=None):
    """Compute and store the view polygon of every camera that has none.

    Run inside the transaction that changed cameras or buildings (the importer does), so the
    stored views never disagree with the footprints they were cut by.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
    changed_bounds : (lon0, lat0, lon1, lat1), optional
        Buildings changed inside this box: first drop the views of every camera that could see
        into it (within its range of the box), so they are computed again.
    camera_ids : iterable of int, optional
        Drop and recompute these cameras' views as well.
    processes : int, optional
        Worker processes for the views; default all cores when there are many views to compute.

    Returns
    -------
    int
        Number of views computed.
    """
    if session.bind.dialect.name == "postgresql":
        # Buildings imported in one transaction and cameras in another, at once, would each cut
        # views without the other's rows. Queued here, the second reads the first's committed rows
        # (READ COMMITTED: each statement sees what has committed); SQLite has one writer anyway.
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _VIEWS_LOCK_KEY})
    stale = set(camera_ids or ())
    if changed_bounds is not None:
        x0, y0, x1, y1 = changed_bounds
        rows = session.execute(select(m.Camera.id, m.Camera.range_m, m.Camera.geom)).all()
        if rows:
            xy = shapely.get_coordinates(np.array([r.geom for r in rows], dtype=object))
            reach = np.array([r.range_m for r in rows], dtype=float) + _FOOTPRINT_REACH_M
            dlat = reach / _M_PER_DEG
            dlon = dlat / np.maximum(np.cos(np.radians(np.abs(xy[:, 1]) + dlat)), 1e-6)
            near = ((xy[:, 0] >= x0 - dlon) & (xy[:, 0] <= x1 + dlon) &
                    (xy[:, 1] >= y0 - dlat) & (xy[:, 1] <= y1 + dlat))
            stale.update(int(r.id) for r, hit in zip(rows, near) if hit)
    if stale:
        ids = sorted(stale)
        for start in range(0, len(ids), 10_000):  # SQLite allows some 32,000 bound parameters
            session.execute(delete(m.CameraView).where(m.CameraView.camera_id.in_(ids[start:start + 10_000])))
    missing = session.execute(
        select(m.Camera.id, m.Camera.bearing, m.Camera.fov, m.Camera.range_m, m.Camera.geom)
        .outerjoin(m.CameraView, m.CameraView.camera_id == m.Camera.id)
        .where(m.CameraView.camera_id.is_(None)).order_by(m.Camera.id)).all()
    if not missing:
        return 0
    if processes is None:
        processes = (os.cpu_count() or 1) if len(missing) >= _PARALLEL_FROM else 1
    now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    cams = gpd.GeoDataFrame({"id": [r.id for r in missing], "bearing": [r.bearing for r in missing],
                             "fov": [r.fov for r in missing], "range_m": [r.range_m for r in missing]},
                            geometry=[r.geom for r in missing], crs=4326)
    lon, lat = cams.geometry.x.to_numpy(), cams.geometry.y.to_numpy()
    tiles = pd.Series(list(zip(np.floor(lon / _TILE_DEG).astype(int), np.floor(lat / _TILE_DEG).astype(int))))
    dialect = session.bind.dialect.name
    for (tx, ty), rows in tiles.groupby(tiles).groups.items():
        part = cams.iloc[np.asarray(rows)]
        views = _tile_views(session, part, tx, ty, processes)
        values = [{"camera_id": int(i), "computed_at": now, "geom": g}
                  for i, g in zip(part["id"], encode_many(views, dialect))]
        for start in range(0, len(values), 10_000):
            session.execute(insert(m.CameraView), values[start:start + 10_000])
    return len(missing)


def _tile_views(session, cams, tx, ty, processes):
    """Views of the cameras of one tile, cut by the footprints within their reach, in WGS84."""
    metric = metric_for(((tx + 0.5) * _TILE_DEG, (ty + 0.5) * _TILE_DEG))
    x0, y0, x1, y1 = cams.total_bounds
    reach = float(cams["range_m"].max()) + _FOOTPRINT_REACH_M
    dlat = reach / _M_PER_DEG
    dlon = dlat / max(math.cos(math.radians(max(abs(y0), abs(y1)) + dlat)), 1e-6)
    rows = session.execute(select(m.Building.geom).where(
        m.Building.lon.between(x0 - dlon, x1 + dlon), m.Building.lat.between(y0 - dlat, y1 + dlat))).scalars().all()
    local = metric.frame(cams)
    # Bearings are from true north; the tile's grid north turns away from it with distance from the
    # central meridian (0.08° at the tile's edge, 5 cm at 40 m): turn each camera by its own angle.
    lon, lat = cams.geometry.x.to_numpy(), cams.geometry.y.to_numpy()
    x0, y0 = metric.xy(lon, lat)
    x1, y1 = metric.xy(lon, lat + 1e-4)
    north = np.degrees(np.arctan2(np.asarray(x1) - x0, np.asarray(y1) - y0))
    local["bearing"] = (local["bearing"].to_numpy() + north) % 360.0
    footprints = metric.project(list(rows)) if rows else []
    views = view_polygons(local, footprints, processes=processes)
    return metric.unproject(views.values)


def stored_views(session, camera_ids=None):
    """``{camera_id: view polygon (WGS84)}`` of every camera (or of ``camera_ids``) whose view is stored."""
    q = select(m.CameraView.camera_id, m.CameraView.geom)
    if camera_ids is None:
        return dict(session.execute(q).all())
    ids, out = list(camera_ids), {}
    for start in range(0, len(ids), 10_000):
        out.update(session.execute(q.where(m.CameraView.camera_id.in_(ids[start:start + 10_000]))).all())
    return out


def camera_views_of(session, camera_ids):
    """Cameras by id with their stored views, shaped like ``report_for(..., geometries=True)["views"]``.

    For a map that must show particular cameras whatever place they belong to (the dispatcher's
    spot seen by a neighbour community's camera). A camera without a stored view comes without
    ``geometry``.
    """
    ids = sorted({int(i) for i in camera_ids})
    if not ids:
        return []
    rows = session.execute(select(m.Camera).where(m.Camera.id.in_(ids)).order_by(m.Camera.id)).scalars().all()
    views = stored_views(session, ids)
    return [{"id": c.id, "name": c.name, "bearing": float(c.bearing), "fov": float(c.fov), "range_m": float(c.range_m),
             "lon": float(c.geom.x), "lat": float(c.geom.y),
             "geometry": mapping(views[c.id]) if views.get(c.id) is not None and not views[c.id].is_empty else None}
            for c in rows]
