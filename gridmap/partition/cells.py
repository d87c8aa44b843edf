"""Building cells tiling the free area, each holding its buildings' footprints whole.

A tessellation of the footprints' walls carved to follow them, or the buildings' own polygons.
"""
from __future__ import annotations

import numpy as np
import shapely

from .graph import coverage_union
from .report import _EXACT_SHARE

#: Polygon buildings covering at least this share of the area are taken as the cells themselves.
POLYGON_COVER_SHARE = 0.9
#: A footprint with less than this share on one side of the community's outline is wholly on the
#: other (digitising noise); between, it straddles the outline and is clipped to it.
STRADDLE_SHARE = 1e-3


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
    """Cells tiling ``free``; ``building_cell[i]`` is building i's cell (-1 when outside or locked).

    Returns ``(cells, building_cell, orphans, straddling)``: ``orphans`` are the buildings wholly
    outside ``free``, ``straddling`` those partly outside it (their inside part is whole in its cell).
    """
    n = len(buildings)
    building_cell = np.full(n, -1, dtype=np.int64)
    shapely.prepare(free)
    geoms = np.asarray(buildings.geometry.array, dtype=object)
    if mode == "polygons":
        # The polygons are the cells: nothing to carve, and one point inside places each.
        inside = todo[shapely.intersects(free, points[todo])]
        orphans = np.setdiff1d(todo, inside)
        geoms = geoms[inside]
        # Only polygons touching the outline can stick out: one point inside and no crossing means inside.
        edge = np.unique(shapely.STRtree(geoms).query(shapely.boundary(free), predicate="intersects"))
        geoms = geoms.copy()
        if len(edge):
            out = edge[~shapely.covered_by(geoms[edge], free)]
            geoms[out] = shapely.intersection(geoms[out], free)
        cells = _polygonal(geoms)
        building_cell[inside] = np.arange(len(inside))
        cells = _fill_gaps(cells, free)
        return cells, building_cell, orphans, np.zeros(0, dtype=np.int64)
    footprints, straddling = _footprints(geoms, todo, free)
    has_area = np.zeros(n, dtype=bool)
    has_area[todo] = ~shapely.is_empty(footprints[todo])
    # A footprint partly outside sites its cell on the part inside; a point site must be inside.
    sites_at = points.copy()
    moved = straddling[~shapely.intersects(free, points[straddling])] if len(straddling) else straddling
    if len(moved):
        sites_at[moved] = shapely.point_on_surface(footprints[moved])
    inside = todo[has_area[todo] | shapely.intersects(free, points[todo])]
    orphans = np.setdiff1d(todo, inside)
    group = _site_groups(footprints, sites_at, inside, has_area, work)
    building_cell[inside] = group
    n_sites = int(group.max()) + 1 if len(group) else 0
    # A group's footprint is the union of its buildings' parts inside; its site a point inside that.
    site_fp = np.array([shapely.Polygon()] * n_sites, dtype=object)
    members = [[] for _ in range(n_sites)]
    for b, g in zip(inside.tolist(), group.tolist()):
        members[g].append(b)
    site_pt = np.empty(n_sites, dtype=object)
    for g, bs in enumerate(members):
        fps = [footprints[b] for b in bs if has_area[b]]
        if fps:
            site_fp[g] = fps[0] if len(fps) == 1 else shapely.union_all(fps)
            site_pt[g] = sites_at[bs[int(np.argmax([shapely.area(footprints[b]) if has_area[b] else -1
                                                     for b in bs]))]]
        else:
            site_pt[g] = sites_at[bs[0]]
    if n_sites == 1:
        return np.array([free], dtype=object), building_cell, orphans, straddling
    raw = _tessellate(site_pt, site_fp, free, work)
    clipped = shapely.intersection(raw, free)
    cells = _carve(_polygonal(clipped), site_fp, work)
    cells = _keep_site_parts(cells, site_pt, site_fp)
    return cells, building_cell, orphans, straddling


#: Footprint outlines are sampled every this many work metres for the tessellation: open space is
#: then split midway between the buildings' walls, not between their centres.
_SAMPLE_M = 8.0


def _tessellate(site_pt, site_fp, free, work):
    """Cells from the Voronoi diagram of points along each footprint's outline (its site point alone
    for a building without a footprint), dissolved per site: a morphological tessellation."""
    fp_work = work.to_work(site_fp)
    has = ~shapely.is_empty(site_fp)
    pts_xy = [work.xy(site_pt)]
    labels = [np.arange(len(site_pt))]
    if has.any():
        rings = shapely.segmentize(shapely.boundary(fp_work[has]), _SAMPLE_M)
        coords, owner = shapely.get_coordinates(rings, return_index=True)
        pts_xy.append(coords)
        labels.append(np.flatnonzero(has)[owner])
    xy = np.concatenate(pts_xy)
    label = np.concatenate(labels)
    # Walls shared by two buildings give both the same points: one site per spot (the first wins).
    key = np.round(xy, 3)
    _, first = np.unique(key, axis=0, return_index=True)
    first = np.sort(first)
    xy, label = xy[first], label[first]
    sites = shapely.points(xy)
    free_work = work.to_work(free)
    diagram = shapely.voronoi_polygons(shapely.multipoints(sites), extend_to=free_work, ordered=True)
    raw = np.asarray(shapely.get_parts(diagram), dtype=object)
    if len(raw) != len(sites):  # degenerate (e.g. collinear sites on old GEOS): match by containment
        tree = shapely.STRtree(raw)
        pairs = tree.query(sites, predicate="intersects")
        order = np.full(len(sites), -1)
        order[pairs[0][::-1]] = pairs[1][::-1]
        raw = raw[order]
    out = np.empty(len(site_pt), dtype=object)
    order = np.argsort(label, kind="stable")
    bounds = np.searchsorted(label[order], np.arange(len(site_pt) + 1))
    for g in range(len(site_pt)):
        mine = raw[order[bounds[g]:bounds[g + 1]]]
        # (a site all of whose points another took still gets its footprint back from the carving)
        out[g] = _cover(mine) if len(mine) else shapely.Polygon()
    # The walls' many short Voronoi edges, straightened together (shared edges stay shared): the
    # carving that follows puts every footprint back whole whatever the simplification moved.
    try:
        out = shapely.coverage_simplify(out, _SAMPLE_M / 2, simplify_boundary=False)
    except (AttributeError, ValueError, shapely.errors.GEOSException):  # GEOS < 3.12, or not a clean coverage
        pass
    return work.from_work(out)


def _footprints(geoms, todo, free):
    """Each polygon building's part inside ``free`` (empty for points), and who sticks out of it."""
    fp = np.array([shapely.Polygon()] * len(geoms), dtype=object)
    poly = todo[np.isin(shapely.get_type_id(geoms[todo]), [3, 6])]
    if not len(poly):
        return fp, np.zeros(0, dtype=np.int64)
    fp[poly] = geoms[poly]
    out = poly[~shapely.covered_by(geoms[poly], free)]
    if len(out):
        fp[out] = _polygonal(shapely.intersection(geoms[out], free))
        # A footprint merely touching the outline from outside has nothing inside; one that only
        # grazes it is noise of the drawing. Straddling means a real part on each side.
        area = shapely.area(geoms[out])
        inside_share = np.where(area > 0, shapely.area(fp[out]) / np.maximum(area, 1e-300), 0.0)
        fp[out[inside_share <= STRADDLE_SHARE]] = shapely.Polygon()
        out = out[(inside_share > STRADDLE_SHARE) & (inside_share < 1 - STRADDLE_SHARE)]
    return fp, out


def _site_groups(footprints, sites_at, inside, has_area, work):
    """A site (Voronoi seed and cell) per group of buildings that must share a cell: footprints whose
    interiors overlap, points inside a footprint, and points on one spot (flats behind one entrance)."""
    m = len(inside)
    parent = np.arange(m)

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def join(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    poly = np.flatnonzero(has_area[inside])
    if len(poly):
        fps = footprints[inside[poly]]
        tree = shapely.STRtree(fps)
        qa, qb = tree.query(fps, predicate="intersects")
        sel = qa < qb
        qa, qb = qa[sel], qb[sel]
        if len(qa):
            # interiors meeting (DE-9IM 'T' first): overlapping or nested, not just sharing a wall
            real = shapely.relate_pattern(fps[qa], fps[qb], "T********")
            for a, b in zip(poly[qa[real]].tolist(), poly[qb[real]].tolist()):
                join(a, b)
        pts = np.flatnonzero(~has_area[inside])
        if len(pts):
            pa, pb = tree.query(sites_at[inside[pts]], predicate="within")
            for a, b in zip(pts[pa].tolist(), poly[pb].tolist()):
                join(a, b)
    pts = np.flatnonzero(~has_area[inside])
    if len(pts):
        key = np.round(work.xy(sites_at[inside[pts]]), 3)
        _, first = np.unique(key, axis=0, return_inverse=True)
        first = first.ravel()
        lead = {}
        for p, k in zip(pts.tolist(), first.tolist()):
            if k in lead:
                join(lead[k], p)
            else:
                lead[k] = p
    roots = np.array([find(a) for a in range(m)], dtype=np.int64)
    _, group = np.unique(roots, return_inverse=True)
    return group.ravel().astype(np.int64)


#: Faces narrower than this (work metres, 2·area/perimeter) are hair-thin gaps between footprints
#: that nearly touch: they join the neighbour they share most edge with, never reach across as a spike.
_HAIR_M = 0.01


def _carve(cells, site_fp, work):
    """Cells that follow footprints, as one clean coverage.

    The Voronoi cells' outlines and the footprints' outlines are noded together once and
    polygonized into faces; a face inside a footprint belongs to that footprint's site, any other
    face to the Voronoi cell holding it. Each footprint then lies wholly in its own cell, the cells
    still tile the area, and neighbouring cells share identical vertices (one noding), so they
    dissolve into grids without hair-thin gaps.
    """
    has_fp = np.flatnonzero(~shapely.is_empty(site_fp))
    if not len(has_fp):
        return cells
    lines = np.concatenate([shapely.get_parts(shapely.boundary(cells)),
                            shapely.get_parts(shapely.boundary(site_fp[has_fp]))])
    noded = shapely.union_all(lines)
    faces = np.asarray(shapely.get_parts(shapely.polygonize(shapely.get_parts(noded))), dtype=object)
    if not len(faces):
        return cells
    pts = shapely.point_on_surface(faces)
    owner = np.full(len(faces), -1, dtype=np.int64)
    fi, fj = shapely.STRtree(site_fp[has_fp]).query(pts, predicate="within")
    owner[fi] = has_fp[fj]
    in_footprint = owner >= 0
    rest = np.flatnonzero(owner < 0)
    if len(rest):
        ci, cj = shapely.STRtree(cells).query(pts[rest], predicate="within")
        owner[rest[ci]] = cj
    # Faces in no cell are outside the area (a hole of it); hair-thin faces join a neighbour.
    inside = owner >= 0
    metric = work.to_work(faces)
    width = 2 * shapely.area(metric) / np.maximum(shapely.length(metric), 1e-300)
    hair = np.flatnonzero(inside & ~in_footprint & (width < _HAIR_M))
    if len(hair):
        solid = np.setdiff1d(np.flatnonzero(inside), hair)
        tree = shapely.STRtree(faces[solid])
        for f in hair.tolist():
            near = solid[tree.query(faces[f], predicate="intersects")]
            if len(near):
                shared = shapely.length(shapely.intersection(shapely.boundary(faces[near]), faces[f].boundary))
                if shared.max() > 0:
                    owner[f] = owner[near[int(np.argmax(shared))]]
    out = cells.copy()
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(len(cells) + 1))
    for c in range(len(cells)):
        group = faces[order[bounds[c]:bounds[c + 1]]]
        out[c] = _cover(group) if len(group) else shapely.Polygon()
    return out


def _cover(parts):
    """Union of faces of one noded coverage (a plain union when they are not one)."""
    return parts[0] if len(parts) == 1 else coverage_union(parts)[0]


def _polygonal(geoms):
    """Drop lines and points an intersection may leave beside the polygons."""
    out = np.array(geoms, dtype=object)
    for i in np.flatnonzero(~np.isin(shapely.get_type_id(out), [3, 6])):
        parts = [p for p in shapely.get_parts(out[i]) if isinstance(p, (shapely.Polygon, shapely.MultiPolygon))]
        out[i] = shapely.union_all(parts) if parts else shapely.Polygon()
    return out


def _keep_site_parts(clipped, sites, footprints=None):
    """A cell keeps the parts holding its site and its footprint; stray parts join the neighbour
    sharing most edge (they hold no building: every footprint is in its own cell's kept parts)."""
    cells = _polygonal(clipped)
    multi = np.flatnonzero(shapely.get_num_geometries(cells) > 1)
    strays = []
    for i in multi:
        parts = shapely.get_parts(cells[i])
        holds = shapely.intersects(parts, sites[i])
        if footprints is not None and not shapely.is_empty(footprints[i]):
            holds |= shapely.relate_pattern(parts, footprints[i], "T********")
        if not holds.any():
            holds[int(np.argmax(shapely.area(parts)))] = True
        keep = [p for p, h in zip(parts, holds) if h]
        cells[i] = keep[0] if len(keep) == 1 else shapely.MultiPolygon(keep)
        strays.extend(p for p, h in zip(parts, holds) if not h)
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
            out[i] = _cover(np.asarray([out[i], *group], dtype=object))
    if -1 in extra:
        out = np.concatenate([out, np.asarray(extra[-1], dtype=object)])
    return out
