"""The answer: findings, grids dissolved from cells and numbered, the grids frame and its report."""
from __future__ import annotations

import math
import time

import geopandas
import numpy as np
import shapely
from scipy.spatial import cKDTree

from ..geo.codes import allocate
from .graph import coverage_union

#: A tiling is exact when gaps, overlaps and parts outside are below this share of the area.
_EXACT_SHARE = 1e-9

def N_(text):
    """Mark ``text`` for the message catalogue (pybabel's default ``N_`` keyword) without translating:
    findings carry the English template's values, and a page or command translates with its gettext."""
    return text


#: Findings the report can hold; the message templates say what to do about each. Each template is
#: an English msgid of the catalogue (zh_Hans_CN translated); :func:`finding_message` renders one.
INFEASIBLE_KINDS = {
    "no_buildings": N_("The area to partition has no buildings; it is one grid."),
    "no_households": N_("No building has households; grids are balanced by building count instead."),
    "households_estimated": N_("{count} buildings record no households; each is estimated as floors × footprint ÷ "
                            "floor area per household ({area_per_household_m2:g} m² for a residential "
                            "building; {floors_assumed_for} of them with {floors_assumed:g} floors assumed), "
                            "{households:g} households in all. Grids holding them show estimated households."),
    "no_estimate": N_("{count} buildings record no households and have no footprint to estimate them from; "
                   "they count as 0."),
    "more_grids_than_buildings": N_("{n_grids} grids were asked for but only {n_cells} building sites "
                                 "exist; {made} grids were made. Ask for fewer grids."),
    "building_over_target": N_("Building {building} holds {households:g} households, more than a grid may "
                            "({limit:g} = target × (1 + tolerance)); its grid is over the limit. "
                            "Raise the target or split the building's households."),
    "site_over_target": N_("{count} buildings ({buildings}) share ground (overlapping footprints or one point), so "
                           "they stay in one grid; "
                        "together they hold {households:g} households, more than a grid may ({limit:g} = "
                        "target × (1 + tolerance)). Raise the target or correct the overlapping footprints."),
    "part_too_small": N_("Part {part} of the boundary holds {households:g} households, too few for a grid "
                      "(at least {limit:g}); it joins grid {joined}, which is therefore in several "
                      "pieces. Draw it into a neighbouring community or accept the split grid."),
    "part_unbalanced": N_("Part {part} of the boundary holds {households:g} households = {share:.2f} grids' "
                       "worth, given {k} grids; whole grids there cannot all be within the tolerance."),
    "empty_part": N_("Part {part} of the boundary ({area_m2:.0f} m²) holds no building; it joins grid "
                  "{joined}, which is therefore in several pieces."),
    "outside_boundary": N_("{count} buildings lie outside the boundary (or inside locked grids' holes); "
                        "each joins the grid nearest to it. Check the boundary."),
    "straddles_boundary": N_("{count} buildings straddle the community's outline ({area_m2:.0f} m² of them lie "
                          "outside it): each is clipped to the outline and its part inside lies wholly in "
                          "one grid; the part outside is in no grid. Check the outline or the footprints."),
    "locked_outside": N_("Locked grid {code} reaches {area_m2:.0f} m² outside the boundary; it is kept as it is."),
    "locked_overlap": N_("Locked grids overlap by {area_m2:.0f} m²; they are kept as they are."),
    "no_free_grids": N_("Locked grids use all {n_grids} grids; the rest of the community ({households:g} "
                     "households) is left to the nearest locked grid and uncovered. Ask for more grids."),
    "too_many_seeds": N_("{n_seeds} seed points were given for {k} grids; only the first {k} seed grids."),
    "seed_outside": N_("Seed {seed} lies outside the area to partition; it is ignored."),
    "seed_shared": N_("Seed {seed} falls in the same building cell as seed {other}; it is ignored."),
    "tolerance_below_whole_numbers": N_("±{tolerance:.1%} cannot be met with whole households: {households:g} "
                                     "households in {k} grids is {ideal:.2f} per grid, so grids hold {low} or "
                                     "{high}, at least ±{min_tolerance:.2%} from it. Ask for a tolerance of "
                                     "{suggest:g} or more."),
    "unbalanced": N_("Grid {code} holds {households:g} households ({deviation:+.1%} of the ideal "
                     "{ideal:.1f}), outside ±{tolerance:.1%}: whole buildings, contiguity, locked grids "
                     "or barriers do not allow better here."),
}


def _whole_number_tolerance(households, total, k):
    """The least tolerance whole households allow: ``total`` in ``k`` grids puts some at the whole
    number below the ideal and some above it (None when households are not whole or nothing is split)."""
    if k < 2 or total <= 0 or not np.all(np.mod(households, 1) == 0) or float(total) % 1:
        return None
    ideal = total / k
    low, high = math.floor(ideal), math.ceil(ideal)
    least = 0.0 if low == high else max(high - ideal, ideal - low) / ideal
    return {"households": float(total), "k": int(k), "ideal": ideal, "low": int(low), "high": int(high),
            "min_tolerance": least, "suggest": math.ceil(least * 1000) / 1000}


def finding_message(finding, gettext=None):
    """A finding's message in the caller's language: ``gettext`` (e.g. flask_babel's) translates the
    template, the finding's own values fill it. Without one, the English message."""
    template = INFEASIBLE_KINDS[finding["kind"]]
    values = {k: v for k, v in finding.items() if k not in ("kind", "message")}
    return (gettext(template) if gettext else template).format(**values)


def _finding(kind, **values):
    return {"kind": kind, "message": INFEASIBLE_KINDS[kind].format(**values), **values}


def _dissolve(cells, labels, k):
    out = []
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(k + 1))
    inner = None
    for j in range(k):
        group = cells[order[bounds[j]:bounds[j + 1]]]
        merged, clean = coverage_union(group)
        if not clean:
            if inner is None:
                inner = shapely.STRtree(shapely.point_on_surface(cells))
            merged = _fill_hair_holes(merged, inner, labels, j)
        out.append(merged)
    return out


def _fill_hair_holes(merged, inner, labels, j):
    """Close the holes a union leaves where cells meet at vertices that do not match (footprints
    cut into Voronoi cells): a true hole holds another grid's cell, a hair-thin one holds none."""
    parts = []
    changed = False
    for part in shapely.get_parts(merged):
        if not isinstance(part, shapely.Polygon) or not part.interiors:
            parts.append(part)
            continue
        keep = []
        for ring in part.interiors:
            hit = inner.query(shapely.Polygon(ring), predicate="contains")
            if len(hit) and (labels[hit] != j).any():
                keep.append(ring)
        if len(keep) < len(part.interiors):
            changed = True
            part = shapely.Polygon(part.exterior, keep)
        parts.append(part)
    if not changed:
        return merged
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def _nearest(xy, targets):
    return cKDTree(targets).query(xy)[1].astype(np.int64)


def _codes(geoms, given, community_code, taken=()):
    """Locked grids keep their codes; the new ones are numbered by the one grid-code rule."""
    codes = list(given)
    new = [not c for c in codes]
    if any(new):
        numbered = iter(allocate(geoms, taken=[c for c in codes if c] + list(taken), community_code=community_code,
                                 new=new))
        codes = [next(numbered) if fresh else c for c, fresh in zip(codes, new)]
    return codes


def _grids_frame(geoms, codes, is_locked, assignment, hh, crs, estimated=None):
    k = len(geoms)
    ok = assignment >= 0
    households = np.bincount(assignment[ok], weights=hh[ok], minlength=k)
    count = np.bincount(assignment[ok], minlength=k)
    if np.all(np.mod(hh, 1) == 0):
        households = households.astype(np.int64)
    # A grid's households are "estimated" when any building in it had its count estimated.
    est = np.zeros(k, dtype=bool)
    if estimated is not None and estimated.any():
        est = np.bincount(assignment[ok & estimated], minlength=k) > 0
    return geopandas.GeoDataFrame({"code": codes, "households": households, "estimated": est,
                                   "n_buildings": count, "locked": is_locked}, geometry=list(geoms), crs=crs)


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
    whole = _whole_number_tolerance(grids["households"].to_numpy(dtype=float)[free], h_free, n_free)
    if whole is not None and tolerance < whole["min_tolerance"] - 1e-12:
        findings.append(_finding("tolerance_below_whole_numbers", tolerance=tolerance, **whole))
    # Grids off by no more than whole numbers force are explained by the finding above, not by shape.
    explained = whole["min_tolerance"] if whole is not None else 0.0
    for i in np.flatnonzero(free & (np.abs(dev) > max(tolerance, explained) + 1e-12)):
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
        "grid_households": grids["households"].to_numpy(dtype=float)[free].tolist(),
        "polsby_popper": dict(zip(codes, pp.tolist())),
        "mean_polsby_popper": float(pp[free].mean()) if n_free else 0.0,
        "min_polsby_popper": float(pp[free].min()) if n_free else 0.0,
        "contiguous": dict(zip(codes, (parts == 1).tolist())),
        "all_contiguous": bool((parts == 1).all()),
        "tiling": {"exact": bool(exact), "boundary_m2": b_area, "gap_m2": gap, "overlap_m2": overlap,
                   "outside_m2": outside},
        "infeasible": findings,
        "feasible": not any(f["kind"] not in ("outside_boundary", "seed_outside", "seed_shared",
                                              "too_many_seeds", "households_estimated", "straddles_boundary")
                            for f in findings),
        "seconds": time.perf_counter() - started,
    }
