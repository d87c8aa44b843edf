"""Partition a community into contiguous, balanced, compact grids of whole buildings.

How it works (and why this and not a spanning-tree chain)
----------------------------------------------------------
1. **Cells.** Every building gets a cell so that the cells tile the community exactly and every
   footprint lies wholly in its own cell (so no grid boundary ever cuts a building):

   * ``"voronoi"`` — a morphological tessellation: the Voronoi diagram of points every
     ``_SAMPLE_M`` metres along each footprint's walls (a point building: its point), extended to
     the boundary and dissolved per building, so open space splits midway between walls; then
     made to follow the footprints exactly: the cells' and the footprints' outlines are noded
     together once and polygonized, a face inside a footprint goes to that footprint's cell and
     any other face to the cell holding it (hair-thin faces between footprints that nearly touch
     join the neighbour they share most edge with). One noding gives neighbouring cells identical
     vertices, so grids dissolve exactly. Buildings whose footprints overlap, or on the same
     point, share a cell. A footprint straddling the community's outline is clipped to it: its
     part inside lies wholly in one grid, its part outside in none (the report's
     ``straddles_boundary`` counts them). A cell that falls into pieces keeps the pieces holding
     its site and footprint; the others join the neighbouring cell they share most boundary with.
   * ``"polygons"`` — the buildings' own polygons, when they already tile the area (census
     blocks, parcels). Chosen by ``cells="auto"`` when the polygons cover at least
     :data:`POLYGON_COVER_SHARE` of the area; slivers the polygons leave are given to a
     neighbour.

   Buildings without a household count get an estimate (:mod:`.estimate`: floors × footprint ÷
   floor area per household by type), stated in the report and marked ``estimated`` per grid.

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
``within_tolerance``, ``polsby_popper`` / ``contiguous`` per code, ``households_basis``
("recorded", "estimated" or "building count") and ``estimated_buildings``, ``tiling`` (gap, overlap and
outside areas in m² of a local metric CRS), ``infeasible`` (a list of ``{"kind", "message"}``
findings named in :data:`INFEASIBLE_KINDS`, with the real reason: a tolerance whole households forbid
is ``tolerance_below_whole_numbers`` with the least one they allow) and what was done (``cells``, ``seconds``).

The package
-----------
One concern per module: ``args`` checks the arguments, ``estimate`` fills unknown households,
``frame`` holds the work coordinates,
``cells`` builds the cells (1), ``graph`` their adjacency (2), ``grow`` the seeds and the balanced
growth (3, 4), ``polish`` the local search (5), ``draw`` runs them on the area locked grids leave
free and numbers all grids, and ``report`` assembles the answer.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..errors import InvalidInput
from .args import _check, _lines, _locked, _points
from .cells import POLYGON_COVER_SHARE
from .draw import _draw
from .estimate import AREA_PER_HOUSEHOLD_M2, NON_RESIDENTIAL, _estimate
from .frame import _Frame
from .grow import BARRIER_CUT_SHARE, BARRIER_GROWTH_FACTOR
from .polish import MOVE_CONSTRAINTS
from .report import INFEASIBLE_KINDS, _finding, _grids_frame, _report

__all__ = [
    "partition_community",
    "MOVE_CONSTRAINTS",
    "INFEASIBLE_KINDS",
    "BARRIER_GROWTH_FACTOR",
    "BARRIER_CUT_SHARE",
    "POLYGON_COVER_SHARE",
    "AREA_PER_HOUSEHOLD_M2",
    "NON_RESIDENTIAL",
]


def partition_community(buildings, boundary, *, n_grids=None, target_households=None, tolerance=0.05,
                        barriers=None, locked=None, seed=0, seeds=None, community_code=None,
                        cells="auto", taken=()):
    """Split a community into contiguous grids of whole buildings with balanced households.

    Parameters
    ----------
    buildings : geopandas.GeoDataFrame
        Points or polygons with a non-negative ``households`` column (zero is fine; missing
        means unknown and is estimated from ``floors`` × footprint ÷ area per household by
        ``building`` type, see :mod:`gridmap.partition.estimate`).
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
        12-digit community code; grids then get 15-digit codes (:func:`gridmap.geo.codes.grid_code`).
        Without it codes are ``"001"``, ``"002"``, …. Either way numbered west→east, north→south.
    cells : {"auto", "voronoi", "polygons"}, default "auto"
        How building cells are made (see the module docstring).
    taken : iterable of str, optional
        Codes the new grids may not take (those the community's published plans have held): the
        one grid-code rule of :mod:`gridmap.geo.codes` then numbers them as a plan would.

    Returns
    -------
    grids : geopandas.GeoDataFrame
        One row per grid, in code order: ``code``, ``households``, ``estimated`` (its households
        include estimates), ``n_buildings``,
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
    hh, estimated, basis = _households(buildings, hh, work, target_households, findings)

    geoms, codes, is_locked, assignment, k_free, h_free, mode = _draw(
        buildings, hh, boundary, work, n_grids, target_households, tolerance, cells, seed, community_code,
        locked_geoms, locked_codes, barrier_geoms, seed_geoms, findings, taken)

    grids = _grids_frame(geoms, codes, is_locked, assignment, hh, crs, estimated)
    report = _report(grids, boundary, work, k_free, len(locked_geoms), h_free, tolerance, target_households,
                     findings, started, mode)
    report["households_basis"] = basis
    report["estimated_buildings"] = int(estimated.sum())
    grids.attrs["report"] = report
    return grids, pd.Series(assignment, index=buildings.index, name="grid")


def _households(buildings, hh, work, target_households, findings):
    """Households per building with the unknown ones estimated; which were, and the basis in a word:
    ``"recorded"``, ``"estimated"`` (some or all), or ``"building count"`` when nothing is known."""
    unknown = np.isnan(hh)
    estimated = np.zeros(len(hh), dtype=bool)
    basis = "recorded"
    if unknown.any():
        est, note = _estimate(buildings, unknown, work)
        if est is None:
            hh = np.where(unknown, 0.0, hh)
            findings.append(_finding("no_estimate", count=int(unknown.sum())))
        else:
            hh = np.where(unknown, est, hh)
            estimated = unknown
            basis = "estimated"
            findings.append(_finding("households_estimated", **note))
    if hh.sum() <= 0:
        basis = "building count"
        if target_households is not None:
            raise InvalidInput(
                "No building records households and none has a footprint to estimate them from, so a "
                f"target of {target_households:g} households per grid cannot choose how many grids to make.",
                fix="Give the number of grids (--grids K), or import the buildings with their households.",
                details={"target_households": target_households, "buildings": len(hh)})
    return hh, estimated, basis
