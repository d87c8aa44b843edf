"""Partition a community into contiguous, balanced, compact grids of whole buildings.

How it works (and why this and not a spanning-tree chain)
----------------------------------------------------------
1. **Cells.** Every building gets a cell so that the cells tile the community exactly:

   * ``"voronoi"`` — the Voronoi tessellation of the buildings' representative points
     (:func:`shapely.point_on_surface`, inside even an L-shaped footprint), extended to and
     clipped by the boundary. Buildings on the same point share a cell. A clipped cell that
     falls into pieces keeps the piece holding its building; the other pieces join the
     neighbouring cell they share most boundary with.
   * ``"polygons"`` — the buildings' own polygons, when they already tile the area (census
     blocks, parcels). Chosen by ``cells="auto"`` when the polygons cover at least
     :data:`POLYGON_COVER_SHARE` of the area; slivers the polygons leave are given to a
     neighbour.

2. **Graph.** Two cells are adjacent when they share an edge of positive length (rook
   adjacency, found by matching identical boundary segments, with an exact overlay only for
   the rare pairs whose vertices do not match). An adjacency *crosses a barrier* when the
   segment between the two cells' representative points intersects a barrier line (a road, a
   river). Crossing edges stay in the graph — a grid may have to cross a road when balance
   demands it — but growing across one costs :data:`BARRIER_GROWTH_FACTOR` times its length
   and cutting along one costs only :data:`BARRIER_CUT_SHARE` of its length, so boundaries
   follow barriers wherever the households allow.

3. **Seeds.** Given seed points (service stations) pin one grid each; the rest come from
   household-weighted k-means++ and a few Lloyd steps, drawn from ``seed``.

4. **Balanced growth.** An additively weighted graph Voronoi: one
   Dijkstra run from a virtual source joined to every seed cell by an *offset* assigns each
   cell to the seed it reaches first. Regions of a shortest-path forest are connected by
   construction, so contiguity is never repaired afterwards. Offsets of over-full grids grow
   and seeds move to their grid's household centre, a few dozen times (each run is a scipy
   C Dijkstra, ~1 ms per 1,000 cells); the most balanced labelling wins.

5. **Local search.** Boundary cells move to a neighbouring grid when every move constraint in
   :data:`MOVE_CONSTRAINTS` allows it (plain callables, as in GerryChain): first to bring every
   grid within the tolerance (a squared excess that lets surplus flow along chains of grids),
   then — never leaving the tolerance — to shorten the weighted boundary length, which is what
   raises the Polsby-Popper score.

GerryChain's recursive spanning-tree bisection plus ReCom reaches balance but its random trees
draw ragged shapes and each step re-draws a tree; k-means-style regions are compact but not
contiguous or balanced. Growth from centres gives the compact shape and contiguity at once, and
the local search only polishes — ``bench/partition_bench.py`` measures the difference.

The report
----------
``grids.attrs["report"]`` is a plain, JSON-ready dict: ``max_deviation_pct``,
``within_tolerance``, ``polsby_popper`` / ``contiguous`` per code, ``tiling`` (gap, overlap and
outside areas in m² of a local metric CRS), ``infeasible`` (a list of ``{"kind", "message"}``
findings named in :data:`INFEASIBLE_KINDS`) and what was done (``cells``, ``seconds``).
"""
from __future__ import annotations

import math
import re
import time
from collections import deque
from functools import lru_cache

import geopandas
import numpy as np
import pandas as pd
import pyproj
import shapely
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from .errors import InvalidInput
from .geo.crs import local_metric_crs
from .geo.codes import grid_code, number_west_east_north_south
from .geo.pointindex import points_to_grids

__all__ = [
    "partition_community",
    "MOVE_CONSTRAINTS",
    "INFEASIBLE_KINDS",
    "BARRIER_GROWTH_FACTOR",
    "BARRIER_CUT_SHARE",
    "POLYGON_COVER_SHARE",
]

#: Growing a grid across a barrier costs this many times the distance (so grids stop at roads).
BARRIER_GROWTH_FACTOR = 6.0
#: A grid boundary running along a barrier counts this share of its length (so cuts follow roads).
BARRIER_CUT_SHARE = 0.4
#: A barrier-crossing adjacency left inside a grid costs this share of its length.
BARRIER_INSIDE_COST = 0.0
#: Polygon buildings covering at least this share of the area are taken as the cells themselves.
POLYGON_COVER_SHARE = 0.9
#: The local search aims inside this share of the tolerance, leaving a margin for rounding.
_AIM = 0.9
_GROWTH_ROUNDS = 40
_LLOYD_ROUNDS = 8
_MAX_PASSES = 60
#: Parts up to this many cells also try a k-means++ start.
_SMALL_PART = 4000
#: A tiling is exact when gaps, overlaps and parts outside are below this share of the area.
_EXACT_SHARE = 1e-9

#: Findings the report can hold; the message templates say what to do about each.
INFEASIBLE_KINDS = {
    "no_buildings": "The area to partition has no buildings; it is one grid.",
    "no_households": "No building has households; grids are balanced by building count instead.",
    "more_grids_than_buildings": "{n_grids} grids were asked for but only {n_cells} building sites "
                                 "exist; {made} grids were made. Ask for fewer grids.",
    "building_over_target": "Building {building} holds {households:g} households, more than a grid may "
                            "({limit:g} = target × (1 + tolerance)); its grid is over the limit. "
                            "Raise the target or split the building's households.",
    "part_too_small": "Part {part} of the boundary holds {households:g} households, too few for a grid "
                      "(at least {limit:g}); it joins grid {joined}, which is therefore in several "
                      "pieces. Draw it into a neighbouring community or accept the split grid.",
    "part_unbalanced": "Part {part} of the boundary holds {households:g} households = {share:.2f} grids' "
                       "worth, given {k} grids; whole grids there cannot all be within the tolerance.",
    "empty_part": "Part {part} of the boundary ({area_m2:.0f} m²) holds no building; it joins grid "
                  "{joined}, which is therefore in several pieces.",
    "outside_boundary": "{count} buildings lie outside the boundary (or inside locked grids' holes); "
                        "each joins the grid nearest to it. Check the boundary.",
    "locked_outside": "Locked grid {code} reaches {area_m2:.0f} m² outside the boundary; it is kept as it is.",
    "locked_overlap": "Locked grids overlap by {area_m2:.0f} m²; they are kept as they are.",
    "no_free_grids": "Locked grids use all {n_grids} grids; the rest of the community ({households:g} "
                     "households) is left to the nearest locked grid and uncovered. Ask for more grids.",
    "too_many_seeds": "{n_seeds} seed points were given for {k} grids; only the first {k} seed grids.",
    "seed_outside": "Seed {seed} lies outside the area to partition; it is ignored.",
    "seed_shared": "Seed {seed} falls in the same building cell as seed {other}; it is ignored.",
    "unbalanced": "Grid {code} holds {households:g} households ({deviation:+.1%} of the ideal "
                  "{ideal:.1f}), outside ±{tolerance:.0%}: contiguity, locked grids or barriers do "
                  "not allow better here.",
}


def partition_community(buildings, boundary, *, n_grids=None, target_households=None, tolerance=0.05,
                        barriers=None, locked=None, seed=0, seeds=None, community_code=None,
                        cells="auto"):
    """Split a community into contiguous grids of whole buildings with balanced households.

    Parameters
    ----------
    buildings : geopandas.GeoDataFrame
        Points or polygons with a non-negative ``households`` column (zero is fine).
    boundary : shapely.Polygon or shapely.MultiPolygon
        The community, in the buildings' CRS.
    n_grids : int, optional
        How many grids in all, locked grids included. Exactly one of ``n_grids`` and
        ``target_households``.
    target_households : float, optional
        Households wanted per grid; the grid count is the whole number whose ideal
        (households / count) is nearest to it.
    tolerance : float, default 0.05
        Allowed relative deviation from the ideal households per grid.
    barriers : geopandas.GeoSeries or geopandas.GeoDataFrame, optional
        Lines (roads, rivers) that grid boundaries should follow.
    locked : geopandas.GeoSeries or geopandas.GeoDataFrame, optional
        Existing grid polygons kept exactly as they are (a ``code`` column is kept too); the
        buildings inside them belong to them and are not redistributed.
    seed : int, default 0
        Random seed; the same seed gives the same grids.
    seeds : geopandas.GeoSeries, optional
        Points (e.g. service stations); each lies in a grid of its own, grown from it.
    community_code : str, optional
        12-digit community code; grids then get 15-digit codes (:func:`gridmap.plans.grid_code`).
        Without it codes are ``"001"``, ``"002"``, …. Either way numbered west→east, north→south.
    cells : {"auto", "voronoi", "polygons"}, default "auto"
        How building cells are made (see the module docstring).

    Returns
    -------
    grids : geopandas.GeoDataFrame
        One row per grid, in code order: ``code``, ``households``, ``n_buildings``,
        ``deviation`` (relative to the ideal), ``polsby_popper`` (4πA/P² in metres),
        ``contiguous``, ``locked``, geometry. ``grids.attrs["report"]`` holds the report.
    assignment : pandas.Series
        The positional grid index of each building, aligned with ``buildings``.

    Raises
    ------
    InvalidInput
        When the arguments cannot describe a partition (both or neither of ``n_grids`` and
        ``target_households``, no ``households`` column, a boundary that is not a polygon …).
        What the data cannot satisfy is reported, not raised.
    """
    started = time.perf_counter()
    hh = _check(buildings, boundary, n_grids, target_households, tolerance, community_code, cells)
    crs = buildings.crs
    locked_geoms, locked_codes = _locked(locked, crs)
    barrier_geoms = _lines(barriers, crs)
    seed_geoms = _points(seeds, crs, "seeds")
    findings = []
    work = _Frame(crs, boundary)
    mode = "none"

    points = _representative_points(buildings)
    n_buildings = len(buildings)
    assignment = np.full(n_buildings, -1, dtype=np.int64)
    n_locked = len(locked_geoms)
    if n_locked:
        free = _free_area(boundary, locked_geoms, locked_codes, work, findings)
        inside_locked = points_to_grids(np.column_stack(shapely.get_coordinates(points).T), locked_geoms)
        assignment[inside_locked >= 0] = inside_locked[inside_locked >= 0]
    else:
        free = boundary
    todo = np.flatnonzero(assignment < 0)
    h_free = float(hh[todo].sum())
    k_free = _grid_count(n_grids, target_households, h_free, n_locked, findings)

    if k_free == 0 or shapely.is_empty(free) or len(todo) == 0:
        # Nothing to partition: the free area (if any) is one grid, or no grid when none is left.
        new_grid_geoms = [] if k_free == 0 or shapely.is_empty(free) else [free]
        if k_free == 0 and (len(todo) or not shapely.is_empty(free)):
            findings.append(_finding("no_free_grids", n_grids=n_grids, households=h_free))
        elif len(todo) == 0:
            findings.append(_finding("no_buildings"))
        labels_by_building = np.full(n_buildings, 0 if new_grid_geoms else -1, dtype=np.int64)
    else:
        mode = _cell_mode(cells, buildings, todo, free)
        cell_geoms, building_cell, orphans = _make_cells(mode, buildings, points, todo, free, work)
        graph = _Graph(cell_geoms, work, barrier_geoms)
        cell_hh = np.bincount(building_cell[building_cell >= 0], weights=hh[building_cell >= 0],
                              minlength=len(cell_geoms))
        if h_free <= 0:
            findings.append(_finding("no_households"))
            cell_hh = np.bincount(building_cell[building_cell >= 0], minlength=len(cell_geoms)).astype(float)
        cell_seed = _seed_cells(seed_geoms, cell_geoms, findings)
        cell_label = _partition_cells(graph, cell_hh, k_free, tolerance, cell_seed, seed, findings,
                                      buildings, building_cell, hh, work)
        n_new = int(cell_label.max()) + 1 if len(cell_label) else 0
        new_grid_geoms = _dissolve(cell_geoms, cell_label, n_new)
        labels_by_building = np.full(n_buildings, -1, dtype=np.int64)
        has_cell = building_cell >= 0
        labels_by_building[has_cell] = cell_label[building_cell[has_cell]]
        if len(orphans):
            findings.append(_finding("outside_boundary", count=len(orphans)))
            near = _nearest(work.xy(points[orphans]), work.xy(shapely.point_on_surface(
                np.asarray(new_grid_geoms, dtype=object))))
            labels_by_building[orphans] = near

    # Positions: locked grids first, new grids after; reordered by code below.
    all_geoms = list(locked_geoms) + list(new_grid_geoms)
    is_locked = np.r_[np.ones(n_locked, bool), np.zeros(len(new_grid_geoms), bool)]
    free_rows = np.flatnonzero(assignment < 0)
    assignment[free_rows] = np.where(labels_by_building[free_rows] >= 0,
                                     labels_by_building[free_rows] + n_locked, -1)
    if (assignment < 0).any() and len(all_geoms):  # no free grid: nearest locked grid takes them
        lost = np.flatnonzero(assignment < 0)
        assignment[lost] = _nearest(work.xy(points[lost]),
                                    work.xy(shapely.point_on_surface(np.asarray(all_geoms, dtype=object))))

    codes = _codes(all_geoms, list(locked_codes) + [None] * len(new_grid_geoms), community_code)
    order = np.argsort(codes, kind="stable")
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    assignment = np.where(assignment >= 0, position[np.maximum(assignment, 0)], -1)

    grids = _grids_frame([all_geoms[i] for i in order], [codes[i] for i in order], is_locked[order],
                         assignment, hh, crs)
    report = _report(grids, boundary, work, k_free, n_locked, h_free, tolerance, target_households,
                     findings, started, mode)
    grids.attrs["report"] = report
    return grids, pd.Series(assignment, index=buildings.index, name="grid")


# --- checking the arguments ------------------------------------------------------------------

def _check(buildings, boundary, n_grids, target_households, tolerance, community_code, cells):
    if (n_grids is None) == (target_households is None):
        raise InvalidInput("Pass exactly one of `n_grids` and `target_households`.",
                           fix="E.g. n_grids=12, or target_households=400 to let the count follow.",
                           details={"n_grids": n_grids, "target_households": target_households})
    if n_grids is not None and (isinstance(n_grids, bool) or not isinstance(n_grids, (int, np.integer))
                                or n_grids < 1):
        raise InvalidInput(f"`n_grids` was {n_grids!r} but must be a whole number ≥ 1.", fix="Pass e.g. n_grids=12.")
    if target_households is not None and not (np.isfinite(target_households) and target_households > 0):
        raise InvalidInput(f"`target_households` was {target_households!r} but must be > 0.",
                           fix="Pass e.g. target_households=400.")
    if not (0 <= tolerance < 1):
        raise InvalidInput(f"`tolerance` was {tolerance!r} but must be in [0, 1).", fix="Pass e.g. 0.05 for ±5 %.")
    if cells not in ("auto", "voronoi", "polygons"):
        raise InvalidInput(f'`cells` was "{cells}" but is expected to be in ["auto", "voronoi", "polygons"].',
                           fix='Leave it "auto" unless you know the buildings tile the area.')
    if community_code is not None and not re.fullmatch(r"\d{12}", str(community_code)):
        raise InvalidInput(f"`community_code` was {community_code!r} but must be 12 digits.",
                           fix="Pass the community's 12-digit statistical division code, e.g. 210202003001.")
    if not isinstance(buildings, geopandas.GeoDataFrame) or "households" not in buildings.columns:
        raise InvalidInput("`buildings` must be a GeoDataFrame with a `households` column.",
                           fix="Add households per building (0 where none live).")
    if not isinstance(boundary, (shapely.Polygon, shapely.MultiPolygon)) or boundary.is_empty:
        raise InvalidInput(f"`boundary` was a {type(boundary).__name__} but must be a non-empty (Multi)Polygon.",
                           fix="Pass the community outline as one shapely Polygon or MultiPolygon.")
    if not boundary.is_valid:
        raise InvalidInput(f"`boundary` is not a valid polygon: {shapely.is_valid_reason(boundary)}.",
                           fix="Repair it first (shapely.make_valid) and check its area.")
    hh = pd.to_numeric(buildings["households"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(hh).all() or (hh < 0).any():
        bad = buildings.index[~(np.isfinite(hh) & (hh >= 0))][:5].tolist()
        raise InvalidInput(f"`households` must be a number ≥ 0 for every building; rows {bad} are not.",
                           fix="Put 0 where nobody lives.", details={"rows": [str(b) for b in bad]})
    geom = buildings.geometry.array
    kinds = set(shapely.get_type_id(np.asarray(geom, dtype=object)).tolist()) if len(buildings) else set()
    if not kinds <= {0, 3, 6} or buildings.geometry.isna().any() or buildings.geometry.is_empty.any():
        raise InvalidInput("`buildings` must hold non-empty points or polygons.",
                           fix="Drop rows without a geometry; use footprints or entrance points.")
    return hh


def _locked(locked, crs):
    if locked is None or len(locked) == 0:
        return np.array([], dtype=object), []
    series = locked.geometry if hasattr(locked, "geometry") else locked
    if crs is not None and series.crs is not None and series.crs != crs:
        raise InvalidInput("`locked` is in another CRS than the buildings.", fix=f"Convert it with .to_crs({crs!r}).")
    geoms = np.asarray(series.array if hasattr(series, "array") else series, dtype=object)
    if not np.isin(shapely.get_type_id(geoms), [3, 6]).all():
        raise InvalidInput("`locked` must hold polygons.", fix="Pass the grids to keep as (Multi)Polygons.")
    codes = [str(c) if isinstance(c, str) and c else None for c in locked["code"]] \
        if isinstance(locked, geopandas.GeoDataFrame) and "code" in locked.columns else [None] * len(geoms)
    return geoms, codes


def _lines(barriers, crs):
    if barriers is None or len(barriers) == 0:
        return np.array([], dtype=object)
    series = barriers.geometry if hasattr(barriers, "geometry") else barriers
    if crs is not None and getattr(series, "crs", None) is not None and series.crs != crs:
        series = series.to_crs(crs)
    geoms = np.asarray(series.array if hasattr(series, "array") else series, dtype=object)
    return geoms[~shapely.is_empty(geoms) & ~shapely.is_missing(geoms)]


def _points(seeds, crs, name):
    if seeds is None or len(seeds) == 0:
        return np.array([], dtype=object)
    series = seeds.geometry if hasattr(seeds, "geometry") else seeds
    if crs is not None and getattr(series, "crs", None) is not None and series.crs != crs:
        series = series.to_crs(crs)
    geoms = np.asarray(series.array if hasattr(series, "array") else series, dtype=object)
    if not (shapely.get_type_id(geoms) == 0).all():
        raise InvalidInput(f"`{name}` must hold points.", fix="Pass e.g. service stations as a GeoSeries of points.")
    return geoms


def _grid_count(n_grids, target_households, households, n_locked, findings):
    if n_grids is not None:
        return max(int(n_grids) - n_locked, 0)
    if households <= 0:
        return 1
    low = max(int(households // target_households), 1)
    # The count whose ideal is nearest to the target in relative terms: 5,300 at 1,000 → 5 (1,060).
    return min((low, low + 1), key=lambda k: (abs(households / k / target_households - 1), k))


# --- coordinates ---------------------------------------------------------------------------------

class _Frame:
    """Work coordinates (≈ metres, isotropic) for the algorithm, and a local metric CRS for the report."""

    def __init__(self, crs, boundary):
        self.crs = crs
        c = boundary.centroid
        self.geographic = bool(crs is not None and crs.is_geographic)
        if self.geographic:
            # An affine stretch is isotropic to 1e-4 over a community and inverts exactly enough that
            # shared cell vertices stay shared after the way back.
            self.x0, self.y0 = c.x, c.y
            self.sx = 111_320.0 * math.cos(math.radians(c.y))
            self.sy = 110_574.0
        else:
            self.x0 = self.y0 = 0.0
            unit = 1.0
            if crs is not None:
                try:
                    unit = float(crs.axis_info[0].unit_conversion_factor)
                except (IndexError, AttributeError):
                    unit = 1.0
            self.sx = self.sy = unit
        self._to_metric = None
        if crs is not None:
            lon, lat = (c.x, c.y) if self.geographic else _transformer(crs, _WGS84).transform(c.x, c.y)
            self._to_metric = _transformer(crs, local_metric_crs(float(lon), float(lat)))

    def xy(self, geoms):
        """Work coordinates of points as an (n, 2) array."""
        xy = shapely.get_coordinates(np.asarray(geoms, dtype=object))
        return np.column_stack(((xy[:, 0] - self.x0) * self.sx, (xy[:, 1] - self.y0) * self.sy))

    def to_work(self, geoms):
        if not self.geographic and self.sx == 1.0:
            return geoms
        return shapely.transform(geoms, lambda c: np.column_stack(((c[:, 0] - self.x0) * self.sx,
                                                                   (c[:, 1] - self.y0) * self.sy)))

    def from_work(self, geoms):
        if not self.geographic and self.sx == 1.0:
            return geoms
        return shapely.transform(geoms, lambda c: np.column_stack((c[:, 0] / self.sx + self.x0,
                                                                   c[:, 1] / self.sy + self.y0)))

    def metric(self, geoms):
        """Geometries in the local metric CRS (metres), for areas and perimeters in the report."""
        geoms = np.asarray(geoms, dtype=object)
        if self._to_metric is None:
            return geoms
        return shapely.transform(geoms, lambda c: np.column_stack(self._to_metric.transform(c[:, 0], c[:, 1])))


_WGS84 = pyproj.CRS.from_epsg(4326)


@lru_cache(maxsize=64)
def _transformer(src, dst):
    # Building a transformer queries the PROJ database (tens of ms); communities repeat CRSs.
    return pyproj.Transformer.from_crs(src, dst, always_xy=True)


def _representative_points(buildings):
    geoms = np.asarray(buildings.geometry.array, dtype=object)
    return np.where(shapely.get_type_id(geoms) == 0, geoms, shapely.point_on_surface(geoms))


def _free_area(boundary, locked_geoms, locked_codes, work, findings):
    locked_union = shapely.union_all(locked_geoms)
    outside = shapely.difference(locked_geoms, boundary)
    areas = shapely.area(work.metric(outside))
    for i in np.flatnonzero(areas > 1.0):  # a square metre: below that it is digitising noise
        findings.append(_finding("locked_outside", code=locked_codes[i] or f"#{i + 1}", area_m2=float(areas[i])))
    overlap = float(shapely.area(work.metric(locked_geoms)).sum() - shapely.area(work.metric([locked_union]))[0])
    if overlap > 1.0:
        findings.append(_finding("locked_overlap", area_m2=overlap))
    free = shapely.difference(boundary, locked_union)
    # Overlay leaves zero-width slivers where a locked edge runs along the boundary; drop them.
    parts = [p for p in shapely.get_parts(shapely.get_parts(free)) if isinstance(p, shapely.Polygon)
             and p.area > 1e-12 * boundary.area]
    return shapely.MultiPolygon(parts) if len(parts) > 1 else (parts[0] if parts else shapely.Polygon())


# --- cells ---------------------------------------------------------------------------------------

def _cell_mode(cells, buildings, todo, free):
    if cells != "auto":
        return cells
    geoms = np.asarray(buildings.geometry.array, dtype=object)[todo]
    if not (shapely.get_type_id(geoms) != 0).all():
        return "voronoi"
    return "polygons" if shapely.area(geoms).sum() >= POLYGON_COVER_SHARE * free.area else "voronoi"


def _make_cells(mode, buildings, points, todo, free, work):
    """Cells tiling ``free``; ``building_cell[i]`` is building i's cell (-1 when outside or locked)."""
    n = len(buildings)
    building_cell = np.full(n, -1, dtype=np.int64)
    shapely.prepare(free)
    inside = todo[shapely.intersects(free, points[todo])]
    orphans = np.setdiff1d(todo, inside)
    if mode == "polygons":
        geoms = np.asarray(buildings.geometry.array, dtype=object)[inside]
        # Only polygons touching the outline can stick out: one point inside and no crossing means inside.
        edge = np.unique(shapely.STRtree(geoms).query(shapely.boundary(free), predicate="intersects"))
        geoms = geoms.copy()
        if len(edge):
            out = edge[~shapely.covered_by(geoms[edge], free)]
            geoms[out] = shapely.intersection(geoms[out], free)
        cells = _polygonal(geoms)
        building_cell[inside] = np.arange(len(inside))
        cells = _fill_gaps(cells, free)
        return cells, building_cell, orphans
    xy = work.xy(points[inside])
    # Buildings on one spot (flats sharing an entrance point) share a cell: Voronoi needs distinct sites.
    key = np.round(xy, 3)
    uniq, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    building_cell[inside] = inverse
    sites = shapely.points(xy[first])
    free_work = work.to_work(free)
    if len(sites) == 1:
        return np.array([free], dtype=object), building_cell, orphans
    diagram = shapely.voronoi_polygons(shapely.multipoints(sites), extend_to=free_work, ordered=True)
    raw = np.asarray(shapely.get_parts(diagram), dtype=object)
    if len(raw) != len(sites):  # degenerate (e.g. collinear sites on old GEOS): match by containment
        tree = shapely.STRtree(raw)
        pairs = tree.query(sites, predicate="intersects")
        order = np.full(len(sites), -1)
        order[pairs[0][::-1]] = pairs[1][::-1]
        raw = raw[order]
    raw = work.from_work(raw)
    clipped = shapely.intersection(raw, free)
    cells = _keep_site_parts(clipped, work.from_work(sites), free)
    return cells, building_cell, orphans


def _polygonal(geoms):
    """Drop lines and points an intersection may leave beside the polygons."""
    out = np.array(geoms, dtype=object)
    for i in np.flatnonzero(~np.isin(shapely.get_type_id(out), [3, 6])):
        parts = [p for p in shapely.get_parts(out[i]) if isinstance(p, (shapely.Polygon, shapely.MultiPolygon))]
        out[i] = shapely.union_all(parts) if parts else shapely.Polygon()
    return out


def _keep_site_parts(clipped, sites, free):
    """A clipped cell keeps the part holding its site; stray parts join the neighbour sharing most edge."""
    cells = _polygonal(clipped)
    multi = np.flatnonzero(shapely.get_num_geometries(cells) > 1)
    strays = []
    for i in multi:
        parts = shapely.get_parts(cells[i])
        holds = shapely.intersects(parts, sites[i])
        keep = int(np.argmax(holds)) if holds.any() else int(np.argmax(shapely.area(parts)))
        cells[i] = parts[keep]
        strays.extend(p for j, p in enumerate(parts) if j != keep)
    if strays:
        cells = _attach(cells, np.asarray(strays, dtype=object))
    return cells


def _fill_gaps(cells, free):
    total = shapely.area(cells).sum()
    if abs(total - free.area) <= _EXACT_SHARE * free.area:
        return cells
    gaps = shapely.get_parts(shapely.difference(free, shapely.union_all(cells)))
    gaps = gaps[np.isin(shapely.get_type_id(gaps), [3]) & (shapely.area(gaps) > 0)]
    return _attach(cells, gaps) if len(gaps) else cells


def _attach(cells, pieces):
    """Union each piece into the cell it shares the longest boundary with (nearest when none)."""
    tree = shapely.STRtree(cells)
    extra = {}
    for piece in pieces:
        near = tree.query(piece, predicate="intersects")
        if len(near):
            shared = shapely.length(shapely.intersection(shapely.boundary(cells[near]), piece.boundary))
            best = int(near[int(np.argmax(shared))]) if shared.max() > 0 else None
        else:
            best = None
        if best is None:
            # An empty island: keep it as its own building-less cell so the report can name it.
            best = -1
        extra.setdefault(best, []).append(piece)
    out = cells.copy()
    for i, group in extra.items():
        if i >= 0:
            out[i] = shapely.union_all([out[i], *group])
    if -1 in extra:
        out = np.concatenate([out, np.asarray(extra[-1], dtype=object)])
    return out


# --- the cell graph ------------------------------------------------------------------------------

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


def _outline(cells):
    """The outline of a tiling; a coverage union when the cells are clean, a full union otherwise."""
    try:
        merged = shapely.coverage_union_all(cells)
        if abs(merged.area - shapely.area(cells).sum()) <= 1e-9 * max(merged.area, 1e-300):
            return merged
    except shapely.errors.GEOSException:
        pass
    return shapely.union_all(cells)


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


# --- seeds ---------------------------------------------------------------------------------------

def _seed_cells(seed_geoms, cell_geoms, findings):
    if not len(seed_geoms):
        return np.zeros(0, dtype=np.int64)
    hit = points_to_grids(shapely.get_coordinates(seed_geoms), cell_geoms)
    out, seen = [], {}
    for s, c in enumerate(hit.tolist()):
        if c < 0:
            findings.append(_finding("seed_outside", seed=s))
        elif c in seen:
            findings.append(_finding("seed_shared", seed=s, other=seen[c]))
        else:
            seen[c] = s
            out.append(c)
    return np.array(out, dtype=np.int64)


def _kmeanspp(xy, weight, k, fixed, rng):
    """Household-weighted k-means++ centres (cell indexes), keeping ``fixed`` cells as the first."""
    chosen = list(fixed)
    w = weight + 1e-9 * max(weight.max(), 1.0)
    if not chosen:
        chosen.append(int(rng.choice(len(xy), p=w / w.sum())))
    d2 = np.min(((xy[:, None, :] - xy[chosen][None, :, :]) ** 2).sum(-1), axis=1)
    while len(chosen) < k:
        p = w * d2
        if p.sum() <= 0:
            rest = np.setdiff1d(np.arange(len(xy)), chosen)
            chosen.append(int(rest[0]))
        else:
            chosen.append(int(rng.choice(len(xy), p=p / p.sum())))
        d2 = np.minimum(d2, ((xy - xy[chosen[-1]]) ** 2).sum(-1))
    return np.array(chosen, dtype=np.int64)


def _lloyd(xy, weight, centres, n_fixed):
    """A few weighted Lloyd steps in the plane; fixed (seeded) centres stay put."""
    w = weight + 1e-9 * max(weight.max(), 1.0)
    for _ in range(_LLOYD_ROUNDS):
        d2 = ((xy[:, None, :] - xy[centres][None, :, :]) ** 2).sum(-1)
        near = np.argmin(d2, axis=1)
        sums = np.zeros((len(centres), 2))
        np.add.at(sums, near, xy * w[:, None])
        tot = np.bincount(near, weights=w, minlength=len(centres))
        moved = centres.copy()
        for j in range(n_fixed, len(centres)):
            if tot[j] > 0:
                target = sums[j] / tot[j]
                members = np.flatnonzero(near == j)
                moved[j] = members[np.argmin(((xy[members] - target) ** 2).sum(-1))]
        if len(set(moved.tolist())) < len(moved):
            break
        centres = moved
    return centres


# --- partitioning the cell graph -----------------------------------------------------------------

def _partition_cells(graph, cell_hh, k, tolerance, cell_seed, seed, findings, buildings, building_cell,
                     hh, work):
    rng = np.random.default_rng(seed)
    n = graph.n
    made = min(k, n)
    if k > n:
        findings.append(_finding("more_grids_than_buildings", n_grids=k, n_cells=n, made=made))
    k = made
    total = float(cell_hh.sum())
    ideal = total / k
    limit = ideal * (1 + tolerance)
    for b in np.flatnonzero(hh > limit):
        if building_cell[b] >= 0:
            findings.append(_finding("building_over_target", building=str(buildings.index[b]),
                                     households=float(hh[b]), limit=limit))
    adj = csr_matrix((np.ones(len(graph.i)), (graph.i, graph.j)), shape=(n, n))
    n_comp, comp = connected_components(adj, directed=False)
    comp_hh = np.bincount(comp, weights=cell_hh, minlength=n_comp)
    comp_cells = np.bincount(comp, minlength=n_comp)
    share = _allocate(comp_hh, comp_cells, k, ideal)
    labels = np.full(n, -1, dtype=np.int64)
    next_label = 0
    # Seeds pin grids in their own part of the boundary.
    seeds_of = {c: [int(s) for s in cell_seed if comp[s] == c] for c in range(n_comp)}
    pending = []
    for c in range(n_comp):
        cells_c = np.flatnonzero(comp == c)
        kc = share[c]
        if kc == 0:
            pending.append(c)
            continue
        if len(seeds_of[c]) > kc:
            findings.append(_finding("too_many_seeds", n_seeds=len(seeds_of[c]), k=kc))
        if kc > 0 and abs(comp_hh[c] / kc / ideal - 1) > tolerance and n_comp > 1 and ideal > 0:
            findings.append(_finding("part_unbalanced", part=c + 1, households=float(comp_hh[c]),
                                     share=float(comp_hh[c] / ideal), k=kc))
        local = _grow_and_polish(graph, cells_c, cell_hh, kc, ideal, tolerance, seeds_of[c][:kc], rng)
        labels[cells_c] = local + next_label
        next_label += kc
    for c in pending:  # parts too small for a grid join the nearest grid
        cells_c = np.flatnonzero(comp == c)
        others = np.flatnonzero(labels >= 0)
        if not len(others):
            labels[cells_c] = 0
            next_label = max(next_label, 1)
            continue
        # The grid geometrically nearest to the part (the same rule a planner would apply by eye).
        (src, dst), gap = shapely.STRtree(graph.cells[others]).query_nearest(
            graph.cells[cells_c], return_distance=True, all_matches=False)
        near = others[dst[int(np.argmin(gap))]]
        labels[cells_c] = labels[near]
        if comp_hh[c] > 0:
            findings.append(_finding("part_too_small", part=c + 1, households=float(comp_hh[c]),
                                     limit=ideal * (1 - tolerance), joined=f"#{labels[near] + 1}"))
        else:
            findings.append(_finding("empty_part", part=c + 1, joined=f"#{labels[near] + 1}",
                                     area_m2=float(graph.area[cells_c].sum())))
    return labels


def _allocate(comp_hh, comp_cells, k, ideal):
    """Grids per part of the boundary: largest remainder on households, each part ≤ its cells."""
    n_comp = len(comp_hh)
    if n_comp == 1:
        return np.array([min(k, int(comp_cells[0]))])
    quota = comp_hh / ideal if ideal > 0 else comp_cells * k / comp_cells.sum()
    share = np.minimum(np.floor(quota).astype(int), comp_cells)
    order = np.argsort(-(quota - np.floor(quota)), kind="stable")
    for c in order:
        if share.sum() >= k:
            break
        if share[c] < comp_cells[c] and quota[c] >= 0.5:
            share[c] += 1
    while share.sum() < k:  # leftovers go where a grid fits the most households
        room = np.where(share < comp_cells, comp_hh / np.maximum(share, 1) * (quota > 0), -1)
        if room.max() < 0:
            break
        share[int(np.argmax(room))] += 1
    while share.sum() > k:
        share[int(np.argmax(share))] -= 1
    return share


def _grow_and_polish(graph, cells_c, cell_hh, k, ideal, tolerance, fixed, rng):
    """Labels 0..k-1 for the cells of one connected part: the best of a few polished starts."""
    m = len(cells_c)
    if k == 1:
        return np.zeros(m, dtype=np.int64)
    local_of = np.full(graph.n, -1, dtype=np.int64)
    local_of[cells_c] = np.arange(m)
    sel = (local_of[graph.i] >= 0)
    ei, ej = local_of[graph.i[sel]], local_of[graph.j[sel]]
    dist, length, crosses = graph.dist[sel], graph.length[sel], graph.crosses[sel]
    xy, h = graph.xy[cells_c], cell_hh[cells_c]
    target = h.sum() / k
    # Ties on a lattice break by a seed-drawn jitter, so another seed explores another layout.
    jitter = 1.0 + 1e-3 * rng.random(len(ei))
    step = dist * jitter * np.where(crosses, BARRIER_GROWTH_FACTOR, 1.0)
    # Cutting along a barrier is cheap and leaving one inside a grid is dear: net, it pays to cut there.
    cut_w = length * np.where(crosses, BARRIER_CUT_SHARE - BARRIER_INSIDE_COST, 1.0)
    fixed_local = [int(local_of[s]) for s in fixed]
    radius = math.sqrt(graph.area[cells_c].sum() / (math.pi * k))
    pinned = set(fixed_local)
    split = _bisect(xy, h, k, rng)
    starts = []
    if not fixed_local:
        starts.append(_repair(m, ei, ej, length, split, h, k))
    centres = _medoids(xy, h, split, k, fixed_local, rng)
    starts.append(_grow(m, ei, ej, step, centres, h, target, tolerance, radius, len(fixed_local), xy))
    if m <= _SMALL_PART:  # a third, k-means++ start costs little on a community-sized graph
        centres = _lloyd(xy, h, _kmeanspp(xy, h, k, fixed_local, rng), len(fixed_local))
        starts.append(_grow(m, ei, ej, step, centres, h, target, tolerance, radius, len(fixed_local), xy))
    best, best_score = None, None
    for labels in starts:
        labels = _polish(m, ei, ej, cut_w, labels, h, k, target, tolerance, pinned)
        score = _score(labels, ei, ej, cut_w, h, k, target, tolerance)
        if best_score is None or score < best_score:
            best, best_score = labels, score
    return best


def _score(labels, ei, ej, cut_w, h, k, target, tolerance):
    """Lower is better: households outside the tolerance first, then the weighted boundary length."""
    pop = np.bincount(labels, weights=h, minlength=k)
    excess = np.maximum(np.abs(pop - target) - tolerance * target, 0).sum()
    return (round(float(excess), 6), float(cut_w[labels[ei] != labels[ej]].sum()))


def _bisect(xy, h, k, rng):
    """Recursive balanced splits by straight lines: compact, balanced, not always contiguous."""
    labels = np.zeros(len(xy), dtype=np.int64)
    stack = [(np.arange(len(xy)), k, 0)]
    while stack:
        idx, kk, base = stack.pop()
        if kk == 1 or len(idx) <= 1:
            labels[idx] = base
            continue
        k1 = kk // 2
        pts, w = xy[idx], h[idx]
        # Cut across the direction that makes the shortest cut line, with a seed-drawn tilt.
        angles = np.arange(6) * np.pi / 6 + rng.uniform(-0.15, 0.15)
        across = np.stack([-np.sin(angles), np.cos(angles)], axis=1)
        widths = np.ptp(pts @ across.T, axis=0)
        a = angles[int(np.argmin(widths + 1e-9 * np.arange(6)))]
        proj = pts @ np.array([np.cos(a), np.sin(a)])
        order = np.argsort(proj, kind="stable")
        cum = np.cumsum(w[order])
        goal = cum[-1] * k1 / kk
        lo, hi = k1, len(idx) - (kk - k1)  # each side keeps at least as many cells as grids
        if hi < lo:
            lo = hi = max(min(k1, len(idx) - 1), 1)
        cand = np.arange(lo, hi + 1)
        err = np.abs(cum[cand - 1] - goal)
        ties = cand[err <= err.min() + 1e-9]
        cut = int(ties[len(ties) // 2])  # among zero-household ties, cut mid-way
        stack.append((idx[order[:cut]], k1, base))
        stack.append((idx[order[cut:]], kk - k1, base + k1))
    return labels


def _repair(m, ei, ej, length, labels, h, k):
    """Keep each grid's largest piece; other pieces go to the neighbour they share most edge with."""
    labels = labels.copy()
    same = labels[ei] == labels[ej]
    g = csr_matrix((np.ones(int(same.sum())), (ei[same], ej[same])), shape=(m, m))
    _, piece = connected_components(g, directed=False)
    weight = np.bincount(piece, weights=h + 1e-6, minlength=piece.max() + 1)
    best = np.full(k, -1)
    for p in np.argsort(-weight, kind="stable"):
        lab = labels[np.flatnonzero(piece == p)[0]]
        if best[lab] < 0:
            best[lab] = p
    keep = np.isin(piece, best[best >= 0])
    labels[~keep] = -1
    adj = [[] for _ in range(m)]
    for a, b, ln in zip(ei.tolist(), ej.tolist(), length.tolist()):
        adj[a].append((b, ln))
        adj[b].append((a, ln))
    lab = labels.tolist()
    todo = [v for v in range(m) if lab[v] < 0]
    while todo:
        rest = []
        for v in todo:
            votes = {}
            for u, ln in adj[v]:
                if lab[u] >= 0:
                    votes[lab[u]] = votes.get(lab[u], 0.0) + ln
            if votes:
                lab[v] = max(sorted(votes), key=votes.get)
            else:
                rest.append(v)
        if len(rest) == len(todo):
            break
        todo = rest
    return np.array(lab, dtype=np.int64)


def _medoids(xy, h, split, k, fixed, rng):
    """Growth centres: the seeds, then the household centres of the split's parts without a seed."""
    centres = list(fixed)
    parts = sorted(range(k), key=lambda j: -h[split == j].sum())
    for j in parts:
        if len(centres) == k:
            break
        members = np.flatnonzero(split == j)
        if not len(members) or any(split[c] == j for c in fixed):
            continue
        w = h[members] + 1e-9
        c = (xy[members] * w[:, None]).sum(0) / w.sum()
        cand = members[np.argmin(((xy[members] - c) ** 2).sum(-1))]
        if cand not in centres:
            centres.append(int(cand))
    if len(centres) < k:
        centres = list(_kmeanspp(xy, h, k, centres, rng))
    return np.array(centres, dtype=np.int64)


def _grow(m, ei, ej, step, centres, h, target, tolerance, radius, n_fixed, xy):
    """Balanced, additively weighted graph Voronoi: a Dijkstra forest from offset centres."""
    k = len(centres)
    rows = np.r_[ei, ej, np.full(k, m)]
    offsets = np.zeros(k)
    best, best_key = None, None
    lr = 0.6 * radius
    for rnd in range(_GROWTH_ROUNDS):
        # scipy drops explicit zeros, so every offset edge gets a floor of a micro-metre.
        cols = np.r_[ej, ei, centres]
        vals = np.r_[step, step, offsets - offsets.min() + 1e-6]
        g = csr_matrix((vals, (rows, cols)), shape=(m + 1, m + 1))
        dist, pred = dijkstra(g, directed=True, indices=m, return_predecessors=True)
        labels = _forest_labels(pred, dist, centres, m)
        pop = np.bincount(labels[labels >= 0], weights=h[labels >= 0], minlength=k)
        dev = pop / target - 1 if target > 0 else np.zeros(k)
        key = (round(float(np.abs(dev).max()), 4), rnd)
        if best_key is None or key < best_key:
            best, best_key = labels.copy(), key
        if np.abs(dev).max() <= 0.5 * tolerance:
            break
        offsets = offsets + lr * np.clip(dev, -1.0, 1.0)
        lr *= 0.93
        # Recentre each free grid on its household centre (a cell of its own, so it stays inside).
        for j in range(n_fixed, k):
            members = np.flatnonzero(labels == j)
            if not len(members):
                continue
            w = h[members] + 1e-9
            c = (xy[members] * w[:, None]).sum(0) / w.sum()
            centres[j] = members[np.argmin(((xy[members] - c) ** 2).sum(-1))]
    unreached = best < 0
    if unreached.any():  # cannot happen in a connected part; kept total for safety
        best[unreached] = 0
    return best


def _forest_labels(pred, dist, centres, m):
    labels = np.full(m + 1, -1, dtype=np.int64)
    labels[centres] = np.arange(len(centres))
    order = np.argsort(dist[:m], kind="stable")
    p = pred.tolist()
    lab = labels.tolist()
    for v in order.tolist():
        if lab[v] < 0 and p[v] >= 0:
            lab[v] = lab[p[v]]
    return np.array(lab[:m], dtype=np.int64)


# --- local search --------------------------------------------------------------------------------
# A move is (cell, from-grid, to-grid); every constraint must allow it. Constraints are plain
# callables over the search state, so a caller's rule (a grid must keep its party branch) is one more
# function in the tuple, not another branch in the loop.

class _State:
    def __init__(self, m, ei, ej, cut_w, labels, h, k, target, tolerance, pinned):
        self.ei, self.ej = ei, ej
        self.adj = [[] for _ in range(m)]
        self.w = [[] for _ in range(m)]
        for a, b, wt in zip(ei.tolist(), ej.tolist(), cut_w.tolist()):
            self.adj[a].append(b)
            self.w[a].append(wt)
            self.adj[b].append(a)
            self.w[b].append(wt)
        self.labels = labels.tolist()
        self.h = h.tolist()
        self.pop = np.bincount(labels, weights=h, minlength=k).tolist()
        self.size = np.bincount(labels, minlength=k).tolist()
        self.target = target
        self.limit = _AIM * tolerance * target
        self.pinned = pinned


def _not_pinned(state, cell, src, dst):
    """A seed's cell stays in the grid grown from it."""
    return cell not in state.pinned


def _not_emptying(state, cell, src, dst):
    """A grid keeps at least one cell."""
    return state.size[src] > 1


def _keeps_contiguity(state, cell, src, dst):
    """The source grid stays one piece without the cell (the destination touches it already)."""
    adj, labels = state.adj, state.labels
    nb = [n for n in adj[cell] if labels[n] == src]
    if len(nb) <= 1:
        return True
    want = set(nb)
    # Usually the cell's neighbours in the grid touch each other around it: no search needed.
    seen, stack = {nb[0]}, [nb[0]]
    while stack:
        u = stack.pop()
        for v in adj[u]:
            if v in want and v not in seen:
                seen.add(v)
                stack.append(v)
    if len(seen) == len(want):
        return True
    seen, queue, missing = {nb[0], cell}, deque([nb[0]]), len(want) - 1
    while queue:
        u = queue.popleft()
        for v in adj[u]:
            if v not in seen and labels[v] == src:
                seen.add(v)
                if v in want:
                    missing -= 1
                    if missing == 0:
                        return True
                queue.append(v)
    return False


MOVE_CONSTRAINTS = (_not_pinned, _not_emptying, _keeps_contiguity)


def _excess(pop, state):
    return max(abs(pop - state.target) - state.limit, 0.0)


def _polish(m, ei, ej, cut_w, labels, h, k, target, tolerance, pinned):
    state = _State(m, ei, ej, cut_w, labels, h, k, target, tolerance, pinned)
    scale = max(target, 1e-9)
    perim = float(np.mean(cut_w)) if len(cut_w) else 1.0
    # Stage 1 balances (squared excess outside the aim, boundary length only breaking ties);
    # stage 2 shortens boundaries without leaving the aim.
    for stage in (1, 2):
        for _ in range(_MAX_PASSES):
            if not _pass(state, stage, scale, perim):
                break
    return np.array(state.labels, dtype=np.int64)


def _pass(state, stage, scale, perim):
    adj, w, labels, pop, h = state.adj, state.w, state.labels, state.pop, state.h
    moved = False
    if stage == 1 and all(_excess(p, state) == 0 for p in pop):
        return False
    lab = np.asarray(labels)
    cut = lab[state.ei] != lab[state.ej]
    for cell in np.unique(np.r_[state.ei[cut], state.ej[cut]]).tolist():
        src = labels[cell]
        gain = {}
        for n, wt in zip(adj[cell], w[cell]):
            gain[labels[n]] = gain.get(labels[n], 0.0) + wt
        if len(gain) == 1:
            continue
        best, best_delta = None, (0.0, -1e-12)
        hc = h[cell]
        for dst, along in gain.items():
            if dst == src:
                continue
            d_cut = (gain.get(src, 0.0) - along) / perim
            ps, pd_ = pop[src], pop[dst]
            if stage == 1:
                before = _excess(ps, state) ** 2 + _excess(pd_, state) ** 2
                after = _excess(ps - hc, state) ** 2 + _excess(pd_ + hc, state) ** 2
                d_bal = (after - before) / scale ** 2
                if d_bal > 0 or (d_bal == 0 and d_cut >= 0):
                    continue
                # Balance first; boundary length only orders moves that balance equally.
                delta = (d_bal, d_cut) if d_bal < 0 else (0.0, d_cut)
            else:
                if hc > 0 and (_excess(ps - hc, state) > _excess(ps, state)
                               or _excess(pd_ + hc, state) > _excess(pd_, state)):
                    continue
                if d_cut >= 0:
                    continue
                delta = (0.0, d_cut)
            if delta < best_delta:
                best, best_delta = dst, delta
        if best is None:
            continue
        if not all(rule(state, cell, src, best) for rule in MOVE_CONSTRAINTS):
            continue
        labels[cell] = best
        pop[src] -= hc
        pop[best] += hc
        state.size[src] -= 1
        state.size[best] += 1
        moved = True
    return moved


# --- assembling the answer -----------------------------------------------------------------------

def _dissolve(cells, labels, k):
    out = []
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(k + 1))
    for j in range(k):
        group = cells[order[bounds[j]:bounds[j + 1]]]
        try:
            merged = shapely.coverage_union_all(group)
            if abs(merged.area - shapely.area(group).sum()) > 1e-9 * max(merged.area, 1e-300):
                raise shapely.errors.GEOSException("not a clean coverage")
        except shapely.errors.GEOSException:
            merged = shapely.union_all(group)
        out.append(merged)
    return out


def _nearest(xy, targets):
    return cKDTree(targets).query(xy)[1].astype(np.int64)


def _codes(geoms, given, community_code):
    seq = number_west_east_north_south(np.asarray(geoms, dtype=object)) if geoms else np.zeros(0, int)
    taken = {int(c[-3:]) for c in given if c and c[-3:].isdigit()}
    free = (s for s in range(1, 10_000) if s not in taken)
    codes = list(given)
    for i in np.argsort(seq, kind="stable"):
        if not codes[i]:
            s = next(free)
            codes[i] = grid_code(community_code, s) if community_code else f"{s:03d}"
    return codes


def _grids_frame(geoms, codes, is_locked, assignment, hh, crs):
    k = len(geoms)
    ok = assignment >= 0
    households = np.bincount(assignment[ok], weights=hh[ok], minlength=k)
    count = np.bincount(assignment[ok], minlength=k)
    if np.all(np.mod(hh, 1) == 0):
        households = households.astype(np.int64)
    return geopandas.GeoDataFrame({"code": codes, "households": households, "n_buildings": count,
                                   "locked": is_locked}, geometry=list(geoms), crs=crs)


def _report(grids, boundary, work, k_free, n_locked, h_free, tolerance, target_households, findings,
            started, cell_mode):
    metric = work.metric(grids.geometry.array)
    area, perim = shapely.area(metric), shapely.length(metric)
    pp = np.where(perim > 0, 4 * np.pi * area / np.maximum(perim, 1e-300) ** 2, 0.0)
    parts = shapely.get_num_geometries(metric)
    free = ~grids["locked"].to_numpy()
    n_free = int(free.sum())
    ideal = h_free / n_free if n_free else 0.0
    dev = (grids["households"].to_numpy(dtype=float) / ideal - 1) if ideal > 0 else np.zeros(len(grids))
    grids["deviation"] = dev
    grids["polsby_popper"] = pp
    grids["contiguous"] = parts == 1
    for i in np.flatnonzero(free & (np.abs(dev) > tolerance + 1e-12)):
        findings.append(_finding("unbalanced", code=grids["code"].iat[i],
                                 households=float(grids["households"].iat[i]), deviation=float(dev[i]),
                                 ideal=ideal, tolerance=tolerance))
    # Tiling is checked in the input CRS, where shared vertices are bit-identical (reprojecting bends
    # straight edges differently for the outline and for a grid), then scaled to square metres.
    geoms = np.asarray(grids.geometry.array, dtype=object)
    union = shapely.union_all(geoms) if len(geoms) else shapely.Polygon()
    to_m2 = float(shapely.area(work.metric([boundary]))[0] / boundary.area) if boundary.area else 1.0
    b_area = boundary.area * to_m2
    gap = float(shapely.difference(boundary, union).area) * to_m2
    outside = float(shapely.difference(union, boundary).area) * to_m2
    overlap = float(shapely.area(geoms).sum() - union.area) * to_m2
    exact = max(gap, outside, abs(overlap)) <= _EXACT_SHARE * b_area
    codes = grids["code"].tolist()
    free_dev = np.abs(dev[free]) if n_free else np.zeros(0)
    return {
        "n_grids": len(grids),
        "n_locked": n_locked,
        "cells": cell_mode,
        "ideal_households": ideal,
        "target_households": target_households,
        "tolerance": tolerance,
        "max_deviation_pct": float(100 * free_dev.max()) if len(free_dev) else 0.0,
        "within_tolerance": bool((free_dev <= tolerance + 1e-12).all()),
        "polsby_popper": dict(zip(codes, pp.tolist())),
        "mean_polsby_popper": float(pp[free].mean()) if n_free else 0.0,
        "min_polsby_popper": float(pp[free].min()) if n_free else 0.0,
        "contiguous": dict(zip(codes, (parts == 1).tolist())),
        "all_contiguous": bool((parts == 1).all()),
        "tiling": {"exact": bool(exact), "boundary_m2": b_area, "gap_m2": gap, "overlap_m2": overlap,
                   "outside_m2": outside},
        "infeasible": findings,
        "feasible": not any(f["kind"] not in ("outside_boundary", "seed_outside", "seed_shared",
                                              "too_many_seeds") for f in findings),
        "seconds": time.perf_counter() - started,
    }


def _finding(kind, **values):
    return {"kind": kind, "message": INFEASIBLE_KINDS[kind].format(**values), **values}
