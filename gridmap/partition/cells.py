"""Building cells: a Voronoi tessellation of the buildings' sites or their own polygons, tiling the free area."""
from __future__ import annotations

import numpy as np
import shapely

from .report import _EXACT_SHARE

#: Polygon buildings covering at least this share of the area are taken as the cells themselves.
POLYGON_COVER_SHARE = 0.9


def _representative_points(buildings):
    geoms = np.asarray(buildings.geometry.array, dtype=object)
    return np.where(shapely.get_type_id(geoms) == 0, geoms, shapely.point_on_surface(geoms))


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
