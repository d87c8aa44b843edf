"""Plan generations: drafts created, copied and published with valid_from/valid_to; never edited once published."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from ..errors import Conflict, InvalidInput, NotFound
from ..geo.codes import allocate, grid_name
from ..store import models as m
from ..store.generations import bump_generation
from ..store.races import lock
from .records import get_plan, plan_summary
from .rules import validate


def create_plan(session, community_code, grids, *, name=""):
    """Store ``grids`` (GeoDataFrame: geometry, optional name and code) as a new draft plan.

    Grids without a code are numbered by the one grid-code rule (:mod:`gridmap.geo.codes`):
    west→east along rows, rows north→south (DB11/T 2157-2023), each taking the lowest sequence
    number that neither a given code nor any published plan of the community has used.
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
    new = [not code for code in codes]
    if any(new):
        taken = [code for code in codes if code] + used_codes(session, community_code)
        numbered = iter(allocate(geoms, taken=taken, community_code=community_code, new=new))
        codes = [next(numbered) if fresh else code for code, fresh in zip(codes, new)]
    plan = m.GridPlan(community_code=community_code, name=name, status="draft")
    session.add(plan)
    community = session.get(m.Community, community_code)
    for g, c, n in zip(geoms, codes, names):
        plan.grids.append(m.Grid(code=c, name=n or grid_name(community.name, c), geom=g))
    session.flush()
    return plan


def used_codes(session, community_code):
    """Every grid code of the community that means a place to someone: held by a published plan
    (now or since retired), or named by a grid worker's or a party branch's record.

    A code only a draft ever held, with nobody listed under it, means nothing yet: trial
    partitions and splits must not use the 999 numbers up.
    """
    prefix = f"{community_code[:12]}%"
    published = session.scalars(select(m.Grid.code).join(m.GridPlan).where(
        m.GridPlan.community_code == community_code, m.GridPlan.status.in_(("published", "retired"))))
    workers = session.scalars(select(m.grid_worker_grid.c.grid_code).where(m.grid_worker_grid.c.grid_code.like(prefix)))
    branches = session.scalars(select(m.PartyOrganization.grid_code).where(
        m.PartyOrganization.community_code == community_code, m.PartyOrganization.grid_code.is_not(None)))
    return sorted({*published.all(), *workers.all(), *branches.all()})


def publish(session, plan, *, on=None, expected_version=None, replaces=None, limits=None):
    """Make ``plan`` the community's published plan from ``on`` (default today); retire the previous one.

    ``replaces`` lists the community's published plan(s) as the caller saw them (``[]``: none);
    by default, those published when this publish begins.

    Raises Conflict when ``expected_version`` is given and the plan changed since, when the plan
    is not a draft, when :func:`validate` finds errors (listed in ``details["errors"]``), or when
    the community's published plan is not what ``replaces`` says: someone else published
    meanwhile (``details["published"]``); InvalidInput when ``on`` is before the current plan's
    ``valid_from`` (that would rewrite the history of a published plan).
    """
    on = on or dt.date.today()
    # A publish replaces the plan its caller saw published, never one published meanwhile: five
    # planners publishing five drafts at once get one plan published and four Conflicts, on both
    # backends, instead of each retiring the one before a moment after it went live. A caller that
    # says nothing saw what is published as the publish begins; one that says (the planner page,
    # `replaces` in the API) is safe also when its request waits in a server's queue.
    before = sorted(replaces) if replaces is not None else _published_ids(session, plan.community_code)
    _check_publishable(plan, expected_version)
    # Validation reads the plan's grids, buildings and staff: it runs before the lock, so that
    # other writers need not wait for it; the version check under the lock makes sure the plan
    # validated is the plan published.
    validated = plan.version
    errors = [f for f in validate(session, plan, limits=limits) if f.severity == "error"]
    if errors:
        shown = "\n".join(f"  {f.kind} {', '.join(f.grid_codes)}: {f.message}" for f in errors[:20])
        more = f"\n  … and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise Conflict(f"Plan {plan.id} has {len(errors)} validation error(s); it cannot be published.\n{shown}{more}",
                       fix=f"Fix them in a draft (gridmap plan validate {plan.id} lists each with its place) "
                           "and publish again.",
                       details={"errors": [f.to_dict() for f in errors]})
    # One publish per community at a time: the community's row is the mutex (SQLite: its one write
    # lock), so two publishes cannot both end up "published"; the plan is re-read under it.
    lock(session, m.Community, plan.community_code)
    lock(session, m.GridPlan, plan.id)
    _check_publishable(plan, expected_version)
    if plan.version != validated:
        raise Conflict(f"Plan {plan.id} was changed by someone else while it was being validated for publishing.",
                       fix="Reload the plan and publish again.", details={"version": plan.version})
    current = session.scalars(select(m.GridPlan).where(
        m.GridPlan.community_code == plan.community_code, m.GridPlan.status == "published")).all()
    now = sorted(old.id for old in current)
    if now != before:
        named, expected = (", ".join(str(i) for i in ids) or "none" for ids in (now, before))
        raise Conflict(f"Plan {named} of community {plan.community_code} was published by someone else meanwhile "
                       f"(this publish expected {expected}); plan {plan.id} stays a draft.",
                       fix=f"Reload the community's plans, compare plan {plan.id} with the published one, and "
                           f"publish it again if it should replace that one.",
                       details={"published": now})
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
    session.flush()
    return plan


def _published_ids(session, community_code):
    return sorted(session.scalars(select(m.GridPlan.id).where(m.GridPlan.community_code == community_code,
                                                              m.GridPlan.status == "published")))


def _check_publishable(plan, expected_version):
    if expected_version is not None and plan.version != expected_version:
        raise Conflict(f"Plan {plan.id} is at version {plan.version}, not {expected_version}.",
                       fix="Reload the plan and publish again.", details={"version": plan.version})
    if plan.status != "draft":
        raise Conflict(f"Plan {plan.id} is {plan.status}; only a draft can be published.",
                       fix="Copy it into a new draft first.")


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


def publish_plan(session, plan_id, *, expected_version=None, on=None, replaces=None, limits=None):
    """Load plan ``plan_id`` and :func:`publish` it; returns its summary."""
    return plan_summary(publish(session, get_plan(session, plan_id), on=on, expected_version=expected_version,
                                replaces=replaces, limits=limits))
