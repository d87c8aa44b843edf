"""Drawing the grids: locked grids keep their buildings, the free area's cells grow into new grids, all numbered."""
from __future__ import annotations

import numpy as np
import shapely

from ..geo.pointindex import points_to_grids
from .args import _grid_count
from .cells import _cell_mode, _make_cells, _representative_points
from .graph import _Graph
from .grow import _partition_cells, _seed_cells
from .report import _codes, _dissolve, _finding, _nearest


def _draw(buildings, hh, boundary, work, n_grids, target_households, tolerance, cells, seed, community_code,
          locked_geoms, locked_codes, barrier_geoms, seed_geoms, findings, taken=()):
    """Every grid in code order (geometry, code, locked flag), each building's grid position, and what the
    report needs: the count of new grids, the households they share and how the cells were made."""
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
        cell_geoms, building_cell, orphans, straddling = _make_cells(mode, buildings, points, todo, free, work)
        if len(straddling):
            outside_m2 = _outside_m2(buildings, straddling, free, work)
            findings.append(_finding("straddles_boundary", count=len(straddling), area_m2=outside_m2,
                                     buildings=[str(x) for x in buildings.index[straddling][:20]]))
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

    codes = _codes(all_geoms, list(locked_codes) + [None] * len(new_grid_geoms), community_code, taken)
    order = np.argsort(codes, kind="stable")
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    assignment = np.where(assignment >= 0, position[np.maximum(assignment, 0)], -1)
    return ([all_geoms[i] for i in order], [codes[i] for i in order], is_locked[order], assignment,
            k_free, h_free, mode)


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


def _outside_m2(buildings, rows, free, work):
    """Square metres of the given footprints outside the area partitioned (no grid holds them)."""
    geoms = np.asarray(buildings.geometry.array, dtype=object)[rows]
    return float(shapely.area(work.metric(shapely.difference(geoms, free))).sum())
