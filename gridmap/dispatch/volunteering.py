"""The volunteers' service ledger (台账): who served whom, how, for how long.

A volunteer's ledger is kept by the community the volunteer belongs to: a role reads and writes
it only where its area reaches that community (see :mod:`gridmap.access`); outside, the volunteer
answers as one that does not exist."""
from __future__ import annotations

from sqlalchemy import select

from .. import access
from ..errors import N_, NotFound
from ..store import models as m
from .rules import utcnow


def record_service(session, volunteer_id, *, actor, day, skill, hours, resident_id=None, household_id=None,
                   incident_id=None, note="", now=None):
    """Add a line to a volunteer's ledger; NotFound for an unknown volunteer, resident, household or
    incident, or one outside ``actor``'s area (a line is no way to probe another area's residents)."""
    volunteer = _volunteer(session, volunteer_id, actor.role, actor.area, "ledger.write")
    for name, value, where in (("resident_id", resident_id, _resident_place),
                               ("household_id", household_id, _household_place),
                               ("incident_id", incident_id, _incident_place)):
        if value is None:
            continue
        at = where(session, value)
        if at is None or not access.can(actor.role, "ledger.write", at=at, area=actor.area):
            raise NotFound(N_("%(name)s=%(value)s does not exist."), fix=N_("Check %(name)s."), details={"field": name},
                           params={"name": name, "value": value})
    row = m.ServiceRecord(volunteer_id=volunteer.id, day=day, skill=skill, hours=hours, resident_id=resident_id,
                          household_id=household_id, incident_id=incident_id, note=note, recorded_by=actor.name,
                          recorded_at=now or utcnow())
    session.add(row)
    session.flush()
    return row


def ledger(session, volunteer_id, *, start=None, end=None, role=None, area=None):
    """A volunteer's ledger lines (``start``..``end`` inclusive days) with the total hours and lines per skill.

    NotFound for an unknown volunteer or one outside ``role``'s ``area``."""
    volunteer = _volunteer(session, volunteer_id, role, area, "ledger.read")
    q = select(m.ServiceRecord).where(m.ServiceRecord.volunteer_id == volunteer.id)
    if start is not None:
        q = q.where(m.ServiceRecord.day >= start)
    if end is not None:
        q = q.where(m.ServiceRecord.day <= end)
    rows = session.scalars(q.order_by(m.ServiceRecord.day, m.ServiceRecord.id)).all()
    by_skill = {}
    for r in rows:
        by_skill[r.skill] = round(by_skill.get(r.skill, 0.0) + r.hours, 2)
    return {"volunteer": {"id": volunteer.id, "name": volunteer.name}, "total_hours": round(sum(r.hours for r in rows), 2),
            "hours_by_skill": by_skill,
            "services": [{"id": r.id, "day": r.day.isoformat(), "skill": r.skill, "hours": r.hours,
                          "resident_id": r.resident_id, "household_id": r.household_id,
                          "incident_id": r.incident_id, "note": r.note, "recorded_by": r.recorded_by} for r in rows]}


def _volunteer(session, volunteer_id, role, area, action):
    volunteer = session.get(m.Volunteer, int(volunteer_id))
    if volunteer is None or not access.can(role, action, at=(None, volunteer.community_code), area=area):
        raise NotFound(N_("Volunteer %(volunteer_id)s does not exist."),
                       fix=N_("Use an id from /api/v1/nearest?kind=volunteer."),
                       params={"volunteer_id": volunteer_id})
    return volunteer


# Where a ledger line's subject lies, (grid or None, community), None when it does not exist. A
# resident or household counts by its building's community (grid None: the workers of its grids).

def _household_place(session, household_id):
    row = session.execute(select(m.Building.community_code).join(m.Household, m.Household.building_id == m.Building.id)
                          .where(m.Household.id == household_id)).first()
    return None if row is None else (None, row[0])


def _resident_place(session, resident_id):
    resident = session.get(m.Resident, resident_id)
    return None if resident is None else _household_place(session, resident.household_id)


def _incident_place(session, incident_id):
    inc = session.get(m.Incident, incident_id)
    return None if inc is None else (inc.grid_code, inc.community_code)
