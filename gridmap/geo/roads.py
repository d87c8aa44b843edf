"""Shortest road distances in metres over imported roads: build a compact graph once, answer many queries.

The graph is built once from a GeoDataFrame of WGS84 road lines (one projection into a local
transverse Mercator CRS, then everything is metres) and kept for the life of a snapshot:

- **Nodes** are the roads' vertices after *noding*. Vertices closer than ``snap_m``
  (0.5 m by default) are one node: OSM-style data shares the junction vertex exactly, and roads
  cut at vector-tile edges meet at ends that coincide or miss by a few centimetres. A piece's
  dangling end that lies within ``snap_m`` of another road's segment (a T-junction drawn
  without a shared vertex) is joined to that segment at its nearest point.
- **Two segments that cross without a shared vertex are not joined** (``node_crossings=False``,
  the default): in OSM data that is a bridge, a tunnel or a flyover, and joining them would let a
  route jump off a viaduct. Pass ``node_crossings=True`` for hand-drawn data whose junctions are
  mere crossings.
- **Edges** are the segments between consecutive vertices, weighted by their length; they are
  undirected (``oneway`` is ignored: responders walk or ride, and a car's one-way detour in a
  residential grid is small beside the uncertainty of the responder's position).

Queries snap each point to the nearest point on the nearest segment (a
:class:`shapely.STRtree` over the segments), walk the straight line to it, go along the
partial segment to either of its end nodes, and run Dijkstra over the CSR adjacency from those
ends. The search stops as soon as every target's end nodes are settled, so one incident's
responders nearby cost the few hundred nodes around it, not the whole city; and it touches only
those: its distance array lives with the graph (one per thread) and only the entries it set are
reset afterwards, where :func:`scipy.sparse.csgraph.dijkstra` allocates and fills arrays the
size of the whole graph on every call (~0.3 ms at city size, more than the search itself). The
loop is compiled by numba on first use and cached on disk like ``geo.pointindex``'s kernels
(see ``bench/routing_bench.py``).
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import shapely
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from .errors import InvalidInput
from .crs import metric_for
from .jit import compiled

__all__ = ["EXCLUDED_KINDS", "SPEEDS_MPS", "RoadGraph", "eta_s"]

#: Road kinds nobody walks or drives along, with the reason; ``from_lines(kinds=None)`` drops them.
EXCLUDED_KINDS = {
    "rail": "a railway: no walking or driving along the tracks",
    "ferry": "a ferry line: a timetabled boat, not a road",
}

#: Mean travel speeds in metres per second used for ETAs. Urban figures including stops:
#: 1.2 m/s is a brisk adult walk (~4.3 km/h); 4 m/s an e-bike in traffic (~14 km/h); 8 m/s a car
#: in city traffic with lights (~29 km/h). Tune here, not in callers.
SPEEDS_MPS = {"walk": 1.2, "ebike": 4.0, "car": 8.0}

DEFAULT_SNAP_M = 0.5
DEFAULT_MIN_ISLAND_M = 300.0


@dataclass(frozen=True)
class _Snap:
    seg: np.ndarray     # nearest segment per point
    frac: np.ndarray    # position of the snap point along it, 0 at end u, 1 at end v
    walk: np.ndarray    # straight walk from the point to the snap point, metres
    x: np.ndarray       # snap point, metric
    y: np.ndarray


class RoadGraph:
    """A road network in metres: noded, projected once, queried many times.

    Build with :meth:`from_lines`; never rebuild per request.

    Attributes
    ----------
    crs : pyproj.CRS
        The local metric CRS every length is measured in (centred on the roads' bounds).
    n_nodes, n_edges : int
        Nodes after noding and undirected edges (parallel segments between the same two nodes
        count once, with the shortest length).
    """

    def __init__(self, *, metric, seg_xy, seg_u, seg_v, seg_len, csr, labels):
        self.metric = metric
        self.crs = metric.crs
        self._seg_xy = seg_xy          # (m, 4) float64: ax, ay, bx, by
        self._seg_u = seg_u            # (m,) int32 node at a
        self._seg_v = seg_v            # (m,) int32 node at b
        self._seg_len = seg_len        # (m,) float64
        self._csr = csr                # symmetric, float64 weights, int32 indices
        self._labels = labels          # connected component per node
        self._tree = shapely.STRtree(shapely.linestrings(seg_xy.reshape(-1, 2, 2)))
        self._scratch = threading.local()  # the search's working arrays, one set per thread
        self.n_nodes = int(csr.shape[0])
        self.n_edges = int(csr.nnz // 2)

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_lines(cls, roads, *, kinds=None, snap_m=DEFAULT_SNAP_M, node_crossings=False,
                   min_island_m=DEFAULT_MIN_ISLAND_M):
        """Build the graph from road lines in WGS84.

        Parameters
        ----------
        roads : geopandas.GeoDataFrame or geopandas.GeoSeries
            LineStrings and MultiLineStrings in WGS84 (a GeoDataFrame with another CRS is
            converted). A ``kind`` column, when present, is filtered by ``kinds``.
        kinds : iterable of str, optional
            The road kinds to keep. By default every kind except those in
            :data:`EXCLUDED_KINDS` (rail, ferry).
        snap_m : float, default 0.5
            Vertices closer than this are one node, and a dangling end this close to another
            road's segment is joined to it.
        node_crossings : bool, default False
            Also join segments that cross without a shared vertex (see the module docstring for
            why OSM data should not).
        min_island_m : float, default 300
            Drop connected pieces of network whose roads add up to less than this, unless the
            piece is the largest. Real extracts are full of them (a footpath cut off at the
            data's edge, a park path drawn without its junction); left in, they catch the snap
            of a nearby point and make every route from it "unreachable". ``0`` keeps all.

        Returns
        -------
        RoadGraph

        Raises
        ------
        InvalidInput
            When no line of a kept kind remains, or ``snap_m`` is negative.
        """
        if not (snap_m >= 0 and math.isfinite(snap_m)):
            raise InvalidInput(f"snap_m was {snap_m!r} but must be a finite number of metres ≥ 0.",
                               fix="Use the default 0.5 m unless the data's ends miss by more.")
        geoms = _kept_geometries(roads, kinds)
        lines = shapely.get_parts(geoms)
        lines = lines[~shapely.is_empty(lines) & (shapely.get_type_id(lines) == 1)]
        if not len(lines):
            kept = sorted(kinds) if kinds is not None else f"all but {sorted(EXCLUDED_KINDS)}"
            raise InvalidInput("No road line to route on.",
                               fix=f"Import LineString roads; kinds kept: {kept}.")
        metric = metric_for(lines)
        xy, part = shapely.get_coordinates(lines, return_index=True)
        x, y = metric.xy(xy[:, 0], xy[:, 1])
        xy = np.column_stack([x, y])
        if node_crossings:
            # unary_union splits every line at every crossing; run in metres so the result is exact
            in_metres = shapely.linestrings(xy, indices=part)
            lines = shapely.get_parts(shapely.line_merge(shapely.unary_union(in_metres)))
            xy, part = shapely.get_coordinates(lines, return_index=True)
        seg_xy, seg_part = _segments(xy, part)
        seg_xy = _split_at_t_junctions(seg_xy, seg_part, snap_m)
        node_of_vertex, n_nodes = _cluster_vertices(seg_xy.reshape(-1, 2), snap_m)
        seg_u = node_of_vertex[0::2].astype(np.int32)
        seg_v = node_of_vertex[1::2].astype(np.int32)
        seg_len = np.hypot(seg_xy[:, 2] - seg_xy[:, 0], seg_xy[:, 3] - seg_xy[:, 1])
        csr = _symmetric_csr(seg_u, seg_v, seg_len, n_nodes)
        _, labels = connected_components(csr, directed=False)
        if min_island_m > 0:
            piece_m = np.bincount(labels[seg_u], weights=seg_len, minlength=labels.max() + 1)
            keep_piece = (piece_m >= min_island_m) | (np.arange(len(piece_m)) == piece_m.argmax())
            if not keep_piece.all():
                keep = keep_piece[labels[seg_u]]
                seg_xy, seg_u, seg_v, seg_len = seg_xy[keep], seg_u[keep], seg_v[keep], seg_len[keep]
                used, inverse = np.unique(np.r_[seg_u, seg_v], return_inverse=True)
                seg_u = inverse[: len(seg_u)].astype(np.int32)
                seg_v = inverse[len(seg_u):].astype(np.int32)
                csr = _symmetric_csr(seg_u, seg_v, seg_len, len(used))
                _, labels = connected_components(csr, directed=False)
        return cls(metric=metric, seg_xy=seg_xy, seg_u=seg_u, seg_v=seg_v, seg_len=seg_len, csr=csr,
                   labels=labels.astype(np.int32))

    # -- queries ----------------------------------------------------------------------------
    def distance_m(self, lon1, lat1, lon2, lat2):
        """Shortest road distance in metres between two WGS84 points.

        Each end walks straight to the nearest point on the nearest road, then along that
        segment to whichever of its ends gives the shorter route (two points on the same
        segment may also go straight along it).

        Parameters
        ----------
        lon1, lat1, lon2, lat2 : float
            WGS84 degrees.

        Returns
        -------
        float
            Metres, including both straight walks; ``math.inf`` when the two roads are in
            different connected components (no route exists).
        """
        return float(self.distances_m(lon1, lat1, [(lon2, lat2)])[0])

    def distances_m(self, lon, lat, targets_lonlat):
        """Road distances in metres from one point to many (one bounded Dijkstra search).

        This is "nearest responders by road": take the k nearest by straight line, then ask
        their road distances here.

        Parameters
        ----------
        lon, lat : float
            The source, WGS84 degrees.
        targets_lonlat : array_like of shape (n, 2)
            Targets as ``(lon, lat)`` pairs.

        Returns
        -------
        numpy.ndarray of float, shape (n,)
            Metres per target, ``inf`` for unreachable ones.
        """
        targets = np.asarray(targets_lonlat, dtype=float).reshape(-1, 2)
        pts = np.vstack([[float(lon), float(lat)], targets])
        _check_lonlat(pts)
        snap = self._snap(pts[:, 0], pts[:, 1])
        return self._from_snap(snap)

    def snap(self, lon, lat):
        """The nearest point on the road network and the straight walk to it.

        Parameters
        ----------
        lon, lat : float
            WGS84 degrees.

        Returns
        -------
        dict
            ``lon``, ``lat`` of the snap point and ``walk_m``, the straight distance to it.
        """
        pts = np.array([[float(lon), float(lat)]])
        _check_lonlat(pts)
        s = self._snap(pts[:, 0], pts[:, 1])
        slon, slat = self.metric.lonlat(s.x[0], s.y[0])
        return {"lon": float(slon), "lat": float(slat), "walk_m": float(s.walk[0])}

    def nbytes(self):
        """Estimated bytes held: the CSR graph, the segment arrays and the snapping tree."""
        arrays = (self._seg_xy, self._seg_u, self._seg_v, self._seg_len, self._labels,
                  self._csr.data, self._csr.indices, self._csr.indptr)
        # a 2-point LineString is ~100 bytes of GEOS and Python object; the tree ~40 bytes/entry
        return int(sum(a.nbytes for a in arrays) + len(self._seg_len) * 140)

    # -- internals --------------------------------------------------------------------------
    def _snap(self, lon, lat):
        x, y = self.metric.xy(lon, lat)
        x, y = np.atleast_1d(np.asarray(x, dtype=float)), np.atleast_1d(np.asarray(y, dtype=float))
        far = ~(np.isfinite(x) & np.isfinite(y))
        if far.any():
            # the STRtree finds nothing for such a point, and the answers of the others would shift
            i = np.flatnonzero(far)[0]
            lon_i, lat_i = np.atleast_1d(lon)[i], np.atleast_1d(lat)[i]
            raise InvalidInput(f"Point lon={lon_i}, lat={lat_i} is too far from the roads to measure a distance.",
                               fix="Give points in the area whose roads were imported.")
        pairs = self._tree.query_nearest(shapely.points(x, y))
        # equidistant segments all come back; the first per point is as good as any
        _, first = np.unique(pairs[0], return_index=True)
        seg = pairs[1][first]
        ax, ay, bx, by = self._seg_xy[seg].T
        dx, dy = bx - ax, by - ay
        ll = dx * dx + dy * dy
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(ll > 0, ((x - ax) * dx + (y - ay) * dy) / ll, 0.0)
        t = np.clip(t, 0.0, 1.0)
        sx, sy = ax + t * dx, ay + t * dy
        return _Snap(seg=seg, frac=t, walk=np.hypot(x - sx, y - sy), x=sx, y=sy)

    def _from_snap(self, snap):
        """Distances from snap point 0 to snap points 1..n."""
        s, tseg = snap.seg[0], snap.seg[1:]
        src_nodes = np.array([self._seg_u[s], self._seg_v[s]], dtype=np.int32)
        src_off = np.array([snap.frac[0], 1.0 - snap.frac[0]]) * self._seg_len[s]
        dst_nodes = np.column_stack([self._seg_u[tseg], self._seg_v[tseg]])           # (n, 2)
        dst_off = np.column_stack([snap.frac[1:], 1.0 - snap.frac[1:]]) * self._seg_len[tseg, None]
        n = len(tseg)
        along = np.full(n, np.inf)
        reachable = self._labels[dst_nodes[:, 0]] == self._labels[src_nodes[0]]
        # two points on one segment may go straight along it, without touching a node
        same = tseg == s
        along[same] = np.abs(snap.frac[1:][same] - snap.frac[0]) * self._seg_len[s]
        if reachable.any():
            d = self._node_distances(src_nodes, dst_nodes[reachable])                 # (2, p, 2)
            # best over (source end e, target end f): off_e + D[e, f] + off_f
            best = (src_off[:, None, None] + d + dst_off[reachable][None]).min(axis=(0, 2))
            along[reachable] = np.minimum(along[reachable], best)
        return snap.walk[0] + along + snap.walk[1:]

    def _node_distances(self, sources, targets):
        """Shortest distances from each source node to each target node (all in one component).

        Returns an array of shape ``sources.shape + targets.shape``; one Dijkstra search a source,
        stopped once every target is settled.
        """
        work = self._scratch.__dict__.get("arrays")
        if work is None:
            n, m = self.n_nodes, len(self._csr.indices)
            # the heap holds at most one entry per edge relaxed plus the source; untouched pages of
            # np.empty cost no memory
            work = self._scratch.arrays = (np.full(n, np.inf), np.zeros(n, dtype=np.uint8),
                                           np.empty(n, dtype=np.int32), np.empty(m + 1),
                                           np.empty(m + 1, dtype=np.int32))
        flat = np.ascontiguousarray(targets, dtype=np.int32).ravel()
        src = np.ascontiguousarray(sources, dtype=np.int32).ravel()
        out = np.empty((len(src), len(flat)))
        _search_kernel()(self._csr.indptr, self._csr.indices, self._csr.data, src, flat, *work, out)
        return out.reshape(np.shape(sources) + np.shape(targets))


def eta_s(distance_m, mode="walk"):
    """Travel time in seconds for a road distance at the mode's mean speed.

    Parameters
    ----------
    distance_m : float or array_like
        Metres; ``inf`` (unreachable) gives ``inf``.
    mode : str, default "walk"
        A key of :data:`SPEEDS_MPS`: ``"walk"`` (1.2 m/s), ``"ebike"`` (4 m/s), ``"car"`` (8 m/s).

    Returns
    -------
    float or numpy.ndarray
        Seconds.

    Raises
    ------
    InvalidInput
        For an unknown mode.
    """
    if mode not in SPEEDS_MPS:
        raise InvalidInput(f'`mode` was "{mode}" but is expected to be in {sorted(SPEEDS_MPS)}.',
                           fix="Pick one of the listed modes.")
    if np.ndim(distance_m) == 0:
        return float(distance_m) / SPEEDS_MPS[mode]
    return np.asarray(distance_m, dtype=float) / SPEEDS_MPS[mode]


# -- helpers ------------------------------------------------------------------------------------
def _kept_geometries(roads, kinds):
    frame = roads
    if getattr(frame, "crs", None) is not None and not frame.crs.equals(4326):
        frame = frame.to_crs(4326)
    geom = frame.geometry if hasattr(frame, "geometry") else frame
    keep = np.ones(len(frame), dtype=bool)
    if "kind" in getattr(frame, "columns", ()):
        kind = frame["kind"].astype(str).to_numpy()
        if kinds is None:
            keep = ~np.isin(kind, list(EXCLUDED_KINDS))
        else:
            keep = np.isin(kind, list(kinds))
    geoms = np.asarray(geom.values, dtype=object)[keep]
    return geoms[~shapely.is_missing(geoms)]


def _check_lonlat(pts):
    bad = ~(np.isfinite(pts).all(axis=1) & (np.abs(pts[:, 0]) <= 180) & (np.abs(pts[:, 1]) <= 90))
    if bad.any():
        lon, lat = pts[np.flatnonzero(bad)[0]]
        raise InvalidInput(f"Point lon={lon}, lat={lat} is not a WGS84 position.",
                           fix="Give longitude in -180..180 and latitude in -90..90 degrees.")


def _segments(xy, part):
    """Consecutive vertex pairs within each line: (m, 4) coordinates and the line of each."""
    same = part[:-1] == part[1:]
    i = np.flatnonzero(same)
    return np.column_stack([xy[i], xy[i + 1]]), part[i]


def _split_at_t_junctions(seg_xy, seg_part, tol):
    """Insert a vertex where a line's dangling end lies within ``tol`` of another line's segment."""
    if tol <= 0 or not len(seg_xy):
        return seg_xy
    first = np.r_[True, seg_part[1:] != seg_part[:-1]]
    last = np.r_[seg_part[1:] != seg_part[:-1], True]
    ends = np.vstack([seg_xy[first, :2], seg_xy[last, 2:]])
    end_part = np.r_[seg_part[first], seg_part[last]]
    tree = shapely.STRtree(shapely.linestrings(seg_xy.reshape(-1, 2, 2)))
    e, s = tree.query(shapely.points(ends), predicate="dwithin", distance=tol)
    keep = end_part[e] != seg_part[s]
    e, s = e[keep], s[keep]
    if not len(e):
        return seg_xy
    ax, ay, bx, by = seg_xy[s].T
    dx, dy = bx - ax, by - ay
    ll = dx * dx + dy * dy
    t = np.clip(((ends[e, 0] - ax) * dx + (ends[e, 1] - ay) * dy) / np.where(ll > 0, ll, 1), 0, 1)
    # an end within tol of the segment's own end vertex is joined by vertex clustering instead
    interior = ((np.hypot(ends[e, 0] - ax, ends[e, 1] - ay) > tol)
                & (np.hypot(ends[e, 0] - bx, ends[e, 1] - by) > tol))
    if not interior.any():
        return seg_xy
    s, t = s[interior], t[interior]
    cuts = {}
    for si, ti in zip(s.tolist(), t.tolist()):
        cuts.setdefault(si, set()).add(ti)
    out = []
    prev = 0
    for si in sorted(cuts):
        out.append(seg_xy[prev:si])
        a, b = seg_xy[si, :2], seg_xy[si, 2:]
        pts = [a] + [a + ti * (b - a) for ti in sorted(cuts[si])] + [b]
        out.append(np.array([np.r_[p, q] for p, q in zip(pts[:-1], pts[1:])]))
        prev = si + 1
    out.append(seg_xy[prev:])
    return np.vstack(out)


def _cluster_vertices(xy, tol):
    """Node id per vertex: vertices within ``tol`` of each other (transitively) share one."""
    uniq, inverse = np.unique(xy, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    if tol > 0 and len(uniq) > 1:
        pairs = cKDTree(uniq).query_pairs(tol, output_type="ndarray")
        if len(pairs):
            n = len(uniq)
            link = csr_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])),
                              shape=(n, n))
            n_nodes, cluster = connected_components(link, directed=False)
            return cluster[inverse], int(n_nodes)
    return inverse, len(uniq)


def _symmetric_csr(u, v, length, n):
    """Both directions of every non-loop edge; parallel edges keep the shortest length."""
    keep = u != v
    a = np.r_[u[keep], v[keep]].astype(np.int64)
    b = np.r_[v[keep], u[keep]].astype(np.int64)
    w = np.r_[length[keep], length[keep]]
    order = np.lexsort((w, b, a))
    a, b, w = a[order], b[order], w[order]
    first = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])]
    a, b, w = a[first], b[first], w[first]
    # a zero weight would read as "no edge" in a sparse matrix; ends this close were clustered
    w = np.maximum(w, 1e-9)
    csr = csr_matrix((w, (a, b)), shape=(n, n))
    csr.indices = csr.indices.astype(np.int32)
    csr.indptr = csr.indptr.astype(np.int32)
    return csr


# -- compiled search ----------------------------------------------------------------------------

def _search_kernel():
    return compiled(_dijkstra_to_targets)[0]


def _dijkstra_to_targets(indptr, indices, weights, sources, targets, dist, mark, touched, heap_d, heap_n, out):
    """``out[i, j]`` = shortest distance from ``sources[i]`` to ``targets[j]`` (compiled by numba).

    Dijkstra with a binary heap and lazy deletion, one search a source, stopped when every target
    is settled or nothing is left to settle (unreachable targets stay ``inf``). ``dist`` (all
    ``inf``), ``mark`` (all 0), ``touched``, ``heap_d`` and ``heap_n`` are working arrays sized
    for the graph; ``dist`` and ``mark`` are handed back as they came. A node's distance is its
    best predecessor's plus the edge weight, the same sums in the same order as scipy's Dijkstra,
    so the results are identical to it.
    """
    inf = np.inf
    for i in range(len(sources)):
        remaining = 0
        for t in targets:
            if mark[t] == 0:
                mark[t] = 1
                remaining += 1
        s = sources[i]
        dist[s] = 0.0
        touched[0] = s
        n_touched = 1
        heap_d[0] = 0.0
        heap_n[0] = s
        size = 1
        while size > 0 and remaining > 0:
            d = heap_d[0]
            u = heap_n[0]
            # pop: move the last entry to the root and sift it down
            size -= 1
            if size > 0:
                ld, ln = heap_d[size], heap_n[size]
                k = 0
                while True:
                    c = 2 * k + 1
                    if c >= size:
                        break
                    if c + 1 < size and heap_d[c + 1] < heap_d[c]:
                        c += 1
                    if heap_d[c] >= ld:
                        break
                    heap_d[k] = heap_d[c]
                    heap_n[k] = heap_n[c]
                    k = c
                heap_d[k] = ld
                heap_n[k] = ln
            if d > dist[u]:
                continue  # a stale entry: u was reached more cheaply since
            if mark[u] == 1:
                mark[u] = 2
                remaining -= 1
            for e in range(indptr[u], indptr[u + 1]):
                v = indices[e]
                nd = d + weights[e]
                if nd < dist[v]:
                    if dist[v] == inf:
                        touched[n_touched] = v
                        n_touched += 1
                    dist[v] = nd
                    # push: append and sift up
                    k = size
                    size += 1
                    while k > 0:
                        p = (k - 1) // 2
                        if heap_d[p] <= nd:
                            break
                        heap_d[k] = heap_d[p]
                        heap_n[k] = heap_n[p]
                        k = p
                    heap_d[k] = nd
                    heap_n[k] = v
        for j in range(len(targets)):
            out[i, j] = dist[targets[j]]
        for j in range(n_touched):
            dist[touched[j]] = inf
        for t in targets:
            mark[t] = 0
