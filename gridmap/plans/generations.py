"""Plan generations: drafts created, copied and published with valid_from/valid_to; never edited once published."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from .names import copy_name
from ..errors import Conflict, InvalidInput, N_, NotFound
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


def publish(session, plan, *, on=None, expected_version=None, replaces=None, limits=None, accepted_warnings=None):
    """Make ``plan`` the community's published plan from ``on`` (default today); retire the previous one.

    ``replaces`` lists the community's published plan(s) as the caller saw them (``[]``: none);
    by default, those published when this publish begins. ``accepted_warnings`` lists the keys
    (:attr:`Finding.key`) of the warnings a person accepted: any other warning refuses the publish
    (Conflict ``warnings_not_accepted``, the warnings in ``details["warnings"]``). ``None`` skips
    that check, for callers that publish on a person's explicit say-so of a whole file (``import
    --publish``, the demo).

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
    findings = validate(session, plan, limits=limits)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        shown = "\n".join(f"  {f.kind} {', '.join(f.grid_codes)}: {f.message}" for f in errors[:20])
        more = f"\n  … and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise Conflict(N_("Plan %(plan)s has %(n)s validation error(s); it cannot be published.%(shown)s"),
                       fix=N_("Fix them in a draft (the plan's validation lists each with its place) and publish "
                              "again."),
                       params={"plan": plan.id, "n": len(errors), "shown": f"\n{shown}{more}"},
                       details={"errors": [f.to_dict() for f in errors]})
    if accepted_warnings is not None:
        accepted = set(accepted_warnings)
        pending = [f for f in findings if f.severity != "error" and f.key not in accepted]
        if pending:
            raise Conflict(N_("Plan %(plan)s has %(n)s warning(s) nobody accepted; it was not published."),
                           fix=N_("Read each warning and accept it (or fix it in the draft), then publish again."),
                           params={"plan": plan.id, "n": len(pending)}, code="warnings_not_accepted",
                           details={"warnings": [f.to_dict() for f in pending]})
    # One publish per community at a time: the community's row is the mutex (SQLite: its one write
    # lock), so two publishes cannot both end up "published"; the plan is re-read under it.
    lock(session, m.Community, plan.community_code)
    lock(session, m.GridPlan, plan.id)
    _check_publishable(plan, expected_version)
    if plan.version != validated:
        raise Conflict(N_("Plan %(plan)s was changed by someone else while it was being validated for publishing."),
                       fix=N_("Reload the plan and publish again."), params={"plan": plan.id},
                       details={"version": plan.version})
    current = session.scalars(select(m.GridPlan).where(
        m.GridPlan.community_code == plan.community_code, m.GridPlan.status == "published")).all()
    now = sorted(old.id for old in current)
    if now != before:
        named, expected = (", ".join(str(i) for i in ids) or "none" for ids in (now, before))
        raise Conflict(N_("Plan %(published)s of community %(community)s was published by someone else meanwhile "
                          "(this publish expected %(expected)s); plan %(plan)s stays a draft."),
                       fix=N_("Reload the community's plans, compare plan %(plan)s with the published one, and "
                              "publish it again if it should replace that one."),
                       params={"published": named, "community": plan.community_code, "expected": expected,
                               "plan": plan.id},
                       details={"published": now})
    for old in current:
        if old.valid_from is not None and on < old.valid_from:
            raise InvalidInput(N_("valid_from %(valid_from)s is before %(current)s, when the current plan %(plan)s "
                                  "took effect."),
                               fix=N_("Give a date on or after %(current)s."),
                               params={"valid_from": on.isoformat(), "current": old.valid_from.isoformat(),
                                       "plan": old.id},
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
        raise Conflict(N_("Plan %(plan)s is at version %(version)s, not %(expected)s."),
                       fix=N_("Reload the plan and publish again."),
                       params={"plan": plan.id, "version": plan.version, "expected": expected_version},
                       details={"version": plan.version})
    if plan.status != "draft":
        raise Conflict(N_("Plan %(plan)s is %(status)s; only a draft can be published."),
                       fix=N_("Copy it into a new draft first."), params={"plan": plan.id, "status": plan.status})


def copy_plan(session, plan_id, *, name=None):
    """A new draft holding the same grids (codes, names, boundaries) as plan ``plan_id``, of any status.

    This is how a published plan is changed: it never is; a copy is edited and published in its place.
    """
    source = get_plan(session, plan_id)
    copy = m.GridPlan(community_code=source.community_code, status="draft",
                      name=name if name is not None else copy_name(source.id))
    session.add(copy)
    for g in source.grids:
        copy.grids.append(m.Grid(code=g.code, name=g.name, geom=g.geom))
    session.flush()
    return copy


def publish_plan(session, plan_id, *, expected_version=None, on=None, replaces=None, limits=None,
                 accepted_warnings=None):
    """Load plan ``plan_id`` and :func:`publish` it; returns its summary."""
    return plan_summary(publish(session, get_plan(session, plan_id), on=on, expected_version=expected_version,
                                replaces=replaces, limits=limits, accepted_warnings=accepted_warnings))
