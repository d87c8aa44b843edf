"""The rook adjacency graph of the cells: shared edge lengths, centre distances, barrier crossings."""
from __future__ import annotations

import numpy as np
import shapely


class _Graph:
    """Rook adjacency of cells with shared lengths, centroid distances and barrier crossings."""

    def __init__(self, cells, work, barriers):
        self.n = len(cells)
        cells_work = work.to_work(cells)
        self.cells = cells_work
        self.area = shapely.area(cells_work)
        self.xy = shapely.get_coordinates(shapely.point_on_surface(cells_work))
        self.i, self.j, self.length = _shared_edges(cells_work)
        d = np.hypot(*(self.xy[self.i] - self.xy[self.j]).T)
        self.dist = np.maximum(d, 1e-6 * max(float(np.sqrt(self.area.sum())), 1e-9))
        self.crosses = np.zeros(len(self.i), dtype=bool)
        if len(barriers) and len(self.i):
            lines = work.to_work(barriers)
            segs = shapely.linestrings(np.stack([self.xy[self.i], self.xy[self.j]], axis=1))
            hit = shapely.STRtree(lines).query(segs, predicate="intersects")
            self.crosses[np.unique(hit[0])] = True


def _segments(lines):
    """Two-point line strings of every segment of ``lines`` (an STRtree over them answers locally)."""
    coords, part = shapely.get_coordinates(shapely.get_parts(lines), return_index=True)
    same = part[1:] == part[:-1]
    return shapely.linestrings(np.stack([coords[:-1][same], coords[1:][same]], axis=1))


def coverage_union(parts):
    """The union of polygons meant to tile without overlap, and whether they did.

    A coverage union (fast, and no hair-thin slivers between neighbours) when the parts are a clean
    coverage: it succeeds and loses no area; otherwise a full union and ``False``.
    """
    try:
        merged = shapely.coverage_union_all(parts)
        if abs(merged.area - shapely.area(parts).sum()) <= 1e-9 * max(merged.area, 1e-300):
            return merged, True
    except shapely.errors.GEOSException:
        pass
    return shapely.union_all(parts), False


def _outline(cells):
    """The outline of a tiling."""
    return coverage_union(cells)[0]


def _shared_edges(cells):
    """Pairs (i < j) of cells sharing boundary, with the shared length."""
    n = len(cells)
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    rings, ring_owner = shapely.get_rings(cells, return_index=True)
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    same = ring_of[1:] == ring_of[:-1]
    a, b = coords[:-1][same], coords[1:][same]
    owner = ring_owner[ring_of[:-1][same]]
    # Undirected segment key from exact coordinates: a shared edge appears once in each cell.
    swap = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    lo = np.where(swap[:, None], b, a)
    hi = np.where(swap[:, None], a, b)
    seg = np.ascontiguousarray(np.column_stack((lo, hi)))
    keys = seg.view(np.dtype((np.void, seg.dtype.itemsize * 4))).ravel()
    order = np.argsort(keys, kind="stable")
    ks, ow = keys[order], owner[order]
    dup = np.flatnonzero(ks[1:] == ks[:-1])
    pi, pj = ow[dup], ow[dup + 1]
    keep = pi != pj
    pi, pj = pi[keep], pj[keep]
    seg_len = np.hypot(*(seg[order][dup][keep][:, 2:] - seg[order][dup][keep][:, :2]).T)
    found = {}
    for x, y, ln in zip(np.minimum(pi, pj).tolist(), np.maximum(pi, pj).tolist(), seg_len.tolist()):
        found[(x, y)] = found.get((x, y), 0.0) + ln
    # Pairs whose vertices do not match (a T-junction) need an exact overlay. Segments seen once lie
    # on the outline or at such a junction; only cells with the latter are overlaid.
    single = np.ones(len(ks), dtype=bool)
    single[dup] = False
    single[dup + 1] = False
    loose = np.flatnonzero(single)
    if len(loose):
        mids = shapely.points((seg[order][loose][:, :2] + seg[order][loose][:, 2:]) / 2)
        outline = _segments(shapely.boundary(_outline(cells)))
        tol = 1e-9 * max(float(np.sqrt(shapely.area(cells).sum())), 1.0)
        near = shapely.STRtree(outline).query(mids, predicate="dwithin", distance=tol)[0]
        inner = np.setdiff1d(np.arange(len(loose)), near)
        suspects = np.unique(ow[loose[inner]])
    else:
        suspects = np.zeros(0, np.int64)
    if len(suspects):
        tree = shapely.STRtree(cells)
        qi, qj = tree.query(cells[suspects], predicate="intersects")
        qi = suspects[qi]
        qi, qj = np.minimum(qi, qj), np.maximum(qi, qj)
        sel = qi < qj
        pairs = np.unique(np.column_stack((qi[sel], qj[sel])), axis=0)
        missing = np.array([(x, y) not in found for x, y in pairs.tolist()], dtype=bool)
        if missing.any():
            mi, mj = pairs[missing, 0], pairs[missing, 1]
            inter = shapely.intersection(shapely.boundary(cells[mi]), shapely.boundary(cells[mj]))
            lengths = shapely.length(inter)
            for x, y, ln in zip(mi.tolist(), mj.tolist(), lengths.tolist()):
                if ln > 0:
                    found[(x, y)] = ln
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    pairs = sorted(found)
    arr = np.array(pairs, dtype=np.int64)
    return arr[:, 0], arr[:, 1], np.array([found[p] for p in pairs])
