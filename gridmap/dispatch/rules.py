"""The incident lifecycle as data: statuses, transitions, routing by catalogue, deadlines."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, insert, select

from .. import access, catalog
from ..errors import N_, NotFound
from ..store import models as m

STATUSES = ("reported", "accepted", "dispatched", "in_progress", "resolved", "merged")
OPEN_STATUSES = ("reported", "accepted", "dispatched", "in_progress")
CLOSED_STATUSES = ("resolved", "merged")  # merged: linked as a duplicate of an earlier report

# (from status, action) → to status. Escalating hands the incident to the next level, which must
# accept it again; reopening sends a badly resolved matter back to work. Who may take each action
# is the permission table's "incident.<action>" row (gridmap.access).
TRANSITIONS = {
    ("reported", "accept"): "accepted",
    ("accepted", "dispatch"): "dispatched",
    ("accepted", "start"): "in_progress",  # the grid worker handles it in person
    ("dispatched", "start"): "in_progress",
    ("in_progress", "resolve"): "resolved",
    ("resolved", "reopen"): "in_progress",
    **{(s, "escalate"): "reported" for s in OPEN_STATUSES},
    **{(s, "link_duplicate"): "merged" for s in ("reported", "accepted")},
}
ACTIONS = tuple(sorted({a for _, a in TRANSITIONS}))

DUPLICATE_RADIUS_M = 50.0
DUPLICATE_WINDOW = dt.timedelta(hours=24)
PERIODS = ("day", "week", "month")
WHISTLE_LEVELS = ("grid", "community")  # a department is whistled to, it does not whistle


def utcnow():
    return m.utcnow()


@dataclass(frozen=True)
class Actor:
    """Who acts: a user's name, role and :class:`gridmap.access.Area`, an API key ("api_key:name",
    role "open311"), or the public."""

    name: str = "public"
    role: str | None = None
    area: access.Area = access.NOWHERE


@dataclass(frozen=True)
class Route:
    level: str
    department: str
    vetoed: bool


# --- routing by catalogue ---------------------------------------------------------------------

def route(category, community_code, *, has_grid=True, lists=None):
    """Who answers for a ``category`` reported in ``community_code``.

    A category the community's work-item list does not include is sent straight to its
    department (the veto); a grid matter where no grid is published goes to the community.

    Returns
    -------
    Route
        ``level`` (one of :data:`gridmap.catalog.LEVELS`), ``department`` (empty unless the level
        is "department"), ``vetoed``.
    """
    cat = catalog.category(category) if isinstance(category, str) else category
    if cat.level in ("grid", "community") and cat.code not in catalog.work_items(community_code, lists):
        return Route("department", cat.department, True)
    level = "community" if cat.level == "grid" and not has_grid else cat.level
    return Route(level, cat.department if level == "department" else "", False)


def deadline(category, level, start):
    """When ``level`` must have settled an incident of ``category`` that reached it at ``start``."""
    return start + dt.timedelta(hours=catalog.category(category).deadline_hours(level))


def allowed_actions(status, role=None, *, level=None, at=None, area=None):
    """Actions possible from ``status`` (at ``level`` when given, for ``role`` when given, at ``at`` in its
    ``area`` when given), in a stable order. At the last level there is nobody to escalate to."""
    return [a for (s, a) in sorted(TRANSITIONS) if s == status
            and not (a == "escalate" and level == catalog.LEVELS[-1])
            and (role is None or access.can(role, f"incident.{a}", at=at, area=area))]


def may_whistle(status, level):
    """Whether the community may blow the whistle on an incident: open, still with the grid or community."""
    return status in OPEN_STATUSES and level in WHISTLE_LEVELS


def set_work_items(session, lists):
    """Replace the work-item lists of the communities in ``lists`` (community code → category codes,
    as :func:`gridmap.catalog.load_work_items` reads them); other communities keep theirs.

    Returns the number of communities written. NotFound names a community not in the store.
    """
    known = set(session.scalars(select(m.Community.code).where(m.Community.code.in_(list(lists)))).all())
    missing = sorted(set(lists) - known)
    if missing:
        raise NotFound(N_("Communities %(value)s are not in the store."),
                       fix=N_("Import the communities first, or correct the codes in the file."),
                       details={"communities": missing},
                       params={"value": missing[:5]})
    session.execute(delete(m.WorkItem).where(m.WorkItem.community_code.in_(list(lists))))
    rows = [{"community_code": c, "category": cat} for c, cats in sorted(lists.items()) for cat in sorted(cats)]
    if rows:
        session.execute(insert(m.WorkItem), rows)
    return len(lists)
