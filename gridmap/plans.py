"""Plan generations: create draft plans, publish them atomically, and ask which plan held on a day."""
from __future__ import annotations

import datetime as dt

import numpy as np
from sqlalchemy import and_, or_, select, update

from .errors import Conflict, InvalidInput, NotFound
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


def publish(session, plan, *, on=None, expected_version=None):
    """Make ``plan`` the community's published plan from ``on`` (default today); retire the previous one.

    Raises Conflict when ``expected_version`` is given and the plan changed since.
    """
    on = on or dt.date.today()
    if expected_version is not None and plan.version != expected_version:
        raise Conflict(f"Plan {plan.id} is at version {plan.version}, not {expected_version}.",
                       fix="Reload the plan and publish again.", details={"version": plan.version})
    if plan.status != "draft":
        raise Conflict(f"Plan {plan.id} is {plan.status}; only a draft can be published.",
                       fix="Copy it into a new draft first.")
    current = session.scalars(select(m.GridPlan).where(
        m.GridPlan.community_code == plan.community_code, m.GridPlan.status == "published")).all()
    for old in current:
        old.status, old.valid_to = "retired", on
    plan.status, plan.valid_from, plan.valid_to = "published", on, None
    bump_generation(session)
    session.flush()
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
    q = select(m.Grid, m.GridPlan.community_code).join(m.GridPlan).where(m.GridPlan.status == "published")
    if community_code:
        q = q.where(m.GridPlan.community_code == community_code)
    return session.execute(q.order_by(m.Grid.code)).all()


def bump_generation(session):
    row = session.get(m.Meta, GENERATION_KEY)
    if row is None:
        session.add(m.Meta(key=GENERATION_KEY, value="1"))
    else:
        session.execute(update(m.Meta).where(m.Meta.key == GENERATION_KEY)
                        .values(value=str(int(row.value) + 1), updated_at=m.utcnow()))


def generation(session):
    row = session.get(m.Meta, GENERATION_KEY)
    return int(row.value) if row else 0
