"""Plan generations: drafts, validation, publish, diff and as-of lookups; each plan's grid table for exports."""
from __future__ import annotations

import datetime as dt
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Integer, String, cast, func, or_, select, update
from sqlalchemy.orm.exc import StaleDataError

from .errors import Conflict, Forbidden, InvalidInput, NotFound
from .geo.crs import local_metric_crs, local_metric_transformers, transform_geometries
from .geo.numbering import number_west_east_north_south
from .store import models as m

GENERATION_KEY = "published_generation"


def grid_code(community_code, seq):
    """15-digit grid code: the community's 6 district + 3 street + 3 community digits, then a 3-digit sequence."""
    if not (1 <= seq <= 999):
        raise InvalidInput(f"Grid sequence {seq} is outside 1–999.", fix="A community holds at most 999 grids.")
    return f"{community_code[:12]}{seq:03d}"


def create_plan(session, community_code, grids, *, name=""):
    """Store ``grids`` (GeoDataFrame: geometry, optional name and code) as a new draft plan.

    Grids without a code are numbered west→east along rows, rows north→south
    (DB11/T 2157-2023), skipping sequence numbers already taken by given codes.
    """
    if session.get(m.Community, community_code) is None:
        raise NotFound(f"Community {community_code} is not in the store.", fix="Import the community first.")
    geoms = list(grids.geometry)
    codes = list(grids["code"]) if "code" in grids.columns else [""] * len(geoms)
    names = list(grids["name"]) if "name" in grids.columns else [""] * len(geoms)
    for c in codes:
        if c and not c.startswith(community_code[:12]):
            raise InvalidInput(f"Grid code {c} does not start with its community's code {community_code}.",
                               fix="Leave the code empty to number the grid, or correct it.")
    seq = number_west_east_north_south(geoms)
    taken = {int(c[-3:]) for c in codes if c}
    free = (s for s in range(1, 1000) if s not in taken)
    order = np.argsort(seq, kind="stable")
    for i in order:
        if not codes[i]:
            codes[i] = grid_code(community_code, next(free))
    plan = m.GridPlan(community_code=community_code, name=name, status="draft")
    session.add(plan)
    community = session.get(m.Community, community_code)
    for g, c, n in zip(geoms, codes, names):
        plan.grids.append(m.Grid(code=c, name=n or f"{community.name}第{int(c[-3:])}网格", geom=g))
    session.flush()
    return plan


def publish(session, plan, *, on=None, expected_version=None, limits=None):
    """Make ``plan`` the community's published plan from ``on`` (default today); retire the previous one.

    Raises Conflict when ``expected_version`` is given and the plan changed since, when the plan
    is not a draft, or when :func:`validate` finds errors (listed in ``details["errors"]``);
    InvalidInput when ``on`` is before the current plan's ``valid_from`` (that would rewrite
    the history of a published plan).
    """
    on = on or dt.date.today()
    # One publish per community at a time: on PostgreSQL the community row is the mutex, so two
    # planners publishing two drafts at once cannot both end up "published"; the plan is then
    # re-read under a row lock, so the version compared below is the committed one. SQLite has
    # one writer at a time and needs neither.
    session.execute(select(m.Community.code).where(m.Community.code == plan.community_code).with_for_update())
    session.execute(select(m.GridPlan).where(m.GridPlan.id == plan.id).with_for_update()
                    .execution_options(populate_existing=True))
    if expected_version is not None and plan.version != expected_version:
        raise Conflict(f"Plan {plan.id} is at version {plan.version}, not {expected_version}.",
                       fix="Reload the plan and publish again.", details={"version": plan.version})
    if plan.status != "draft":
        raise Conflict(f"Plan {plan.id} is {plan.status}; only a draft can be published.",
                       fix="Copy it into a new draft first.")
    errors = [f for f in validate(session, plan, limits=limits) if f.severity == "error"]
    if errors:
        shown = "\n".join(f"  {f.kind} {', '.join(f.grid_codes)}: {f.message}" for f in errors[:20])
        more = f"\n  … and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise Conflict(f"Plan {plan.id} has {len(errors)} validation error(s); it cannot be published.\n{shown}{more}",
                       fix=f"Fix them in a draft (gridmap plan validate {plan.id} lists each with its place) "
                           "and publish again.",
                       details={"errors": [f.to_dict() for f in errors]})
    current = session.scalars(select(m.GridPlan).where(
        m.GridPlan.community_code == plan.community_code, m.GridPlan.status == "published")).all()
    for old in current:
        if old.valid_from is not None and on < old.valid_from:
            raise InvalidInput(f"valid_from {on.isoformat()} is before {old.valid_from.isoformat()}, when the "
                               f"current plan {old.id} took effect.",
                               fix=f"Give a date on or after {old.valid_from.isoformat()}.",
                               details={"valid_from": on.isoformat(), "current_valid_from": old.valid_from.isoformat()})
    for old in current:
        old.status, old.valid_to = "retired", on
    plan.status, plan.valid_from, plan.valid_to = "published", on, None
    bump_generation(session)
    try:
        session.flush()
    except StaleDataError:  # SQLite: another writer committed a change to the plan since we read it
        raise Conflict(f"Plan {plan.id} was changed by someone else while it was being published.",
                       fix="Reload the plan and publish again.") from None
    return plan


def plan_on(session, community_code, day):
    """The plan valid for ``community_code`` on ``day`` (published or since retired), or None."""
    return session.scalars(select(m.GridPlan).where(
        m.GridPlan.community_code == community_code,
        m.GridPlan.status.in_(("published", "retired")),
        m.GridPlan.valid_from <= day,
        or_(m.GridPlan.valid_to.is_(None), m.GridPlan.valid_to > day),
    ).order_by(m.GridPlan.valid_from.desc(), m.GridPlan.id.desc())).first()


def published_grids(session, community_code=None):
    """(Grid, community code) rows of every published plan, or of one community's, by grid code."""
    q = select(m.Grid, m.GridPlan.community_code).join(m.GridPlan).where(m.GridPlan.status == "published")
    if community_code:
        q = q.where(m.GridPlan.community_code == community_code)
    return session.execute(q.order_by(m.Grid.code)).all()


def bump_generation(session):
    """Move the snapshot generation on: every web process rebuilds its snapshot when it sees it.

    Publishing a plan and importing anything a snapshot holds (responders, cameras, buildings…)
    both call this. The increment is one UPDATE so two writers cannot both write N + 1.
    """
    done = session.execute(update(m.Meta).where(m.Meta.key == GENERATION_KEY).values(
        value=cast(cast(m.Meta.value, Integer) + 1, String), updated_at=m.utcnow()))
    if done.rowcount == 0:
        session.add(m.Meta(key=GENERATION_KEY, value="1"))
        session.flush()


def generation(session):
    """The published-plan generation, 0 before the first publish."""
    row = session.get(m.Meta, GENERATION_KEY)
    return int(row.value) if row else 0


# ============================================================================================
# Drafts: list, show, copy
# ============================================================================================

PLANNING_ROLES = ("admin", "planner")  # who may publish or copy plans
_COMMUNITY_CODE = re.compile(r"\d{12}")


def require_planner(role):
    """Raise Forbidden unless ``role`` may change plans (publish, copy)."""
    if role not in PLANNING_ROLES:
        raise Forbidden(f"Role {role or 'public'!r} may not change grid plans.",
                        fix=f"Sign in as one of {list(PLANNING_ROLES)}.",
                        details={"allowed_roles": list(PLANNING_ROLES)})


def get_plan(session, plan_id):
    """The GridPlan with id ``plan_id`` (an int or its digits); InvalidInput or NotFound otherwise."""
    if isinstance(plan_id, m.GridPlan):
        return plan_id
    pid = _plan_id(plan_id)
    plan = session.get(m.GridPlan, pid)
    if plan is None:
        raise NotFound(f"Grid plan {pid} is not in the store.",
                       fix="List the plans with GET /api/v1/plans?community=CODE or `gridmap plan list`.",
                       details={"plan": pid})
    return plan


def list_plans(session, community_code=None):
    """Every plan (drafts, published, retired), newest first, optionally of one community."""
    q = select(m.GridPlan, func.count(m.Grid.id)).outerjoin(m.Grid).group_by(m.GridPlan.id)
    if community_code is not None:
        q = q.where(m.GridPlan.community_code == _community(session, community_code))
    rows = session.execute(q.order_by(m.GridPlan.community_code, m.GridPlan.id.desc())).all()
    return [plan_summary(p, grids=n) for p, n in rows]


def plan_summary(plan, *, grids=None):
    """A plan as JSON-ready facts (no geometry)."""
    return {"id": plan.id, "community": plan.community_code, "name": plan.name, "status": plan.status,
            "valid_from": _iso(plan.valid_from), "valid_to": _iso(plan.valid_to), "version": plan.version,
            "created_at": plan.created_at.isoformat(timespec="seconds") if plan.created_at else None,
            "grids": len(plan.grids) if grids is None else int(grids)}


def plan_detail(session, plan_id, *, limits=None):
    """A plan's facts and its grids as GeoJSON with households, workers and party branch per grid."""
    plan = get_plan(session, plan_id)
    table = grid_table(session, plan, limits=limits)
    out = plan_summary(plan)
    out["households"] = int(table["households"].sum()) if len(table) else 0
    out["grid_features"] = _feature_collection(table)
    return out


def copy_plan(session, plan_id, *, name=None):
    """A new draft holding the same grids (codes, names, boundaries) as plan ``plan_id``, of any status.

    This is how a published plan is changed: it never is; a copy is edited and published in its place.
    """
    source = get_plan(session, plan_id)
    copy = m.GridPlan(community_code=source.community_code, status="draft",
                      name=name if name is not None else f"copy of plan {source.id}")
    session.add(copy)
    for g in source.grids:
        copy.grids.append(m.Grid(code=g.code, name=g.name, geom=g.geom))
    session.flush()
    return copy


def publish_plan(session, plan_id, *, expected_version=None, on=None, limits=None):
    """Load plan ``plan_id`` and :func:`publish` it; returns its summary."""
    return plan_summary(publish(session, get_plan(session, plan_id), on=on,
                                expected_version=expected_version, limits=limits))


def parse_day(raw, *, name="at"):
    """A calendar day written YYYY-MM-DD, strictly; InvalidInput naming ``name`` and the value otherwise."""
    text = str(raw).strip() if raw is not None else ""
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{name}={raw!r} is not a date written YYYY-MM-DD.",
                           fix=f"Write e.g. {name}=2026-05-03.", details={name: raw}) from None


def parse_publish_body(body):
    """Validate a publish request's JSON: ``{"version": N, "valid_from": "YYYY-MM-DD"?}``.

    Returns ``{"expected_version": int, "on": date or None}``.
    """
    if not isinstance(body, dict):
        raise InvalidInput("The request body is not a JSON object.",
                           fix='Send {"version": N} with Content-Type: application/json, N the version you loaded.')
    unknown = sorted(set(body) - {"version", "valid_from"})
    if unknown:
        raise InvalidInput(f"Unknown field(s) {unknown} in the publish request.",
                           fix='Send only "version" and optionally "valid_from".', details={"unknown": unknown})
    version = body.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInput(f"version={version!r} is not a positive whole number.",
                           fix="Send the version you loaded, from GET /api/v1/plans/<id>.",
                           details={"version": version})
    valid_from = body.get("valid_from")
    on = None if valid_from is None else parse_day(valid_from, name="valid_from")
    return {"expected_version": version, "on": on}


# ============================================================================================
# Validation: rules as data, each finding located
# ============================================================================================

@dataclass(frozen=True)
class Limits:
    """The settings validation reads: household limits per grid and the sliver area below which
    gaps, overlaps and parts outside are drawing noise."""
    max_households: int = 500
    min_households: int = 100
    sliver_m2: float = 1.0

    @classmethod
    def from_config(cls, config=None):
        """Limits from a settings mapping (``app.config``), the defaults of ``gridmap.settings`` filling gaps."""
        from .settings import defaults
        merged = {**defaults(), **(dict(config) if config else {})}
        return cls(max_households=int(merged["GRID_MAX_HOUSEHOLDS"]),
                   min_households=int(merged["GRID_MIN_HOUSEHOLDS"]),
                   sliver_m2=float(merged["GRID_SLIVER_M2"]))


@dataclass
class Finding:
    """One thing wrong (``error``: blocks publishing) or worth a look (``warning``), with its place.

    ``geometry`` is a shapely geometry in WGS84; ``value`` the measured figure (m², households,
    parts, a footprint share) the message speaks of.
    """
    kind: str
    severity: str
    grid_codes: list
    message: str
    geometry: object = None
    value: object = None
    fix: str = ""

    def to_dict(self):
        return {"kind": self.kind, "severity": self.severity, "grid_codes": list(self.grid_codes),
                "message": self.message, "fix": self.fix, "value": self.value,
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
    crs: object = None
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
               f"{_m2(part.area)} of the community lie in no grid"
               + (f" (next to {', '.join(near)})." if near else "."),
               "Extend a neighbouring grid over the gap, or draw a grid for it.")


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
                   f"Grids {codes[i]} and {codes[j]} overlap by {_m2(part.area)}.",
                   "Cut the shared area out of one of the two grids.")


def _outside(data):
    if data.community is None:
        return
    beyond = shapely.difference(np.asarray(data.grids.geometry.values, dtype=object), data.community)
    # Most grids lie inside their community: nothing left, no parts.
    areal = shapely.area(beyond) > 0
    for code, g in zip(data.grids["code"].to_numpy()[areal], beyond[areal]):
        for part in _parts(g, data.limits.sliver_m2):
            yield ([code], part, round(part.area, 1),
                   f"{_m2(part.area)} of grid {code} lie outside the community.",
                   "Clip the grid to the community boundary.")


def _non_contiguous(data):
    for code, g in zip(data.grids["code"], data.grids.geometry):
        parts = sorted(shapely.get_parts(g), key=lambda p: -p.area) if g.geom_type == "MultiPolygon" else []
        if len(parts) > 1:
            # located at the stray pieces: the largest part is the grid the planner meant
            yield ([code], shapely.MultiPolygon(parts[1:]), len(parts),
                   f"Grid {code} is {len(parts)} separate pieces.",
                   "Make each piece its own grid or join it to the grid it touches.")


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
                           f"Grid {code} has a hole of {_m2(_area(uncovered))} that no grid covers.",
                           "Fill the hole, or draw a grid for it.")
                elif enclaves and _area(uncovered) <= data.limits.sliver_m2:
                    inner = [c for c in _codes(data, shapely.buffer(hole, -0.01)) if c != code]
                    yield ([code] + inner, hole, round(hole.area, 1),
                           f"Grid {code} surrounds grid(s) {', '.join(inner)} ({_m2(hole.area)}).",
                           "Fine for a dedicated grid (a school, a compound); otherwise merge or redraw.")


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
               f"Building {row['address'] or bid} is cut by a grid boundary ({text}); "
               f"its {int(row['households'])} households count in {row['grid_code']}.",
               "Move the boundary around the building (whole buildings per grid).")


def _missing(what, table, fix):
    def check(data):
        for code, g in zip(data.grids["code"], data.grids.geometry):
            if not getattr(data, table).get(code):
                yield [code], g, None, f"Grid {code} has no {what}.", fix
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
        lambda code, hh, lim: f"Grid {code} holds no households.",
        "Merge it into a neighbour, unless it is a dedicated grid (a school, an enterprise)."),
        "a grid without households"),
    Rule("over_limit", "error", _households_rule(
        lambda hh, lim: lim.max_households > 0 and hh > lim.max_households,
        lambda code, hh, lim: f"Grid {code} holds {hh} households, more than GRID_MAX_HOUSEHOLDS={lim.max_households}.",
        "Split the grid or move buildings to a neighbour."),
        "more households than GRID_MAX_HOUSEHOLDS"),
    Rule("under_limit", "warning", _households_rule(
        lambda hh, lim: 0 < hh < lim.min_households,
        lambda code, hh, lim: f"Grid {code} holds {hh} households, fewer than GRID_MIN_HOUSEHOLDS={lim.min_households}.",
        "Merge it with a neighbour, or keep it if it is a dedicated grid."),
        "fewer households than GRID_MIN_HOUSEHOLDS"),
    Rule("split_building", "warning", _split_buildings, "a building cut by a grid boundary"),
    Rule("no_worker", "warning", _missing("grid worker", "workers",
                                          "Import workers with their grids (gridmap import workers) or assign one."),
         "a grid without a grid worker"),
    Rule("no_branch", "warning", _missing("party branch", "branches", "Set up a grid party branch for it."),
         "a grid without a party branch"),
]
_RULE_ORDER = {r.kind: i for i, r in enumerate(RULES)}


def validate(session, plan_id, *, limits=None):
    """Every finding of :data:`RULES` on plan ``plan_id`` (an id or a GridPlan), errors first.

    Households come from buildings by the largest overlap of their footprint
    (:func:`gridmap.assign.buildings_to_grids`); workers and party branches are matched by grid code.
    """
    plan = get_plan(session, plan_id)
    community, grids, buildings, people = _load(session, plan)
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
    data = _plan_data(community, grids, buildings, workers or {}, branches or {}, limits or Limits.from_config())
    raw = []
    for rule in RULES:
        for codes, geom, value, message, fix in rule.check(data):
            raw.append(Finding(rule.kind, rule.severity, list(codes), message, geom, value, fix))
    if raw:
        _, to_wgs84 = local_metric_transformers(data.crs)
        for f, g in zip(raw, transform_geometries([f.geometry for f in raw], to_wgs84)):
            f.geometry = g
    return sorted(raw, key=lambda f: (f.severity != "error", _RULE_ORDER[f.kind], f.grid_codes))


def _plan_data(community, grids, buildings, workers, branches, limits):
    from .assign import buildings_to_grids
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
    bounds = grids.total_bounds if len(grids) else (community.bounds if community is not None else (121.6, 38.9) * 2)
    crs = local_metric_crs((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)
    # One pair of transformers per plan, built from the CRS's pipeline: GeoDataFrame.to_crs would
    # spend ~25 ms a community looking the same operations up in the PROJ database.
    to_metric, _ = local_metric_transformers(crs)
    comm = transform_geometries([community], to_metric)[0] if community is not None else None
    return PlanData(community=comm, grids=_to_metric(grids, crs, to_metric),
                    buildings=_to_metric(buildings, crs, to_metric), workers=workers,
                    branches=branches, limits=limits, crs=crs)


def _to_metric(frame, crs, transformer):
    """``frame.to_crs(crs)`` (a WGS84 frame) through an already built ``transformer``."""
    out = frame.copy()
    out[frame.geometry.name] = gpd.GeoSeries(transform_geometries(frame.geometry.values, transformer),
                                             index=frame.index, crs=crs)
    return out


def _load(session, plan):
    """(community, grids, buildings) of ``plan`` in WGS84, with workers and branches by grid code."""
    community = session.get(m.Community, plan.community_code)
    grids = _grids_frame(plan)
    buildings = _buildings_near(session, [grids.total_bounds if len(grids) else None, community.geom.bounds])
    codes = grids["code"].tolist()
    return community.geom, grids, buildings, {"workers": _workers_by_code(session, codes),
                                              "branches": _branches_by_code(session, codes)}


def _grids_frame(plan):
    gs = sorted(plan.grids, key=lambda g: g.code)
    return gpd.GeoDataFrame({"code": [g.code for g in gs], "name": [g.name for g in gs]},
                            geometry=[g.geom for g in gs], crs=4326)


# A footprint lies within ~1 km of its representative point: buildings whose point is farther than
# this from the plan's bounding box cannot touch its grids.
_MARGIN_DEG = 0.01


def _buildings_near(session, boxes):
    boxes = [b for b in boxes if b is not None]
    x0, y0 = min(b[0] for b in boxes) - _MARGIN_DEG, min(b[1] for b in boxes) - _MARGIN_DEG
    x1, y1 = max(b[2] for b in boxes) + _MARGIN_DEG, max(b[3] for b in boxes) + _MARGIN_DEG
    rows = session.execute(select(m.Building.id, m.Building.address, m.Building.households, m.Building.geom)
                           .where(m.Building.lon.between(x0, x1), m.Building.lat.between(y0, y1))
                           .order_by(m.Building.id)).all()
    return gpd.GeoDataFrame({"address": [r.address for r in rows],
                             "households": np.array([r.households or 0 for r in rows], dtype=np.int64)},
                            geometry=[r.geom for r in rows], crs=4326,
                            index=pd.Index([r.id for r in rows], name="building_id", dtype=np.int64))


def _workers_by_code(session, codes):
    out = {}
    rows = session.execute(select(m.grid_worker_grid.c.grid_code, m.GridWorker.name)
                           .join(m.GridWorker, m.GridWorker.id == m.grid_worker_grid.c.worker_id)
                           .where(m.grid_worker_grid.c.grid_code.in_(codes))
                           .order_by(m.grid_worker_grid.c.grid_code, m.GridWorker.id)).all()
    for code, name in rows:
        out.setdefault(code, []).append(name)
    return out


def _branches_by_code(session, codes):
    rows = session.execute(select(m.PartyOrganization.grid_code, m.PartyOrganization.name)
                           .where(m.PartyOrganization.kind == "grid_branch",
                                  m.PartyOrganization.grid_code.in_(codes))
                           .order_by(m.PartyOrganization.id)).all()
    out = {}
    for code, name in rows:
        out.setdefault(code, name)  # the oldest branch, as the lookups show
    return out


# ============================================================================================
# Grid table: what exports and the plan page show per grid
# ============================================================================================

GRID_TABLE_COLUMNS = ["code", "name", "households", "buildings", "workers", "party_branch", "area_m2"]


def grid_table(session, plan_id, *, limits=None):
    """One row per grid of the plan: GRID_TABLE_COLUMNS and the WGS84 boundary (a GeoDataFrame).

    ``workers`` are the names of the grid's workers joined by '；' (no phones: exports leave the
    office); households come from buildings by largest overlap, as in :func:`validate`.
    """
    plan = get_plan(session, plan_id)
    community, grids, buildings, people = _load(session, plan)
    data = _plan_data(community, grids, buildings, people["workers"], people["branches"], limits or Limits())
    out = gpd.GeoDataFrame({
        "code": grids["code"].to_numpy(dtype=object), "name": grids["name"].to_numpy(dtype=object),
        "households": data.grids["households"].to_numpy(), "buildings": data.grids["buildings"].to_numpy(),
        "workers": ["；".join(people["workers"].get(c, [])) for c in grids["code"]],
        "party_branch": [people["branches"].get(c, "") for c in grids["code"]],
        "area_m2": np.round(data.grids.area.to_numpy(), 1)}, geometry=grids.geometry.values, crs=4326)
    return out


# Shapefile field names stop at 10 characters; these are renamed rather than silently truncated.
_SHAPEFILE_NAMES = {"party_branch": "branch"}


def export_plan(session, plan_id, path):
    """Write the plan's grid table to ``path`` (.geojson .gpkg .shp .zip .csv). Returns the number of grids."""
    from pathlib import Path

    from .geo.io import write_layer
    table = grid_table(session, plan_id)
    if Path(path).suffix.lower() in (".shp", ".zip"):
        table = table.rename(columns=_SHAPEFILE_NAMES)
    write_layer(table, path)
    return len(table)


def _feature_collection(table):
    props = [c for c in table.columns if c != table.geometry.name]
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": row["code"], "properties": {c: _json(row[c]) for c in props},
         "geometry": shapely.geometry.mapping(row.geometry)} for _, row in table.iterrows()]}


def _json(v):
    return v.item() if isinstance(v, np.generic) else v


# ============================================================================================
# Diff between any two plans
# ============================================================================================

def diff(session, plan_a, plan_b, *, personal=False):
    """What changes grid between plan ``plan_a`` and plan ``plan_b`` (any two plans, any status).

    Buildings go to the grid holding most of their footprint
    (:func:`gridmap.assign.buildings_to_grids`), party members to their building's grid or else their
    home point's (:func:`gridmap.assign.members_to_grids`), grid workers keep their grid codes and
    so change the buildings and households they serve. A grid is its code: workers and branches
    follow codes across generations.

    Parameters
    ----------
    personal : bool
        Include party members' and workers' names (roles that may see personal data).

    Returns
    -------
    dict
        ``a``, ``b`` (plan summaries); ``summary`` (counts: buildings, households, members,
        workers); tables ``buildings`` (id, address, households, from, to), ``members`` (id,
        from, to[, name]), ``workers`` (id, grids_from, grids_to, households_from,
        households_to, buildings_gained, buildings_lost[, name]); ``areas`` (from, to, area_m2)
        and ``geojson``: a FeatureCollection of changed areas, buildings and member homes.
    """
    from .assign import buildings_to_grids, members_to_grids
    a, b = get_plan(session, plan_a), get_plan(session, plan_b)
    ga, gb = _grids_frame(a), _grids_frame(b)
    codes = sorted(set(ga["code"]) | set(gb["code"]))
    branches = _branch_ids(session, codes)
    for g, plan in ((ga, a), (gb, b)):
        g["community_code"] = plan.community_code
        g["branch_id"] = pd.array([branches.get(c) for c in g["code"]], dtype="Int64")
    boxes = [g.total_bounds for g in (ga, gb) if len(g)]
    if not boxes:
        raise InvalidInput(f"Plans {a.id} and {b.id} hold no grids.", fix="Compare plans that have grids.")
    buildings = _buildings_near(session, boxes)
    ba = buildings_to_grids(buildings, ga) if len(ga) else None
    bb = buildings_to_grids(buildings, gb) if len(gb) else None
    code_a = ba["grid_code"] if ba is not None else pd.Series(None, index=buildings.index, dtype=object)
    code_b = bb["grid_code"] if bb is not None else pd.Series(None, index=buildings.index, dtype=object)
    moved = _differs(code_a, code_b)
    bt = buildings[moved]
    building_rows = [{"id": int(i), "address": r["address"], "households": int(r["households"]),
                      "from": code_a[i], "to": code_b[i]} for i, r in bt.iterrows()]

    members = _members_near(session, buildings.index, boxes)
    ma = _member_codes(members, ga, ba, members_to_grids)
    mb = _member_codes(members, gb, bb, members_to_grids)
    m_moved = _differs(ma, mb)
    member_rows = []
    for i in members.index[m_moved]:
        row = {"id": int(i), "from": ma[i], "to": mb[i]}
        if personal:
            row["name"] = members.at[i, "name"]
        member_rows.append(row)

    worker_rows = _worker_changes(session, codes, set(ga["code"]), set(gb["code"]), buildings, code_a, code_b,
                                  personal)
    areas, area_geoms = _changed_areas(ga, gb)
    features = (
        [{"type": "Feature", "properties": {"kind": "area", **r}, "geometry": shapely.geometry.mapping(g)}
         for r, g in zip(areas, area_geoms)]
        + [{"type": "Feature", "properties": {"kind": "building", **r},
            "geometry": shapely.geometry.mapping(bt.geometry[r["id"]])} for r in building_rows]
        + [{"type": "Feature", "properties": {"kind": "member", "id": r["id"], "from": r["from"], "to": r["to"]},
            "geometry": shapely.geometry.mapping(members.geometry[r["id"]])}
           for r in member_rows if members.geometry[r["id"]] is not None])
    return {
        "a": plan_summary(a), "b": plan_summary(b),
        "summary": {"buildings": len(building_rows), "households": int(sum(r["households"] for r in building_rows)),
                    "members": len(member_rows), "workers": len(worker_rows),
                    "grids_only_in_a": sorted(set(ga["code"]) - set(gb["code"])),
                    "grids_only_in_b": sorted(set(gb["code"]) - set(ga["code"]))},
        "buildings": building_rows, "members": member_rows, "workers": worker_rows, "areas": areas,
        "geojson": {"type": "FeatureCollection", "features": features},
    }


def diff_rows(result):
    """A diff as one flat table (kind, id, label, households, from, to) for the CLI and CSV."""
    rows = [{"kind": "building", "id": r["id"], "label": r["address"], "households": r["households"],
             "from": r["from"] or "", "to": r["to"] or ""} for r in result["buildings"]]
    rows += [{"kind": "member", "id": r["id"], "label": r.get("name", ""), "households": "",
              "from": r["from"] or "", "to": r["to"] or ""} for r in result["members"]]
    rows += [{"kind": "worker", "id": r["id"], "label": r.get("name", ""),
              "households": f"{r['households_from']}→{r['households_to']}",
              "from": ";".join(r["grids_from"]), "to": ";".join(r["grids_to"])} for r in result["workers"]]
    return rows


def _differs(a, b):
    a = a.astype(object).where(a.notna(), "")
    b = b.astype(object).where(b.notna(), "")
    return (a != b).to_numpy()


def _branch_ids(session, codes):
    return dict(session.execute(
        select(m.PartyOrganization.grid_code, func.min(m.PartyOrganization.id))
        .where(m.PartyOrganization.kind == "grid_branch", m.PartyOrganization.grid_code.in_(codes))
        .group_by(m.PartyOrganization.grid_code)).all())


def _members_near(session, building_ids, boxes):
    """Party members living in one of ``building_ids`` or with a home point near the plans."""
    x0, y0 = min(b[0] for b in boxes) - _MARGIN_DEG, min(b[1] for b in boxes) - _MARGIN_DEG
    x1, y1 = max(b[2] for b in boxes) + _MARGIN_DEG, max(b[3] for b in boxes) + _MARGIN_DEG
    rows = session.execute(select(m.PartyMember.id, m.PartyMember.name, m.PartyMember.building_id,
                                  m.PartyMember.geom, m.Building.lon, m.Building.lat)
                           .outerjoin(m.Building, m.PartyMember.building_id == m.Building.id)
                           .order_by(m.PartyMember.id)).all()
    inside = set(int(i) for i in building_ids)
    keep, homes = [], []
    for r in rows:
        home = r.geom if r.geom is not None else (shapely.Point(r.lon, r.lat) if r.lon is not None else None)
        near = home is not None and x0 <= home.x <= x1 and y0 <= home.y <= y1
        if (r.building_id is not None and r.building_id in inside) or near:
            keep.append(r)
            homes.append(home)
    return gpd.GeoDataFrame({"name": [r.name for r in keep],
                             "building_id": pd.array([r.building_id for r in keep], dtype="Int64")},
                            geometry=homes, crs=4326,
                            index=pd.Index([r.id for r in keep], name="member_id", dtype=np.int64))


def _member_codes(members, grids, bg, members_to_grids):
    if not len(grids) or not len(members):
        return pd.Series(None, index=members.index, dtype=object)
    frame = members.copy()
    frame["building_grid"] = frame["building_id"].map(bg["grid"]).fillna(-1).astype(np.int64)
    return members_to_grids(frame, grids)["grid_code"]


def _worker_changes(session, codes, codes_a, codes_b, buildings, code_a, code_b, personal):
    rows = session.execute(select(m.GridWorker.id, m.GridWorker.name, m.grid_worker_grid.c.grid_code)
                           .join(m.grid_worker_grid, m.grid_worker_grid.c.worker_id == m.GridWorker.id)
                           .where(m.grid_worker_grid.c.grid_code.in_(codes))
                           .order_by(m.GridWorker.id, m.grid_worker_grid.c.grid_code)).all()
    served, names = {}, {}
    for wid, name, code in rows:
        served.setdefault(wid, set()).add(code)
        names[wid] = name
    hh = buildings["households"]
    out = []
    for wid, mine in served.items():
        in_a = set(buildings.index[code_a.isin(mine).to_numpy()])
        in_b = set(buildings.index[code_b.isin(mine).to_numpy()])
        grids_a, grids_b = sorted(mine & codes_a), sorted(mine & codes_b)
        if in_a == in_b and grids_a == grids_b:
            continue
        row = {"id": int(wid), "grids_from": grids_a, "grids_to": grids_b,
               "households_from": int(hh.loc[sorted(in_a)].sum()), "households_to": int(hh.loc[sorted(in_b)].sum()),
               "buildings_gained": len(in_b - in_a), "buildings_lost": len(in_a - in_b)}
        if personal:
            row["name"] = names[wid]
        out.append(row)
    return out


def _changed_areas(ga, gb, sliver_m2=1.0):
    """Where the grid code differs between the two plans: (from, to, area_m2) rows and WGS84 polygons."""
    if not len(ga) or not len(gb):
        return [], []
    boxes = np.vstack([ga.total_bounds, gb.total_bounds])
    crs = local_metric_crs((boxes[:, 0].min() + boxes[:, 2].max()) / 2, (boxes[:, 1].min() + boxes[:, 3].max()) / 2)
    ma, mb = ga.to_crs(crs), gb.to_crs(crs)
    left, right = shapely.STRtree(mb.geometry.values).query(ma.geometry.values, predicate="intersects")
    rows, geoms = [], []
    for i, j in zip(left, right):
        ca, cb = ga["code"].iloc[i], gb["code"].iloc[j]
        if ca == cb:
            continue
        part = shapely.intersection(ma.geometry.iloc[i], mb.geometry.iloc[j])
        if _area(part) > sliver_m2:
            rows.append({"from": ca, "to": cb, "area_m2": round(_area(part), 1)})
            geoms.append(part)
    if geoms:
        geoms = list(gpd.GeoSeries(geoms, crs=crs).to_crs(4326).values)
    return rows, geoms


# ============================================================================================
# As-of: the snapshot of the plans valid on a day
# ============================================================================================

SNAPSHOT_CACHE_SIZE = 8
_snapshots = OrderedDict()
_snapshots_lock = threading.Lock()


def snapshot_on(session, day):
    """The :class:`gridmap.index.Snapshot` of the plans valid on ``day``, cached.

    Keyed by (database, published generation, day): a publish moves the generation on, so a
    cached day is never answered from plans that have since been superseded. A few days are
    kept (least recently used go first): as-of questions cluster around a handful of dates.
    """
    from .index import Snapshot
    key = (session.get_bind().url.render_as_string(hide_password=True), generation(session), day)
    with _snapshots_lock:
        if key in _snapshots:
            _snapshots.move_to_end(key)
            return _snapshots[key]
        snap = Snapshot.from_store(session, on=day)
        _snapshots[key] = snap
        while len(_snapshots) > SNAPSHOT_CACHE_SIZE:
            _snapshots.popitem(last=False)
        return snap


# ============================================================================================

def _plan_id(raw):
    text = str(raw).strip()
    if isinstance(raw, bool) or not text.isdigit() or not (1 <= int(text) <= 2**31 - 1):
        raise InvalidInput(f"Plan id {raw!r} is not a positive whole number.",
                           fix="Use an id from GET /api/v1/plans or `gridmap plan list`.", details={"plan": raw})
    return int(text)


def _community(session, code):
    if not (isinstance(code, str) and _COMMUNITY_CODE.fullmatch(code)):
        raise InvalidInput(f"community={code!r} is not a 12-digit community code.",
                           fix="Use a code from /api/v1/communities, e.g. 210213013004.", details={"community": code})
    if session.get(m.Community, code) is None:
        raise NotFound(f"Community {code} is not in the store.", fix="See /api/v1/communities for the codes.",
                       details={"community": code})
    return code


def _iso(day):
    return day.isoformat() if day else None


# ============================================================================================
# Automatic partition into a draft
# ============================================================================================

def draft_from_partition(session, community_code, *, n_grids=None, target_households=None, tolerance=0.05,
                         seed=0, use_roads=True):
    """Partition a stored community's buildings into a new draft plan.

    Roads crossing the community are barriers the boundaries follow where they can. Returns
    ``(plan, report)`` where ``report`` is the partition's (deviation, compactness, tiling,
    infeasibility findings).
    """
    import geopandas as gpd

    from .partition import partition_community
    community = session.get(m.Community, community_code)
    if community is None:
        raise NotFound(f"Community {community_code} is not in the store.",
                       fix="See `gridmap export communities -` or /api/v1/communities for the codes.")
    rows = session.execute(select(m.Building.geom, m.Building.households)
                           .where(m.Building.community_code == community_code)).all()
    if not rows:
        raise InvalidInput(f"Community {community_code} has no buildings to partition.",
                           fix="Import its buildings first: gridmap import buildings PATH.")
    buildings = gpd.GeoDataFrame({"households": [h or 0 for _, h in rows]}, geometry=[g for g, _ in rows], crs=4326)
    barriers = None
    if use_roads:
        roads = session.scalars(select(m.Road.geom)).all()
        hits = [r for r in roads if r.intersects(community.geom)]
        barriers = gpd.GeoSeries(hits, crs=4326) if hits else None
    grids, _ = partition_community(buildings, community.geom, n_grids=n_grids, target_households=target_households,
                                   tolerance=tolerance, barriers=barriers, seed=seed, community_code=community_code)
    report = grids.attrs.get("report", {})
    plan = create_plan(session, community_code, grids[["code", "geometry"]],
                       name=f"partition seed {seed} ({len(grids)} grids)")
    return plan, report
