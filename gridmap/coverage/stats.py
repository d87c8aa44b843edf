"""How much of a place's public space cameras see: coverage, blind spots, the area seen by 0, 1, 2 … cameras."""
from __future__ import annotations

import numpy as np
import shapely

from .. import settings
from ..geo.viewshed import Obstacles, polygonal, view_polygons


def coverage(cameras, area, obstacles=None, *, min_blind_m2=None, views=None):
    """Measure how much of the public space of ``area`` the cameras see.

    Parameters
    ----------
    cameras : GeoDataFrame
        Points in metres with ``bearing``, ``fov``, ``range_m`` (optional ``min_range_m``).
    area : shapely geometry
        The courtyard, grid or community polygon, in metres.
    obstacles : sequence of Polygon or GeoSeries, optional
        Building footprints: they hide what lies behind them and are not public space.
    min_blind_m2 : float, optional
        Blind spots smaller than this are dropped from ``blind_spots`` (they are still counted in
        ``percent``). Default: the ``BLIND_SPOT_MIN_M2`` setting.
    views : GeoSeries, optional
        Precomputed view polygons (from :func:`view_polygons`), to skip recomputing them.

    Returns
    -------
    dict
        ``public_m2``; ``covered`` (geometry) and ``covered_m2``; ``percent`` of the public space
        seen by at least one camera; ``blind_spots`` (list of polygons ≥ ``min_blind_m2``, largest
        first) with ``blind_m2`` (their total) and ``blind_total_m2`` (all blind space);
        ``overlap``: list of ``(count, area_m2, geometry)`` — public space seen by exactly
        ``count`` cameras, count 0 included; ``per_camera``: list of dicts ``view_m2`` (public space
        the camera sees) and ``only_m2`` (seen by it alone); ``views``: the view polygons.
    """
    min_blind_m2 = settings.default("BLIND_SPOT_MIN_M2") if min_blind_m2 is None else float(min_blind_m2)
    obs = obstacles if isinstance(obstacles, Obstacles) else Obstacles(obstacles)
    blocked = shapely.union_all(obs.geoms) if len(obs) else shapely.Polygon()
    public = polygonal(shapely.make_valid(shapely.difference(area, blocked)))
    if views is None:
        views = view_polygons(cameras, obs)
    vis = np.asarray(shapely.intersection(np.asarray(views.values, dtype=object), public), dtype=object)
    covered = polygonal(shapely.union_all(vis)) if len(vis) else shapely.Polygon()
    blind = polygonal(shapely.difference(public, covered))
    spots = sorted((p for p in shapely.get_parts(blind) if p.area >= min_blind_m2), key=lambda p: -p.area)
    overlap, only = _overlap(public, vis)
    public_m2 = public.area
    return {
        "public_m2": public_m2,
        "covered": covered,
        "covered_m2": covered.area,
        "percent": 100.0 * covered.area / public_m2 if public_m2 > 0 else 0.0,
        "blind_spots": spots,
        "blind_m2": float(sum(p.area for p in spots)),
        "blind_total_m2": blind.area,
        "overlap": overlap,
        "per_camera": [{"view_m2": float(v.area), "only_m2": float(o)} for v, o in zip(vis, only)],
        "views": views,
    }


_NODING_GRID_M = 1e-5  # 10 µm: far below any wall or view edge, far above rounding


def _overlap(public, vis):
    """Split the public space into faces by every view's outline and count the views over each."""
    lines = [shapely.boundary(public)] + [shapely.boundary(v) for v in vis if not v.is_empty]
    # Snap-rounded noding: views that travelled through lon/lat (stored views) have edges a
    # nanometre off their neighbours', and plain noding then left some of them as dangles, so a
    # face spanned a view's edge and 550 m² of 和合大院 seen twice was counted once.
    noded = shapely.union_all(lines, grid_size=_NODING_GRID_M)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)).geoms)
    faces = np.asarray(faces, dtype=object)
    only = np.zeros(len(vis))
    if faces.size == 0:
        return [], only
    pts = shapely.point_on_surface(faces)
    faces_in = shapely.contains(public, pts)
    faces, pts = faces[faces_in], pts[faces_in]
    counts = np.zeros(len(faces), dtype=np.int64)
    tree = shapely.STRtree(vis)
    # a face lies wholly inside or outside each view, so its inner point decides
    pf, vi = tree.query(pts, predicate="within")
    np.add.at(counts, pf, 1)
    single = counts[pf] == 1
    np.add.at(only, vi[single], shapely.area(faces[pf[single]]))
    out = []
    for c in np.unique(counts):
        part = faces[counts == c]
        out.append((int(c), float(shapely.area(part).sum()), polygonal(shapely.union_all(part))))
    return out, only
