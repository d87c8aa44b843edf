"""Placement for a stored courtyard or community: sites on its walls, roads and boundary, written for the importer."""
from __future__ import annotations

import heapq
import math
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import or_, select

from ..errors import InvalidInput, N_
from ..geo.viewshed import Obstacles, view_polygons
from ..store import models as m
from .place import _MARGIN_DEG, _place_views, load_place
from .placement import DEFAULT_BEARINGS, _choose, _placement_problem, candidate_sites
from .stats import coverage

# Where a suggested camera would hang, as told to the planner and written to the sites file.
SITE_KINDS = {"corner": "building corner", "wall": "building wall", "pole": "pole on a road",
              "perimeter": "pole on the boundary"}
SITE_FORMATS = (".geojson", ".csv")
# How many times the solver is asked on its cells, each time for the exact shortfall on top.
_ASKS = 4
# Percentage points placement aims above the target: the sites travel through lon/lat (the file
# keeps 8 decimals) and the import cuts their views again in its own frame, which moves coverage by
# about 1e-4 points; the report after the import must still say the target was reached.
_SLACK = 0.01
# Smallest public area (m²) a camera added on the exact polygons must see that nothing else does.
_MIN_GAIN_M2 = 1e-3
# place_cameras's default max_exact: the largest candidate matrix handed to the exact solver.
_MAX_EXACT = 400_000


def _check_placement(target_percent, fov, range_m, bearings):
    """Validate placement options; returns the bearings to try (degrees)."""
    def number(v):
        try:
            return float(v)
        except (TypeError, ValueError):
            return math.nan

    t, f, r = number(target_percent), number(fov), number(range_m)
    if not (0 < t <= 100):
        raise InvalidInput(N_("target was %(target_percent)s but must be a percentage above 0 and at most 100."),
                           fix=N_("Give the coverage to reach in percent of the public space, e.g. --target 95."),
                           params={"target_percent": repr(target_percent)})
    # the importer's limits: a suggested site must import as a camera (`gridmap import cameras`)
    if not (1 <= f <= 360):
        raise InvalidInput(N_("fov was %(fov)s but must be from 1 to 360 degrees."),
                           fix=N_("Give the new cameras' horizontal field of view, e.g. --fov 90 (360 for a dome)."),
                           params={"fov": repr(fov)})
    if not (1 <= r <= 1000):
        raise InvalidInput(N_("range was %(range_m)s but must be from 1 to 1000 metres."),
                           fix=N_("Give how far the new cameras see, e.g. --range 40."),
                           params={"range_m": repr(range_m)})
    if bearings is None:
        bearings = 1 if f >= 360 else len(DEFAULT_BEARINGS)
    if isinstance(bearings, (int, np.integer)) and not isinstance(bearings, bool):
        if not 1 <= bearings <= 72:
            raise InvalidInput(N_("bearings was %(bearings)s but must be a whole number from 1 to 72."),
                               fix=N_("Give how many evenly spaced directions to try at each site, e.g. --bearings 8."),
                               params={"bearings": repr(bearings)})
        return t, f, r, tuple(360.0 * i / bearings for i in range(bearings))
    vals = [number(b) for b in bearings]
    if not vals or not all(math.isfinite(b) for b in vals):
        raise InvalidInput(N_("bearings was %(bearings)s but must be a count or a list of directions in degrees."),
                           fix=N_("Give e.g. 8, or (0, 90, 180, 270)."),
                           params={"bearings": repr(bearings)})
    return t, f, r, tuple(b % 360.0 for b in vals)


def placement_for(session, name, *, target_percent, fov, range_m, bearings=None, roads=True, perimeter=True,
                  pole_spacing_m=20.0, cell_m=None, time_limit=20.0):
    """Suggest the fewest new cameras that bring a courtyard or community to ``target_percent`` coverage.

    Candidate sites are the corners and wall midpoints of the buildings (0.3 m off the wall, see
    :func:`candidate_sites`), with ``roads`` poles every ``pole_spacing_m`` along the imported roads
    inside the area, and with ``perimeter`` poles as far apart along the area's own boundary (a
    courtyard's fence or wall, a community's edge): away from the buildings is where a courtyard's
    blind spots are. Every site is tried at every bearing. The cameras already there count (what
    they see needs no new camera). :func:`place_cameras` chooses; the coverage before and after is
    then measured with :func:`coverage` on the exact view polygons.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
    name : str
        Courtyard name, community code or community name (as :func:`load_place`).
    target_percent : float
        Coverage of the public space to reach, in (0, 100].
    fov, range_m : float
        Field of view (degrees, in (0, 360]) and range (metres, > 0) of the new cameras.
    bearings : int or sequence of float, optional
        How many evenly spaced directions to try at each site (default 8, 1 for a dome), or the
        directions themselves in degrees clockwise from north.
    roads : bool, default True
        Also try poles along the imported roads.
    perimeter : bool, default True
        Also try poles along the boundary of the area.
    pole_spacing_m : float, default 20
        Distance between poles along a road or the boundary.
    cell_m : float, optional
        Cell size of the discretised public space (:func:`place_cameras`); default that of
        4,000 cells over it, but no more than an eighth of ``range_m``. A courtyard takes a few
        seconds; a community (tens of thousands of cells) about half a minute, mostly ``time_limit``.
    time_limit : float
        Wall-clock seconds given to each exact attempt, presolve included, before the greedy answer
        is taken (see :func:`place_cameras`); after one runs out of time the top-up asks go
        straight to greedy.

    Returns
    -------
    dict
        ``kind``, ``name``, ``cameras`` (existing), ``public_m2``, ``percent_before``;
        ``sites``: list of dicts ``lon``, ``lat`` (WGS84), ``bearing``, ``fov``, ``range_m``,
        ``mount`` (``corner``, ``wall``, ``pole`` on a road or ``perimeter``), ``near`` (the
        building's address or the road's name, "" when unknown); ``frame``: the same as a WGS84
        GeoDataFrame that :func:`write_sites` writes for ``gridmap import cameras``; ``percent``
        (after, on the exact polygons), ``reached`` (``percent`` ≥ ``target``), ``percent_cells``
        (what the solver counted on its cells), ``target``, ``method`` (``ilp`` or ``greedy``),
        ``bound`` (its guarantee, for the cells), ``exact`` (how the exact attempt of the answer
        ended, as in :func:`place_cameras`; ``skipped`` when an earlier ask had run out of time),
        ``cell_target`` (the target asked of the solver on its cells: above ``target`` when the
        first answer fell short on the exact polygons), ``cell_m``, ``cells``, ``candidate_sites``,
        ``candidates`` (sites × bearings that add something), ``seconds``.

    Raises
    ------
    InvalidInput
        For an option out of range.
    NotFound
        When no courtyard or community has that name or code.
    """
    t0 = time.perf_counter()
    target, fov, range_m, bearing_list = _check_placement(target_percent, fov, range_m, bearings)
    place = load_place(session, name)
    crs = place.crs
    obs = Obstacles(place.footprints)
    area_ll = place.metric.unproject([place.area])[0]
    x0, y0, x1, y1 = area_ll.bounds
    # addresses, to say which building a site hangs on
    brows = session.execute(select(m.Building.address, m.Building.geom).where(
        m.Building.lon.between(x0 - _MARGIN_DEG, x1 + _MARGIN_DEG),
        m.Building.lat.between(y0 - _MARGIN_DEG, y1 + _MARGIN_DEG))).all()
    road_lines, road_names = [], []
    if roads:
        box = shapely.box(x0, y0, x1, y1)
        for rname, rgeom in session.execute(select(m.Road.name, m.Road.geom)).all():
            if rgeom is not None and rgeom.intersects(box):
                road_lines.append(rgeom)
                road_names.append(rname or "")
    if road_lines:
        metric_roads = place.metric.project(road_lines)
        # poles stand along the part of each road inside the area
        clipped = shapely.intersection(metric_roads, place.area)
        keep = ~shapely.is_empty(clipped) & (shapely.length(clipped) > 0)
        metric_roads, clipped = metric_roads[keep], clipped[keep]
        road_names = [n for n, k in zip(road_names, keep) if k]
    else:
        metric_roads = clipped = np.empty(0, dtype=object)
    walls = candidate_sites(obs, place.area)
    # boundary poles stand just inside it, as wall sites stand just off their wall
    lines = list(clipped) + ([shapely.boundary(shapely.buffer(place.area, -0.3))] if perimeter else [])
    sites = candidate_sites(obs, place.area, roads=lines or None, pole_spacing_m=pole_spacing_m)
    on_building = {tuple(p) for p in np.round(walls, 3).tolist()}

    views0 = _place_views(place)
    before = coverage(place.cameras, place.area, obs, views=views0)
    if cell_m is None:
        # place_cameras's default (4,000 cells), but at most an eighth of the range: a view must
        # span many cells, or the solver's count of seen cells says little about the view's area
        cell_m = min(max(0.5, math.sqrt(before["public_m2"] / 4000.0)), max(0.5, range_m / 8.0))
    # The solver counts cells, a cell seen when its inner point is: the exact polygons can fall
    # short of the target it met. Then it is asked again for the shortfall on top, and what the
    # cells still hide is made up on the exact polygons (greedy by exact area), so that placement
    # stops only when coverage — measured as the report measures it — meets the target, or when no
    # candidate adds anything more.
    # The cells and candidates do not depend on the target: they are made once for every ask. An
    # exact programme that ran out of time is not tried again for a higher target on the same cells.
    problem = _placement_problem(place.area, obs, sites, fov=fov, range_m=range_m, bearings=bearing_list,
                                 existing=place.cameras, cell_m=cell_m)
    goal = min(100.0, target + _SLACK)
    ask, best, exact = target, None, True
    for _ in range(_ASKS):
        r = _choose(problem, ask, max_exact=_MAX_EXACT, time_limit=time_limit, exact=exact)
        exact = exact and r["exact"] != "time limit"
        new = r["sites"].set_crs(crs, allow_override=True)
        after = _coverage_with(place, obs, views0, new, before)
        if best is None or after["percent"] > best[2]["percent"] or (
                after["percent"] >= goal and r["cameras"] < best[1]["cameras"]):
            best = (ask, r, after, new)
        short = goal - after["percent"]
        if short <= 0 or not r["reached"] or ask >= 100:
            break
        ask = min(100.0, ask + short + 0.05)
    cell_target, r, after, new = best
    topped = 0
    if after["percent"] < goal:
        new, after, topped = _top_up(place, obs, views0, new, after, problem, r["columns"], goal)
    reached = bool(after["percent"] >= target)
    if reached:
        why = ""
    else:
        why = (f"every candidate site at every bearing that adds any public space is used: "
               f"{after['percent']:.2f} % is the most these sites see")

    xy = shapely.get_coordinates(new.geometry.values)
    mounts, near = _describe_sites(xy, on_building, obs, brows, place.metric, metric_roads, road_names)
    ll = place.metric.back(new)
    # the importer files a camera under its courtyard by (community code, courtyard name)
    if place.kind == "courtyard":
        yard = session.execute(select(m.Courtyard).where(m.Courtyard.name == name)
                               .order_by(m.Courtyard.id)).scalars().first()
        label, yard_name, code = place.name, place.name, (yard.community_code or "") if yard is not None else ""
    else:
        comm = session.execute(select(m.Community).where(or_(m.Community.code == name, m.Community.name == name))
                               .order_by(m.Community.code)).scalars().first()
        label, yard_name, code = comm.name, "", comm.code
    out_sites = []
    for i, (p, b) in enumerate(zip(ll.geometry, new["bearing"])):
        out_sites.append({"lon": float(p.x), "lat": float(p.y), "bearing": float(b) % 360.0, "fov": fov,
                          "range_m": range_m, "mount": mounts[i], "near": near[i]})
    frame = gpd.GeoDataFrame({
        "name": [f"{label} 新增{i + 1:02d}" for i in range(len(out_sites))],
        "bearing": [s["bearing"] for s in out_sites], "fov": fov, "range_m": range_m,
        "courtyard": yard_name, "community_code": code,
        "mount": mounts, "near": near,
    }, geometry=list(ll.geometry), crs=4326)
    return {"kind": place.kind, "name": place.name, "cameras": len(place.cameras), "public_m2": before["public_m2"],
            "percent_before": before["percent"], "sites": out_sites, "frame": frame,
            "percent": after["percent"], "percent_cells": float(r["percent"]), "target": target,
            "reached": reached, "why": why, "topped_up": topped, "method": r["method"], "bound": r["bound"],
            "exact": r["exact"], "cell_target": cell_target, "cell_m": float(cell_m),
            "cells": r["cells"], "candidate_sites": len(sites), "candidates": r["candidates"],
            "bearings": bearing_list, "seconds": time.perf_counter() - t0}


def _top_up(place, obs, views0, new, after, problem, columns, target):
    """Add the unused candidates, most newly seen exact area first, until coverage meets ``target``.

    Gains are measured on the exact blind geometry of the last :func:`coverage`, and every
    candidate's gain only shrinks as cameras are added (lazy greedy): only the candidate on top is
    measured again. Returns ``(new cameras, coverage with them, how many were added)``.
    """
    chosen = set(columns)
    rest = [j for j in range(len(problem.sites)) if j not in chosen]
    if not rest:
        return new, after, 0
    cands = gpd.GeoDataFrame({"bearing": [float(problem.sites[j][2]) for j in rest], "fov": problem.fov,
                              "range_m": problem.range_m},
                             geometry=[shapely.Point(problem.sites[j][0], problem.sites[j][1]) for j in rest],
                             crs=place.crs)
    views = np.asarray(view_polygons(cands, obs).values, dtype=object)
    base = new[["bearing", "fov", "range_m", "geometry"]]
    added, taken = [], set()
    while after["percent"] < target:
        blind = after["blind"]
        need = (target - after["percent"]) / 100.0 * after["public_m2"]
        shapely.prepare(blind)
        heap = [(-g, k) for k, g in enumerate(shapely.area(shapely.intersection(views, blind)).tolist())
                if g > _MIN_GAIN_M2 and k not in taken]
        heapq.heapify(heap)
        got, step = 0.0, []
        while heap and got < need:
            _, k = heapq.heappop(heap)
            gain = float(shapely.area(shapely.intersection(views[k], blind)))
            if gain <= _MIN_GAIN_M2:
                continue
            if heap and -heap[0][0] > gain:
                heapq.heappush(heap, (-gain, k))
                continue
            step.append(k)
            got += gain
            blind = shapely.difference(blind, views[k])
        if not step:
            break  # no candidate sees anything still blind
        added += step
        taken.update(step)
        more = cands.iloc[added][["bearing", "fov", "range_m", "geometry"]]
        now = gpd.GeoDataFrame(pd.concat([f for f in (base, more) if len(f)], ignore_index=True),
                               geometry="geometry", crs=place.crs)
        after = _coverage_with(place, obs, views0, now, after)
        new = now
    return new, after, len(added)


def _coverage_with(place, obs, views0, new, before):
    """Coverage of the place by its cameras and the ``new`` ones (metres), on the exact polygons."""
    if not len(new):
        return before
    cols = ["bearing", "fov", "range_m", "geometry"]
    everyone = gpd.GeoDataFrame(pd.concat([place.cameras[cols], new[cols]], ignore_index=True),
                                geometry="geometry", crs=place.crs)
    views = gpd.GeoSeries(np.concatenate([views0.values, view_polygons(new, obs).values]), crs=place.crs)
    return coverage(everyone, place.area, obs, views=views)


def _describe_sites(xy, on_building, obs, brows, metric, metric_roads, road_names):
    """Mount kind and what it is near (building address, road name) for each chosen site."""
    mounts, near = [], []
    if not len(xy):
        return mounts, near
    fp = addr = None
    if brows:
        geoms = metric.project([g for _, g in brows])
        poly = shapely.get_type_id(geoms) >= 3
        fp, addr = geoms[poly], [a for (a, _), k in zip(brows, poly) if k]
    tree = shapely.STRtree(fp) if fp is not None and len(fp) else None
    road_tree = shapely.STRtree(metric_roads) if len(metric_roads) else None
    for x, y in xy.tolist():
        p = shapely.Point(x, y)
        if (round(x, 3), round(y, 3)) in on_building:
            # a corner site sits offset diagonally from a footprint vertex; a wall site from an edge's middle
            d_vertex = np.min(np.hypot(obs.b[:, 0] - x, obs.b[:, 1] - y)) if len(obs.b) else math.inf
            mounts.append("corner" if d_vertex < 0.31 else "wall")
            near.append(addr[int(tree.query_nearest(p)[0])] if tree is not None else "")
        elif road_tree is not None and road_tree.query(p, predicate="dwithin", distance=1e-3).size:
            mounts.append("pole")
            near.append(road_names[int(road_tree.query_nearest(p)[0])])
        else:
            mounts.append("perimeter")
            near.append("")
    return mounts, near


def check_sites_path(path):
    """Refuse an output name :func:`write_sites` cannot write, before any work is done."""
    suffix = Path(path).suffix.lower()
    if suffix not in SITE_FORMATS:
        raise InvalidInput(N_("The output file %(path)s ends in %(value)s."),
                           fix=N_("Name it .geojson or .csv; `gridmap import cameras FILE` reads both."),
                           params={"path": repr(str(path)), "value": repr(suffix or 'nothing')})
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise InvalidInput(N_("The output file's folder %(parent)s does not exist."),
                           fix=N_("Create the folder first or write the file elsewhere."),
                           params={"parent": repr(str(parent))})
    return Path(path)


def write_sites(frame, path):
    """Write suggested cameras (``placement_for(...)["frame"]``) where ``gridmap import cameras`` reads them.

    ``.geojson``: points with the camera fields as properties; ``.csv``: ``lon``, ``lat`` columns.
    Both carry ``name``, ``bearing``, ``fov``, ``range_m``, ``courtyard``, ``community_code`` (the
    importer's fields) and ``mount``, ``near`` (ignored by the importer, kept for the planner).
    """
    path = check_sites_path(path)
    if path.suffix.lower() == ".csv":
        table = pd.DataFrame(frame.drop(columns=frame.geometry.name))
        table.insert(1, "lon", frame.geometry.x.round(8))
        table.insert(2, "lat", frame.geometry.y.round(8))
        table.to_csv(path, index=False, encoding="utf-8")
    else:
        if path.exists():
            path.unlink()  # the GeoJSON driver will not overwrite
        frame.to_file(path, driver="GeoJSON")
    return path
