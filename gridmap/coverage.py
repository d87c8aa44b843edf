"""Camera view polygons with building occlusion, coverage and blind spots, placement, cameras seeing a point.

Everything here works in a metric projected CRS (metres; project WGS84 data with
:func:`gridmap.geo.crs.local_metric_crs` first) with bearings in degrees clockwise from north.

Visibility is 2-D: a building footprint blocks sight at any height. The view of a camera is
its sector (``bearing`` ± ``fov``/2 between ``min_range_m`` and ``range_m``) minus the
*shadows* of the footprints: for every footprint edge that faces the camera, the region from
the edge outward along the rays from the camera to beyond the range. The union of the front
edges' shadows covers the footprint itself, so one subtraction removes both.

Wall-mounted cameras. A camera drawn on a wall, or a little inside its footprint because the
survey point and the footprint disagree by a few decimetres, would otherwise be swallowed by its
own building. When the camera point lies inside a footprint or within :data:`APEX_OFFSET_M` of
its boundary, and its boundary is no farther than :data:`WALL_SNAP_M`, the apex is moved to the
nearest boundary point and then :data:`APEX_OFFSET_M` outward (along the wall normal): the camera
sees out from that wall. A camera already farther outside than that keeps its position.
"""
from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse

from .errors import InvalidInput

__all__ = [
    "view_polygon", "view_polygons", "coverage", "CameraViews", "place_cameras", "candidate_sites",
    "Obstacles", "report_for", "candidate_matrix", "place_choices", "refresh_views", "stored_views",
    "placement_for", "write_sites", "camera_views_of",
    "ARC_STEP_DEG", "WALL_SNAP_M", "APEX_OFFSET_M",
]

# A polygon inscribed in an arc of step t has area sin(t)/t of the arc's: 2 degrees loses 0.02 %.
ARC_STEP_DEG = 2.0
WALL_SNAP_M = 0.5
APEX_OFFSET_M = 0.05
# Shadows reach this far past the range so that their outer edge never cuts into the view.
_SHADOW_REACH = 1.5
# Far side of a shadow is an arc of 4 chords (each <= 45 degrees of the < 180 an edge subtends):
# a chord at _SHADOW_REACH * range stays beyond cos(22.5) * 1.5 = 1.39 ranges.
_SHADOW_CHORDS = 4
DEFAULT_BEARINGS = tuple(range(0, 360, 45))


# --- obstacles ---------------------------------------------------------------------------------


class Obstacles:
    """Footprints prepared once for many view computations: an STRtree and their edges as arrays.

    Parameters
    ----------
    geoms : sequence of shapely geometries or GeoSeries, optional
        Polygons or MultiPolygons in metres; other geometry types (points of buildings without
        a footprint) and empties are ignored because they block nothing.
    """

    def __init__(self, geoms=None):
        if isinstance(geoms, Obstacles):
            self.__dict__.update(geoms.__dict__)
            return
        arr = np.asarray(getattr(geoms, "values", geoms) if geoms is not None else [], dtype=object)
        arr = shapely.get_parts(arr[~shapely.is_empty(arr)]) if arr.size else arr
        arr = arr[shapely.get_type_id(arr) == 3] if arr.size else np.empty(0, dtype=object)
        # exterior counter-clockwise, holes clockwise: the outward normal of edge (dx, dy) is (dy, -dx)
        self.geoms = shapely.orient_polygons(arr) if arr.size else arr
        self.tree = shapely.STRtree(self.geoms)
        # every camera measures its distance to the walls near it (the wall snap): outlines made once
        self.boundaries = shapely.boundary(self.geoms) if arr.size else np.empty(0, dtype=object)
        if arr.size:
            # get_rings lists each polygon's exterior then its holes, polygon by polygon, so the
            # edges come out grouped by owner
            rings, ring_owner = shapely.get_rings(self.geoms, return_index=True)
            coords, ring_of = shapely.get_coordinates(rings, return_index=True)
            same = ring_of[:-1] == ring_of[1:]
            self.a, self.b = coords[:-1][same], coords[1:][same]
            self.owner = ring_owner[ring_of[:-1][same]].astype(np.int64)
        else:
            self.a = self.b = np.empty((0, 2))
            self.owner = np.empty(0, dtype=np.int64)
        counts = np.bincount(self.owner, minlength=len(self.geoms))
        self.edge_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def __len__(self):
        return len(self.geoms)

    def edges_of(self, idx):
        """Edges (a, b) of the obstacles at positions ``idx``."""
        idx = np.asarray(idx, dtype=np.int64)
        sel = _ranges(self.edge_start[idx], self.edge_start[idx + 1])
        return self.a[sel], self.b[sel]


def _ranges(starts, stops):
    """``concatenate([arange(a, b) for a, b in zip(starts, stops)])`` without the Python loop."""
    counts = stops - starts
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    # output position p in run k holds starts[k] + (p - where run k begins)
    return np.arange(total, dtype=np.int64) + np.repeat(starts - (np.cumsum(counts) - counts), counts)


# --- one view ----------------------------------------------------------------------------------


def view_polygon(x, y, bearing, fov, range_m, obstacles=None, min_range_m=0):
    """Return what a camera sees: its sector minus what building footprints hide.

    Parameters
    ----------
    x, y : float
        Camera position in metres.
    bearing : float
        Direction of the optical axis, degrees clockwise from north.
    fov : float
        Horizontal field of view in degrees (360 or more for a dome camera).
    range_m : float
        Farthest useful distance in metres.
    obstacles : sequence of Polygon, GeoSeries or Obstacles, optional
        Footprints in the same metric CRS. Pass an :class:`Obstacles` when computing many views.
    min_range_m : float, default 0
        Nearest useful distance (a camera mounted high does not see its own foot).

    Returns
    -------
    shapely.Polygon or shapely.MultiPolygon
        The visible region; an empty Polygon when nothing is seen. Occlusion can split a view
        into pieces only when ``min_range_m`` > 0 cuts it; otherwise it is one star-shaped polygon.

    Notes
    -----
    The arc is drawn with chords of at most :data:`ARC_STEP_DEG` degrees (area error < 0.03 %).
    A camera on a wall sees out from that wall; see the module docstring.
    """
    obs = obstacles if isinstance(obstacles, Obstacles) else Obstacles(obstacles)
    return _view(obs, float(x), float(y), float(bearing), float(fov), float(range_m), float(min_range_m or 0))


def _check(fov, range_m, min_range_m):
    if not (range_m > 0 and math.isfinite(range_m)):
        raise InvalidInput(f"range_m was {range_m!r} but must be a positive number of metres.",
                           fix="Give each camera its useful range in metres, e.g. 30.")
    if not (fov > 0 and math.isfinite(fov)):
        raise InvalidInput(f"fov was {fov!r} but must be a positive number of degrees.",
                           fix="Give the horizontal field of view in degrees, e.g. 90 (360 for a dome).")
    if not (0 <= min_range_m < range_m):
        raise InvalidInput(f"min_range_m was {min_range_m!r} but must be at least 0 and below range_m={range_m}.",
                           fix="Leave min_range_m at 0 unless the camera cannot see its own foot.")


def _check_all(fov, r, r0):
    """Raise for the first camera :func:`_check` refuses (NaN fails every comparison, so it is refused)."""
    ok = (r > 0) & np.isfinite(r) & (fov > 0) & np.isfinite(fov) & (r0 >= 0) & (r0 < r)
    if not ok.all():
        k = int(np.flatnonzero(~ok)[0])
        _check(float(fov[k]), float(r[k]), float(r0[k]))


def _sector(x, y, bearing, fov, r):
    return _sectors(*(np.array([v], dtype=float) for v in (x, y, bearing, fov, r)))[0]


def _sectors(x, y, bearing, fov, r):
    """Sector polygons of many cameras; those with as many arc chords are built in one call."""
    out = np.empty(len(x), dtype=object)
    dome = fov >= 360
    if dome.any():
        n = int(math.ceil(360 / ARC_STEP_DEG))
        t = np.radians(np.linspace(0, 360, n, endpoint=False))
        i = np.flatnonzero(dome)
        out[i] = shapely.polygons(np.stack([x[i, None] + r[i, None] * np.sin(t),
                                            y[i, None] + r[i, None] * np.cos(t)], axis=2))
    chords = np.maximum(2, np.ceil(fov / ARC_STEP_DEG)).astype(np.int64)
    for n in np.unique(chords[~dome]).tolist():
        i = np.flatnonzero(~dome & (chords == n))
        t = np.radians(np.linspace(bearing[i] - fov[i] / 2, bearing[i] + fov[i] / 2, n + 1, axis=1))
        arc = np.stack([x[i, None] + r[i, None] * np.sin(t), y[i, None] + r[i, None] * np.cos(t)], axis=2)
        out[i] = shapely.polygons(np.concatenate([np.stack([x[i], y[i]], axis=1)[:, None, :], arc], axis=1))
    return out


def _apex(obs, x, y, candidates):
    """Move a camera standing on or just inside a footprint to just outside its wall; None when indoors."""
    candidates = np.asarray(candidates, dtype=np.int64)
    if len(candidates) == 0:
        return x, y
    d = shapely.distance(obs.boundaries[candidates], shapely.Point(x, y))
    inside = shapely.contains_xy(obs.geoms[candidates], x, y)
    if np.any(inside & (d > WALL_SNAP_M)):
        return None  # indoors: a footprint blocks sight at every height, so nothing outside is seen
    host = np.flatnonzero((d <= WALL_SNAP_M) & (inside | (d < APEX_OFFSET_M)))
    if host.size == 0:
        return x, y
    return _wall_apex(obs, x, y, int(candidates[host[np.argmin(d[host])]]))


def _wall_apex(obs, x, y, j):
    """Apex of a camera on, or just inside, a wall of obstacle ``j``: a little outside that wall."""
    q = shapely.get_coordinates(shapely.shortest_line(obs.boundaries[j], shapely.Point(x, y)))[0]
    a, b = obs.edges_of([j])
    # the wall the camera hangs on: the edge nearest to the foot point
    ab = b - a
    t = np.clip(np.einsum("ij,ij->i", q - a, ab) / np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-18), 0, 1)
    k = int(np.argmin(np.hypot(*(a + t[:, None] * ab - q).T)))
    normal = np.array([ab[k, 1], -ab[k, 0]]) / max(float(np.hypot(*ab[k])), 1e-12)
    # at a corner two walls meet: step out along their mean normal so neither swallows the view
    at_end = (t[k] < 1e-9) or (t[k] > 1 - 1e-9)
    if at_end:
        nxt = np.flatnonzero(np.all(np.isclose(a, q), axis=1) | np.all(np.isclose(b, q), axis=1))
        ns = np.array([np.array([ab[i, 1], -ab[i, 0]]) / max(float(np.hypot(*ab[i])), 1e-12) for i in nxt])
        if len(ns):
            m = ns.sum(axis=0)
            if np.hypot(*m) > 1e-9:
                normal = m / np.hypot(*m)
    apex = q + APEX_OFFSET_M * normal
    return float(apex[0]), float(apex[1])


def _view(obs, x, y, bearing, fov, r, r0):
    return _views(obs, *(np.array([v], dtype=float) for v in (x, y, bearing, fov, r, r0)))[0]


_EMPTY = shapely.Polygon()


def _views(obs, x, y, bearing, fov, r, r0):
    """View polygons of many cameras given as equal-length float arrays, each as :func:`view_polygon`.

    Every step runs over all the cameras at once — sectors, the footprints near each, the wall
    snap, the shadows of the walls facing each camera, their union per camera, the difference —
    so a view costs GEOS's work and little interpreter time. Rows are cameras; the arrays are not
    modified.
    """
    _check_all(fov, r, r0)
    out = np.full(len(x), _EMPTY, dtype=object)
    live = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    if live.size == 0:
        return out
    x, y, bearing, fov, r, r0 = (np.array(v[live], dtype=float) for v in (x, y, bearing, fov, r, r0))
    sector = _sectors(x, y, bearing, fov, r)
    indoor = np.zeros(len(x), dtype=bool)
    if len(obs):
        # footprints whose box meets the sector's (a dome's: a coarse circle's), each camera's sorted
        query = sector.copy()
        dome = np.flatnonzero(fov >= 360)
        if dome.size:
            query[dome] = shapely.buffer(shapely.points(x[dome], y[dome]), r[dome], quad_segs=4)
        cam, near = obs.tree.query(query)
        order = np.lexsort((near, cam))
        cam, near = cam[order], near[order]
        cam, near, indoor = _snap_to_walls(obs, cam, near, x, y, bearing, fov, r, sector)
        shapely.prepare(sector)
        hit = shapely.intersects(sector[cam], obs.geoms[near])
        shapely.destroy_prepared(sector)
        shadow = _shadows(obs, cam[hit], near[hit], x, y, r, len(x))
        has = np.flatnonzero(shadow != None)  # noqa: E711 (elementwise on an object array)
        if has.size:
            sector[has] = shapely.difference(sector[has], shadow[has])
    cut = np.flatnonzero((r0 > 0) & ~indoor)
    if cut.size:
        disc = shapely.buffer(shapely.points(x[cut], y[cut]), r0[cut], quad_segs=int(math.ceil(90 / ARC_STEP_DEG)))
        sector[cut] = shapely.difference(sector[cut], disc)
    sector[indoor] = _EMPTY
    out[live] = _polygonals(sector)
    return out


def _snap_to_walls(obs, cam, near, x, y, bearing, fov, r, sector):
    """Apply :func:`_apex` to every camera; moves ``x``, ``y`` and ``sector`` in place.

    Returns the (camera, footprint) pairs of cameras that are not indoors, and the indoor mask.
    """
    d = shapely.distance(obs.boundaries[near], shapely.points(x[cam], y[cam]))
    inside = shapely.contains_xy(obs.geoms[near], x[cam], y[cam])
    indoor = np.zeros(len(x), dtype=bool)
    indoor[cam[inside & (d > WALL_SNAP_M)]] = True
    host = (d <= WALL_SNAP_M) & (inside | (d < APEX_OFFSET_M)) & ~indoor[cam]
    moved = []
    for c in np.unique(cam[host]).tolist():
        # the nearest host wall; the first of equals in footprint order, as _apex picks it
        lo, hi = np.searchsorted(cam, [c, c + 1])
        rows = lo + np.flatnonzero(host[lo:hi])
        ax, ay = _wall_apex(obs, float(x[c]), float(y[c]), int(near[rows[np.argmin(d[rows])]]))
        if (ax, ay) != (x[c], y[c]):
            x[c], y[c] = ax, ay
            moved.append(c)
    if moved:
        # the footprints to cut by stay those found from the surveyed point: the move is < 0.55 m
        moved = np.array(moved)
        sector[moved] = _sectors(x[moved], y[moved], bearing[moved], fov[moved], r[moved])
    keep = ~indoor[cam]
    return cam[keep], near[keep], indoor


def _shadows(obs, cam, near, x, y, r, n_cameras):
    """Per camera, the union of the shadows of the footprint edges that face it (None: no shadow).

    ``cam``, ``near``: (camera, footprint) pairs sorted by camera then footprint.
    """
    out = np.full(n_cameras, None, dtype=object)
    starts, stops = obs.edge_start[near], obs.edge_start[near + 1]
    sel = _ranges(starts, stops)
    if sel.size == 0:
        return out
    c = np.repeat(cam, stops - starts)
    a, b = obs.a[sel], obs.b[sel]
    xy = np.column_stack([x, y])
    pa, pb = a - xy[c], b - xy[c]
    ab = b - a
    # front-facing: the camera is on the outward side (outward normal (dy, -dx) for CCW exteriors)
    la, lb = np.hypot(*pa.T), np.hypot(*pb.T)
    # the cross product over |pa||pb| is the sine of the angle the edge subtends: an edge seen
    # edge-on (or touching the apex) hides nothing and would make a degenerate shadow
    cross = ab[:, 1] * pa[:, 0] - ab[:, 0] * pa[:, 1]
    facing = (la > 1e-9) & (lb > 1e-9)
    facing[facing] = cross[facing] / (la[facing] * lb[facing]) < -1e-9
    if not facing.any():
        return out
    a, b, pa, pb, c = a[facing], b[facing], pa[facing], pb[facing], c[facing]
    ua = pa / np.hypot(*pa.T)[:, None]
    ub = pb / np.hypot(*pb.T)[:, None]
    s = np.linspace(0.0, 1.0, _SHADOW_CHORDS + 1)
    dirs = ub[:, None, :] * (1 - s)[None, :, None] + ua[:, None, :] * s[None, :, None]
    dirs /= np.linalg.norm(dirs, axis=2, keepdims=True)
    far = xy[c][:, None, :] + (_SHADOW_REACH * r[c])[:, None, None] * dirs
    ring = np.concatenate([a[:, None, :], b[:, None, :], far, a[:, None, :]], axis=1)
    polys = shapely.polygons(ring)
    bad = ~shapely.is_valid(polys)
    if bad.any():
        polys[bad] = shapely.make_valid(polys[bad])
    # one row per camera, its shadows in order, padded with None (which union_all skips)
    per = np.bincount(c, minlength=n_cameras)
    cams = np.flatnonzero(per)
    row = np.searchsorted(cams, c)
    col = np.arange(len(c)) - (np.cumsum(per) - per)[c]
    table = np.full((len(cams), int(per.max())), None, dtype=object)
    table[row, col] = polys
    out[cams] = shapely.union_all(table, axis=1)
    return out


def _polygonal(g):
    if g.is_empty:
        return shapely.Polygon()
    if g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    parts = [p for p in shapely.get_parts(g) if p.geom_type == "Polygon" and not p.is_empty]
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def _polygonals(geoms):
    """:func:`_polygonal` of every element (the common Polygon answers pass through untouched)."""
    out = np.asarray(geoms, dtype=object).copy()
    tid = shapely.get_type_id(out)
    for i in np.flatnonzero(((tid != 3) & (tid != 6)) | shapely.is_empty(out)).tolist():
        out[i] = _polygonal(out[i])
    return out


# --- many views --------------------------------------------------------------------------------


def _camera_arrays(cameras):
    for col in ("bearing", "fov", "range_m"):
        if col not in cameras.columns:
            raise InvalidInput(f"cameras lack the column {col!r}.",
                               fix="Give every camera bearing (degrees clockwise from north), fov (degrees) "
                                   "and range_m (metres).")
    geom = cameras.geometry.values
    xs, ys = shapely.get_x(geom), shapely.get_y(geom)
    r0 = cameras["min_range_m"].fillna(0).to_numpy(float) if "min_range_m" in cameras.columns else np.zeros(len(cameras))
    return (xs, ys, cameras["bearing"].to_numpy(float), cameras["fov"].to_numpy(float),
            cameras["range_m"].to_numpy(float), r0)


# Cameras computed together: large enough that the per-call overheads vanish, small enough that
# the (camera, edge) arrays of a chunk stay a few megabytes and chunks share out evenly to workers.
_CHUNK = 1000
_WORKER_OBS = None


def _worker_init(obstacles):
    """Give a worker the obstacles: the parent's own under fork, rebuilt from WKB under spawn."""
    global _WORKER_OBS
    _WORKER_OBS = obstacles if isinstance(obstacles, Obstacles) else Obstacles(shapely.from_wkb(obstacles))


def _worker_views(columns):
    return shapely.to_wkb(_views(_WORKER_OBS, *columns))


def view_polygons(cameras, obstacles=None, *, processes=1):
    """Return the view polygon of every camera of a frame.

    Parameters
    ----------
    cameras : GeoDataFrame
        Points in metres with ``bearing``, ``fov``, ``range_m`` (optional ``min_range_m``).
    obstacles : sequence of Polygon, GeoSeries or Obstacles, optional
    processes : int, default 1
        Worker processes; views are independent, so chunks of cameras go to whichever worker is
        free (the obstacles are inherited under fork, sent once per worker as WKB otherwise).

    Returns
    -------
    GeoSeries
        One (possibly empty) polygon per camera, with the cameras' index and CRS.
    """
    obs = obstacles if isinstance(obstacles, Obstacles) else Obstacles(obstacles)
    cols = _camera_arrays(cameras)
    _check_all(cols[3], cols[4], cols[5])  # here, so that a bad row is reported from this process
    n = len(cameras)
    chunks = [tuple(c[i:i + _CHUNK] for c in cols) for i in range(0, n, _CHUNK)]
    if processes > 1 and len(chunks) > 1:
        import multiprocessing as mp
        if "fork" in mp.get_all_start_methods():
            ctx, init = mp.get_context("fork"), obs
        else:
            ctx, init = mp.get_context(), shapely.to_wkb(obs.geoms)
        with ctx.Pool(min(processes, len(chunks)), initializer=_worker_init, initargs=(init,)) as pool:
            parts = [shapely.from_wkb(p) for p in pool.imap(_worker_views, chunks)]
    else:
        parts = [_views(obs, *chunk) for chunk in chunks]
    out = np.concatenate(parts) if parts else np.empty(0, dtype=object)
    return gpd.GeoSeries(out, index=cameras.index, crs=cameras.crs)


# --- coverage ----------------------------------------------------------------------------------


def _default_min_blind():
    from .settings import defaults
    return float(defaults()["BLIND_SPOT_MIN_M2"])


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
    min_blind_m2 = _default_min_blind() if min_blind_m2 is None else float(min_blind_m2)
    obs = obstacles if isinstance(obstacles, Obstacles) else Obstacles(obstacles)
    blocked = shapely.union_all(obs.geoms) if len(obs) else shapely.Polygon()
    public = _polygonal(shapely.make_valid(shapely.difference(area, blocked)))
    if views is None:
        views = view_polygons(cameras, obs)
    vis = np.asarray(shapely.intersection(np.asarray(views.values, dtype=object), public), dtype=object)
    covered = _polygonal(shapely.union_all(vis)) if len(vis) else shapely.Polygon()
    blind = _polygonal(shapely.difference(public, covered))
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
        out.append((int(c), float(shapely.area(part).sum()), _polygonal(shapely.union_all(part))))
    return out, only


# --- cameras seeing a point --------------------------------------------------------------------


class CameraViews:
    """Occlusion-aware "which cameras see this point", built from stored view polygons.

    An STRtree over the view polygons finds the few whose box holds the point; GEOS then tests
    containment on those (the tree prepares candidate geometries for the predicate).

    Parameters
    ----------
    views : sequence of shapely geometries or GeoSeries
        One view polygon per camera, in metres.
    positions : array_like (n, 2), optional
        Camera positions in metres, to report distances and sort nearest first.
    ids : sequence, optional
        Camera identifiers returned by :meth:`seeing` (default: positions 0..n-1).
    """

    def __init__(self, views, positions=None, ids=None):
        self.views = np.asarray(getattr(views, "values", views), dtype=object)
        self.tree = shapely.STRtree(self.views)
        n = len(self.views)
        self.ids = list(range(n)) if ids is None else list(ids)
        self.xy = None if positions is None else np.asarray(positions, dtype=float).reshape(n, 2)

    @classmethod
    def from_cameras(cls, cameras, obstacles=None, id_column=None, processes=1):
        """Compute the views of a camera frame (metres) and index them."""
        views = view_polygons(cameras, obstacles, processes=processes)
        ids = cameras[id_column].tolist() if id_column else cameras.index.tolist()
        xy = shapely.get_coordinates(cameras.geometry.values)
        return cls(views, xy, ids)

    def __len__(self):
        return len(self.views)

    def seeing(self, x, y):
        """Return ``[(id, distance_m), ...]`` of the cameras that see point (x, y), nearest first."""
        hit = self.tree.query(shapely.Point(x, y), predicate="intersects")
        if self.xy is None:
            return [(self.ids[i], None) for i in sorted(hit.tolist())]
        d = np.hypot(self.xy[hit, 0] - x, self.xy[hit, 1] - y)
        order = np.lexsort((hit, d))
        return [(self.ids[hit[i]], float(d[i])) for i in order]


# --- stored views ------------------------------------------------------------------------------

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
    import datetime as dt
    import os

    from sqlalchemy import delete, select, text
    from sqlalchemy import insert as sql_insert

    from .store import models as m
    from .store.types import encode_many

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
            session.execute(sql_insert(m.CameraView), values[start:start + 10_000])
    return len(missing)


def _tile_views(session, cams, tx, ty, processes):
    """Views of the cameras of one tile, cut by the footprints within their reach, in WGS84."""
    from sqlalchemy import select

    from .geo.crs import local_metric_crs
    from .store import models as m

    crs = local_metric_crs((tx + 0.5) * _TILE_DEG, (ty + 0.5) * _TILE_DEG)
    x0, y0, x1, y1 = cams.total_bounds
    reach = float(cams["range_m"].max()) + _FOOTPRINT_REACH_M
    dlat = reach / _M_PER_DEG
    dlon = dlat / max(math.cos(math.radians(max(abs(y0), abs(y1)) + dlat)), 1e-6)
    rows = session.execute(select(m.Building.geom).where(
        m.Building.lon.between(x0 - dlon, x1 + dlon), m.Building.lat.between(y0 - dlat, y1 + dlat))).scalars().all()
    metric = cams.to_crs(crs)
    # Bearings are from true north; the tile's grid north turns away from it with distance from the
    # central meridian (0.08° at the tile's edge, 5 cm at 40 m): turn each camera by its own angle.
    from pyproj import Transformer
    to_metric = Transformer.from_crs(4326, crs, always_xy=True)
    lon, lat = cams.geometry.x.to_numpy(), cams.geometry.y.to_numpy()
    x0, y0 = to_metric.transform(lon, lat)
    x1, y1 = to_metric.transform(lon, lat + 1e-4)
    north = np.degrees(np.arctan2(np.asarray(x1) - x0, np.asarray(y1) - y0))
    metric["bearing"] = (metric["bearing"].to_numpy() + north) % 360.0
    footprints = gpd.GeoSeries(list(rows), crs=4326).to_crs(crs).values if rows else []
    views = view_polygons(metric, footprints, processes=processes)
    return views.to_crs(4326).values


def stored_views(session, camera_ids=None):
    """``{camera_id: view polygon (WGS84)}`` of every camera (or of ``camera_ids``) whose view is stored."""
    from sqlalchemy import select

    from .store import models as m
    q = select(m.CameraView.camera_id, m.CameraView.geom)
    if camera_ids is None:
        return dict(session.execute(q).all())
    ids, out = list(camera_ids), {}
    for start in range(0, len(ids), 10_000):
        out.update(session.execute(q.where(m.CameraView.camera_id.in_(ids[start:start + 10_000]))).all())
    return out


# --- placement ---------------------------------------------------------------------------------


def candidate_sites(obstacles, area=None, *, offset_m=0.3, roads=None, pole_spacing_m=30.0):
    """Return places a camera could be mounted: building corners, wall midpoints, road poles.

    Parameters
    ----------
    obstacles : sequence of Polygon or GeoSeries
        Footprints in metres. Corners are offset ``offset_m`` outward along the corner's mean
        normal, wall midpoints ``offset_m`` along the wall's normal.
    area : shapely geometry, optional
        Keep only sites inside it.
    roads : sequence of LineString or GeoSeries, optional
        Poles every ``pole_spacing_m`` along each road (both ends included).

    Returns
    -------
    numpy.ndarray (n, 2)
        Site coordinates in metres, outside every footprint.
    """
    obs = obstacles if isinstance(obstacles, Obstacles) else Obstacles(obstacles)
    pts = []
    if len(obs):
        a, b = obs.a, obs.b
        ab = b - a
        length = np.hypot(*ab.T)
        ok = length > 1e-6
        n = np.zeros_like(ab)
        n[ok] = np.column_stack([ab[ok, 1], -ab[ok, 0]]) / length[ok, None]
        pts.append(((a + b) / 2 + offset_m * n)[ok])
        # corner at b: the normal of this edge and of the next edge of the same ring
        nxt = np.arange(len(a)) + 1
        nxt_ok = nxt < len(a)
        nxt[~nxt_ok] = 0
        same = nxt_ok & np.all(np.isclose(a[nxt], b), axis=1)
        # close each ring: the edge after a ring's last one is its first
        first = np.flatnonzero(~np.r_[False, np.all(np.isclose(a[1:], b[:-1]), axis=1)])
        ring_id = np.cumsum(np.isin(np.arange(len(a)), first)) - 1
        nxt[~same] = first[ring_id[~same]]
        m = n + n[nxt]
        mlen = np.hypot(*m.T)
        good = ok & (mlen > 1e-6)
        pts.append(b[good] + offset_m * m[good] / mlen[good, None])
    if roads is not None:
        for line in np.asarray(getattr(roads, "values", roads), dtype=object):
            for part in shapely.get_parts(line):
                k = max(1, int(math.ceil(part.length / pole_spacing_m)))
                pts.append(shapely.get_coordinates(shapely.line_interpolate_point(part, np.linspace(0, 1, k + 1),
                                                                                  normalized=True)))
    if not pts:
        return np.empty((0, 2))
    xy = np.unique(np.round(np.concatenate(pts), 3), axis=0)
    keep = np.ones(len(xy), dtype=bool)
    if len(obs):
        hit = obs.tree.query(shapely.points(xy), predicate="intersects")[0]
        keep[hit] = False
    if area is not None:
        keep &= shapely.contains_xy(area, xy[:, 0], xy[:, 1]) | shapely.intersects_xy(area, xy[:, 0], xy[:, 1])
    return xy[keep]


@dataclass
class _Samples:
    xy: np.ndarray
    weight: np.ndarray


def _samples(public, cell_m):
    x0, y0, x1, y1 = public.bounds
    xs = np.arange(x0, x1, cell_m)
    ys = np.arange(y0, y1, cell_m)
    gx, gy = np.meshgrid(xs, ys)
    cells = shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + cell_m, gy.ravel() + cell_m)
    cells = cells[shapely.intersects(cells, public)]
    parts = shapely.intersection(cells, public)
    w = shapely.area(parts)
    keep = w > 1e-9
    parts, w = parts[keep], w[keep]
    # the point stands for its cell's public part; point_on_surface keeps it inside that part
    return _Samples(shapely.get_coordinates(shapely.point_on_surface(parts)), w)


def place_cameras(area, obstacles, candidates, *, target_percent, fov, range_m, bearings=DEFAULT_BEARINGS,
                  existing=None, cell_m=None, max_exact=400_000, time_limit=20.0):
    """Choose the fewest new cameras that bring the public space's coverage to ``target_percent``.

    The public space (``area`` minus footprints) is cut into square cells of ``cell_m``; a cell
    counts as seen by a candidate when its inner point is in the candidate's view, and weighs its
    public area. Every candidate site is tried at every bearing of ``bearings``.

    Parameters
    ----------
    area : shapely geometry
        Courtyard or grid polygon, in metres.
    obstacles : sequence of Polygon or GeoSeries
        Building footprints in metres.
    candidates : array_like (n, 2) or sequence of Points
        Candidate sites, e.g. from :func:`candidate_sites`.
    target_percent : float
        Coverage to reach, in percent of the public space (cameras already in ``existing`` count).
    fov, range_m : float
        Field of view (degrees) and range (metres) of the new cameras.
    bearings : sequence of float
        Bearings tried at each site.
    existing : GeoDataFrame, optional
        Cameras already installed (as for :func:`coverage`); what they see needs no new camera.
    cell_m : float, optional
        Cell size; default about 4,000 cells over the public space, at least 0.5 m.
    max_exact : int
        Largest number of (cell class × candidate) incidences solved exactly with an integer
        programme (:func:`scipy.optimize.milp`); above it, or when the solver does not prove an
        optimum within ``time_limit`` seconds, the greedy answer is returned.
    time_limit : float
        Wall-clock seconds the exact attempt may take in all: merging cells, building the
        programme, the solver's presolve and its search. Where the platform can fork, the solver
        runs in a child process that is stopped at the deadline whatever it is doing (HiGHS looks
        at its own limit only between presolve passes, which at community scale last longer than
        the limit); elsewhere it runs here with the time left as its own limit.

    Returns
    -------
    dict
        ``sites``: GeoDataFrame of the chosen cameras (``bearing``, ``fov``, ``range_m``, point
        geometry); ``percent`` reached on the cells; ``reached`` (bool); ``cameras`` (count);
        ``method`` ``"ilp"`` or ``"greedy"``; ``bound``: what is guaranteed; ``exact``: how the
        exact attempt ended (``"optimal"``, ``"time limit"``, ``"no optimum"``, ``"too large"``,
        ``"no candidates"``); ``seconds``; ``cells``, ``candidates``.

    Notes
    -----
    Greedy picks the candidate adding the most uncovered weight until the target is met. For this
    partial set cover it uses at most H(Δ) ≤ 1 + ln Δ times the optimal number of cameras, Δ the
    most cells one candidate sees (Slavík 1997); equivalently, with a fixed number k of cameras it
    covers at least (1 − 1/e) of the best k-camera coverage (Nemhauser, Wolsey & Fisher 1978).
    """
    t0 = time.perf_counter()
    problem = _placement_problem(area, obstacles, candidates, fov=fov, range_m=range_m, bearings=bearings,
                                 existing=existing, cell_m=cell_m, target_percent=target_percent)
    out = _choose(problem, target_percent, max_exact=max_exact, time_limit=time_limit)
    out["seconds"] = time.perf_counter() - t0
    return out


@dataclass
class _Problem:
    """A placement's cells and candidates, built once and solved for one target or several."""
    A: sparse.csr_matrix
    samples: _Samples
    seen0: np.ndarray
    sites: list
    fov: float
    range_m: float


def _placement_problem(area, obstacles, candidates, *, fov, range_m, bearings, existing, cell_m, target_percent=None):
    """Public space, cells and candidate matrix of :func:`place_cameras` (which see for the parameters)."""
    obs = obstacles if isinstance(obstacles, Obstacles) else Obstacles(obstacles)
    blocked = shapely.union_all(obs.geoms) if len(obs) else shapely.Polygon()
    public = _polygonal(shapely.make_valid(shapely.difference(area, blocked)))
    if public.is_empty:
        raise InvalidInput("The area has no public space left once buildings are removed.",
                           fix="Pass the courtyard or grid polygon, not a building footprint.")
    if target_percent is not None and not 0 < target_percent <= 100:
        raise InvalidInput(f"target_percent was {target_percent!r} but must be in (0, 100].",
                           fix="Give a percentage of the public space, e.g. 95.")
    A, s, seen0, sites = candidate_matrix(public, obs, candidates, fov=fov, range_m=range_m, bearings=bearings,
                                          existing=existing, cell_m=cell_m)
    return _Problem(A, s, seen0, sites, float(fov), float(range_m))


def _choose(problem, target_percent, *, max_exact, time_limit, exact=True):
    """Greedy, then the exact programme within ``time_limit``; the :func:`place_cameras` answer without ``seconds``.

    ``exact=False`` skips the programme (``exact`` then says ``"skipped"``).
    """
    A, s, seen0, sites = problem.A, problem.samples, problem.seen0, problem.sites
    total = s.weight.sum()
    need = target_percent / 100.0 * total
    base = s.weight[seen0].sum()
    chosen, method, bound = _greedy(A, s.weight, ~seen0, need - base)
    if not exact:
        status = "skipped"
    elif not len(sites):
        status = "no candidates"
    elif A.nnz > max_exact:
        status = "too large"
    else:
        found, status = _ilp(A, s.weight, ~seen0, need - base, time_limit, upper=len(chosen))
        if found is not None:
            chosen, method, bound = found, "ilp", "optimal for the cells (integer programme solved to optimality)"
    seen = seen0.copy()
    if chosen:
        seen |= np.asarray(A[:, chosen].sum(axis=1)).ravel() > 0
    pct = 100.0 * s.weight[seen].sum() / total
    frame = gpd.GeoDataFrame({"bearing": [float(sites[j][2]) for j in chosen],
                              "fov": problem.fov, "range_m": problem.range_m},
                             geometry=[shapely.Point(sites[j][0], sites[j][1]) for j in chosen])
    return {"sites": frame, "percent": pct, "reached": bool(pct >= target_percent - 1e-9),
            "cameras": len(chosen), "method": method, "bound": bound, "exact": status,
            "cells": len(s.weight), "candidates": len(sites)}


def candidate_matrix(public, obstacles, candidates, *, fov, range_m, bearings=DEFAULT_BEARINGS, existing=None,
                     cell_m=None):
    """Discretise the public space and list which cells each candidate (site × bearing) sees.

    Returns
    -------
    tuple
        ``(A, samples, seen0, sites)``: sparse cells × candidates 0/1 matrix (cells already seen by
        ``existing`` are left out of every column), the samples (``xy``, ``weight`` = public m² of
        the cell), the boolean mask of cells seen by ``existing``, and ``(x, y, bearing)`` per column.
        Candidates that would add nothing are dropped; columns are in site order, bearings in the
        order given within a site.

    Notes
    -----
    The views of all candidates are computed in one batched call (:func:`view_polygons`); each is
    as :func:`view_polygon` would draw it alone. An STRtree over the cells' points gives the cells
    inside each view's box, and only those are tested (``contains_xy`` on the prepared view, the
    test a cell has always been counted by), so the matrix is that of testing every cell.
    """
    obs = obstacles if isinstance(obstacles, Obstacles) else Obstacles(obstacles)
    if cell_m is None:
        cell_m = max(0.5, math.sqrt(public.area / 4000.0))
    s = _samples(public, cell_m)
    tree = shapely.STRtree(shapely.points(s.xy))
    seen0 = np.zeros(len(s.weight), dtype=bool)
    if existing is not None and len(existing):
        seen0[_cells_in(view_polygons(existing, obs).values, s.xy, tree)[1]] = True
    cand = _as_xy(candidates)
    bearings = tuple(bearings)
    # one row per (site, bearing), site-major: the order in which columns are numbered
    site_of = np.repeat(np.arange(len(cand)), len(bearings))
    bearing_of = np.tile(np.arange(len(bearings)), len(cand))
    views = np.empty(0, dtype=object)
    if len(site_of):
        trial = gpd.GeoDataFrame({"bearing": np.asarray(bearings, dtype=float)[bearing_of],
                                  "fov": float(fov), "range_m": float(range_m)},
                                 geometry=shapely.points(cand[site_of]))
        views = view_polygons(trial, obs).values
    view, cell = _cells_in(views, s.xy, tree)
    keep = ~seen0[cell]
    view, cell = view[keep], cell[keep]
    # a candidate adding nothing gets no column; the others are numbered in row order
    used = np.unique(view)
    col = np.searchsorted(used, view)
    sites = [(cand[site_of[k]][0], cand[site_of[k]][1], bearings[bearing_of[k]]) for k in used.tolist()]
    A = sparse.csr_matrix((np.ones(len(cell)), (cell, col)), shape=(len(s.weight), len(sites)), dtype=np.float64)
    return A, s, seen0, sites


def _cells_in(views, xy, tree):
    """(view, cell) pairs, sorted by view then cell, of the cell points strictly inside each view.

    ``tree`` is the STRtree of the points ``xy``: only the points in a view's box are tested.
    """
    views = np.asarray(views, dtype=object)
    if not len(views) or not len(xy):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    view, cell = tree.query(views)
    shapely.prepare(views)
    try:
        inside = shapely.contains_xy(views[view], xy[cell, 0], xy[cell, 1])
    finally:
        shapely.destroy_prepared(views)
    view, cell = view[inside], cell[inside]
    order = np.lexsort((cell, view))
    return view[order].astype(np.int64), cell[order].astype(np.int64)


def _as_xy(candidates):
    arr = np.asarray(getattr(candidates, "values", candidates))
    if arr.dtype == object:
        return shapely.get_coordinates(arr)
    return np.asarray(arr, dtype=float).reshape(-1, 2)


def _greedy(A, w, open_, need):
    """Greedy partial cover; returns (chosen columns, "greedy", bound text).

    Each step takes the column adding the most uncovered weight, the lowest of equals. A column's
    gain only shrinks as cells get covered, so a gain counted earlier bounds it from above (lazy
    greedy, Minoux 1978): only a column reaching the top of the heap is counted again. Its cells
    are added one by one in index order, as the sparse product that counts all gains at the start
    adds them, so every step takes the very column a full recount would.
    """
    A = A.tocsc()
    uncovered = open_.copy()
    open_w = w * uncovered
    got, chosen = 0.0, []
    delta = int(np.diff(A.indptr).max()) if A.shape[1] else 0
    heap = [(-g, j) for j, g in enumerate((A.T @ open_w).tolist())]
    heapq.heapify(heap)
    while got < need - 1e-9 and heap:
        _, j = heapq.heappop(heap)
        cells = A.indices[A.indptr[j]:A.indptr[j + 1]]
        gain = float(np.cumsum(open_w[cells])[-1]) if cells.size else 0.0  # cumsum: in order, no pairing
        if heap and (-gain, j) > heap[0]:
            heapq.heappush(heap, (-gain, j))  # another may now add more: look again
            continue
        if gain <= 1e-12:
            break
        chosen.append(j)
        got += w[cells][uncovered[cells]].sum()
        uncovered[cells] = False
        open_w[cells] = 0.0
    h = sum(1.0 / k for k in range(1, delta + 1)) if delta else 1.0
    return chosen, "greedy", (f"at most H(Δ) = {h:.2f} × the optimal number of cameras (Δ = {delta} cells); "
                              f"a fixed number of greedy cameras covers ≥ (1 − 1/e) of the best coverage")


def _ilp(A, w, open_, need, time_limit, upper):
    """Fewest columns whose cells weigh at least ``need``, within ``time_limit`` wall seconds in all.

    Returns ``(columns, "optimal")``, or ``(None, why)`` when no optimum was proven in time.
    """
    from scipy.optimize import Bounds, LinearConstraint
    deadline = time.monotonic() + float(time_limit)
    if need <= 1e-9:
        return [], "optimal"
    A = A.tocsr()[open_]
    w = w[open_]
    # cells seen by the same candidates are interchangeable: merge them and add their weights
    keys = {}
    cls_of = np.empty(A.shape[0], dtype=np.int64)
    for i in range(A.shape[0]):
        k = A.indices[A.indptr[i]:A.indptr[i + 1]].tobytes()
        cls_of[i] = keys.setdefault(k, len(keys))
    wc = np.bincount(cls_of, weights=w, minlength=len(keys))
    first = np.unique(cls_of, return_index=True)[1]
    C = A[first]
    nonempty = np.diff(C.indptr) > 0
    C, wc = C[nonempty], wc[nonempty]
    m, n = C.shape
    # variables: x (n candidates) then y (m cell classes); minimise sum x
    c = np.r_[np.ones(n), np.zeros(m)]
    link = sparse.hstack([-C, sparse.identity(m)]).tocsr()  # y_i - sum_j C_ij x_j <= 0
    target = sparse.csr_matrix(np.r_[np.zeros(n), wc][None, :])
    cons = [LinearConstraint(link, -np.inf, 0), LinearConstraint(target, need - 1e-9, np.inf)]
    if upper:
        cons.append(LinearConstraint(sparse.csr_matrix(np.r_[np.ones(n), np.zeros(m)][None, :]), 0, upper))
    res = _milp_until(deadline, c=c, constraints=cons, integrality=np.r_[np.ones(n), np.zeros(m)],
                      bounds=Bounds(0, 1))
    if res is None:
        return None, "time limit"
    status, x = res
    if status != 0 or x is None:
        return None, "time limit" if status == 1 else "no optimum"  # 1: HiGHS's own limit
    return [int(j) for j in np.flatnonzero(x[:n] > 0.5)], "optimal"


def _milp_until(deadline, **problem):
    """``(status, x)`` of :func:`scipy.optimize.milp` on ``problem``, or None when ``deadline`` passed first.

    ``deadline`` is on :func:`time.monotonic`. HiGHS is given the time left as its own limit, but
    it looks at that limit only now and then, never inside a presolve pass or the root LP (at
    community scale a limit of 20 s ended after 31 s, one of 150 s after 186 s): with fork, it
    runs in a child process that is killed at the deadline; without, here, trusting its limit.
    A child that dies without an answer gives status -1.
    """
    import multiprocessing as mp

    left = deadline - time.monotonic()
    if left <= 0:
        return None
    problem["options"] = {"time_limit": left, "disp": False}
    if "fork" not in mp.get_all_start_methods():
        from scipy.optimize import milp
        res = milp(**problem)
        return res.status, res.x
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_milp_child, args=(send, problem), name="gridmap-placement-milp")
    child.start()
    send.close()
    try:
        if not recv.poll(max(0.0, deadline - time.monotonic())):
            return None
        return recv.recv()
    except (EOFError, OSError):
        return -1, None  # the child died without an answer (its traceback went to stderr)
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        recv.close()


def _milp_child(conn, problem):
    from scipy.optimize import milp
    res = milp(**problem)
    conn.send((res.status, res.x))
    conn.close()


# --- report from the store ---------------------------------------------------------------------

# Buildings are found by their representative point; a footprint reaching into the area from
# farther than this (about 1 km) cannot exist in a residential courtyard or community.
_MARGIN_DEG = 0.01


@dataclass
class Place:
    """A courtyard or community loaded from the store for coverage work, in a local metric CRS."""
    kind: str  # "courtyard" or "community"
    name: str  # label shown to people
    crs: object  # the local metric CRS of everything below
    area: object  # shapely geometry, metres
    footprints: gpd.GeoSeries  # building footprints near the area, metres
    cameras: gpd.GeoDataFrame  # id, name, bearing, fov, range_m; points in metres
    records: list  # the Camera rows, in ``cameras`` order
    stored_views: list = None  # their stored WGS84 view polygons (None where stale), same order


def load_place(session, name):
    """Load a courtyard (by name) or a community (by code or name) with its buildings and cameras.

    Raises
    ------
    NotFound
        When no courtyard or community has that name or code.
    """
    from sqlalchemy import or_, select

    from .errors import NotFound
    from .geo.crs import local_metric_crs
    from .store import models as m

    yard = session.execute(select(m.Courtyard).where(m.Courtyard.name == name).order_by(m.Courtyard.id)).scalars().first()
    if yard is not None:
        if yard.geom is None or yard.geom.is_empty:
            raise InvalidInput(f'Courtyard "{yard.name}" has no outline, so its coverage cannot be measured.',
                               fix="Import the courtyard's boundary, or ask for its community's coverage "
                                   "(its 12-digit code).")
        kind, label, area_ll = "courtyard", yard.name, yard.geom
        cam_filter = m.Camera.courtyard_id == yard.id
    else:
        comm = session.execute(select(m.Community).where(or_(m.Community.code == name, m.Community.name == name))
                               .order_by(m.Community.code)).scalars().first()
        if comm is None:
            raise NotFound(f'No courtyard or community is called "{name}".',
                           fix="Give a courtyard name, a 12-digit community code or a community name "
                               "(`gridmap export communities x.csv` lists them).")
        kind, label, area_ll = "community", f"{comm.name} ({comm.code})", comm.geom
        cam_filter = m.Camera.community_code == comm.code
    cams = session.execute(select(m.Camera).where(cam_filter).order_by(m.Camera.id)).scalars().all()
    x0, y0, x1, y1 = area_ll.bounds
    rows = session.execute(select(m.Building.geom).where(
        m.Building.lon.between(x0 - _MARGIN_DEG, x1 + _MARGIN_DEG),
        m.Building.lat.between(y0 - _MARGIN_DEG, y1 + _MARGIN_DEG))).scalars().all()
    lon, lat = area_ll.centroid.coords[0]
    crs = local_metric_crs(lon, lat)
    area = gpd.GeoSeries([area_ll], crs=4326).to_crs(crs).iloc[0]
    footprints = gpd.GeoSeries(list(rows), crs=4326).to_crs(crs) if rows else gpd.GeoSeries([], crs=crs)
    footprints = footprints[footprints.intersects(area.buffer(200))] if len(footprints) else footprints
    cameras = gpd.GeoDataFrame({"id": [c.id for c in cams], "name": [c.name for c in cams],
                                "bearing": [c.bearing for c in cams], "fov": [c.fov for c in cams],
                                "range_m": [c.range_m for c in cams]},
                               geometry=[c.geom for c in cams], crs=4326).to_crs(crs)
    stored = stored_views(session, [c.id for c in cams])
    return Place(kind, label, crs, area, footprints, cameras, list(cams), [stored.get(c.id) for c in cams])


def report_for(session, name, *, min_blind_m2=None, geometries=False):
    """Coverage report of a courtyard (by name) or a community (by code or name) from the store.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
    name : str
        Courtyard name, community code or community name.
    min_blind_m2 : float, optional
        Smallest blind spot listed; default the ``BLIND_SPOT_MIN_M2`` setting.
    geometries : bool, default False
        Also return the shapes, in WGS84 as GeoJSON geometry dicts, for maps and JSON answers.

    Returns
    -------
    dict
        ``kind``, ``name``, ``cameras``, ``public_m2``, ``percent``, ``blind_count``, ``blind_m2``,
        ``min_blind_m2``, ``largest_blind`` ``(lon, lat, m2)`` or None, ``overlap`` ``[(count, m2)]``.
        With ``geometries``: ``views``, one dict per camera in camera-id order (``id``, ``name``,
        ``bearing``, ``fov``, ``range_m``, ``lon``, ``lat`` of the camera, ``view_m2`` public space
        it sees, ``only_m2`` seen by it alone, ``geometry`` its occlusion-aware view or None when
        it sees nothing); ``blind_spots``, largest first (``geometry``, ``m2``, ``lon``, ``lat`` of
        its centroid, as in ``largest_blind``); ``area``, the courtyard's or community's outline.

    Raises
    ------
    NotFound
        When no courtyard or community has that name or code.
    """
    place = load_place(session, name)
    crs = place.crs
    views = _place_views(place)
    r = coverage(place.cameras, place.area, place.footprints, min_blind_m2=min_blind_m2, views=views)
    largest = None
    if r["blind_spots"]:
        spot = r["blind_spots"][0]
        c = gpd.GeoSeries([spot.centroid], crs=crs).to_crs(4326).iloc[0]
        largest = (c.x, c.y, spot.area)
    out = {"kind": place.kind, "name": place.name, "cameras": len(place.cameras), "public_m2": r["public_m2"],
           "percent": r["percent"], "blind_count": len(r["blind_spots"]), "blind_m2": r["blind_m2"],
           "min_blind_m2": _default_min_blind() if min_blind_m2 is None else float(min_blind_m2),
           "largest_blind": largest, "overlap": [(c, a) for c, a, _ in r["overlap"]]}
    if geometries:
        out.update(_report_geometries(place, views, r))
    return out


def _place_views(place):
    """The metric view polygons of a place's cameras, in ``place.cameras`` order.

    The one place a report gets its views from, so that reading stored views instead of
    computing them changes nothing else.
    """
    stored = place.stored_views or []
    if len(stored) == len(place.cameras) and all(g is not None for g in stored):
        # what dispatch answers with: the views the last import stored
        return gpd.GeoSeries(stored, crs=4326, index=place.cameras.index).to_crs(place.crs)
    return view_polygons(place.cameras, place.footprints)


def _report_geometries(place, views, r):
    """Views, blind spots and the outline in WGS84 GeoJSON, for :func:`report_for`."""
    from shapely.geometry import mapping

    def wgs84(geoms):
        return gpd.GeoSeries(list(geoms), crs=place.crs).to_crs(4326).values

    spots = r["blind_spots"]
    ll_views = wgs84(views.values) if len(views) else []
    ll_spots = wgs84(spots) if spots else []
    centres = wgs84([p.centroid for p in spots]) if spots else []
    cams = []
    for i, rec in enumerate(place.records):
        g = ll_views[i]
        cams.append({"id": rec.id, "name": rec.name, "bearing": float(rec.bearing), "fov": float(rec.fov),
                     "range_m": float(rec.range_m), "lon": float(rec.geom.x), "lat": float(rec.geom.y),
                     "view_m2": r["per_camera"][i]["view_m2"], "only_m2": r["per_camera"][i]["only_m2"],
                     "geometry": None if g is None or g.is_empty else mapping(g)})
    blind = [{"geometry": mapping(g), "m2": float(p.area), "lon": float(c.x), "lat": float(c.y)}
             for g, p, c in zip(ll_spots, spots, centres)]
    return {"views": cams, "blind_spots": blind, "area": mapping(wgs84([place.area])[0])}


def camera_views_of(session, camera_ids):
    """Cameras by id with their stored views, shaped like ``report_for(..., geometries=True)["views"]``.

    For a map that must show particular cameras whatever place they belong to (the dispatcher's
    spot seen by a neighbour community's camera). A camera without a stored view comes without
    ``geometry``.
    """
    from shapely.geometry import mapping
    from sqlalchemy import select

    from .store import models as m
    ids = sorted({int(i) for i in camera_ids})
    if not ids:
        return []
    rows = session.execute(select(m.Camera).where(m.Camera.id.in_(ids)).order_by(m.Camera.id)).scalars().all()
    views = stored_views(session, ids)
    return [{"id": c.id, "name": c.name, "bearing": float(c.bearing), "fov": float(c.fov), "range_m": float(c.range_m),
             "lon": float(c.geom.x), "lat": float(c.geom.y),
             "geometry": mapping(views[c.id]) if views.get(c.id) is not None and not views[c.id].is_empty else None}
            for c in rows]


def place_choices(session):
    """Courtyards and communities a coverage report can be asked for, with their camera counts.

    Returns
    -------
    dict
        ``courtyards``: ``name``, ``community`` (its community's name), ``cameras``, by community
        code then name, each name once (:func:`load_place` takes the first courtyard of a name);
        ``communities``: ``code``, ``name``, ``cameras``, by code.
    """
    from sqlalchemy import func, select

    from .store import models as m

    by_yard = dict(session.execute(select(m.Camera.courtyard_id, func.count()).group_by(m.Camera.courtyard_id)).all())
    by_comm = dict(session.execute(select(m.Camera.community_code, func.count())
                                   .group_by(m.Camera.community_code)).all())
    comms = session.execute(select(m.Community.code, m.Community.name).order_by(m.Community.code)).all()
    names = dict(comms)
    # a courtyard the importer made from a building's or camera's `courtyard` field has no outline
    # until one is imported: there is no area to report on, so it is not offered
    yards = session.execute(select(m.Courtyard.id, m.Courtyard.name, m.Courtyard.community_code)
                            .where(m.Courtyard.geom.is_not(None)).order_by(m.Courtyard.id)).all()
    first = {}
    for yid, yname, code in yards:
        first.setdefault(yname, (yid, code or ""))
    courtyards = [{"name": n, "community": names.get(code, ""), "cameras": by_yard.get(yid, 0)}
                  for n, (yid, code) in sorted(first.items(), key=lambda kv: (kv[1][1], kv[0]))]
    return {"courtyards": courtyards,
            "communities": [{"code": c, "name": n, "cameras": by_comm.get(c, 0)} for c, n in comms]}


# --- placement from the store ------------------------------------------------------------------

# Where a suggested camera would hang, as told to the planner and written to the sites file.
SITE_KINDS = {"corner": "building corner", "wall": "building wall", "pole": "pole on a road",
              "perimeter": "pole on the boundary"}
SITE_FORMATS = (".geojson", ".csv")
# Largest shortfall (percentage points) of the exact coverage below the solver's that is put down
# to the cells and asked for again on top of the target.
_TOP_UP_MAX = 3.0
# place_cameras's default max_exact: the largest candidate matrix handed to the exact solver.
_MAX_EXACT = 400_000


def _check_placement(target_percent, fov, range_m, bearings):
    """Validate placement options; returns the bearings to try (degrees)."""
    def number(v):
        try:
            return float(v)
        except (TypeError, ValueError):
            return math.nan

    t, f, r = number(target_percent), number(fov), number(range_m)
    if not (0 < t <= 100):
        raise InvalidInput(f"target was {target_percent!r} but must be a percentage above 0 and at most 100.",
                           fix="Give the coverage to reach in percent of the public space, e.g. --target 95.")
    # the importer's limits: a suggested site must import as a camera (`gridmap import cameras`)
    if not (1 <= f <= 360):
        raise InvalidInput(f"fov was {fov!r} but must be from 1 to 360 degrees.",
                           fix="Give the new cameras' horizontal field of view, e.g. --fov 90 (360 for a dome).")
    if not (1 <= r <= 1000):
        raise InvalidInput(f"range was {range_m!r} but must be from 1 to 1000 metres.",
                           fix="Give how far the new cameras see, e.g. --range 40.")
    if bearings is None:
        bearings = 1 if f >= 360 else len(DEFAULT_BEARINGS)
    if isinstance(bearings, (int, np.integer)) and not isinstance(bearings, bool):
        if not 1 <= bearings <= 72:
            raise InvalidInput(f"bearings was {bearings!r} but must be a whole number from 1 to 72.",
                               fix="Give how many evenly spaced directions to try at each site, e.g. --bearings 8.")
        return t, f, r, tuple(360.0 * i / bearings for i in range(bearings))
    vals = [number(b) for b in bearings]
    if not vals or not all(math.isfinite(b) for b in vals):
        raise InvalidInput(f"bearings was {bearings!r} but must be a count or a list of directions in degrees.",
                           fix="Give e.g. 8, or (0, 90, 180, 270).")
    return t, f, r, tuple(b % 360.0 for b in vals)


def placement_for(session, name, *, target_percent, fov, range_m, bearings=None, roads=True, perimeter=True,
                  pole_spacing_m=20.0, cell_m=None, time_limit=20.0):
    """Suggest the fewest new cameras that bring a courtyard or community to ``target_percent`` coverage.

    Candidate sites are the corners and wall midpoints of the buildings (0.3 m off the wall, see
    :func:`candidate_sites`), with ``roads`` poles every ``pole_spacing_m`` along the imported roads
    inside the area, and with ``perimeter`` poles as far apart along the area's own boundary (a
    courtyard's fence or wall, a community's edge): away from the buildings is where a courtyard's
    blind spots are. Every site is tried at every bearing. The cameras already there count (what
    they see needs no new camera). :func:`place_cameras` chooses; the coverage before and after is
    then measured with :func:`coverage` on the exact view polygons.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
    name : str
        Courtyard name, community code or community name (as :func:`load_place`).
    target_percent : float
        Coverage of the public space to reach, in (0, 100].
    fov, range_m : float
        Field of view (degrees, in (0, 360]) and range (metres, > 0) of the new cameras.
    bearings : int or sequence of float, optional
        How many evenly spaced directions to try at each site (default 8, 1 for a dome), or the
        directions themselves in degrees clockwise from north.
    roads : bool, default True
        Also try poles along the imported roads.
    perimeter : bool, default True
        Also try poles along the boundary of the area.
    pole_spacing_m : float, default 20
        Distance between poles along a road or the boundary.
    cell_m : float, optional
        Cell size of the discretised public space (:func:`place_cameras`); default that of
        4,000 cells over it, but no more than an eighth of ``range_m``. A courtyard takes a few
        seconds; a community (tens of thousands of cells) about half a minute, mostly ``time_limit``.
    time_limit : float
        Wall-clock seconds given to each exact attempt, presolve included, before the greedy answer
        is taken (see :func:`place_cameras`); after one runs out of time the top-up asks go
        straight to greedy.

    Returns
    -------
    dict
        ``kind``, ``name``, ``cameras`` (existing), ``public_m2``, ``percent_before``;
        ``sites``: list of dicts ``lon``, ``lat`` (WGS84), ``bearing``, ``fov``, ``range_m``,
        ``mount`` (``corner``, ``wall``, ``pole`` on a road or ``perimeter``), ``near`` (the
        building's address or the road's name, "" when unknown); ``frame``: the same as a WGS84
        GeoDataFrame that :func:`write_sites` writes for ``gridmap import cameras``; ``percent``
        (after, on the exact polygons), ``reached`` (``percent`` ≥ ``target``), ``percent_cells``
        (what the solver counted on its cells), ``target``, ``method`` (``ilp`` or ``greedy``),
        ``bound`` (its guarantee, for the cells), ``exact`` (how the exact attempt of the answer
        ended, as in :func:`place_cameras`; ``skipped`` when an earlier ask had run out of time),
        ``cell_target`` (the target asked of the solver on its cells: above ``target`` when the
        first answer fell short on the exact polygons), ``cell_m``, ``cells``, ``candidate_sites``,
        ``candidates`` (sites × bearings that add something), ``seconds``.

    Raises
    ------
    InvalidInput
        For an option out of range.
    NotFound
        When no courtyard or community has that name or code.
    """
    from sqlalchemy import or_, select

    from .store import models as m

    t0 = time.perf_counter()
    target, fov, range_m, bearing_list = _check_placement(target_percent, fov, range_m, bearings)
    place = load_place(session, name)
    crs = place.crs
    obs = Obstacles(place.footprints)
    area_ll = gpd.GeoSeries([place.area], crs=crs).to_crs(4326).iloc[0]
    x0, y0, x1, y1 = area_ll.bounds
    # addresses, to say which building a site hangs on
    brows = session.execute(select(m.Building.address, m.Building.geom).where(
        m.Building.lon.between(x0 - _MARGIN_DEG, x1 + _MARGIN_DEG),
        m.Building.lat.between(y0 - _MARGIN_DEG, y1 + _MARGIN_DEG))).all()
    road_lines, road_names = [], []
    if roads:
        box = shapely.box(x0, y0, x1, y1)
        for rname, rgeom in session.execute(select(m.Road.name, m.Road.geom)).all():
            if rgeom is not None and rgeom.intersects(box):
                road_lines.append(rgeom)
                road_names.append(rname or "")
    if road_lines:
        metric_roads = gpd.GeoSeries(road_lines, crs=4326).to_crs(crs).values
        # poles stand along the part of each road inside the area
        clipped = shapely.intersection(metric_roads, place.area)
        keep = ~shapely.is_empty(clipped) & (shapely.length(clipped) > 0)
        metric_roads, clipped = metric_roads[keep], clipped[keep]
        road_names = [n for n, k in zip(road_names, keep) if k]
    else:
        metric_roads = clipped = np.empty(0, dtype=object)
    walls = candidate_sites(obs, place.area)
    # boundary poles stand just inside it, as wall sites stand just off their wall
    lines = list(clipped) + ([shapely.boundary(shapely.buffer(place.area, -0.3))] if perimeter else [])
    sites = candidate_sites(obs, place.area, roads=lines or None, pole_spacing_m=pole_spacing_m)
    on_building = {tuple(p) for p in np.round(walls, 3).tolist()}

    views0 = _place_views(place)
    before = coverage(place.cameras, place.area, obs, views=views0)
    if cell_m is None:
        # place_cameras's default (4,000 cells), but at most an eighth of the range: a view must
        # span many cells, or the solver's count of seen cells says little about the view's area
        cell_m = min(max(0.5, math.sqrt(before["public_m2"] / 4000.0)), max(0.5, range_m / 8.0))
    # The solver counts cells, a cell seen when its inner point is: the exact polygons can fall a
    # little short of the target it met. Then it is asked once or twice more for the shortfall on
    # top, so that the coverage report after import says what was asked for.
    # The cells and candidates do not depend on the target: they are made once for every ask. An
    # exact programme that ran out of time is not tried again for a higher target on the same cells.
    problem = _placement_problem(place.area, obs, sites, fov=fov, range_m=range_m, bearings=bearing_list,
                                 existing=place.cameras, cell_m=cell_m)
    ask, best, exact = target, None, True
    for _ in range(3):
        r = _choose(problem, ask, max_exact=_MAX_EXACT, time_limit=time_limit, exact=exact)
        exact = exact and r["exact"] != "time limit"
        new = r["sites"].set_crs(crs, allow_override=True)
        after = _coverage_with(place, obs, views0, new, before)
        if best is None or after["percent"] > best[2]["percent"]:
            best = (ask, r, after, new)
        short = target - after["percent"]
        # a larger shortfall is no rounding: the cells are too coarse, and the answer says so
        if short <= 1e-9 or short > _TOP_UP_MAX or not r["reached"] or ask >= 100:
            break
        ask = min(100.0, ask + short + 0.05)
    cell_target, r, after, new = best

    xy = shapely.get_coordinates(new.geometry.values)
    mounts, near = _describe_sites(xy, on_building, obs, brows, crs, metric_roads, road_names)
    ll = new.to_crs(4326)
    # the importer files a camera under its courtyard by (community code, courtyard name)
    if place.kind == "courtyard":
        yard = session.execute(select(m.Courtyard).where(m.Courtyard.name == name)
                               .order_by(m.Courtyard.id)).scalars().first()
        label, yard_name, code = place.name, place.name, (yard.community_code or "") if yard is not None else ""
    else:
        comm = session.execute(select(m.Community).where(or_(m.Community.code == name, m.Community.name == name))
                               .order_by(m.Community.code)).scalars().first()
        label, yard_name, code = comm.name, "", comm.code
    out_sites = []
    for i, (p, b) in enumerate(zip(ll.geometry, new["bearing"])):
        out_sites.append({"lon": float(p.x), "lat": float(p.y), "bearing": float(b) % 360.0, "fov": fov,
                          "range_m": range_m, "mount": mounts[i], "near": near[i]})
    frame = gpd.GeoDataFrame({
        "name": [f"{label} 新增{i + 1:02d}" for i in range(len(out_sites))],
        "bearing": [s["bearing"] for s in out_sites], "fov": fov, "range_m": range_m,
        "courtyard": yard_name, "community_code": code,
        "mount": mounts, "near": near,
    }, geometry=list(ll.geometry), crs=4326)
    return {"kind": place.kind, "name": place.name, "cameras": len(place.cameras), "public_m2": before["public_m2"],
            "percent_before": before["percent"], "sites": out_sites, "frame": frame,
            "percent": after["percent"], "percent_cells": float(r["percent"]), "target": target,
            "reached": bool(after["percent"] >= target - 1e-9), "method": r["method"], "bound": r["bound"],
            "exact": r["exact"], "cell_target": cell_target, "cell_m": float(cell_m),
            "cells": r["cells"], "candidate_sites": len(sites), "candidates": r["candidates"],
            "bearings": bearing_list, "seconds": time.perf_counter() - t0}


def _coverage_with(place, obs, views0, new, before):
    """Coverage of the place by its cameras and the ``new`` ones (metres), on the exact polygons."""
    if not len(new):
        return before
    cols = ["bearing", "fov", "range_m", "geometry"]
    everyone = gpd.GeoDataFrame(pd.concat([place.cameras[cols], new[cols]], ignore_index=True),
                                geometry="geometry", crs=place.crs)
    views = gpd.GeoSeries(np.concatenate([views0.values, view_polygons(new, obs).values]), crs=place.crs)
    return coverage(everyone, place.area, obs, views=views)


def _describe_sites(xy, on_building, obs, brows, crs, metric_roads, road_names):
    """Mount kind and what it is near (building address, road name) for each chosen site."""
    mounts, near = [], []
    if not len(xy):
        return mounts, near
    fp = addr = None
    if brows:
        geoms = gpd.GeoSeries([g for _, g in brows], crs=4326).to_crs(crs).values
        poly = shapely.get_type_id(geoms) >= 3
        fp, addr = geoms[poly], [a for (a, _), k in zip(brows, poly) if k]
    tree = shapely.STRtree(fp) if fp is not None and len(fp) else None
    road_tree = shapely.STRtree(metric_roads) if len(metric_roads) else None
    for x, y in xy.tolist():
        p = shapely.Point(x, y)
        if (round(x, 3), round(y, 3)) in on_building:
            # a corner site sits offset diagonally from a footprint vertex; a wall site from an edge's middle
            d_vertex = np.min(np.hypot(obs.b[:, 0] - x, obs.b[:, 1] - y)) if len(obs.b) else math.inf
            mounts.append("corner" if d_vertex < 0.31 else "wall")
            near.append(addr[int(tree.query_nearest(p)[0])] if tree is not None else "")
        elif road_tree is not None and road_tree.query(p, predicate="dwithin", distance=1e-3).size:
            mounts.append("pole")
            near.append(road_names[int(road_tree.query_nearest(p)[0])])
        else:
            mounts.append("perimeter")
            near.append("")
    return mounts, near


def check_sites_path(path):
    """Refuse an output name :func:`write_sites` cannot write, before any work is done."""
    from pathlib import Path

    suffix = Path(path).suffix.lower()
    if suffix not in SITE_FORMATS:
        raise InvalidInput(f"The output file {str(path)!r} ends in {suffix or 'nothing'!r}.",
                           fix="Name it .geojson or .csv; `gridmap import cameras FILE` reads both.")
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise InvalidInput(f"The output file's folder {str(parent)!r} does not exist.",
                           fix="Create the folder first or write the file elsewhere.")
    return Path(path)


def write_sites(frame, path):
    """Write suggested cameras (``placement_for(...)["frame"]``) where ``gridmap import cameras`` reads them.

    ``.geojson``: points with the camera fields as properties; ``.csv``: ``lon``, ``lat`` columns.
    Both carry ``name``, ``bearing``, ``fov``, ``range_m``, ``courtyard``, ``community_code`` (the
    importer's fields) and ``mount``, ``near`` (ignored by the importer, kept for the planner).
    """
    path = check_sites_path(path)
    if path.suffix.lower() == ".csv":
        table = pd.DataFrame(frame.drop(columns=frame.geometry.name))
        table.insert(1, "lon", frame.geometry.x.round(8))
        table.insert(2, "lat", frame.geometry.y.round(8))
        table.to_csv(path, index=False, encoding="utf-8")
    else:
        if path.exists():
            path.unlink()  # the GeoJSON driver will not overwrite
        frame.to_file(path, driver="GeoJSON")
    return path
