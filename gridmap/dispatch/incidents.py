"""Incidents recorded, moved along their lifecycle with escalation and the whistle, audited, and read back."""
from __future__ import annotations

import datetime as dt

import shapely
from sqlalchemy import select

from .. import access, catalog, photos
from ..errors import Conflict, InvalidInput, N_, NotFound
from ..store import models as m
from ..store.loaders import work_items
from ..store.races import lock as _lock
from .areas import clause, missing, place, visible
from .rules import (CLOSED_STATUSES, OPEN_STATUSES, TRANSITIONS, Actor, allowed_actions, deadline, may_whistle,
                    route, utcnow)

# --- reporting --------------------------------------------------------------------------------

def report(session, snapshot, *, category, lon, lat, actor=Actor(), now=None, source="api", lists=None,
           description="", reporter_name="", reporter_phone="", reporter_email="", address="",
           resident_id=None, priority=None):
    """Record a new incident at a WGS84 point, located and routed now; returns the Incident.

    The grid and community are taken from ``snapshot`` at report time and stored, so the
    incident stays where it was reported when the grids are redrawn later. ``lists`` (community
    code → category codes it takes itself) overrides the work-item lists kept in the store.

    Raises InvalidInput when the point lies in no community gridmap knows.
    """
    cat = catalog.category(category)
    now = now or utcnow()
    where = snapshot.locate(lon, lat)
    if where["community"] is None:
        raise InvalidInput(N_("(%(lon)s, %(lat)s) lies in no community gridmap knows; nobody could take the report."),
                           fix=N_("Check the coordinates and their coordinate system (wgs84, gcj02, bd09)."),
                           details={"lon": lon, "lat": lat},
                           params={"lon": format(lon, '.6f'), "lat": format(lat, '.6f')})
    community = where["community"]["code"]
    grid = where["grid"]["code"] if where["grid"] else None
    if lists is None:
        stored = work_items(session, community)
        lists = {community: stored} if stored is not None else {}
    r = route(cat, community, has_grid=grid is not None, lists=lists)
    inc = m.Incident(category=cat.code, status="reported", level=r.level, department=r.department, vetoed=r.vetoed,
                     priority=cat.priority if priority is None else bool(priority), community_code=community,
                     grid_code=grid, reported_at=now, updated_at=now, deadline_at=deadline(cat, r.level, now),
                     source=source, description=description, reporter_name=reporter_name,
                     reporter_phone=reporter_phone, reporter_email=reporter_email, address=address,
                     resident_id=resident_id, lon=float(lon), lat=float(lat), geom=_point(lon, lat))
    session.add(inc)
    session.flush()
    note = f"vetoed: not on the community's work-item list, sent to {r.department}" if r.vetoed else ""
    _audit(session, inc, actor, "report", None, None, now, note)
    return inc


# --- transitions ------------------------------------------------------------------------------

def transition(session, incident_id, action, *, actor, version, note="", now=None, duplicate_of=None):
    """Apply ``action`` to an incident and audit it; returns the Incident.

    Raises NotFound for an unknown incident or one outside ``actor.area`` (nothing is written),
    Conflict when ``version`` is stale (``details["current_version"]``) or the action is not
    possible from the incident's status (naming the allowed ones), Forbidden when ``actor.role``
    may not do it there.
    """
    now = now or utcnow()
    if f"incident.{action}" in access.PERMISSIONS:  # a role that may not anywhere: 403 (401), before any lookup
        access.check(actor.role, f"incident.{action}", what=f"{action} an incident")
    inc = visible(get_incident(session, incident_id, lock=True), actor.role, actor.area)
    _check_version(inc, version)
    key = (inc.status, action)
    if key not in TRANSITIONS:
        allowed = allowed_actions(inc.status, level=inc.level)
        raise Conflict(N_("Incident %(id)s is %(status)s; %(action)s is not possible from there."),
                       fix=N_("Allowed from %(status)s: %(value)s."),
                       details={"status": inc.status, "allowed_actions": allowed},
                       params={"id": inc.id, "status": inc.status, "action": repr(action),
                               "value": allowed or 'nothing (it is closed)'})
    target = TRANSITIONS[key]
    access.check(actor.role, f"incident.{action}", at=place(inc), area=actor.area, what=f"{action} an incident")
    before_status, before_level = inc.status, inc.level
    effect = _EFFECTS.get(action)
    if effect is not None:
        note = effect(session, inc, now, note=note, duplicate_of=duplicate_of, actor=actor) or note
    inc.status = target
    inc.updated_at = now
    _audit(session, inc, actor, action, before_status, before_level, now, note)
    session.flush()  # the new version, for the answer
    return inc


def _escalate(session, inc, now, **_):
    i = catalog.LEVELS.index(inc.level)
    if i + 1 >= len(catalog.LEVELS):
        raise Conflict(N_("Incident %(id)s is already with a department; there is no level above."),
                       fix=N_("Have the department resolve it: there is no level above to hand it to."),
                       details={"level": inc.level},
                       params={"id": inc.id})
    inc.level = catalog.LEVELS[i + 1]
    inc.escalated = True  # the dashboard's count reads the flag, not the history (migration 0020)
    if inc.level == "department":
        inc.department = catalog.category(inc.category).department
    inc.deadline_at = deadline(inc.category, inc.level, now)


def _resolve(session, inc, now, **_):
    inc.resolved_at = now


def _reopen(session, inc, now, **_):
    inc.resolved_at = None
    inc.deadline_at = deadline(inc.category, inc.level, now)


def _link(session, inc, now, *, note, duplicate_of, actor, **_):
    # the earlier report must be one the actor may see: linking is no way to learn of another area's reports
    original = visible(get_incident(session, duplicate_of), actor.role, actor.area)
    while original.duplicate_of is not None:  # point at the first report, never at another duplicate
        original = get_incident(session, original.duplicate_of)
    if original.id == inc.id:
        raise InvalidInput(N_("Incident %(id)s cannot be a duplicate of itself."),
                           fix=N_("Give the earlier report's id."),
                           params={"id": inc.id})
    if original.category != inc.category:  # a noise report is no duplicate of a leak at the same door
        raise InvalidInput(N_("Incident %(id)s is %(category)s but incident %(id2)s is %(category2)s; only a report of "
                              "the same category can be its duplicate."),
                           fix=N_("Link it to an earlier %(category)s report, or handle it on its own."),
                           details={"field": "duplicate_of", "category": inc.category,
                                    "duplicate_of_category": original.category},
                           params={"id": inc.id, "category": repr(inc.category), "id2": original.id,
                                   "category2": repr(original.category)})
    inc.duplicate_of = original.id
    inc.resolved_at = now
    return f"duplicate of {original.id}" + (f": {note}" if note else "")


_EFFECTS = {"escalate": _escalate, "resolve": _resolve, "reopen": _reopen, "link_duplicate": _link}


# --- the whistle (吹哨报到) -----------------------------------------------------------------------

def whistle(session, incident_id, *, actor, department=None, note="", now=None):
    """The community blows the whistle: ``department`` (default: the category's) must report by a deadline.

    Only dispatchers and admins blow it, only for open incidents still with the grid or community.
    Returns the WhistleTask.
    """
    now = now or utcnow()
    access.check(actor.role, "incident.whistle")
    inc = visible(get_incident(session, incident_id, lock=True), actor.role, actor.area)
    access.check(actor.role, "incident.whistle", at=place(inc), area=actor.area)
    if not may_whistle(inc.status, inc.level):
        raise Conflict(N_("Incident %(id)s is %(status)s at level %(level)s; the community blows the whistle only "
                          "for open incidents still with the grid or the community."),
                       fix=N_("Escalate or reopen it instead."), details={"status": inc.status, "level": inc.level},
                       params={"id": inc.id, "status": inc.status, "level": inc.level})
    cat = catalog.category(inc.category)
    department = (department or "").strip() or cat.department
    if len(department) > 64:
        raise InvalidInput(N_("department is longer than 64 characters."),
                           fix=N_("Name the department briefly, e.g. 城管."))
    task = m.WhistleTask(incident_id=inc.id, department=department, blown_by=actor.name, blown_at=now,
                         report_by=now + dt.timedelta(hours=cat.whistle_hours), note=note)
    session.add(task)
    inc.updated_at = now
    inc.whistled = True  # the dashboard's count reads the flag, not the whistle_task rows (migration 0020)
    _audit(session, inc, actor, "whistle", inc.status, inc.level, now,
           f"{department} to report by {iso(task.report_by)}" + (f": {note}" if note else ""))
    session.flush()  # the task's id, for the answer
    return task


def report_in(session, task_id, *, actor, now=None):
    """The department reports (报到) on a whistle task; Conflict when it has reported already.

    NotFound for an unknown task or one whose incident lies outside ``actor.area``."""
    now = now or utcnow()
    task = _lock(session, m.WhistleTask, task_id)  # two reports-in at once: the second sees the first's
    gone = NotFound(f"Whistle task {task_id} does not exist.", fix="See the incident's whistles.")
    if task is None:
        raise gone
    owner = session.get(m.Incident, task.incident_id)
    if not access.can(actor.role, "whistle.report_in", at=place(owner), area=actor.area):
        raise gone
    if task.reported_at is not None:
        raise Conflict(N_("%(department)s reported on task %(id)s at %(reported_at)s already."),
                       fix=N_("Nothing to do: the task is done. Reload the incident to see its whistles."),
                       details={"reported_at": iso(task.reported_at)},
                       params={"department": task.department, "id": task.id, "reported_at": iso(task.reported_at)})
    task.reported_at = now
    inc = owner
    _audit(session, inc, actor, "report_in", inc.status, inc.level, now,
           f"{task.department} reported" + (" late" if now > task.report_by else ""))
    return task


# --- reading ----------------------------------------------------------------------------------

def get_incident(session, incident_id, *, lock=False):
    if isinstance(incident_id, bool) or not isinstance(incident_id, int):
        raise InvalidInput(N_("Incident id %(incident_id)s is not a whole number."),
                           fix=N_("Use an id from /api/v1/incidents."),
                           params={"incident_id": repr(incident_id)})
    iid = incident_id
    if not 1 <= iid < 2 ** 63:  # beyond any id a database hands out (and beyond its integers)
        raise missing(iid)
    if lock:  # two dispatchers acting at once queue here instead of both passing the version check
        inc = _lock(session, m.Incident, iid)
    else:
        inc = session.scalar(select(m.Incident).where(m.Incident.id == iid))
    if inc is None:
        raise missing(iid)
    return inc


def history(session, incident_id):
    """The audited steps of an incident, oldest first."""
    rows = session.scalars(select(m.IncidentEvent).where(m.IncidentEvent.incident_id == int(incident_id))
                           .order_by(m.IncidentEvent.at, m.IncidentEvent.id)).all()
    return [{"at": iso(e.at), "actor": e.actor, "role": e.role, "action": e.action, "from_status": e.from_status,
             "to_status": e.to_status, "from_level": e.from_level, "to_level": e.to_level, "note": e.note}
            for e in rows]


def whistles(session, incident_id, *, now=None):
    now = now or utcnow()
    rows = session.scalars(select(m.WhistleTask).where(m.WhistleTask.incident_id == int(incident_id))
                           .order_by(m.WhistleTask.id)).all()
    return [{"id": t.id, "department": t.department, "blown_by": t.blown_by, "blown_at": iso(t.blown_at),
             "report_by": iso(t.report_by), "reported_at": iso(t.reported_at), "note": t.note,
             "overdue": t.reported_at is None and now > t.report_by} for t in rows]


def is_overdue(inc, now=None):
    return inc.status in OPEN_STATUSES and inc.deadline_at is not None and (now or utcnow()) > inc.deadline_at


def incident_dict(inc, *, role=None, area=None, now=None):
    """An incident as the API shows it: reporter masked unless ``role`` may see personal contacts
    at the incident's place within ``area``; the actions ``role`` may take there."""
    cat = catalog.CATEGORIES.get(inc.category)
    at = place(inc)
    sees = access.can(role, "phone.read", at=at, area=area)
    return {"id": inc.id, "category": inc.category, "category_name": cat.zh if cat else inc.category,
            "category_name_en": cat.en if cat else inc.category, "status": inc.status, "level": inc.level,
            "department": inc.department, "vetoed": inc.vetoed, "priority": inc.priority,
            "community_code": inc.community_code, "grid_code": inc.grid_code, "lon": inc.lon, "lat": inc.lat,
            "address": inc.address, "description": inc.description,
            "reporter_name": inc.reporter_name if sees else access.mask_name(inc.reporter_name),
            "reporter_phone": inc.reporter_phone if sees else access.mask_phone(inc.reporter_phone),
            "reporter_email": inc.reporter_email if sees else ("***" if inc.reporter_email else ""),
            "source": inc.source, "reported_at": iso(inc.reported_at), "updated_at": iso(inc.updated_at),
            "resolved_at": iso(inc.resolved_at), "deadline_at": iso(inc.deadline_at),
            "overdue": is_overdue(inc, now), "duplicate_of": inc.duplicate_of, "version": inc.version,
            "allowed_actions": allowed_actions(inc.status, role, level=inc.level, at=at, area=area),
            # the whistle is no transition (the incident stays where it is), so it has its own answer
            "may_whistle": may_whistle(inc.status, inc.level) and access.can(role, "incident.whistle", at=at,
                                                                            area=area)}


def incident_detail(session, incident_id, *, role=None, area=None, now=None):
    """One incident with its history and whistle tasks; NotFound outside ``role``'s ``area``."""
    inc = visible(get_incident(session, incident_id), role, area)
    return {**incident_dict(inc, role=role, area=area, now=now), "history": history(session, inc.id),
            "whistles": whistles(session, inc.id, now=now),
            "photos": [p["id"] for p in photos.photos_of(session, "incident", inc.id)]}  # served at /photos/<id>


def list_incidents(session, *, status=None, level=None, community=None, grid=None, overdue=None, category=None,
                   limit=200, role=None, area=None, now=None):
    """Incidents matching every filter given within ``role``'s ``area``, newest first; ``status`` may
    also be "open" or "closed"."""
    now = now or utcnow()
    q = select(m.Incident)
    mine = clause(role, "incident.read", area, grid_col=m.Incident.grid_code, community_col=m.Incident.community_code)
    if mine is not None:
        q = q.where(mine)
    if status in ("open", "closed"):
        q = q.where(m.Incident.status.in_(OPEN_STATUSES if status == "open" else CLOSED_STATUSES))
    elif status:
        q = q.where(m.Incident.status == status)
    for column, value in ((m.Incident.level, level), (m.Incident.community_code, community),
                          (m.Incident.grid_code, grid), (m.Incident.category, category)):
        if value is not None:
            q = q.where(column == value)
    late = m.Incident.status.in_(OPEN_STATUSES) & (m.Incident.deadline_at < now)
    if overdue is not None:
        q = q.where(late if overdue else ~late | m.Incident.deadline_at.is_(None))
    rows = session.scalars(q.order_by(m.Incident.priority.desc(), m.Incident.reported_at.desc(), m.Incident.id.desc())
                           .limit(limit)).all()
    return [incident_dict(i, role=role, area=area, now=now) for i in rows]


# --- helpers ----------------------------------------------------------------------------------

def _audit(session, inc, actor, action, from_status, from_level, now, note=""):
    session.add(m.IncidentEvent(incident_id=inc.id, at=now, actor=actor.name, role=actor.role or "", action=action,
                                from_status=from_status, to_status=inc.status, from_level=from_level,
                                to_level=inc.level, note=note or ""))


def _check_version(inc, version):
    if version != inc.version:
        raise Conflict(N_("Incident %(id)s is at version %(version)s, not %(version2)s: someone changed it first."),
                       fix=N_("Reload the incident, check what changed, and try again with its current version."),
                       details={"current_version": inc.version, "status": inc.status},
                       params={"id": inc.id, "version": inc.version, "version2": version})


def _point(lon, lat):
    return shapely.Point(float(lon), float(lat))


def iso(value):
    """A naive UTC time as ISO 8601 with Z, to the second."""
    return None if value is None else value.replace(microsecond=0).isoformat() + "Z"
