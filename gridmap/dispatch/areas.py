"""Where a role may see and move incidents: the permission table's area as a SQL filter and as a check.

An incident outside the caller's area answers exactly as an incident that does not exist (the
same NotFound): a grid worker or dispatcher learns nothing of other areas' incidents, not even
that one exists. A role that may see an incident but not take a step on it gets a 403 instead.
"""
from __future__ import annotations

from sqlalchemy import false, or_

from .. import access
from ..errors import N_, NotFound


def place(inc):
    """An incident's place as the permission table takes it: (grid code or None, community code)."""
    return inc.grid_code, inc.community_code


def clause(role, action, area, *, grid_col, community_col):
    """A SQL condition holding where ``role`` may do ``action`` within ``area``; None for everywhere."""
    bound = access.bounds(role, action, area)
    if bound is None:
        return None
    scope, area = bound
    if scope == access.SERVED:
        in_grid = grid_col.in_(sorted(area.grids)) if area.grids else false()
        no_grid = grid_col.is_(None) & community_col.in_(sorted(area.served_communities)) \
            if area.grids else false()
        return or_(in_grid, no_grid)
    if scope == access.COVERED:
        return community_col.in_(sorted(area.communities)) if area.communities else false()
    return false()


def visible(inc, role, area, *, action="incident.read"):
    """``inc`` when ``role`` may do ``action`` at its place; else the NotFound of a missing incident."""
    if not access.can(role, action, at=place(inc), area=area):
        raise missing(inc.id)
    return inc


def missing(incident_id):
    return NotFound(N_("%(what)s %(text)s does not exist."), fix=N_("Use an id from /api/v1/%(value)ss."),
                    params={"what": N_("Incident"), "text": incident_id, "value": "incident"})
