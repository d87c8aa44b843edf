"""What a camera sees: its sector minus what building footprints hide, and the one ``sees()`` test.

Everything here works in a metric projected CRS (metres; project WGS84 data with
:func:`gridmap.geo.crs.metric_for` first) with bearings in degrees clockwise from north.

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

import math
import multiprocessing

import geopandas as gpd
import numpy as np
import shapely

from .errors import InvalidInput, N_

__all__ = ["Obstacles", "view_polygon", "view_polygons", "sees", "polygonal", "ARC_STEP_DEG", "WALL_SNAP_M",
           "APEX_OFFSET_M", "VIEW_REACH_M"]

# A polygon inscribed in an arc of step t has area sin(t)/t of the arc's: 2 degrees loses 0.02 %.
ARC_STEP_DEG = 2.0
WALL_SNAP_M = 0.5
APEX_OFFSET_M = 0.05
#: How far a view may reach past its camera's surveyed position plus range: the wall snap moves
#: the apex up to WALL_SNAP_M along the wall and APEX_OFFSET_M out from it; 0.05 m to spare.
VIEW_REACH_M = WALL_SNAP_M + APEX_OFFSET_M + 0.05
# Shadows reach this far past the range so that their outer edge never cuts into the view.
_SHADOW_REACH = 1.5
# Far side of a shadow is an arc of 4 chords (each <= 45 degrees of the < 180 an edge subtends):
# a chord at _SHADOW_REACH * range stays beyond cos(22.5) * 1.5 = 1.39 ranges.
_SHADOW_CHORDS = 4



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
        raise InvalidInput(N_("range_m was %(range_m)s but must be a positive number of metres."),
                           fix=N_("Give each camera its useful range in metres, e.g. 30."),
                           params={"range_m": repr(range_m)})
    if not (fov > 0 and math.isfinite(fov)):
        raise InvalidInput(N_("fov was %(fov)s but must be a positive number of degrees."),
                           fix=N_("Give the horizontal field of view in degrees, e.g. 90 (360 for a dome)."),
                           params={"fov": repr(fov)})
    if not (0 <= min_range_m < range_m):
        raise InvalidInput(N_("min_range_m was %(min_range_m)s but must be at least 0 and below range_m=%(range_m)s."),
                           fix=N_("Leave min_range_m at 0 unless the camera cannot see its own foot."),
                           params={"min_range_m": repr(min_range_m), "range_m": range_m})


def _check_all(fov, r, r0):
    """Raise for the first camera :func:`_check` refuses (NaN fails every comparison, so it is refused)."""
    ok = (r > 0) & np.isfinite(r) & (fov > 0) & np.isfinite(fov) & (r0 >= 0) & (r0 < r)
    if not ok.all():
        k = int(np.flatnonzero(~ok)[0])
        _check(float(fov[k]), float(r[k]), float(r0[k]))


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
    """Move every camera on, or just inside, a wall out to :func:`_wall_apex`; moves ``x``, ``y`` and
    ``sector`` in place. A camera deeper inside a footprint than :data:`WALL_SNAP_M` is indoors.

    Returns the (camera, footprint) pairs of cameras that are not indoors, and the indoor mask.
    """
    d = shapely.distance(obs.boundaries[near], shapely.points(x[cam], y[cam]))
    inside = shapely.contains_xy(obs.geoms[near], x[cam], y[cam])
    indoor = np.zeros(len(x), dtype=bool)
    indoor[cam[inside & (d > WALL_SNAP_M)]] = True
    host = (d <= WALL_SNAP_M) & (inside | (d < APEX_OFFSET_M)) & ~indoor[cam]
    moved = []
    for c in np.unique(cam[host]).tolist():
        # the nearest host wall; the first of equals in footprint order
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


def polygonal(g):
    """The polygonal part of ``g``: a Polygon or MultiPolygon, empty when nothing polygonal is left."""
    if g.is_empty:
        return shapely.Polygon()
    if g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    parts = [p for p in shapely.get_parts(g) if p.geom_type == "Polygon" and not p.is_empty]
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def _polygonals(geoms):
    """:func:`polygonal` of every element (the common Polygon answers pass through untouched)."""
    out = np.asarray(geoms, dtype=object).copy()
    tid = shapely.get_type_id(out)
    for i in np.flatnonzero(((tid != 3) & (tid != 6)) | shapely.is_empty(out)).tolist():
        out[i] = polygonal(out[i])
    return out


# --- many views --------------------------------------------------------------------------------


def _camera_arrays(cameras):
    for col in ("bearing", "fov", "range_m"):
        if col not in cameras.columns:
            raise InvalidInput(N_("cameras lack the column %(col)s."),
                               fix=N_("Give every camera bearing (degrees clockwise from north), fov (degrees) and range_m "
                                      "(metres)."),
                               params={"col": repr(col)})
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
        if "fork" in multiprocessing.get_all_start_methods():
            ctx, init = multiprocessing.get_context("fork"), obs
        else:
            ctx, init = multiprocessing.get_context(), shapely.to_wkb(obs.geoms)
        with ctx.Pool(min(processes, len(chunks)), initializer=_worker_init, initargs=(init,)) as pool:
            parts = [shapely.from_wkb(p) for p in pool.imap(_worker_views, chunks)]
    else:
        parts = [_views(obs, *chunk) for chunk in chunks]
    out = np.concatenate(parts) if parts else np.empty(0, dtype=object)
    return gpd.GeoSeries(out, index=cameras.index, crs=cameras.crs)



# --- does a camera see a point ---------------------------------------------------------------


def sees(view, camera_xy, bearing, fov, range_m, x, y):
    """Whether a camera sees the point (x, y), all in metres; the one test every caller uses.

    Parameters
    ----------
    view : shapely geometry or None
        The camera's view polygon (its sector minus what footprints hide, as :func:`view_polygons`
        computes and the store keeps), ideally prepared. None when the view is unknown: then the
        plain sector decides, as if nothing stood in the way.
    camera_xy : (float, float)
        The camera's surveyed position.
    bearing, fov, range_m : float
        Degrees clockwise from north, degrees, metres.
    x, y : float
        The point.

    Returns
    -------
    float or None
        The distance in metres from the surveyed position when the camera sees the point, else None.

    Notes
    -----
    With a view, the view decides: it is not inside the surveyed sector when the camera hangs on
    a wall (the apex moves up to :data:`VIEW_REACH_M`). A view that travelled through lon/lat
    keeps its apex only to a nanometre, so the camera's own spot (within 1 cm) counts as seen.
    """
    cx, cy = camera_xy
    dx, dy = x - cx, y - cy
    d = math.hypot(dx, dy)
    if view is not None:
        if view.is_empty or d > range_m + VIEW_REACH_M:
            return None
        if d > 0.01 and not shapely.intersects_xy(view, x, y):
            return None
        return d
    if d > range_m + 1e-9:
        return None
    if d > 0 and fov < 360:
        off = abs((math.degrees(math.atan2(dx, dy)) - bearing + 180.0) % 360.0 - 180.0)
        if off > fov / 2 + 1e-9:
            return None
    return d
