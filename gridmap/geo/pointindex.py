"""Point in polygon at speed: a cell raster answers most points, exact crossing tests the rest.

The rule
--------
Polygons are given in **priority order** (for grids: sorted by code). For a point (x, y):

* strictly inside exactly one polygon → that polygon's position; this is identical to
  ``geopandas.sjoin(points, polygons, predicate="within")`` for every point not on a boundary;
* on an edge or a vertex (shared by several polygons, or on one polygon's outer boundary or the
  rim of a hole) → the **lowest position** among the polygons whose closure contains it, so a point
  on the outline of a single polygon belongs to that polygon;
* where polygons overlap (not a partition) → the lowest position among those containing it;
* outside every polygon, or a NaN coordinate → ``-1``.

How
---
A raster of square cells is laid over the polygons' bounding box (cell size from the data: the
median polygon's size / ``cells_per_side``, enlarged to stay under a memory cap). Every edge is
rasterised into the cells it meets within each row band (a conservative supercover, padded far
beyond rounding), and then:

* a cell no edge meets lies wholly inside the same polygons: the table answers it directly;
* a *simple* boundary cell is crossed by one straight edge from band edge to band edge (about half
  of them): one orientation test picks the side, and the label of each side is stored;
* any other boundary cell keeps its candidate polygons, each with the few edges that matter there
  (edges wholly to the right that span the band fold into one parity bit) and the lowest polygon
  containing the whole cell.

Candidates are tested with the even-odd rule along a ray to +x (half-open in y, so a vertex counts
once). The build (one pass over the row bands) and the batch lookup are loops compiled by numba
(``cache=True``: compiled once per machine, ~8 s; later processes load the machine code in ~0.1 s
after importing numba, ~0.4 s; both on first use, not at import). Each crossing's orientation sign
is certified with a Shewchuk-style error bound; a point on an edge, or so near one that the bound
cannot certify the sign, goes to GEOS (``shapely.intersects_xy`` on prepared polygons), which gives the boundary
rule above. Nothing depends on the CRS: lon/lat or metres, the raster is over the coordinates and
exactness comes from the tests.

Measured here (2 cores, shared with other work; the synthetic Dalian of ``bench/synthetic_city.py``:
15,000 Voronoi grids, 3,000,000 clustered household points, lon/lat; kernels already compiled):
``geopandas.sjoin`` ~2 s; ``points_to_grids`` from an (n, 2) array 0.15–0.27 s (build ~0.06 s +
lookup ~0.09 s), from a points GeoDataFrame ~0.1 s more (reading 3M coordinates out of shapely
points); answers identical. To map several layers onto the same grids, build one ``PolygonIndex``
and call ``lookup`` per layer. ``lookup_one`` (plain Python over the same arrays: a call into
compiled code would cost more than the walk) takes 1.5–3 µs.
"""
from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import shapely

from .errors import InvalidInput, N_
from .jit import compiled

__all__ = ["PolygonIndex", "points_to_grids"]

CELLS_PER_POLYGON_SIDE = 16  # cell size = median polygon size / this
MAX_TABLE_BYTES = 64 * 2**20  # the cell table is int32: at most 16 M cells
_INT_BIG = np.iinfo(np.int32).max
# Shewchuk's orient2d bound is ~3.3e-16 of |a·b| + |c·d|; anything under this is "maybe zero".
_ORIENT_TOL = 1e-12
_CHUNK = 1 << 16  # points read from shapely per step: their coordinates stay in cache
_THREADED_FROM = 200_000  # fewer points: helper threads cost more than they save
_THREADS = 3  # helper threads at most (reading points is the long part; one more core would idle)


class PolygonIndex:
    """Which polygon contains a point, for millions of points or one point in microseconds.

    Parameters
    ----------
    polygons : sequence of shapely Polygon / MultiPolygon (None or empty allowed: never matched)
        In priority order: ties go to the lowest position (see the module docstring).
    cell_size : float, optional
        Raster cell side in the polygons' units. By default the median polygon's size divided by
        ``cells_per_side``, enlarged if the table would exceed ``max_table_bytes``. Finer cells
        mean fewer exact tests but a larger, slower-to-build index (16 per side: ~130 MB for
        15,000 grids; 8: ~65 MB).
    cells_per_side : int
        How many cells span a median polygon when ``cell_size`` is not given.
    max_table_bytes : int
        Upper bound on the cell table (4 bytes a cell).

    Raises
    ------
    InvalidInput
        When a geometry is not a polygon or multipolygon.
    """

    def __init__(self, polygons, *, cell_size=None, cells_per_side=CELLS_PER_POLYGON_SIDE,
                 max_table_bytes=MAX_TABLE_BYTES):
        if not (isinstance(polygons, (list, tuple)) or hasattr(polygons, "__array__")):
            polygons = list(polygons)
        geoms = np.asarray(polygons, dtype=object)
        geoms = geoms.reshape(-1)
        kinds = shapely.get_type_id(geoms)
        bad = ~np.isin(kinds, (-1, 3, 6)) & ~shapely.is_empty(geoms)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidInput(N_("Geometry at position %(i)s is a %(geom_type)s, not a polygon."),
                               fix=N_("Give polygons or multipolygons only (e.g. drop points and lines first)."),
                               params={"i": i, "geom_type": geoms[i].geom_type})
        self.geoms = geoms
        self.n = len(geoms)
        self._prepared = False  # GEOS is needed only for points on or near an edge: prepare on first use
        self._tree = None
        self._lock = threading.Lock()
        self._build(cell_size, cells_per_side, max_table_bytes)

    # -- build ------------------------------------------------------------------------------
    # -- build ------------------------------------------------------------------------------
    def _build(self, cell_size, cells_per_side, max_table_bytes):
        ax, ay, bx, by, owner = _edges(self.geoms)
        self._overlapping = False
        if len(ax) == 0:
            self._empty_raster()
            return
        xmin, xmax = min(ax.min(), bx.min()), max(ax.max(), bx.max())
        ymin, ymax = ay.min(), by.max()  # edges run upwards: a is the lower end
        span = max(xmax - xmin, ymax - ymin)
        mag = max(abs(xmin), abs(xmax), abs(ymin), abs(ymax), span)
        if cell_size is None:
            b = shapely.bounds(self.geoms)
            size = np.sqrt(np.abs((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])))
            size = size[np.isfinite(size) & (size > 0)]
            cell_size = float(np.median(size)) / cells_per_side if len(size) else span
        cell_size = float(cell_size) if cell_size and cell_size > 0 else (span or 1.0)
        cell_size = max(cell_size, span * 1e-7, mag * 1e-12, 1e-300)
        max_cells = max(16, max_table_bytes // 4 - 1)
        while (np.ceil((xmax - xmin) / cell_size) + 3) * (np.ceil((ymax - ymin) / cell_size) + 3) > max_cells:
            cell_size *= 1.25
        w = self.cell_size = cell_size
        # a one-cell margin keeps every polygon point strictly inside the raster
        self._x0, self._y0 = float(xmin - w), float(ymin - w)
        self._nc = int(np.ceil((xmax - xmin) / w)) + 3
        self._nr = int(np.ceil((ymax - ymin) / w)) + 3
        self._inv = 1.0 / w
        eps = 1e-9 * mag + 1e-7 * w  # cells are padded by far more than any rounding in cell arithmetic
        build, _ = _kernels()
        (self._table, self._bc, self._cd, self._le, self._default, self._simple, self._overlapping,
         self._nboundary) = build(ax, ay, bx, by, owner, self._x0, self._y0, w, self._inv, self._nc, self._nr,
                                  float(eps))
        self._has_default = bool((self._default >= 0).any())
        self._views()

    def _empty_raster(self):
        self._x0 = self._y0 = 0.0
        self._nc = self._nr = 1
        self.cell_size = self._inv = 1.0
        self._table = np.full(2, -1, dtype=np.int32)
        self._bc = np.zeros((0, 2), dtype=np.int64)
        self._cd = np.zeros((0, 4), dtype=np.int64)
        self._le = np.zeros((0, 6))
        self._default = np.zeros(0, dtype=np.int32)
        self._simple = np.zeros((0, 8))
        self._has_default = False
        self._nboundary = 0
        self._views()

    _ARRAYS = ("_table", "_bc", "_cd", "_le", "_default", "_simple")

    def _views(self):
        # flat memoryviews index to plain Python numbers: the scalar path avoids numpy scalars
        for name in self._ARRAYS:
            setattr(self, "_m" + name, memoryview(getattr(self, name).reshape(-1)))

    # -- as flat arrays (a snapshot file maps them) ------------------------------------------
    def to_arrays(self):
        """(arrays, meta): the index as numpy arrays and a JSON-able dict, for :meth:`from_arrays`.

        The polygons are not included: the caller stores them its own way (they are needed only
        for points on or near an edge).
        """
        arrays = {name.lstrip("_"): getattr(self, name) for name in self._ARRAYS}
        meta = {"x0": self._x0, "y0": self._y0, "nc": self._nc, "nr": self._nr, "cell_size": self.cell_size,
                "inv": self._inv, "overlapping": bool(self._overlapping), "nboundary": int(self._nboundary),
                "n": self.n}
        return arrays, meta

    @classmethod
    def from_arrays(cls, arrays, meta, geoms):
        """The index of :meth:`to_arrays` over ``arrays`` as given (memory-mapped arrays stay mapped).

        ``geoms`` is the polygons in the same order, or a function returning them, called the first
        time a point falls on or near an edge.
        """
        self = cls.__new__(cls)
        if callable(geoms):
            self._geoms_loader = geoms
            self._geoms_lock = threading.Lock()  # not _lock: the GEOS paths hold it while reading geoms
        else:
            self.geoms = np.asarray(geoms, dtype=object).reshape(-1)
        self.n = int(meta["n"])
        self._prepared = False
        self._tree = None
        self._lock = threading.Lock()
        self._x0, self._y0 = float(meta["x0"]), float(meta["y0"])
        self._nc, self._nr = int(meta["nc"]), int(meta["nr"])
        self.cell_size, self._inv = float(meta["cell_size"]), float(meta["inv"])
        self._overlapping, self._nboundary = bool(meta["overlapping"]), int(meta["nboundary"])
        for name in self._ARRAYS:
            setattr(self, name, arrays[name.lstrip("_")])
        self._has_default = bool((self._default >= 0).any())
        self._views()
        return self

    def __getattr__(self, name):
        # the polygons of an index made by from_arrays, decoded when an edge case first needs them
        if name == "geoms" and "_geoms_loader" in self.__dict__:
            with self.__dict__["_geoms_lock"]:
                if "geoms" not in self.__dict__:
                    self.__dict__["geoms"] = np.asarray(self._geoms_loader(), dtype=object).reshape(-1)
            return self.__dict__["geoms"]
        raise AttributeError(name)

    # -- questions --------------------------------------------------------------------------
    @property
    def nbytes(self):
        """Bytes held by the index's arrays (not counting the polygons themselves)."""
        return int(sum(getattr(self, name).nbytes for name in self._ARRAYS))

    @property
    def stats(self):
        """Raster shape and boundary share, for tuning and benchmarks."""
        return {"cell_size": self.cell_size, "rows": self._nr, "cols": self._nc,
                "boundary_cells": self._nboundary, "candidates": len(self._cd),
                "edge_entries": len(self._le), "simple_cells": len(self._simple), "overlapping": self._overlapping, "nbytes": self.nbytes}

    def lookup(self, x, y):
        """Positions of the polygons containing each point (see the module rule); -1 outside.

        Parameters
        ----------
        x, y : array_like of float
            Coordinates in the polygons' CRS; NaN gives -1.

        Returns
        -------
        numpy.ndarray of int32
        """
        x = np.asarray(x, dtype=np.float64).reshape(-1)  # strided columns of an (n, 2) array are fine
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if x.shape != y.shape:
            raise InvalidInput(N_("x has %(x)s values but y has %(y)s."), fix=N_("Give one y for every x."),
                               params={"x": len(x), "y": len(y)})
        return self._lookup_into(x, y, np.empty(len(x), dtype=np.int32))

    def _lookup_into(self, x, y, out):
        _, lookup = _kernels()
        fuzzy = lookup(x, y, self._x0, self._y0, self._inv, self._nc, self._nr, self._table, self._bc, self._cd,
                       self._le, self._default, self._simple, self._nboundary, out)
        if fuzzy:
            pts = np.flatnonzero(out <= -3)
            out[pts] = self._exact(-3 - out[pts].astype(np.int64), x[pts], y[pts])
        return out

    def lookup_one(self, x, y):
        """Position of the polygon containing one point, or -1: the scalar fast path of :meth:`lookup`."""
        fc = (x - self._x0) * self._inv
        fr = (y - self._y0) * self._inv
        if not (0.0 <= fc < self._nc and 0.0 <= fr < self._nr):
            return -1
        v = self._m_table[int(fr) * self._nc + int(fc)]
        if v >= -1:
            return v
        b = -2 - v
        if b >= self._nboundary:
            side, b = self._simple_one(b - self._nboundary, x, y)
            if side is not None:
                return side
        best = self._m_default[b]
        cd = self._m_cd
        for k in range(self._m_bc[2 * b], self._m_bc[2 * b + 1]):
            j = cd[4 * k + 2]
            if 0 <= best < j:
                break
            inside = self._parity_one(k, x, y)
            if inside is None:
                return self._exact_one(b, x, y)
            if inside:
                return j
        return best

    def covering(self, x, y):
        """Positions of every polygon whose closure contains (x, y), ascending (several on a shared edge)."""
        fc = (x - self._x0) * self._inv
        fr = (y - self._y0) * self._inv
        if not (0.0 <= fc < self._nc and 0.0 <= fr < self._nr):
            return []
        if self._overlapping:
            return self._covering_tree(x, y)
        v = self._m_table[int(fr) * self._nc + int(fc)]
        if v >= -1:
            return [] if v == -1 else [v]
        b = -2 - v
        if b >= self._nboundary:
            side, b = self._simple_one(b - self._nboundary, x, y)
            if side is not None:
                return [] if side == -1 else [side]
        out = [] if self._m_default[b] < 0 else [self._m_default[b]]
        cd = self._m_cd
        for k in range(self._m_bc[2 * b], self._m_bc[2 * b + 1]):
            inside = self._parity_one(k, x, y)
            if inside is None:
                inside = self._intersects(cd[4 * k + 2], x, y)
            if inside:
                out.append(cd[4 * k + 2])
        return sorted(out)

    # -- internals --------------------------------------------------------------------------
    def _simple_one(self, s, x, y):
        """(answer, None) in a simple cell, or (None, boundary row) when the point is on or near its edge."""
        r = self._m_simple
        i = 8 * s
        cross = r[i + 2] * (y - r[i + 1]) - r[i + 3] * (x - r[i])
        if -r[i + 4] <= cross <= r[i + 4]:
            return None, int(r[i + 7])
        return int(r[i + 5] if cross > 0 else r[i + 6]), None

    def _parity_one(self, k, x, y):
        """Even-odd test of candidate ``k``: True inside, False outside, None when on or near an edge."""
        cd, le = self._m_cd, self._m_le
        inside = cd[4 * k + 3] == 1
        for i in range(6 * cd[4 * k], 6 * cd[4 * k + 1], 6):
            ty = y - le[i + 1]
            cross = le[i + 2] * ty - le[i + 3] * (x - le[i])
            tol = le[i + 5]
            if -tol <= cross <= tol:
                return None
            if cross > 0 and ty >= 0 and y < le[i + 4]:
                inside = not inside
        return inside

    def _exact_one(self, b, x, y):
        best = self._m_default[b]
        for k in range(self._m_bc[2 * b], self._m_bc[2 * b + 1]):
            j = self._m_cd[4 * k + 2]
            if 0 <= best < j:
                break
            if self._intersects(j, x, y):
                return j
        return best

    def _intersects(self, j, x, y):
        with self._lock:  # prepared GEOS geometries are not documented as thread-safe
            self._prepare()
            return bool(shapely.intersects_xy(self.geoms[j], x, y))

    def _prepare(self):
        if not self._prepared:
            shapely.prepare(self.geoms[~shapely.is_missing(self.geoms)])
            self._prepared = True

    def _covering_tree(self, x, y):
        if self._tree is None:
            self._tree = shapely.STRtree(self.geoms)
        with self._lock:
            hits = self._tree.query(shapely.Point(x, y), predicate="intersects")
        return sorted(int(i) for i in hits)

    def _exact(self, b, x, y):
        """GEOS answers for points (x, y) on or within rounding of an edge in boundary cells ``b``."""
        bc = np.take(self._bc, b, axis=0)
        pts, cand, _ = _ragged(bc[:, 0], bc[:, 1] - bc[:, 0])
        j = self._cd[cand, 2]
        with self._lock:
            self._prepare()
            ok = shapely.intersects_xy(self.geoms[j], x[pts], y[pts])
        d = self._default[b]
        res = np.where(d >= 0, d, _INT_BIG).astype(np.int64)
        np.minimum.at(res, pts[ok], j[ok])
        res[res == _INT_BIG] = -1
        return res


def points_to_grids(points, grids):
    """Positional index into ``grids`` of the grid containing each point, -1 outside every grid.

    Parameters
    ----------
    points : GeoSeries, GeoDataFrame or array_like of shape (n, 2)
        Points in any CRS when a GeoSeries/GeoDataFrame (see below); an array is in the grids' CRS.
    grids : GeoDataFrame or GeoSeries
        Polygons or multipolygons; positions are 0 … len(grids) - 1.

    Returns
    -------
    numpy.ndarray of int64
        Identical to ``geopandas.sjoin(points, grids.to_crs(points.crs), predicate="within")`` for
        every point not on a boundary; a point on an edge or vertex goes to the lowest position whose
        closure contains it (sort ``grids`` by code first and the lowest code wins, the lookup rule).

    Raises
    ------
    InvalidInput
        When ``points`` holds non-point geometries or is not (n, 2).

    Notes
    -----
    Points in another CRS than the grids are not converted: the grids' few vertices are (about
    100,000 for 15,000 grids, against millions of points), exactly as ``GeoSeries.to_crs`` does, and
    the points are looked up in their own CRS. A grid's straight edge is straight in the points' CRS
    then, as in ``sjoin(points, grids.to_crs(points.crs))``; converting the points instead would move
    the answer of a point within millimetres of an edge (the edge's curvature between the two CRSs).
    On several cores the index is built while the points' coordinates are read out of shapely.
    """
    series = getattr(points, "geometry", None) if hasattr(points, "geometry") else None
    crs = getattr(grids, "crs", None)
    if series is not None and crs is not None and series.crs is not None and series.crs != crs:
        grids = grids.geometry.to_crs(series.crs)
    geoms = np.asarray(grids.geometry.values if hasattr(grids, "geometry") else grids, dtype=object)
    values = np.asarray(series.values, dtype=object) if series is not None else None
    xy = _xy_array(points) if values is None else None
    n = len(xy) if values is None else len(values)
    out = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return out
    # cells per polygon side: the build costs ~ k, the boundary tests ~ points / k. Compiled, both are
    # cheap and the total is flat from 3 to 8 (3M points, 15,000 grids); fewer cells hold less memory.
    per_side = int(np.clip(np.sqrt(n / max(len(geoms), 1)) * 0.3, 4, CELLS_PER_POLYGON_SIDE))
    threads = min(_THREADS, (os.cpu_count() or 1) - 1) if n >= _THREADED_FROM else 0
    if threads <= 0:
        index = PolygonIndex(geoms, cells_per_side=per_side)
        if values is None:
            return index._lookup_into(xy[:, 0], xy[:, 1], out)
        # read coordinates out of the shapely points a chunk at a time: whole arrays would be 48 MB of
        # fresh pages for 3M points, and first-touching them costs more than reading the points
        for i in range(0, n, _CHUNK):
            x, y = _point_xy(values[i:i + _CHUNK], i)
            index._lookup_into(x, y, out[i:i + _CHUNK])
        return out
    # Reading 3M coordinates out of shapely (~0.1 s), the build (~0.06 s) and the lookup (~0.09 s) are
    # each too short to matter alone but together are the call: shapely and the compiled kernels release
    # the GIL, so helper threads read the points (or look up half of an array) while this one builds.
    with ThreadPoolExecutor(threads) as pool:
        if values is None:
            index = PolygonIndex(geoms, cells_per_side=per_side)
            parts = np.array_split(np.arange(n), threads + 1)
            spans = [(int(p[0]), int(p[-1]) + 1) for p in parts if len(p)]
            jobs = [pool.submit(index._lookup_into, xy[a:b, 0], xy[a:b, 1], out[a:b]) for a, b in spans[1:]]
            a, b = spans[0]
            index._lookup_into(xy[a:b, 0], xy[a:b, 1], out[a:b])
            for job in jobs:
                job.result()
            return out
        reads = [(i, pool.submit(_point_xy, values[i:i + _CHUNK], i)) for i in range(0, n, _CHUNK)]
        try:
            index = PolygonIndex(geoms, cells_per_side=per_side)
            for i, job in reads:
                x, y = job.result()
                index._lookup_into(x, y, out[i:i + _CHUNK])
        finally:
            for _, job in reads:
                job.cancel()
    return out


def _point_xy(values, offset=0):
    """x and y of shapely points (NaN for missing and empty ones); ``offset`` numbers them in errors."""
    try:  # the common case in one pass each: get_x gives NaN for missing and non-point geometries
        x, y = shapely.get_x(values), shapely.get_y(values)
        odd = np.flatnonzero(np.isnan(x))
    except shapely.errors.GEOSException:  # an empty point
        x, y = np.full(len(values), np.nan), np.full(len(values), np.nan)
        odd = np.arange(len(values))
    if len(odd):
        kinds = shapely.get_type_id(values[odd])
        bad = odd[(kinds != 0) & (kinds != -1) & ~shapely.is_empty(values[odd])]
        if len(bad):
            i = int(bad[0])
            raise InvalidInput(N_("points holds a %(geom_type)s at position %(value)s, not a point."),
                               fix=N_("Pass points, e.g. frame.geometry.representative_point()."),
                               params={"geom_type": values[i].geom_type, "value": offset + i})
        ok = odd[(kinds == 0) & ~shapely.is_empty(values[odd])]
        x[ok], y[ok] = shapely.get_x(values[ok]), shapely.get_y(values[ok])
    return x, y


def _xy_array(points):
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InvalidInput(N_("points has shape %(shape)s, expected (n, 2) x/y pairs."),
                           fix=N_("Pass an (n, 2) array of x, y or a GeoSeries of points."),
                           params={"shape": arr.shape})
    return arr


def _edges(geoms):
    """Every ring edge of every polygon as (ax, ay, bx, by, owner) arrays; zero-length edges dropped."""
    present = np.flatnonzero(~shapely.is_missing(geoms) & ~shapely.is_empty(geoms))
    if not len(present):
        z = np.zeros(0)
        return z, z, z, z, np.zeros(0, dtype=np.int64)
    parts, part_owner = shapely.get_parts(geoms[present], return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[1:] == ring[:-1]
    a, b = xy[:-1][same], xy[1:][same]
    owner = present[part_owner[ring_part[ring[:-1][same]]]].astype(np.int64)
    keep = (a[:, 0] != b[:, 0]) | (a[:, 1] != b[:, 1])
    a, b, owner = a[keep], b[keep], owner[keep]
    # point every edge upwards (a is the lower end): the crossing test then needs no sign juggling
    flip = b[:, 1] < a[:, 1]
    lo = np.where(flip[:, None], b, a)
    hi = np.where(flip[:, None], a, b)
    return lo[:, 0].copy(), lo[:, 1].copy(), hi[:, 0].copy(), hi[:, 1].copy(), owner


def _ragged(starts, counts):
    """(group, value, group offsets) for every value in start … start + count - 1 of each group."""
    counts = np.maximum(np.asarray(counts, dtype=np.int64), 0)
    ends = np.cumsum(counts)
    offsets = ends - counts
    total = int(ends[-1]) if len(ends) else 0
    group = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    values = np.arange(total, dtype=np.int64)
    values += np.repeat(np.asarray(starts, dtype=np.int64) - offsets, counts)
    return group, values, offsets


# -- compiled kernels ---------------------------------------------------------------------------

def _kernels():
    """(build, lookup): the compiled kernels below."""
    return compiled(_build_kernel, _lookup_kernel)


def _build_kernel(ax, ay, bx, by, owner, x0, y0, w, inv, nc, nr, eps):
    """The whole raster in one pass over the rows (compiled by numba; see the module docstring).

    Per row band: the (edge, row) pairs of each polygon in turn (ascending position), the cells they
    touch become candidates, and the polygon's even-odd intervals along the row's centre line fill
    the cells they cover. Then each boundary cell of the row gets its candidates' edge lists, parity
    constants and default, and is marked simple when one straight edge crosses it. Returns the arrays
    of :class:`PolygonIndex` (views into buffers sized by an upper bound: untouched pages cost nothing).
    """
    ne = len(ax)
    ncell = nr * nc
    wp = w + 2 * eps
    # (edge, row band) pairs by counting sort on the row: within a row edges keep their order,
    # so each polygon's edges stay together and polygons come in ascending position
    rlo = np.empty(ne, np.int64)
    rhi = np.empty(ne, np.int64)
    rstart = np.zeros(nr + 1, np.int64)
    for e in range(ne):
        lo = min(max(math.floor((ay[e] - eps - y0) * inv), 0.0), nr - 1.0)
        hi = min(max(math.floor((by[e] + eps - y0) * inv), 0.0), nr - 1.0)
        rlo[e] = int(lo)
        rhi[e] = int(hi)
        for r in range(rlo[e], rhi[e] + 1):
            rstart[r + 1] += 1
    for r in range(nr):
        rstart[r + 1] += rstart[r]
    npair = rstart[nr]
    pe = np.empty(npair, np.int64)
    fill = rstart[:nr].copy()
    for e in range(ne):
        for r in range(rlo[e], rhi[e] + 1):
            pe[fill[r]] = e
            fill[r] += 1
    # the columns each pair meets within its padded band
    pc0 = np.empty(npair, np.int64)
    pc1 = np.empty(npair, np.int64)
    ncols = 0
    for r in range(nr):
        band_lo = y0 + r * w - eps
        band_hi = band_lo + w + 2 * eps
        for k in range(rstart[r], rstart[r + 1]):
            e = pe[k]
            dx = bx[e] - ax[e]
            dy = by[e] - ay[e]
            if dy * 1e5 >= abs(dx):
                t0 = min(max((band_lo - ay[e]) / dy, 0.0), 1.0)
                t1 = min(max((band_hi - ay[e]) / dy, 0.0), 1.0)
                xa = ax[e] + t0 * dx
                xb = ax[e] + t1 * dx
                x_lo, x_hi = min(xa, xb), max(xa, xb)
            else:
                x_lo, x_hi = min(ax[e], bx[e]), max(ax[e], bx[e])
            pad = eps + 1e-12 * abs(dx)
            c0 = int(min(max(math.floor((x_lo - pad - x0) * inv), 0.0), nc - 1.0))
            c1 = int(min(max(math.floor((x_hi + pad - x0) * inv), 0.0), nc - 1.0))
            pc0[k] = c0
            pc1[k] = c1
            ncols += c1 - c0 + 1

    table = np.full(ncell + 1, -1, np.int32)  # the last slot answers points off the raster
    cap = max(ncols, 1)
    bcell = np.empty(cap, np.int64)
    bstart = np.empty(cap + 1, np.int64)
    default = np.empty(cap, np.int32)
    bsimple = np.empty(cap, np.int64)
    cd = np.empty(4 * cap, np.int64)
    le = np.empty(12 * cap, np.float64)
    simple = np.empty(8 * cap, np.float64)
    nb = 0
    ncd = 0
    nle = 0
    ns = 0
    overlapping = False
    colmark = np.full(nc, -1, np.int64)   # group that last touched each column
    anymark = np.full(nc, -1, np.int64)   # row whose scanline last covered each column
    ntmark = np.full(nc, -1, np.int64)    # row in which a polygon not touching the cell covered it
    ntdef = np.full(nc, -1, np.int64)
    head = np.full(nc, -1, np.int64)      # this row's candidates: a list per column, polygons ascending
    tail = np.full(nc, -1, np.int64)
    rc_next = np.empty(cap, np.int64)
    rc_own = np.empty(cap, np.int64)
    rc_g0 = np.empty(cap, np.int64)
    rc_g1 = np.empty(cap, np.int64)
    xs = np.empty(64, np.float64)
    gid = 0
    for r in range(nr):
        band_lo = y0 + r * w - eps
        band_hi = band_lo + w + 2 * eps
        yc = y0 + (r + 0.5) * w
        nrc = 0
        cmin = nc
        cmax = -1
        g0 = rstart[r]
        while g0 < rstart[r + 1]:
            p = owner[pe[g0]]
            g1 = g0 + 1
            while g1 < rstart[r + 1] and owner[pe[g1]] == p:
                g1 += 1
            gid += 1
            # cells of this row the polygon's edges touch: candidates
            for k in range(g0, g1):
                for col in range(pc0[k], pc1[k] + 1):
                    if colmark[col] != gid:
                        colmark[col] = gid
                        rc_own[nrc] = p
                        rc_g0[nrc] = g0
                        rc_g1[nrc] = g1
                        rc_next[nrc] = -1
                        if head[col] < 0:
                            head[col] = nrc
                        else:
                            rc_next[tail[col]] = nrc
                        tail[col] = nrc
                        cmin = min(cmin, col)
                        cmax = max(cmax, col)
                        nrc += 1
            # cells whose centre lies inside the polygon along the row's centre line
            nx = 0
            for k in range(g0, g1):
                e = pe[k]
                if ay[e] <= yc and yc < by[e]:
                    if nx == len(xs):
                        bigger = np.empty(2 * nx, np.float64)
                        bigger[:nx] = xs
                        xs = bigger
                    xs[nx] = ax[e] + (yc - ay[e]) * (bx[e] - ax[e]) / (by[e] - ay[e])
                    nx += 1
            xs[:nx].sort()
            for q in range(0, nx - 1, 2):
                ca = int(min(max(math.ceil((xs[q] - x0) * inv - 0.5), 0.0), 1.0 * nc))
                cb = int(min(max(math.floor((xs[q + 1] - x0) * inv - 0.5), -1.0), nc - 1.0))
                for col in range(ca, cb + 1):
                    if anymark[col] == r:
                        overlapping = True
                    anymark[col] = r
                    cell = r * nc + col
                    if table[cell] == -1:
                        table[cell] = p
                    if colmark[col] != gid and ntmark[col] != r:
                        ntmark[col] = r
                        ntdef[col] = p
            g0 = g1
        if nrc == 0:
            continue
        # boundary cells of the row in column order, candidates by ascending polygon within a cell
        for col in range(cmin, cmax + 1):
            if head[col] < 0:
                continue
            bcell[nb] = r * nc + col
            bstart[nb] = ncd // 4
            default[nb] = ntdef[col] if ntmark[col] == r else -1
            X0 = x0 + col * w - eps
            Y0 = y0 + r * w - eps
            nca = 0
            c = head[col]
            head[col] = -1
            while c >= 0:
                nca += 1
                flips = 0
                l0 = nle // 6
                if nle + 6 * (rc_g1[c] - rc_g0[c]) > len(le):
                    bigger = np.empty(2 * len(le) + 6 * (rc_g1[c] - rc_g0[c]), np.float64)
                    bigger[:nle] = le[:nle]
                    le = bigger
                for k in range(rc_g0[c], rc_g1[c]):
                    e = pe[k]
                    if pc0[k] > col and ay[e] <= band_lo and by[e] > band_lo + w + 2 * eps:
                        flips += 1  # wholly right of the cell and spanning the band: always crossed
                    elif pc1[k] >= col:
                        dx = bx[e] - ax[e]
                        dy = by[e] - ay[e]
                        rx = max(abs(X0 - ax[e]), abs(X0 + wp - ax[e]))
                        ry = max(abs(Y0 - ay[e]), abs(Y0 + wp - ay[e]))
                        le[nle] = ax[e]
                        le[nle + 1] = ay[e]
                        le[nle + 2] = dx
                        le[nle + 3] = dy
                        le[nle + 4] = by[e]
                        le[nle + 5] = _ORIENT_TOL * (abs(dx) * ry + abs(dy) * rx)
                        nle += 6
                cd[ncd] = l0
                cd[ncd + 1] = nle // 6
                cd[ncd + 2] = rc_own[c]
                cd[ncd + 3] = flips % 2
                ncd += 4
                c = rc_next[c]
            # simple: one or two candidates, each with the same single edge spanning the band
            bsimple[nb] = -1
            c1s = bstart[nb] * 4
            c2s = c1s + 4 * (nca - 1)
            if (nca <= 2 and default[nb] < 0 and cd[c1s + 1] - cd[c1s] == 1 and cd[c2s + 1] - cd[c2s] == 1):
                m1 = 6 * cd[c1s]
                m2 = 6 * cd[c2s]
                if (le[m1] == le[m2] and le[m1 + 1] == le[m2 + 1] and le[m1 + 2] == le[m2 + 2]
                        and le[m1 + 3] == le[m2 + 3] and le[m1 + 1] <= band_lo and le[m1 + 4] > band_hi):
                    p1, p2, q1, q2 = cd[c1s + 2], cd[c2s + 2], cd[c1s + 3], cd[c2s + 3]
                    j = 8 * ns
                    simple[j] = le[m1]
                    simple[j + 1] = le[m1 + 1]
                    simple[j + 2] = le[m1 + 2]
                    simple[j + 3] = le[m1 + 3]
                    simple[j + 4] = le[m1 + 5]
                    simple[j + 5] = p1 if q1 == 0 else (p2 if q2 == 0 else -1)
                    simple[j + 6] = p1 if q1 == 1 else (p2 if q2 == 1 else -1)
                    simple[j + 7] = nb
                    bsimple[nb] = ns
                    ns += 1
            nb += 1
    bstart[nb] = ncd // 4
    for b in range(nb):
        table[bcell[b]] = -2 - b if bsimple[b] < 0 else -2 - nb - bsimple[b]
    bc = np.empty((nb, 2), np.int64)
    bc[:, 0] = bstart[:nb]
    bc[:, 1] = bstart[1:nb + 1]
    return (table, bc, cd[:ncd].reshape(-1, 4), le[:nle].reshape(-1, 6), default[:nb],
            simple[:8 * ns].reshape(-1, 8), overlapping, nb)


def _lookup_kernel(x, y, x0, y0, inv, nc, nr, table, bc, cd, le, default, simple, nboundary, out):
    """The rule of :meth:`PolygonIndex.lookup_one`, compiled, for every point, into ``out``.

    A point on or too near an edge gets ``-3 - boundary row`` instead: GEOS decides it afterwards.
    Returns how many such points there are.
    """
    nfuzzy = 0
    for i in range(len(x)):
        px = x[i]
        py = y[i]
        fc = (px - x0) * inv
        fr = (py - y0) * inv
        if not (fc >= 0.0 and fc < nc and fr >= 0.0 and fr < nr):
            out[i] = -1
            continue
        v = table[int(fr) * nc + int(fc)]
        if v >= -1:
            out[i] = v
            continue
        b = -2 - v
        if b >= nboundary:
            s = b - nboundary
            cross = simple[s, 2] * (py - simple[s, 1]) - simple[s, 3] * (px - simple[s, 0])
            if abs(cross) > simple[s, 4]:
                out[i] = int(simple[s, 5]) if cross > 0 else int(simple[s, 6])
                continue
            b = int(simple[s, 7])
        best = default[b]
        res = best
        fuzzy = False
        for k in range(bc[b, 0], bc[b, 1]):
            j = cd[k, 2]
            if 0 <= best < j:
                break
            inside = cd[k, 3] == 1
            for m in range(cd[k, 0], cd[k, 1]):
                ty = py - le[m, 1]
                cross = le[m, 2] * ty - le[m, 3] * (px - le[m, 0])
                if abs(cross) <= le[m, 5]:
                    fuzzy = True
                    break
                if cross > 0 and ty >= 0 and py < le[m, 4]:
                    inside = not inside
            if fuzzy:
                break
            if inside:
                res = j
                break
        if fuzzy:
            out[i] = -3 - b
            nfuzzy += 1
        else:
            out[i] = res
    return nfuzzy
