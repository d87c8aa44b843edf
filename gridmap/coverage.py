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

import math
import time
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from scipy import sparse

from .errors import InvalidInput

__all__ = [
    "view_polygon", "view_polygons", "coverage", "CameraViews", "place_cameras", "candidate_sites",
    "Obstacles", "report_for", "candidate_matrix", "ARC_STEP_DEG", "WALL_SNAP_M", "APEX_OFFSET_M",
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
        rings, ring_owner = [], []
        for i, g in enumerate(self.geoms):
            for ring in (g.exterior, *g.interiors):
                rings.append(ring)
                ring_owner.append(i)
        a_parts, b_parts, owner = [], [], []
        for ring, i in zip(rings, ring_owner):
            c = shapely.get_coordinates(ring)
            a_parts.append(c[:-1])
            b_parts.append(c[1:])
            owner.append(np.full(len(c) - 1, i))
        if a_parts:
            self.a = np.concatenate(a_parts)
            self.b = np.concatenate(b_parts)
            self.owner = np.concatenate(owner)
        else:
            self.a = self.b = np.empty((0, 2))
            self.owner = np.empty(0, dtype=np.int64)
        order = np.argsort(self.owner, kind="stable")
        self.a, self.b, self.owner = self.a[order], self.b[order], self.owner[order]
        counts = np.bincount(self.owner, minlength=len(self.geoms))
        self.edge_start = np.concatenate([[0], np.cumsum(counts)])

    def __len__(self):
        return len(self.geoms)

    def edges_of(self, idx):
        """Edges (a, b) of the obstacles at positions ``idx``."""
        if len(idx) == 0:
            return self.a[:0], self.b[:0]
        sel = np.concatenate([np.arange(self.edge_start[i], self.edge_start[i + 1]) for i in idx])
        return self.a[sel], self.b[sel]


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


def _sector(x, y, bearing, fov, r):
    if fov >= 360:
        n = int(math.ceil(360 / ARC_STEP_DEG))
        t = np.radians(np.linspace(0, 360, n, endpoint=False))
        return shapely.Polygon(np.column_stack([x + r * np.sin(t), y + r * np.cos(t)]))
    n = max(2, int(math.ceil(fov / ARC_STEP_DEG)))
    t = np.radians(np.linspace(bearing - fov / 2, bearing + fov / 2, n + 1))
    ring = np.vstack([[x, y], np.column_stack([x + r * np.sin(t), y + r * np.cos(t)])])
    return shapely.Polygon(ring)


def _apex(obs, x, y, candidates):
    """Move a camera standing on or just inside a footprint to just outside its wall; None when indoors."""
    if len(candidates) == 0:
        return x, y
    p = shapely.Point(x, y)
    geoms = obs.geoms[candidates]
    d = shapely.distance(shapely.boundary(geoms), p)
    inside = shapely.contains_xy(geoms, x, y)
    if np.any(inside & (d > WALL_SNAP_M)):
        return None  # indoors: a footprint blocks sight at every height, so nothing outside is seen
    host = np.flatnonzero((d <= WALL_SNAP_M) & (inside | (d < APEX_OFFSET_M)))
    if host.size == 0:
        return x, y
    g = geoms[host[np.argmin(d[host])]]
    q = shapely.get_coordinates(shapely.shortest_line(g.boundary, p))[0]
    a, b = obs.edges_of([candidates[host[np.argmin(d[host])]]])
    # the wall the camera hangs on: the edge nearest to the foot point
    ab = b - a
    t = np.clip(np.einsum("ij,ij->i", q - a, ab) / np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-18), 0, 1)
    k = int(np.argmin(np.hypot(*(a + t[:, None] * ab - q).T)))
    normal = np.array([ab[k, 1], -ab[k, 0]]) / max(float(np.hypot(*ab[k])), 1e-12)
    # at a corner two walls meet: step out along their mean normal so neither swallows the view
    at_end = (t[k] < 1e-9) or (t[k] > 1 - 1e-9)
    if at_end:
        nxt = np.flatnonzero(np.all(np.isclose(a, q), axis=1) | np.all(np.isclose(b, q), axis=1))
        ns = np.array([np.array([ab[j, 1], -ab[j, 0]]) / max(float(np.hypot(*ab[j])), 1e-12) for j in nxt])
        if len(ns):
            m = ns.sum(axis=0)
            if np.hypot(*m) > 1e-9:
                normal = m / np.hypot(*m)
    apex = q + APEX_OFFSET_M * normal
    return float(apex[0]), float(apex[1])


def _view(obs, x, y, bearing, fov, r, r0):
    _check(fov, r, r0)
    if not (math.isfinite(x) and math.isfinite(y)):
        return shapely.Polygon()
    sector = _sector(x, y, bearing, fov, r)
    if len(obs):
        near = obs.tree.query(shapely.Point(x, y).buffer(r, 4) if fov >= 360 else sector)
        near = np.sort(near)
        apex = _apex(obs, x, y, near)
        if apex is None:
            return shapely.Polygon()
        ax, ay = apex
        if (ax, ay) != (x, y):
            x, y = ax, ay
            sector = _sector(x, y, bearing, fov, r)
        if len(near):
            near = near[shapely.intersects(obs.geoms[near], sector)]
        if len(near):
            shadows = _shadows(obs, near, x, y, r)
            if shadows is not None:
                sector = shapely.difference(sector, shadows)
    if r0 > 0:
        sector = shapely.difference(sector, shapely.Point(x, y).buffer(r0, quad_segs=int(math.ceil(90 / ARC_STEP_DEG))))
    return _polygonal(sector)


def _shadows(obs, idx, x, y, r):
    a, b = obs.edges_of(idx)
    pa, pb = a - (x, y), b - (x, y)
    ab = b - a
    # front-facing: the camera is on the outward side (outward normal (dy, -dx) for CCW exteriors)
    la, lb = np.hypot(*pa.T), np.hypot(*pb.T)
    # the cross product over |pa||pb| is the sine of the angle the edge subtends: an edge seen
    # edge-on (or touching the apex) hides nothing and would make a degenerate shadow
    cross = ab[:, 1] * pa[:, 0] - ab[:, 0] * pa[:, 1]
    facing = (la > 1e-9) & (lb > 1e-9)
    facing[facing] = cross[facing] / (la[facing] * lb[facing]) < -1e-9
    if not facing.any():
        return None
    a, b, pa, pb = a[facing], b[facing], pa[facing], pb[facing]
    ua = pa / np.hypot(*pa.T)[:, None]
    ub = pb / np.hypot(*pb.T)[:, None]
    s = np.linspace(0.0, 1.0, _SHADOW_CHORDS + 1)
    dirs = ub[:, None, :] * (1 - s)[None, :, None] + ua[:, None, :] * s[None, :, None]
    dirs /= np.linalg.norm(dirs, axis=2, keepdims=True)
    far = np.array([x, y]) + _SHADOW_REACH * r * dirs
    ring = np.concatenate([a[:, None, :], b[:, None, :], far, a[:, None, :]], axis=1)
    polys = shapely.polygons(ring)
    bad = ~shapely.is_valid(polys)
    if bad.any():
        polys[bad] = shapely.make_valid(polys[bad])
    return shapely.union_all(polys)


def _polygonal(g):
    if g.is_empty:
        return shapely.Polygon()
    if g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    parts = [p for p in shapely.get_parts(g) if p.geom_type == "Polygon" and not p.is_empty]
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


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


_WORKER_OBS = None


def _worker_init(geoms_wkb):
    global _WORKER_OBS
    _WORKER_OBS = Obstacles(shapely.from_wkb(geoms_wkb))


def _worker_views(rows):
    return shapely.to_wkb(np.array([_view(_WORKER_OBS, *row) for row in rows], dtype=object))


def view_polygons(cameras, obstacles=None, *, processes=1):
    """Return the view polygon of every camera of a frame.

    Parameters
    ----------
    cameras : GeoDataFrame
        Points in metres with ``bearing``, ``fov``, ``range_m`` (optional ``min_range_m``).
    obstacles : sequence of Polygon, GeoSeries or Obstacles, optional
    processes : int, default 1
        Worker processes; views are independent, so they split evenly (the obstacles are sent
        once per worker as WKB).

    Returns
    -------
    GeoSeries
        One (possibly empty) polygon per camera, with the cameras' index and CRS.
    """
    obs = obstacles if isinstance(obstacles, Obstacles) else Obstacles(obstacles)
    rows = list(zip(*(a.tolist() for a in _camera_arrays(cameras))))
    if processes > 1 and len(rows) > 200:
        import multiprocessing as mp
        chunks = [rows[i::processes * 4] for i in range(processes * 4)]
        ctx = mp.get_context("fork")
        with ctx.Pool(processes, initializer=_worker_init, initargs=(shapely.to_wkb(obs.geoms),)) as pool:
            parts = pool.map(_worker_views, chunks)
        out = np.empty(len(rows), dtype=object)
        for i, part in enumerate(parts):
            out[i::processes * 4] = shapely.from_wkb(part)
    else:
        out = np.array([_view(obs, *row) for row in rows], dtype=object)
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


def _overlap(public, vis):
    """Split the public space into faces by every view's outline and count the views over each."""
    lines = [shapely.boundary(public)] + [shapely.boundary(v) for v in vis if not v.is_empty]
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(shapely.union_all(lines))).geoms)
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

    Returns
    -------
    dict
        ``sites``: GeoDataFrame of the chosen cameras (``bearing``, ``fov``, ``range_m``, point
        geometry); ``percent`` reached on the cells; ``reached`` (bool); ``cameras`` (count);
        ``method`` ``"ilp"`` or ``"greedy"``; ``bound``: what is guaranteed; ``seconds``;
        ``cells``, ``candidates``.

    Notes
    -----
    Greedy picks the candidate adding the most uncovered weight until the target is met. For this
    partial set cover it uses at most H(Δ) ≤ 1 + ln Δ times the optimal number of cameras, Δ the
    most cells one candidate sees (Slavík 1997); equivalently, with a fixed number k of cameras it
    covers at least (1 − 1/e) of the best k-camera coverage (Nemhauser, Wolsey & Fisher 1978).
    """
    t0 = time.perf_counter()
    obs = obstacles if isinstance(obstacles, Obstacles) else Obstacles(obstacles)
    blocked = shapely.union_all(obs.geoms) if len(obs) else shapely.Polygon()
    public = _polygonal(shapely.make_valid(shapely.difference(area, blocked)))
    if public.is_empty:
        raise InvalidInput("The area has no public space left once buildings are removed.",
                           fix="Pass the courtyard or grid polygon, not a building footprint.")
    if not 0 < target_percent <= 100:
        raise InvalidInput(f"target_percent was {target_percent!r} but must be in (0, 100].",
                           fix="Give a percentage of the public space, e.g. 95.")
    A, s, seen0, sites = candidate_matrix(public, obs, candidates, fov=fov, range_m=range_m, bearings=bearings,
                                          existing=existing, cell_m=cell_m)
    total = s.weight.sum()
    need = target_percent / 100.0 * total
    base = s.weight[seen0].sum()
    chosen, method, bound = _greedy(A, s.weight, ~seen0, need - base)
    if A.nnz <= max_exact and len(sites):
        exact = _ilp(A, s.weight, ~seen0, need - base, time_limit, upper=len(chosen))
        if exact is not None:
            chosen, method, bound = exact, "ilp", "optimal for the cells (integer programme solved to optimality)"
    seen = seen0.copy()
    if chosen:
        seen |= np.asarray(A[:, chosen].sum(axis=1)).ravel() > 0
    pct = 100.0 * s.weight[seen].sum() / total
    frame = gpd.GeoDataFrame({"bearing": [float(sites[j][2]) for j in chosen],
                              "fov": float(fov), "range_m": float(range_m)},
                             geometry=[shapely.Point(sites[j][0], sites[j][1]) for j in chosen])
    return {"sites": frame, "percent": pct, "reached": bool(pct >= target_percent - 1e-9),
            "cameras": len(chosen), "method": method, "bound": bound,
            "seconds": time.perf_counter() - t0, "cells": len(s.weight), "candidates": len(sites)}


def candidate_matrix(public, obstacles, candidates, *, fov, range_m, bearings=DEFAULT_BEARINGS, existing=None,
                     cell_m=None):
    """Discretise the public space and list which cells each candidate (site × bearing) sees.

    Returns
    -------
    tuple
        ``(A, samples, seen0, sites)``: sparse cells × candidates 0/1 matrix (cells already seen by
        ``existing`` are left out of every column), the samples (``xy``, ``weight`` = public m² of
        the cell), the boolean mask of cells seen by ``existing``, and ``(x, y, bearing)`` per column.
        Candidates that would add nothing are dropped.
    """
    obs = obstacles if isinstance(obstacles, Obstacles) else Obstacles(obstacles)
    if cell_m is None:
        cell_m = max(0.5, math.sqrt(public.area / 4000.0))
    s = _samples(public, cell_m)
    seen0 = np.zeros(len(s.weight), dtype=bool)
    if existing is not None and len(existing):
        for v in view_polygons(existing, obs).values:
            seen0 |= shapely.contains_xy(v, s.xy[:, 0], s.xy[:, 1])
    cand = _as_xy(candidates)
    rows, cols, sites = [], [], []
    for i, (cx, cy) in enumerate(cand):
        for bearing in bearings:
            v = _view(obs, float(cx), float(cy), float(bearing), float(fov), float(range_m), 0.0)
            if v.is_empty:
                continue
            hit = np.flatnonzero(shapely.contains_xy(v, s.xy[:, 0], s.xy[:, 1]) & ~seen0)
            if hit.size == 0:
                continue
            rows.append(hit)
            cols.append(np.full(hit.size, len(sites)))
            sites.append((cx, cy, bearing))
    A = sparse.csr_matrix((np.ones(sum(map(len, rows))), (np.concatenate(rows) if rows else [],
                                                         np.concatenate(cols) if cols else [])),
                          shape=(len(s.weight), len(sites)), dtype=np.float64)
    return A, s, seen0, sites


def _as_xy(candidates):
    arr = np.asarray(getattr(candidates, "values", candidates))
    if arr.dtype == object:
        return shapely.get_coordinates(arr)
    return np.asarray(arr, dtype=float).reshape(-1, 2)


def _greedy(A, w, open_, need):
    """Greedy partial cover; returns (chosen columns, "greedy", bound text)."""
    A = A.tocsc()
    uncovered = open_.copy()
    got, chosen = 0.0, []
    delta = int(np.diff(A.indptr).max()) if A.shape[1] else 0
    while got < need - 1e-9:
        gain = A.T @ (w * uncovered)
        j = int(np.argmax(gain)) if len(gain) else -1
        if j < 0 or gain[j] <= 1e-12:
            break
        chosen.append(j)
        cells = A.indices[A.indptr[j]:A.indptr[j + 1]]
        got += w[cells][uncovered[cells]].sum()
        uncovered[cells] = False
    h = sum(1.0 / k for k in range(1, delta + 1)) if delta else 1.0
    return chosen, "greedy", (f"at most H(Δ) = {h:.2f} × the optimal number of cameras (Δ = {delta} cells); "
                              f"a fixed number of greedy cameras covers ≥ (1 − 1/e) of the best coverage")


def _ilp(A, w, open_, need, time_limit, upper):
    """Fewest columns whose cells weigh at least ``need``; None when not proven optimal."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    if need <= 1e-9:
        return []
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
    res = milp(c, constraints=cons, integrality=np.r_[np.ones(n), np.zeros(m)], bounds=Bounds(0, 1),
               options={"time_limit": time_limit, "disp": False})
    if res.status != 0 or res.x is None:
        return None
    return [int(j) for j in np.flatnonzero(res.x[:n] > 0.5)]


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
    return Place(kind, label, crs, area, footprints, cameras, list(cams))


def report_for(session, name, *, min_blind_m2=None):
    """Coverage report of a courtyard (by name) or a community (by code or name) from the store.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
    name : str
        Courtyard name, community code or community name.
    min_blind_m2 : float, optional
        Smallest blind spot listed; default the ``BLIND_SPOT_MIN_M2`` setting.

    Returns
    -------
    dict
        ``kind``, ``name``, ``cameras``, ``public_m2``, ``percent``, ``blind_count``, ``blind_m2``,
        ``min_blind_m2``, ``largest_blind`` ``(lon, lat, m2)`` or None, ``overlap`` ``[(count, m2)]``.

    Raises
    ------
    NotFound
        When no courtyard or community has that name or code.
    """
    place = load_place(session, name)
    crs = place.crs
    r = coverage(place.cameras, place.area, place.footprints, min_blind_m2=min_blind_m2)
    largest = None
    if r["blind_spots"]:
        spot = r["blind_spots"][0]
        c = gpd.GeoSeries([spot.centroid], crs=crs).to_crs(4326).iloc[0]
        largest = (c.x, c.y, spot.area)
    return {"kind": place.kind, "name": place.name, "cameras": len(place.cameras), "public_m2": r["public_m2"],
            "percent": r["percent"], "blind_count": len(r["blind_spots"]), "blind_m2": r["blind_m2"],
            "min_blind_m2": _default_min_blind() if min_blind_m2 is None else float(min_blind_m2),
            "largest_blind": largest, "overlap": [(c, a) for c, a, _ in r["overlap"]]}
