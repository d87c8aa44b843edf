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
        first) with ``blind_m2`` (their total), ``blind_total_m2`` (all blind space, the 0-camera
        area of ``overlap`` exactly) and ``blind`` (its geometry);
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
    # Fixed precision makes the overlay robust: cut in floating point, a piece's inside and outside
    # parts overlapped by 0.25 m² on real footprints (GEOS snaps a little differently each time
    # noding fails). On a 10 µm grid both halves come from the same snap-rounded noding.
    public_m2 = float(public.area)  # of the exact geometry; the pieces' sum differs by ~1e-8 of it
    public = polygonal(shapely.set_precision(public, _GRID_M))
    raw = [shapely.Polygon() if v is None else v for v in views.values]
    vis = np.asarray(_polygons(shapely.intersection(_polygons(raw), public, grid_size=_GRID_M)), dtype=object)
    # One overlay answers everything: the percentage, the blind spots and the per-count table are
    # all read from its pieces, so they add up to the public area (they once came from a union and a
    # noding of the outlines that disagreed by a thousand square metres on a real community).
    pieces, counts, sole = overlay(public, vis)
    areas = shapely.area(pieces) if len(pieces) else np.zeros(0)
    blind = _union(pieces[counts == 0])
    blind_total = float(areas[counts == 0].sum())
    covered = _union(pieces[counts > 0])
    covered_m2 = float(areas[counts > 0].sum())
    spots = sorted((p for p in shapely.get_parts(blind) if p.area >= min_blind_m2), key=lambda p: -p.area)
    overlap = [(int(c), float(areas[counts == c].sum()), _union(pieces[counts == c])) for c in np.unique(counts)]
    only = np.zeros(len(vis))
    single = counts == 1
    np.add.at(only, sole[single], areas[single])
    return {
        "public_m2": public_m2,
        "covered": covered,
        "covered_m2": covered_m2,
        # a share of the pieces, so that it is exactly what the table says
        "percent": 100.0 * covered_m2 / (covered_m2 + blind_total) if covered_m2 + blind_total > 0 else 0.0,
        "blind_spots": spots,
        "blind_m2": float(sum(p.area for p in spots)),
        "blind_total_m2": blind_total,
        "blind": blind,
        "overlap": overlap,
        "per_camera": [{"view_m2": float(v.area), "only_m2": float(o)} for v, o in zip(vis, only)],
        "views": views,
    }


def _polygons(geoms):
    """The polygonal part of each geometry (collections flattened to any depth), as Polygon or MultiPolygon."""
    out = np.empty(len(geoms), dtype=object)
    for k, g in enumerate(geoms):
        if g.geom_type in ("Polygon", "MultiPolygon"):
            out[k] = g
            continue
        parts, stack = [], [g]
        while stack:
            h = stack.pop()
            if h.geom_type == "Polygon":
                if not h.is_empty:
                    parts.append(h)
            elif h.geom_type in ("MultiPolygon", "GeometryCollection"):
                stack.extend(shapely.get_parts(h))
        out[k] = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
    return out


def _union(pieces):
    return polygonal(shapely.union_all(pieces, grid_size=_GRID_M)) if len(pieces) else shapely.Polygon()


_GRID_M = 1e-5  # 10 µm: far below any wall or view edge, far above rounding


def overlay(public, views):
    """Cut ``public`` by every view into pieces, each seen by the same cameras throughout.

    Returns ``(pieces, counts, sole)``: the pieces (Polygon or MultiPolygon, metres), how many
    views cover each, and for a piece seen by exactly one view that view's index (-1 otherwise).
    Every view splits the pieces it touches into the part inside it and the part outside: the
    pieces never overlap and always make up ``public``, so areas read from them add up exactly.
    """
    pieces = np.asarray([public], dtype=object) if not public.is_empty else np.empty(0, dtype=object)
    counts = np.zeros(len(pieces), dtype=np.int64)
    sole = np.full(len(pieces), -1, dtype=np.int64)
    for i, v in enumerate(views):
        if v is None or v.is_empty or not len(pieces):
            continue
        b = shapely.bounds(pieces)
        x0, y0, x1, y1 = v.bounds
        near = np.flatnonzero((b[:, 0] <= x1) & (b[:, 2] >= x0) & (b[:, 1] <= y1) & (b[:, 3] >= y0))
        if not near.size:
            continue
        shapely.prepare(v)
        near = near[shapely.intersects(v, pieces[near])]
        if not near.size:
            continue
        inside = _polygons(shapely.intersection(pieces[near], v, grid_size=_GRID_M))
        outside = _polygons(shapely.difference(pieces[near], v, grid_size=_GRID_M))
        pieces[near] = outside
        pieces = np.concatenate([pieces, inside])
        old = counts[near]
        counts = np.concatenate([counts, old + 1])
        sole = np.concatenate([sole, np.where(old == 0, i, -1)])
        keep = shapely.area(pieces) > 0
        pieces, counts, sole = pieces[keep], counts[keep], sole[keep]
    return pieces, counts, sole
