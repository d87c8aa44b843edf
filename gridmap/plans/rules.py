"""Validation of a plan: rules as data, each finding located on the map, errors blocking a publish."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Callable

import geopandas as gpd
import numpy as np
import shapely
import shapely.errors

from .. import settings
from ..errors import N_
from ..geo.errors import fill
from ..assign import buildings_to_grids
from ..geo.crs import metric_for
from ..store import models as m
from ..store.loaders import buildings_near, grid_branches, grid_workers
from .records import get_plan


@dataclass(frozen=True)
class Limits:
    """The settings validation reads: household limits per grid and the sliver area below which
    gaps, overlaps and parts outside are drawing noise."""
    max_households: int
    min_households: int
    sliver_m2: float

    @classmethod
    def from_config(cls, config=None):
        """Limits from a settings mapping (``app.config``), the settings' defaults filling what it lacks."""
        config = {**settings.defaults(), **(dict(config) if config else {})}
        return cls(max_households=int(config["GRID_MAX_HOUSEHOLDS"]),
                   min_households=int(config["GRID_MIN_HOUSEHOLDS"]),
                   sliver_m2=float(config["GRID_SLIVER_M2"]))


@dataclass
class Finding:
    """One thing wrong (``error``: blocks publishing) or worth a look (``warning``), with its place.

    ``geometry`` is a shapely geometry in WGS84; ``value`` the measured figure (m², households,
    parts, a footprint share) the message speaks of. ``template`` and ``fix_template`` are the
    catalogue's English msgids, filled from ``params`` into ``message`` and ``fix`` (the web layer
    fills the page language's translation instead).
    """
    kind: str
    severity: str
    grid_codes: list
    template: str
    geometry: object = None
    value: object = None
    fix_template: str = ""
    params: dict = field(default_factory=dict)

    @property
    def message(self):
        return fill(self.template, self.params)

    @property
    def fix(self):
        return fill(self.fix_template, self.params)

    @property
    def key(self):
        """What identifies this finding to a person accepting it: its kind and its grids."""
        return f"{self.kind}:{','.join(self.grid_codes)}"

    def to_dict(self):
        return {"kind": self.kind, "severity": self.severity, "grid_codes": list(self.grid_codes),
                "message": self.message, "fix": self.fix, "value": self.value, "key": self.key,
                "template": self.template, "fix_template": self.fix_template, "params": dict(self.params),
                "geometry": shapely.geometry.mapping(self.geometry) if self.geometry is not None else None}


@dataclass
class PlanData:
    """What the rules look at, in metres (a local transverse Mercator CRS).

    ``grids``: code, name, geometry, households, buildings; ``buildings``: address, households,
    geometry, grid_code (largest overlap), split, shares; ``workers`` and ``branches``: grid code →
    names.
    """
    community: object
    grids: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    workers: dict
    branches: dict
    limits: Limits
    metric: object = None
    _others: dict = field(default_factory=dict)

    def others(self, i):
        """Union of every grid but the one at position ``i`` (cached: holes ask for it)."""
        if i not in self._others:
            geoms = self.grids.geometry.values
            self._others[i] = shapely.union_all(np.delete(np.asarray(geoms, dtype=object), i))
        return self._others[i]


@dataclass(frozen=True)
class Rule:
    """One validation rule: its finding ``kind``, ``severity`` and ``check`` (PlanData → findings)."""
    kind: str
    severity: str
    check: Callable
    help: str


def _area(g):
    return float(shapely.area(g)) if g is not None else 0.0


# Half the width below which a strip is a drawing artefact: two outlines tracing the same road
# with different vertices leave hair-thin slivers; without this they would cling to real gaps.
_HAIR_M = 0.05


def _parts(g, sliver):
    """The polygonal parts of ``g`` larger than ``sliver`` m², hair-thin strips shaved off."""
    if g is None or g.is_empty:
        return []
    g = shapely.buffer(shapely.buffer(g, -_HAIR_M, join_style="mitre"), _HAIR_M, join_style="mitre")
    parts = shapely.get_parts(g)
    parts = parts[np.isin(shapely.get_type_id(parts), (3,))] if len(parts) else parts
    return [p for p in parts if shapely.area(p) > sliver]


def _codes(data, geom):
    """Codes of the grids touching or overlapping ``geom``, sorted."""
    tree = shapely.STRtree(np.asarray(data.grids.geometry.values, dtype=object))
    return sorted(data.grids["code"].iloc[tree.query(geom, predicate="intersects")].tolist())


def _m2(a):
    return f"{a:,.0f} m²" if a >= 10 else f"{a:.1f} m²"


def _gaps(data):
    if data.community is None:
        return
    union = shapely.union_all(np.asarray(data.grids.geometry.values, dtype=object))
    parts = _parts(shapely.difference(data.community, union), data.limits.sliver_m2)
    # the grids' outlines with holes filled, built only when there is a gap to compare with
    filled = [shapely.Polygon(p.exterior) for g in data.grids.geometry for p in shapely.get_parts(g)] if parts else []
    for part in parts:
        # an uncovered hole inside one grid is reported once, as that grid's "hole"
        if any(_area(shapely.intersection(f, part)) >= 0.99 * part.area for f in filled):
            continue
        near = _codes(data, part)
        yield (near, part, round(part.area, 1),
               (N_("%(area)s of the community lie in no grid (next to %(grids)s).") if near
                else N_("%(area)s of the community lie in no grid."), {"area": _m2(part.area), "grids": ", ".join(near)}),
               N_("Extend a neighbouring grid over the gap, or draw a grid for it."))


def _overlaps(data):
    geoms = np.asarray(data.grids.geometry.values, dtype=object)
    codes = data.grids["code"].tolist()
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    shared = shapely.intersection(geoms[left], geoms[right])
    # Neighbours mostly share an edge or a corner, which has no area and so no parts: only pairs
    # sharing an area go through _parts, one by one, in the same order as before.
    areal = shapely.area(shared) > 0
    for i, j, g in zip(left[areal], right[areal], shared[areal]):
        for part in _parts(g, data.limits.sliver_m2):
            yield ([codes[i], codes[j]], part, round(part.area, 1),
                   (N_("Grids %(grid)s and %(other)s overlap by %(area)s."),
                    {"grid": codes[i], "other": codes[j], "area": _m2(part.area)}),
                   N_("Cut the shared area out of one of the two grids."))


def _outside(data):
    if data.community is None:
        return
    beyond = shapely.difference(np.asarray(data.grids.geometry.values, dtype=object), data.community)
    # Most grids lie inside their community: nothing left, no parts.
    areal = shapely.area(beyond) > 0
    for code, g in zip(data.grids["code"].to_numpy()[areal], beyond[areal]):
        for part in _parts(g, data.limits.sliver_m2):
            yield ([code], part, round(part.area, 1),
                   (N_("%(area)s of grid %(grid)s lie outside the community."), {"area": _m2(part.area), "grid": code}),
                   N_("Clip the grid to the community boundary."))


def _non_contiguous(data):
    for code, g in zip(data.grids["code"], data.grids.geometry):
        parts = sorted(shapely.get_parts(g), key=lambda p: -p.area) if g.geom_type == "MultiPolygon" else []
        if len(parts) > 1:
            # located at the stray pieces: the largest part is the grid the planner meant
            yield ([code], shapely.MultiPolygon(parts[1:]), len(parts),
                   (N_("Grid %(grid)s is %(n)s separate pieces."), {"grid": code, "n": len(parts)}),
                   N_("Make each piece its own grid or join it to the grid it touches."))


def _holes(data, enclaves):
    for i, (code, g) in enumerate(zip(data.grids["code"], data.grids.geometry)):
        for part in shapely.get_parts(g):
            for ring in part.interiors:
                hole = shapely.Polygon(ring)
                inside = shapely.intersection(hole, data.community) if data.community is not None else hole
                if _area(inside) <= data.limits.sliver_m2:
                    continue  # the grid follows a hole of the community itself (a lake, another community)
                uncovered = shapely.difference(inside, data.others(i))
                if not enclaves and _area(uncovered) > data.limits.sliver_m2:
                    yield ([code], uncovered, round(_area(uncovered), 1),
                           (N_("Grid %(grid)s has a hole of %(area)s that no grid covers."),
                            {"grid": code, "area": _m2(_area(uncovered))}),
                           N_("Fill the hole, or draw a grid for it."))
                elif enclaves and _area(uncovered) <= data.limits.sliver_m2:
                    inner = [c for c in _codes(data, shapely.buffer(hole, -0.01)) if c != code]
                    yield ([code] + inner, hole, round(hole.area, 1),
                           (N_("Grid %(grid)s surrounds grid(s) %(grids)s (%(area)s)."),
                            {"grid": code, "grids": ", ".join(inner), "area": _m2(hole.area)}),
                           N_("Fine for a dedicated grid (a school, a compound); otherwise merge or redraw."))


def _households_rule(test, message, fix):
    def check(data):
        for code, g, hh in zip(data.grids["code"], data.grids.geometry, data.grids["households"]):
            if test(int(hh), data.limits):
                yield [code], g, int(hh), message(code, int(hh), data.limits), fix
    return check


def _split_buildings(data):
    b = data.buildings[data.buildings["split"]]
    for bid, row in b.iterrows():
        shares = sorted(row["shares"].items(), key=lambda kv: (-kv[1], kv[0]))
        text = ", ".join(f"{c} {s:.0%}" for c, s in shares)
        yield ([c for c, _ in shares], row.geometry, round(float(shares[-1][1]), 4),
               (N_("Building %(building)s is cut by a grid boundary (%(shares)s); its %(households)s households "
                   "count in %(grid)s."),
                {"building": row["address"] or bid, "shares": text, "households": int(row["households"]),
                 "grid": row["grid_code"]}),
               N_("Move the boundary around the building (whole buildings per grid)."))


def _missing(message, table, fix):
    def check(data):
        for code, g in zip(data.grids["code"], data.grids.geometry):
            if not getattr(data, table).get(code):
                yield [code], g, None, (message, {"grid": code}), fix
    return check


RULES = [
    Rule("gap", "error", _gaps, "part of the community in no grid"),
    Rule("overlap", "error", _overlaps, "area in two grids at once"),
    Rule("outside", "error", _outside, "part of a grid outside its community"),
    Rule("non_contiguous", "error", _non_contiguous, "a grid in more than one piece"),
    Rule("hole", "error", lambda d: _holes(d, enclaves=False), "a hole in a grid that no grid covers"),
    Rule("enclave", "warning", lambda d: _holes(d, enclaves=True), "a grid surrounding another grid"),
    Rule("empty", "warning", _households_rule(
        lambda hh, lim: hh == 0,
        lambda code, hh, lim: (N_("Grid %(grid)s holds no households."), {"grid": code}),
        N_("Merge it into a neighbour, unless it is a dedicated grid (a school, an enterprise).")),
        "a grid without households"),
    Rule("over_limit", "error", _households_rule(
        lambda hh, lim: lim.max_households > 0 and hh > lim.max_households,
        lambda code, hh, lim: (N_("Grid %(grid)s holds %(households)s households, more than the limit of %(limit)s "
                                  "(setting GRID_MAX_HOUSEHOLDS)."),
                               {"grid": code, "households": hh, "limit": lim.max_households}),
        N_("Split the grid or move buildings to a neighbour.")),
        "more households than GRID_MAX_HOUSEHOLDS"),
    Rule("under_limit", "warning", _households_rule(
        lambda hh, lim: 0 < hh < lim.min_households,
        lambda code, hh, lim: (N_("Grid %(grid)s holds %(households)s households, fewer than the minimum of "
                                  "%(limit)s (setting GRID_MIN_HOUSEHOLDS)."),
                               {"grid": code, "households": hh, "limit": lim.min_households}),
        N_("Merge it with a neighbour, or keep it if it is a dedicated grid.")),
        "fewer households than GRID_MIN_HOUSEHOLDS"),
    Rule("split_building", "warning", _split_buildings, "a building cut by a grid boundary"),
    Rule("no_worker", "warning", _missing(N_("Grid %(grid)s has no grid worker."), "workers",
                                          N_("Import workers with their grids (gridmap import workers) or assign one.")),
         "a grid without a grid worker"),
    Rule("no_branch", "warning", _missing(N_("Grid %(grid)s has no party branch."), "branches",
                                          N_("Set up a grid party branch for it.")),
         "a grid without a party branch"),
]
#: "unchecked" stands for a rule GEOS could not run even on rounded coordinates: first, it hides findings.
_RULE_ORDER = {"unchecked": -1, **{r.kind: i for i, r in enumerate(RULES)}}


def validate(session, plan_id, *, limits=None):
    """Every finding of :data:`RULES` on plan ``plan_id`` (an id or a GridPlan), errors first.

    Households come from buildings by the largest overlap of their footprint
    (:func:`gridmap.assign.buildings_to_grids`); workers and party branches are matched by grid code.
    """
    plan = get_plan(session, plan_id)
    community, grids, buildings, people = load(session, plan)
    return check_plan(community, grids, buildings, workers=people["workers"], branches=people["branches"],
                      limits=limits)


def check_plan(community, grids, buildings=None, *, workers=None, branches=None, limits=None):
    """Run :data:`RULES` on WGS84 frames; the pure core of :func:`validate`.

    Parameters
    ----------
    community : shapely (Multi)Polygon or None
    grids : GeoDataFrame with ``code`` (and optionally ``name``)
    buildings : GeoDataFrame with ``households`` (and optionally ``address``), optional
    workers, branches : dict, optional
        grid code → a non-empty list / name when the grid has a worker / a party branch.
    limits : Limits, optional (default: the settings' defaults)

    Returns
    -------
    list of Finding
        Errors before warnings, then in rule order and by grid code; geometry in WGS84.
    """
    data = plan_data(community, grids, buildings, workers or {}, branches or {}, limits or Limits.from_config())
    raw, reduced = [], None
    for rule in RULES:
        try:
            found = list(rule.check(data))
        except shapely.errors.GEOSException:
            # Geometry valid in lon/lat can still trip an overlay in metres (edges a hair apart);
            # the same rule on coordinates rounded to a millimetre almost always goes through.
            reduced = reduced or _reduced(data)
            try:
                found = list(rule.check(reduced))
            except shapely.errors.GEOSException as err:
                raw.append(_unchecked(rule, data, err))
                continue
        # each rule yields (grid codes, geometry, value, (template, params) or plain text, fix template)
        for codes, geom, value, message, fix in found:
            template, params = message if isinstance(message, tuple) else (message, {})
            raw.append(Finding(rule.kind, rule.severity, list(codes), template, geom, value, fix, params))
    if raw:
        for f, g in zip(raw, data.metric.unproject([f.geometry for f in raw])):
            f.geometry = g
    return sorted(raw, key=lambda f: (f.severity != "error", _RULE_ORDER[f.kind], f.grid_codes))


#: Coordinates are rounded to this (m) when a rule's overlay fails on the exact ones.
_PRECISION_M = 1e-3


def _reduced(data):
    """``data`` with the grids and the community snap-rounded to :data:`_PRECISION_M`, valid and polygonal."""
    def fix(g):
        if g is None or g.is_empty:
            return g
        try:
            return _polygonal(shapely.set_precision(g, _PRECISION_M))
        except shapely.errors.GEOSException:
            return _polygonal(shapely.set_precision(_polygonal(shapely.make_valid(g)), _PRECISION_M))
    grids = data.grids.set_geometry(gpd.GeoSeries([fix(g) for g in data.grids.geometry], index=data.grids.index,
                                                  crs=data.grids.crs, name=data.grids.geometry.name))
    return replace(data, community=fix(data.community), grids=grids, _others={})


def _unchecked(rule, data, err):
    """The finding standing for a rule GEOS could not run: an error, so the plan is not published unchecked.

    Located where GEOS says it failed (a point in metres, shown in lon/lat), else at the community.
    """
    at = _GEOS_AT.search(str(err))
    if at:
        where = shapely.Point(float(at.group(1)), float(at.group(2)))
        lon, lat = data.metric.lonlat(where.x, where.y)
        template = N_("The %(rule)s rule could not be checked: the grids' geometry is degenerate near "
                      "(%(lon)s, %(lat)s) (GEOS: %(detail)s).")
        params = {"lon": f"{lon:.6f}", "lat": f"{lat:.6f}"}
    else:
        where = data.community if data.community is not None else shapely.union_all(
            np.asarray(data.grids.geometry.values, dtype=object))
        template = N_("The %(rule)s rule could not be checked: the grids' geometry is degenerate somewhere in "
                      "the community (GEOS: %(detail)s).")
        params = {}
    return Finding("unchecked", "error", sorted(data.grids["code"].tolist()), template,
                   None if where is None or where.is_empty else where, None,
                   N_("Redraw the grids there with clear space between their edges, or undo the last edit."),
                   {**params, "rule": rule.kind, "detail": str(err)})


_GEOS_AT = re.compile(r" at (-?[\d.eE+-]+) (-?[\d.eE+-]+)")


def _polygonal(g):
    """The polygons of ``g`` as a Polygon or MultiPolygon (lines and points a repair left dropped)."""
    if g is None or g.is_empty or g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    parts = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
    parts = [q for p in parts for q in shapely.get_parts(p)]
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def _repaired(g, sliver):
    """``g`` as measured in metres, repaired if the projection made it invalid.

    A ring valid in lon/lat whose edges run a hair apart can cross itself in metres, where a
    straight lon/lat edge is a curve. Repaired, the crossing leaves specks of a hair's area: parts
    no larger than ``sliver`` are dropped unless nothing else is left.
    """
    if g is None or g.is_empty or shapely.is_valid(g):
        return g
    parts = sorted(shapely.get_parts(_polygonal(shapely.make_valid(g))), key=lambda p: -p.area)
    parts = [p for p in parts if p.area > sliver] or parts[:1]
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def plan_data(community, grids, buildings, workers, branches, limits):
    """The :class:`PlanData` the rules look at: buildings placed by largest overlap, counts per grid, metres."""
    grids = grids.reset_index(drop=True)
    if "name" not in grids.columns:
        grids = grids.assign(name=grids["code"])
    if buildings is None:
        buildings = gpd.GeoDataFrame({"households": []}, geometry=[], crs=4326)
    buildings = buildings.copy()
    if "address" not in buildings.columns:
        buildings["address"] = ""
    if len(grids):
        bg = buildings_to_grids(buildings, grids)
        buildings = buildings.join(bg[["grid_code", "split", "shares"]])
    else:
        buildings = buildings.assign(grid_code=None, split=False, shares=[{}] * len(buildings))
    per_grid = buildings.groupby("grid_code")["households"].agg(["sum", "size"])
    grids = grids.assign(households=grids["code"].map(per_grid["sum"]).fillna(0).astype(int).to_numpy(),
                         buildings=grids["code"].map(per_grid["size"]).fillna(0).astype(int).to_numpy())
    # the Metric's transformers come from the CRS's pipeline: GeoDataFrame.to_crs would spend ~25 ms
    # a community looking the same operations up in the PROJ database
    metric = metric_for(grids if len(grids) else (community if community is not None else (121.6, 38.9)))
    comm = _repaired(metric.project([community])[0], limits.sliver_m2) if community is not None else None
    grids = metric.frame(grids)
    if len(grids) and not shapely.is_valid(np.asarray(grids.geometry.values, dtype=object)).all():
        grids = grids.set_geometry(gpd.GeoSeries([_repaired(g, limits.sliver_m2) for g in grids.geometry],
                                                 index=grids.index, crs=grids.crs, name=grids.geometry.name))
    return PlanData(community=comm, grids=grids, buildings=metric.frame(buildings),
                    workers=workers, branches=branches, limits=limits, metric=metric)


def load(session, plan):
    """(community, grids, buildings) of ``plan`` in WGS84, with workers' names and branches by grid code."""
    community = session.get(m.Community, plan.community_code)
    grids = grids_frame(plan)
    buildings = buildings_near(session, [grids.total_bounds if len(grids) else None, community.geom.bounds])
    codes = grids["code"].tolist()
    workers = {code: [w["name"] for w in ws] for code, ws in grid_workers(session, codes).items()}
    return community.geom, grids, buildings, {"workers": workers, "branches": grid_branches(session, codes)}


def grids_frame(plan):
    """A plan's grids as a WGS84 GeoDataFrame (code, name), by code."""
    gs = sorted(plan.grids, key=lambda g: g.code)
    return gpd.GeoDataFrame({"code": [g.code for g in gs], "name": [g.name for g in gs]},
                            geometry=[g.geom for g in gs], crs=4326)
