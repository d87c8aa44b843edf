"""Plan records read back: one plan by id, the plans of a community, a plan's summary."""
from __future__ import annotations

from sqlalchemy import func, select

from .names import generated
from ..errors import InvalidInput, N_, NotFound
from ..store import models as m


def get_plan(session, plan_id):
    """The GridPlan with id ``plan_id`` (or the GridPlan itself); NotFound otherwise."""
    if isinstance(plan_id, m.GridPlan):
        return plan_id
    if isinstance(plan_id, bool) or not isinstance(plan_id, int):
        raise InvalidInput(N_("Plan id %(plan_id)s is not a whole number."),
                           fix=N_("Use an id from GET /api/v1/plans or `gridmap plan list`."), details={"plan": plan_id},
                           params={"plan_id": repr(plan_id)})
    pid = plan_id
    plan = session.get(m.GridPlan, pid) if 1 <= pid < 2**63 else None
    if plan is None:
        raise NotFound(N_("Grid plan %(pid)s is not in the store."),
                       fix=N_("List the plans with GET /api/v1/plans?community=CODE or `gridmap plan list`."),
                       details={"plan": pid},
                       params={"pid": pid})
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
            "grids": len(plan.grids) if grids is None else int(grids),
            # a name gridmap generated, as a template the page says in its language (a typed one: none)
            **_name_template(plan.name)}


def _name_template(name):
    found = generated(name)
    return {"name_template": found[0], "name_params": found[1]} if found else {}


def _community(session, code):
    # the code alone: loading the row would decode its outline, and `gridmap plan list --community`
    # would import Shapely for a yes or no
    if session.scalar(select(m.Community.code).where(m.Community.code == code)) is None:
        raise NotFound(N_("Community %(code)s is not in the store."), fix=N_("See /api/v1/communities for the codes."),
                       details={"community": code},
                       params={"code": code})
    return code


def _iso(day):
    return day.isoformat() if day else None
