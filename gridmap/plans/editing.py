"""Edit a draft plan's grids — redraw, move buildings, split, merge, restore — keeping the tiling exact.

Every edit takes the plan version the client loaded and answers with the plan's new state:
metrics per grid, validation findings, and the ``undo`` / ``redo`` mappings (the touched
grids' polygons before and after) that the client keeps as its undo stack and replays through
:func:`set_grids`. The server keeps no edit log: a new table is not on the schema's path yet,
and an undo stack per browser tab is what a planner expects anyway.

Geometry is cut and joined in WGS84 lon/lat, where it is stored: a boundary two grids share
then stays bit-identical on both sides (a round trip through metres would perturb every vertex
by a few ulps and leave nanometre slivers). Areas, lengths and thresholds are in metres.

Every grid an edit writes is a valid polygon in lon/lat *and* in metres: overlays answer polygons
only, hair-thin spikes and strips an overlay leaves are shaved off and handed to the grid they
border (:func:`_tidy`), and a grid that would still cross itself in metres is refused with the
place named. Validation, export and the maps measure in metres, where a lon/lat edge is a curve.
"""
from __future__ import annotations

import math
import re

import geopandas as gpd
import numpy as np
import shapely
import shapely.ops
from sqlalchemy.orm.attributes import flag_modified

from ..assign import buildings_to_grids
from ..errors import Conflict, InvalidInput, N_, NotFound
from ..geo.codes import allocate, grid_name
from ..geo.crs import metric_for
from ..store import models as m
from ..store.loaders import community_buildings
from ..store.races import lock
from .export import grid_table
from .generations import used_codes
from .records import get_plan, plan_summary
from .rules import validate

#: Pieces smaller than this (m²) are drawing noise: they follow their neighbours silently.
SLIVER_M2 = 1.0
#: Two grids sharing less boundary than this (m) do not count as neighbours (a corner is not an edge).
ADJACENT_M = 1.0
#: An edit may not make gaps, overlaps or parts outside grow by more than this (m²), or this share of
#: the community's area if larger: float noise only (a straight edge in metres sags by millimetres
#: in lon/lat, so two layers converted apart differ by that much).
TILING_EPS_M2 = 0.01
TILING_EPS_SHARE = 1e-6
# Boundaries shared by two grids are compared within this distance (degrees, ~1 cm): imported
# grids need not share vertices bit for bit.
_TOUCH_DEG = 1e-7
# Overlays snap to this grid (degrees, ~0.01 mm): snap-rounding joins pieces that touch along a
# computed edge, where plain floating point leaves them a few ulps apart and "in two pieces".
_GRID_DEG = 1e-10
# Strips thinner than twice this (degrees, ~5 cm) are drawing noise: a drawn edge running along
# an existing one a millimetre off must not join two real pieces by a hair.
_HAIR_DEG = 5e-7
# Mitre joins keep a corner this many times the buffer distance long: opening a grid by _HAIR_DEG
# then restores every corner sharper than the default limit's 23° (down to ~0.1°) instead of
# bevelling it, so only what is really hair-thin is shaved.
_MITRE_LIMIT = 1000.0


# ============================================================================================
# The edits
# ============================================================================================

def redraw(session, plan_id, grid_code, polygon, version, *, limits=None):
    """Give grid ``grid_code`` the drawn ``polygon`` (clipped to the community).

    Neighbours lose what the grid takes; each piece the grid gives up goes to the neighbour
    sharing the longest boundary with it. A piece touching no neighbour, a neighbour cut in two
    or swallowed whole, or a drawing falling apart inside the community is a :class:`Conflict`
    whose ``details["geometry"]`` locates the problem; nothing is written then.
    """
    def change(ed):
        old = ed.grid(grid_code)
        drawn = _largest(_i(_polygonal(shapely.make_valid(polygon)), ed.community), ed,
                         what=f"The boundary drawn for grid {grid_code}")
        after = {grid_code: drawn}
        for code, geom in ed.grids.items():
            if code != grid_code and shapely.intersects(geom, drawn):
                after[code] = _d(geom, drawn)
        loose = []
        for code in list(after):
            if code != grid_code:
                after[code], strays = _main_part(after[code], code, ed, cause=f"the boundary drawn for {grid_code}")
                loose += strays  # slivers: anybody may take them, the redrawn grid included
        given, slivers = _cores(_d(old, drawn), ed)
        _hand_out(ed, after, given, exclude={grid_code}, giver=grid_code)
        loose += slivers
        _hand_out(ed, after, loose, exclude=set(), giver=grid_code)
        return after, {}
    return _edit(session, plan_id, version, change, limits)


def move_buildings(session, plan_id, building_ids, to_grid, version, *, limits=None):
    """Move buildings into grid ``to_grid``; the grids' shapes follow.

    Each moving building takes its cell — its grid tessellated by the grid's buildings (a
    Voronoi diagram of their representative points clipped to the grid, as
    :mod:`gridmap.partition` builds its cells for a community) — plus its whole footprint,
    minus the footprints of buildings that stay: whole buildings change grid, nothing else
    does. Cells per grid rather than for the whole community: the building nearest a grid's
    edge then reaches that edge, wherever the old boundary runs.
    """
    ids = sorted({int(i) for i in building_ids})

    def change(ed):
        target = ed.grid(to_grid)
        frame = ed.buildings()
        missing = [i for i in ids if i not in frame.index]
        if missing:
            raise NotFound(N_("Building(s) %(missing)s are not in community %(community_code)s."),
                           fix=N_("Pick buildings on the planner map."), details={"buildings": missing},
                           params={"missing": missing, "community_code": ed.plan.community_code})
        current = buildings_to_grids(frame, ed.grids_frame())["grid_code"]
        moving = [i for i in ids if current[i] != to_grid]
        if not moving:
            raise InvalidInput(N_("Building(s) %(ids)s are in grid %(to_grid)s already."),
                               fix=N_("Select buildings of another grid."), details={"buildings": ids},
                               params={"ids": ids, "to_grid": to_grid})
        cells = {}
        for code in {current[i] for i in moving if current[i] is not None}:
            cells.update(_cells(frame[(current == code).to_numpy()], ed.grids[code]))
        staying = shapely.union_all([g for i, g in frame.geometry.items()
                                     if i not in moving and shapely.get_type_id(g) in (3, 6)])
        pieces = []
        for i in moving:
            footprint = frame.geometry[i]
            region = _i(footprint, ed.community)
            if i in cells:
                region = _u(cells[i], region)
            region = _d(region, staying)
            # A staying footprint can cut the cell; the part away from the building stays put.
            touch = footprint if shapely.get_type_id(footprint) in (3, 6) else shapely.buffer(footprint, _TOUCH_DEG)
            parts = [p for p in _polygons(region) if shapely.intersects(p, touch)]
            pieces += parts
        moved = shapely.union_all(pieces, grid_size=_GRID_DEG)
        after = {to_grid: _u(target, moved)}
        for code, geom in ed.grids.items():
            if code != to_grid and ed.area(_i(geom, moved)) > 0:
                rest = _d(geom, moved)
                if ed.area(rest) <= SLIVER_M2:
                    raise Conflict(N_("Moving these buildings would leave grid %(code)s empty."),
                                   fix=N_("Merge grid %(code)s into %(to_grid)s instead."),
                                   details={"grid": code, "geometry": _geojson(geom)},
                                   params={"code": code, "to_grid": to_grid})
                after[code], strays = _main_part(rest, code, ed, cause="moving these buildings")
                _hand_out(ed, after, strays, exclude=set(), giver=code)
        if len(_polygons(after[to_grid], ed)) > 1:
            far = _polygons(after[to_grid], ed)[1:]
            raise Conflict(N_("Building(s) %(moving)s do not border grid %(to_grid)s: the grid would fall into pieces."),
                           fix=N_("Move the buildings between them too, or choose a neighbouring grid."),
                           details={"grid": to_grid, "buildings": moving,
                                    "geometry": _geojson(shapely.union_all(far))},
                           params={"moving": moving, "to_grid": to_grid})
        return after, {}
    if not ids:
        raise InvalidInput(N_("No building was given to move."), fix=N_("Select one or more buildings."))
    return _edit(session, plan_id, version, change, limits)


def split(session, plan_id, grid_code, line, version, *, limits=None):
    """Cut grid ``grid_code`` in two along the drawn ``line`` (it must cross the grid once).

    Buildings the line cuts go wholly to the side holding most of their footprint. The side
    with more households (then the larger) keeps the code, so its worker and party branch stay
    with most of its residents; the other gets the next sequence number never used in the
    community (a retired code would bring back the workers still listed under it).
    """
    def change(ed):
        geom = ed.grid(grid_code)
        cut = _polygons(shapely.ops.split(geom, line))
        big = [p for p in cut if ed.area(p) > SLIVER_M2]
        if len(big) != 2:
            raise Conflict(N_("The line cuts grid %(grid_code)s into %(big)s piece(s), not two."),
                           fix=N_("Draw a line that crosses the grid once, from one edge to the other, starting and ending "
                                  "outside it."),
                           details={"grid": grid_code, "pieces": len(big), "geometry": _geojson(line)},
                           params={"grid_code": grid_code, "big": len(big)})
        small = [p for p in cut if ed.area(p) <= SLIVER_M2]
        a, b = big
        for s in small:  # slivers along the cut join the side they touch most
            if _shared(s, a) >= _shared(s, b):
                a = _u(a, s)
            else:
                b = _u(b, s)
        a, b = _whole_buildings(ed, a, b)
        hh = _households_in(ed, [a, b])
        keep, new = (a, b) if (hh[0], ed.area(a)) >= (hh[1], ed.area(b)) else (b, a)
        try:
            code = allocate([new], taken=used_codes(session, ed.plan.community_code) + list(ed.grids),
                            community_code=ed.plan.community_code)[0]
        except InvalidInput as err:  # the community's 999 numbers are used up: no split can be made
            raise Conflict(err.message, fix="Merge grids instead of splitting.", details=err.details) from None
        community = session.get(m.Community, ed.plan.community_code)
        return {grid_code: keep, code: new}, {code: grid_name(community.name, code)}
    return _edit(session, plan_id, version, change, limits)


def merge(session, plan_id, code_a, code_b, version, *, limits=None):
    """Join grid ``code_b`` into grid ``code_a`` (they must share a boundary); ``code_a`` keeps its code."""
    def change(ed):
        if code_a == code_b:
            raise InvalidInput(N_("Grid %(code_a)s cannot be merged with itself."),
                               fix=N_("Select two different grids."),
                               details={"grids": [code_a, code_b]},
                               params={"code_a": code_a})
        a, b = ed.grid(code_a), ed.grid(code_b)
        if ed.length(_shared(a, b, raw=True)) < ADJACENT_M:
            raise Conflict(N_("Grids %(code_a)s and %(code_b)s do not share a boundary; only neighbours can be merged."),
                           fix=N_("Select two grids that touch along an edge."),
                           details={"grids": [code_a, code_b], "geometry": _geojson(b)},
                           params={"code_a": code_a, "code_b": code_b})
        return {code_a: _u(a, b), code_b: None}, {}
    return _edit(session, plan_id, version, change, limits)


def set_grids(session, plan_id, grids, version, *, names=None, limits=None):
    """Set the listed grids' polygons (``None`` removes a grid, a new code adds one): undo and redo.

    The same checks as every edit apply: no gap, overlap or part outside may grow, each grid
    stays one piece.
    """
    names = dict(names or {})

    def change(ed):
        for code in grids:
            if not code.startswith(ed.plan.community_code):
                raise InvalidInput(N_("Grid code %(code)s does not belong to community %(community_code)s."),
                                   fix=N_("Send codes of this plan's grids."), details={"grid": code},
                                   params={"code": code, "community_code": ed.plan.community_code})
            if grids[code] is None and code not in ed.grids:
                raise NotFound(N_("Grid %(code)s is not in plan %(id)s."), fix=N_("Reload the plan."),
                               details={"grid": code},
                               params={"code": code, "id": ed.plan.id})
        after = {code: (_polygonal(shapely.make_valid(g)) if g is not None else None) for code, g in grids.items()}
        community = session.get(m.Community, ed.plan.community_code)
        new_names = {c: names.get(c) or grid_name(community.name, c) for c in after if c not in ed.grids}
        return after, new_names
    return _edit(session, plan_id, version, change, limits)


def plan_state(session, plan_id, *, limits=None, buildings=True):
    """A plan as the planner page shows it: summary, metrics per grid, findings, buildings.

    Returns
    -------
    dict
        ``plan`` (summary), ``grids`` (per grid: code, name, households, buildings, area_m2,
        polsby_popper, deviation and its GeoJSON ``geometry``), ``findings`` (validation, errors
        first) and, with ``buildings``, ``buildings`` (id, address, households, lon, lat, grid).
    """
    plan = get_plan(session, plan_id)
    table = grid_table(session, plan, limits=limits)
    out = {"plan": plan_summary(plan), "grids": _metrics(table),
           "findings": [f.to_dict() for f in validate(session, plan, limits=limits)]}
    if buildings:
        frame = community_buildings(session, plan.community_code)
        if len(frame):
            codes = buildings_to_grids(frame, table[["code", "geometry"]])["grid_code"] if len(table) else \
                {i: None for i in frame.index}
            pts = shapely.point_on_surface(np.asarray(frame.geometry.values, dtype=object))
            out["buildings"] = [{"id": int(i), "address": a, "households": int(h), "lon": round(p.x, 7),
                                 "lat": round(p.y, 7), "grid": codes[i]}
                                for i, a, h, p in zip(frame.index, frame["address"], frame["households"], pts)]
        else:
            out["buildings"] = []
    return out


#: The edits the planner page can ask for, by name.
EDITS = {"redraw": redraw, "move": move_buildings, "split": split, "merge": merge, "set_grids": set_grids}


def apply_edit(session, plan_id, kind, args, *, limits=None):
    """Run the edit ``kind`` (a key of :data:`EDITS`) with its parsed arguments on plan ``plan_id``."""
    a = dict(args)
    version = a.pop("version")
    if kind == "merge":
        return merge(session, plan_id, a["codes"][0], a["codes"][1], version, limits=limits)
    if kind == "move":
        return move_buildings(session, plan_id, a["building_ids"], a["to_grid"], version, limits=limits)
    if kind == "set_grids":
        return set_grids(session, plan_id, a["grids"], version, names=a["names"], limits=limits)
    return EDITS[kind](session, plan_id, a["grid_code"], a["polygon" if kind == "redraw" else "line"], version,
                       limits=limits)


# ============================================================================================
# The frame every edit runs in: lock, check version and status, change, check tiling, write
# ============================================================================================

class _Editor:
    """The plan being edited: its grids by code (WGS84), the community, metres for measuring."""

    def __init__(self, session, plan):
        self.session, self.plan = session, plan
        self.rows = {g.code: g for g in plan.grids}
        self.grids = {code: g.geom for code, g in sorted(self.rows.items())}
        self.community = _polygonal(shapely.make_valid(session.get(m.Community, plan.community_code).geom))
        self._metric = metric_for(self.community)
        self._buildings = None

    def grid(self, code):
        if code not in self.grids:
            raise NotFound(N_("Grid %(code)s is not in plan %(id)s."),
                           fix=N_("Use one of %(value)s%(value2)s."),
                           details={"grid": code},
                           params={"code": code, "id": self.plan.id,
                                   "value": ", ".join(map(str, sorted(self.grids)[:5])),
                                   "value2": ' …' if len(self.grids) > 5 else ''})
        return self.grids[code]

    def metric(self, g):
        return self._metric.project([g])[0]

    def area(self, g):
        return 0.0 if g is None or g.is_empty else float(shapely.area(self.metric(g)))

    def length(self, g):
        return 0.0 if g is None or g.is_empty else float(shapely.length(self.metric(g)))

    def grids_frame(self):
        return gpd.GeoDataFrame({"code": list(self.grids)}, geometry=list(self.grids.values()), crs=4326)

    def buildings(self):
        if self._buildings is None:
            self._buildings = community_buildings(self.session, self.plan.community_code)
        return self._buildings


def _edit(session, plan_id, version, change, limits):
    plan = _lock(session, plan_id)
    if plan.version != version:
        raise Conflict(N_("Plan %(id)s is at version %(version)s, not %(version2)s: someone else saved first."),
                       fix=N_("Reload the plan and make the edit again."), details={"version": plan.version},
                       params={"id": plan.id, "version": plan.version, "version2": version})
    if plan.status != "draft":
        raise Conflict(N_("Plan %(id)s is %(status)s; a published or retired plan is never edited in place."),
                       fix=N_("Make a new draft from it (copy) and edit that."), details={"status": plan.status},
                       params={"id": plan.id, "status": plan.status})
    ed = _Editor(session, plan)
    try:
        after, new_names = change(ed)
        after = {code: _clean(g) for code, g in after.items()}
        _tidy(ed, after)
        after = {code: _clean(g) for code, g in after.items()}
        _check(ed, after)
    except shapely.errors.GEOSException as err:
        # Overlays on valid, snap-rounded input do not fail; should one all the same (a stored grid
        # invalid since its import), the edit is refused, never half computed.
        raise Conflict(N_("This edit cannot be computed on the plan's current geometry (%(err)s)."),
                       fix=N_("Undo to the last good state, or redraw the grids involved with clear space between "
                              "their edges."), details={"geos": str(err)},
                       params={"err": err}) from None
    before = {code: ed.grids.get(code) for code in after}
    undo = {"grids": {c: _geojson(g) for c, g in before.items()},
            "names": {c: ed.rows[c].name for c in before if c in ed.rows}}
    redo = {"grids": {c: _geojson(g) for c, g in after.items()},
            "names": {c: (ed.rows[c].name if c in ed.rows else new_names[c]) for c, g in after.items()
                      if g is not None}}
    for code, geom in after.items():
        if geom is None:
            plan.grids.remove(ed.rows[code])
        elif code in ed.rows:
            ed.rows[code].geom = geom
        else:
            plan.grids.append(m.Grid(code=code, name=new_names[code], geom=geom))
    flag_modified(plan, "name")  # every edit moves the plan's version on, even one touching grids only
    # The plan is locked (_lock), so no other writer can have moved its version on since the check
    # above; should a race be lost all the same, Store.transaction() answers it as a Conflict.
    session.flush()
    session.expire(plan, ["grids"])
    state = plan_state(session, plan, limits=limits, buildings=False)
    state.update({"touched": sorted(after), "undo": undo, "redo": redo})
    return state


def _lock(session, plan_id):
    """The plan re-read under its lock, so the version compared is the committed one and stays so.

    Five planners saving one version at once then queue here: the first saves, the others read
    the version it committed and get the Conflict naming it, without computing their edit first.
    """
    return lock(session, m.GridPlan, get_plan(session, plan_id).id)


def _clean(g):
    """Polygonal part of an overlay result, as one Polygon when it is one piece."""
    if g is None:
        return None
    parts = _polygons(g)
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def _check(ed, after):
    """Refuse an edit that would leave a grid empty or in pieces, or let gaps, overlaps or outside parts grow."""
    for code, g in after.items():
        if g is None:
            continue
        if ed.area(g) <= SLIVER_M2:
            raise Conflict(N_("Grid %(code)s would be empty after this edit."),
                           fix=N_("Merge it into a neighbour instead."),
                           details={"grid": code, "geometry": _geojson(ed.grids.get(code))},
                           params={"code": code})
        parts = _polygons(g, ed)
        if len(parts) > 1:
            raise Conflict(N_("Grid %(code)s would be %(parts)s separate pieces after this edit."),
                           fix=N_("Draw the boundary so the grid stays in one piece."),
                           details={"grid": code, "geometry": _geojson(shapely.MultiPolygon(parts[1:]))},
                           params={"code": code, "parts": len(parts)})
        bad = _invalid_at(ed, g)
        if bad is not None:
            raise Conflict(N_("Grid %(code)s would have a boundary that crosses itself near (%(x)s, %(y)s): two of its "
                              "edges run closer than a few millimetres there."),
                           fix=N_("Draw the boundary there again, with clear space between the edges."),
                           details={"grid": code, "geometry": _geojson(bad)},
                           params={"code": code, "x": format(bad.x, '.7f'), "y": format(bad.y, '.7f')})
    before_all = dict(ed.grids)
    after_all = {**before_all, **after}
    b_over, b_cover, b_out = _tiling(ed, [g for g in before_all.values()])
    a_over, a_cover, a_out = _tiling(ed, [g for g in after_all.values() if g is not None])
    eps = max(TILING_EPS_M2, TILING_EPS_SHARE * ed.area(ed.community))
    problems = []
    if a_over > b_over + eps:
        problems.append(f"overlaps grow by {a_over - b_over:.2f} m²")
    if a_cover < b_cover - eps:
        problems.append(f"{b_cover - a_cover:.2f} m² would lie in no grid")
    if a_out > b_out + eps:
        problems.append(f"{a_out - b_out:.2f} m² would lie outside the community")
    if problems:
        raise Conflict(N_("This edit would break the tiling: %(value)s."),
                       fix=N_("Undo to the last good state, or redraw the grids involved."),
                       details={"grids": sorted(after)},
                       params={"value": '; '.join(problems)})


def _invalid_at(ed, g):
    """Where ``g`` is invalid in lon/lat or in the metric frame (a Point), or None when it is valid in both.

    Validation, export and the maps measure grids in metres; a lon/lat ring whose edges run a
    hair apart may cross itself there (a straight edge in lon/lat sags by ~0.6 mm over 200 m).
    """
    for frame in (g, ed.metric(g)):
        if not shapely.is_valid(frame):
            reason = shapely.is_valid_reason(frame)
            where = _REASON_AT.search(reason)
            if where and frame is not g:
                x, y = ed._metric.lonlat(float(where.group(1)), float(where.group(2)))
                return shapely.Point(x, y)
            return shapely.Point(float(where.group(1)), float(where.group(2))) if where else g.representative_point()
    return None


_REASON_AT = re.compile(r"\[(-?[\d.eE+-]+) (-?[\d.eE+-]+)\]")


def _tiling(ed, geoms):
    """(overlap, covered, outside) areas in m² of grids ``geoms`` against the community."""
    geoms = [g for g in geoms if g is not None and not g.is_empty]
    union = shapely.union_all(geoms)
    overlap = sum(ed.area(g) for g in geoms) - ed.area(union)
    return overlap, ed.area(shapely.intersection(union, ed.community)), ed.area(shapely.difference(union, ed.community))


# ============================================================================================
# Geometry helpers
# ============================================================================================

def _polygons(g, ed=None):
    """The polygon parts of ``g``, largest first; with ``ed``, parts of a sliver or less left out."""
    if g is None or g.is_empty:
        return []
    parts = [p for p in shapely.get_parts(shapely.get_parts(g)) if isinstance(p, shapely.Polygon) and not p.is_empty]
    parts.sort(key=lambda p: -p.area)
    if ed is not None:
        big = [p for p in parts if ed.area(p) > SLIVER_M2]
        parts = big or parts[:1]
    return parts


def _largest(g, ed, *, what):
    parts = _polygons(g)
    big = [p for p in parts if ed.area(p) > SLIVER_M2]
    if not big:
        raise InvalidInput(N_("%(what)s lies outside the community."), fix=N_("Draw it inside the community boundary."),
                           params={"what": what})
    if len(big) > 1:
        raise Conflict(N_("%(what)s falls into %(big)s pieces inside the community."),
                       fix=N_("Draw one connected shape."), details={"geometry": _geojson(shapely.MultiPolygon(big))},
                       params={"what": what, "big": len(big)})
    return big[0]


# The overlays answer polygonal geometry only. Snap-rounding may collapse a hair-thin part of a
# result to a line or a point, which GEOS then returns beside the polygons (a GeometryCollection);
# fed to the next overlay, such a mixed result is refused ("Overlay input is mixed-dimension").

def _u(a, b):
    return _polygonal(shapely.union(a, b, grid_size=_GRID_DEG))


def _d(a, b):
    return _polygonal(shapely.difference(a, b, grid_size=_GRID_DEG))


def _i(a, b):
    return _polygonal(shapely.intersection(a, b, grid_size=_GRID_DEG))


def _polygonal(g):
    """The polygonal part of ``g`` (lines and points a collapse left dropped); polygons unchanged."""
    if g is None or shapely.get_type_id(g) != 7:  # only a GeometryCollection mixes dimensions
        return g
    parts = _polygons(g)
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def _cores(g, ed):
    """(real pieces, slivers) of ``g``: pieces joined only by hair-thin necks come apart.

    Opening (shrink, then grow back by :data:`_HAIR_DEG`) finds the cores; what is left are
    hair-thin strips and specks, handed out as slivers so the tiling stays exact.
    """
    if g is None or g.is_empty:
        return [], []
    opened = shapely.buffer(shapely.buffer(g, -_HAIR_DEG, join_style="mitre"), _HAIR_DEG, join_style="mitre")
    cores = [p for p in _polygons(_i(opened, g)) if ed.area(p) > SLIVER_M2]
    if len(cores) <= 1 and len(_polygons(g)) <= 1:
        return ([g] if ed.area(g) > 0 else []), []  # nothing to cut: keep the exact shape
    rest = _polygons(_d(g, shapely.union_all(cores))) if cores else _polygons(g)
    return cores, [p for p in rest if ed.area(p) > 0]


def _shave(g, ed):
    """(g without its hair-thin spikes and strips, [those hairs]); g itself and [] when it has none.

    Opening with mitre joins (shrink, then grow back by :data:`_HAIR_DEG`) restores every corner
    and edge of a grid and loses only what is thinner than twice that: a spike an overlay leaves
    where two edges nearly coincide, a strip along an edge drawn a millimetre off. A hair joining
    two real parts stays (the grid would otherwise fall apart; :func:`_check` judges it), and so
    does a grid that is nothing but hair.
    """
    opened = shapely.buffer(shapely.buffer(g, -_HAIR_DEG, join_style="mitre", mitre_limit=_MITRE_LIMIT),
                            _HAIR_DEG, join_style="mitre", mitre_limit=_MITRE_LIMIT)
    cores = [p for p in _polygons(_i(opened, g)) if ed.area(p) > SLIVER_M2]
    if not cores:
        return g, []
    body = shapely.union_all(cores)
    hairs, necks = [], []
    for p in _polygons(_d(g, body)):
        touch = shapely.buffer(p, _TOUCH_DEG)
        (necks if sum(shapely.intersects(touch, c) for c in cores) > 1 else hairs).append(p)
    if not hairs:
        return g, []
    return (_u(body, shapely.union_all(necks)) if necks else body), hairs


def _tidy(ed, after):
    """Shave hair-thin spikes, strips and specks off the grids an edit changed; each goes to a grid bordering it.

    An overlay of two nearly coincident edges leaves a spike or strip a fraction of a millimetre
    wide. It is valid in lon/lat, but a straight edge in lon/lat is a curve in metres, sagging by
    ~0.6 mm over 200 m at Dalian's latitude: in the metric frame that validation, export and the
    maps measure in, the spike crosses its own edge and every overlay there fails (GEOS' "side
    location conflict"). A hair goes to the grid sharing the longest boundary with it that takes it
    in one piece; a speck no grid can take so and smaller than the tiling tolerance is left to no
    grid (the validation's gap rule ignores far larger ones); any other hair stays. A grid
    receiving a hair is tidied in turn; the passes are bounded.
    """
    pending = sorted(code for code, g in after.items() if g is not None)
    for _ in range(3 * len(pending) + 3):
        if not pending:
            return
        code = pending.pop(0)
        g = after[code]
        if g is None or g.is_empty:
            continue
        core, hairs = _shave(g, ed)
        kept, moved = [], False
        for hair in hairs:
            best = _taker(ed, after, hair, exclude={code})
            if best is not None:
                after[best] = _u(after.get(best, ed.grids.get(best)), hair)
                moved = True
                if best not in pending:
                    pending.append(best)
            elif len(_polygons(_u(core, hair))) <= len(_polygons(core)) or ed.area(hair) > TILING_EPS_M2:
                kept.append(hair)
            else:
                moved = True  # a loose speck below the tiling tolerance: no grid holds it in one piece
        if moved:
            after[code] = _u(core, shapely.union_all(kept)) if kept else core


def _taker(ed, after, piece, *, exclude):
    """The grid (after the edit so far) sharing the longest boundary with ``piece`` that takes it without
    gaining a part, or None."""
    touch = shapely.buffer(piece, _TOUCH_DEG)
    ranked = []
    for code in sorted(set(ed.grids) | set(after)):
        geom = after.get(code, ed.grids.get(code))
        if code in exclude or geom is None or geom.is_empty or not shapely.intersects(touch, geom):
            continue
        shared = ed.length(_shared(piece, geom, raw=True))
        if shared > 0:
            ranked.append((-shared, code, geom))
    for _, code, geom in sorted(ranked, key=lambda r: r[:2]):
        if len(_polygons(_u(geom, piece))) <= len(_polygons(geom)):
            return code
    return None


def _main_part(g, code, ed, *, cause):
    """A neighbour keeps its largest part; sliver parts come back as loose pieces, real ones are a Conflict."""
    parts, slivers = _cores(g, ed)
    parts.sort(key=lambda p: -p.area)
    if not parts or ed.area(parts[0]) <= SLIVER_M2:
        raise Conflict(N_("Grid %(code)s would vanish: %(cause)s covers it whole."),
                       fix=N_("Merge grid %(code)s into a neighbour instead, or draw a smaller boundary."),
                       details={"grid": code, "geometry": _geojson(ed.grids.get(code))},
                       params={"code": code, "cause": cause})
    cut_off = [p for p in parts[1:] if ed.area(p) > SLIVER_M2]
    if cut_off:
        raise Conflict(N_("Grid %(code)s would be cut into %(value)s pieces by %(cause)s."),
                       fix=N_("Draw the boundary so that it does not cross grid %(code)s, or merge it first."),
                       details={"grid": code, "geometry": _geojson(shapely.MultiPolygon(cut_off))},
                       params={"code": code, "value": len(cut_off) + 1, "cause": cause})
    return parts[0], slivers


def _shared(a, b, raw=False):
    """Length (in degrees, for comparing only) of boundary ``a`` shares with ``b``; ``raw`` gives the line."""
    line = shapely.intersection(shapely.boundary(a), shapely.buffer(b, _TOUCH_DEG))
    return line if raw else float(shapely.length(line))


def _hand_out(ed, after, pieces, *, exclude, giver):
    """Union each piece into the grid (after this edit) sharing the longest boundary with it."""
    for piece in pieces:
        best, best_len = None, 0.0
        for code in sorted(set(ed.grids) | set(after)):
            geom = after.get(code, ed.grids.get(code))
            if code in exclude or geom is None or not shapely.intersects(shapely.buffer(piece, _TOUCH_DEG), geom):
                continue
            shared = ed.length(_shared(piece, geom, raw=True))
            if shared > best_len:
                best, best_len = code, shared
        if best is None or best_len < (ADJACENT_M if ed.area(piece) > SLIVER_M2 else 0.0):
            if ed.area(piece) <= SLIVER_M2 and giver in after:
                best = giver  # a speck nobody borders stays where it was
            else:
                raise Conflict(N_("%(value)s m² that grid %(giver)s gives up touch no other grid, so no neighbour can take "
                                  "them."),
                               fix=N_("Draw the boundary out to the community edge or to a neighbour, so the area stays in a "
                                      "grid."),
                               details={"grid": giver, "area_m2": round(ed.area(piece), 1),
                                        "geometry": _geojson(piece)},
                               params={"value": format(ed.area(piece), ',.0f'), "giver": giver})
        after[best] = _u(after.get(best, ed.grids.get(best)), piece)


def _cells(frame, community):
    """Building id → its cell: the Voronoi diagram of representative points clipped to ``community``.

    Built in metres (Voronoi distances in degrees would stretch east–west) and brought back.
    Buildings on one spot share a cell.
    """
    geoms = np.asarray(frame.geometry.values, dtype=object)
    pts = np.where(shapely.get_type_id(geoms) == 0, geoms, shapely.point_on_surface(geoms))
    c = community.centroid
    sx, sy = 111_320.0 * math.cos(math.radians(c.y)), 110_574.0
    fwd = lambda g: shapely.transform(g, lambda xy: np.column_stack(((xy[:, 0] - c.x) * sx, (xy[:, 1] - c.y) * sy)))  # noqa: E731
    back = lambda g: shapely.transform(g, lambda xy: np.column_stack((xy[:, 0] / sx + c.x, xy[:, 1] / sy + c.y)))  # noqa: E731
    xy = shapely.get_coordinates(fwd(pts))
    key = np.round(xy, 3)
    uniq, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    if len(uniq) == 1:
        return {i: community for i in frame.index}
    sites = shapely.points(xy[first])
    diagram = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(sites), extend_to=fwd(community),
                                                         ordered=True))
    if len(diagram) != len(sites):  # degenerate input on old GEOS: match cells to sites by containment
        tree = shapely.STRtree(diagram)
        s_idx, d_idx = tree.query(sites, predicate="intersects")
        order = np.zeros(len(sites), dtype=np.int64)
        order[s_idx[::-1]] = d_idx[::-1]
        diagram = diagram[order]
    cells = shapely.intersection(back(diagram), community)
    return {i: cells[inverse[k]] for k, i in enumerate(frame.index)}


def _whole_buildings(ed, a, b):
    """Move each building the cut crosses wholly to the side holding most of its footprint."""
    frame = ed.buildings()
    if not len(frame):
        return a, b
    for g in frame.geometry:
        if shapely.get_type_id(g) not in (3, 6) or not (shapely.intersects(g, a) and shapely.intersects(g, b)):
            continue
        in_a, in_b = ed.area(_i(g, a)), ed.area(_i(g, b))
        if min(in_a, in_b) <= 0.01:
            continue
        if in_a >= in_b:
            a, b = _u(a, _i(g, b)), _d(b, g)
        else:
            a, b = _d(a, g), _u(b, _i(g, a))
    return _clean(a), _clean(b)


def _households_in(ed, geoms):
    frame = ed.buildings()
    if not len(frame):
        return [0] * len(geoms)
    grids = gpd.GeoDataFrame({"code": [str(k) for k in range(len(geoms))]}, geometry=list(geoms), crs=4326)
    where = buildings_to_grids(frame, grids)["grid_code"]
    return [int(frame["households"][where == str(k)].sum()) for k in range(len(geoms))]


def _metrics(table):
    """Per grid: households, area m², Polsby-Popper (4πA/P²) and deviation from the mean households."""
    if not len(table):
        return []
    metric = metric_for(table).frame(table)
    area, perim = metric.area.to_numpy(), metric.length.to_numpy()
    hh = table["households"].to_numpy(dtype=float)
    mean = hh.mean() if len(hh) else 0.0
    out = []
    for k, row in enumerate(table.itertuples()):
        out.append({"code": row.code, "name": row.name, "households": int(row.households),
                    "buildings": int(row.buildings), "area_m2": round(float(area[k]), 1),
                    "polsby_popper": round(float(4 * math.pi * area[k] / perim[k] ** 2), 3) if perim[k] else 0.0,
                    "deviation": round(float((hh[k] - mean) / mean), 4) if mean else 0.0,
                    "workers": row.workers, "party_branch": row.party_branch,
                    "geometry": _geojson(row.geometry)})
    return out


def _geojson(g):
    return shapely.geometry.mapping(g) if g is not None and not g.is_empty else None
