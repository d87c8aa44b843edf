"""The volunteers' service ledger (台账): who served whom, how, for how long."""
from __future__ import annotations

from sqlalchemy import select

from ..errors import NotFound
from ..store import models as m
from .rules import utcnow


def record_service(session, volunteer_id, *, actor, day, skill, hours, resident_id=None, household_id=None,
                   incident_id=None, note="", now=None):
    """Add a line to a volunteer's ledger; NotFound for an unknown volunteer, resident, household or incident."""
    volunteer = session.get(m.Volunteer, int(volunteer_id))
    if volunteer is None:
        raise NotFound(f"Volunteer {volunteer_id} does not exist.", fix="Use an id from /api/v1/nearest?kind=volunteer.")
    for model, value, name in ((m.Resident, resident_id, "resident_id"), (m.Household, household_id, "household_id"),
                               (m.Incident, incident_id, "incident_id")):
        if value is not None and session.get(model, value) is None:
            raise NotFound(f"{name}={value} does not exist.", fix=f"Check {name}.", details={"field": name})
    row = m.ServiceRecord(volunteer_id=volunteer.id, day=day, skill=skill, hours=hours, resident_id=resident_id,
                          household_id=household_id, incident_id=incident_id, note=note, recorded_by=actor.name,
                          recorded_at=now or utcnow())
    session.add(row)
    session.flush()
    return row


def ledger(session, volunteer_id, *, start=None, end=None):
    """A volunteer's ledger lines (``start``..``end`` inclusive days) with the total hours and lines per skill."""
    volunteer = session.get(m.Volunteer, int(volunteer_id))
    if volunteer is None:
        raise NotFound(f"Volunteer {volunteer_id} does not exist.", fix="Use an id from /api/v1/nearest?kind=volunteer.")
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
