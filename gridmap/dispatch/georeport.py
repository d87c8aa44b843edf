"""Open311 GeoReport v2 as data: services from the incident catalogue, requests from incidents.

The wire format (JSON or XML) and the parameters are the web layer's business (``gridmap.web.open311``,
``gridmap.web.params``); this module only maps the catalogue and the lifecycle onto the spec's fields.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from .. import catalog
from ..errors import N_, NotFound
from ..lookup import resolve_address
from ..store import models as m
from .incidents import iso
from .rules import CLOSED_STATUSES, OPEN_STATUSES

MAX_WINDOW = dt.timedelta(days=90)  # the spec's default window, and the widest one a query may ask for
MAX_RESULTS = 1000  # the spec's default (and our only) cap on GET requests
OPEN311_STATUS = {s: "open" for s in OPEN_STATUSES} | {s: "closed" for s in CLOSED_STATUSES}
# Categories that name vulnerable people (an SOS) are neither offered nor listed: GeoReport lists are public.
PUBLIC_CODES = tuple(c.code for c in catalog.INCIDENT_CATEGORIES if c.public)
STATUS_NOTES = {
    "reported": "已登记，等待受理。Received, waiting to be accepted.",
    "accepted": "已受理。Accepted.",
    "dispatched": "已派单。Dispatched to a responder.",
    "in_progress": "处置中。Being handled.",
    "resolved": "已办结。Resolved.",
    "merged": "重复上报，已并入先前的报告。Duplicate of an earlier request.",
}


def services():
    """Every catalogue category as a GeoReport service (no extra attributes, so ``metadata`` is false)."""
    return [{"service_code": c.code, "service_name": c.zh, "description": _describe(c), "metadata": False,
             "type": "realtime", "keywords": ", ".join([c.en, c.code]), "group": catalog.LEVEL_NAMES[c.level][0]}
            for c in catalog.INCIDENT_CATEGORIES if c.public]


def service_definition(code):
    """The service definition of one category; NotFound for a code not in the catalogue."""
    if code not in PUBLIC_CODES:
        raise NotFound(N_("service_code %(code)s is not offered."), fix=N_("Use one of %(CATEGORIES)s."),
                       params={"code": repr(code), "CATEGORIES": ", ".join(map(str, sorted(catalog.CATEGORIES)))})
    return {"service_code": code, "attributes": []}


def find_requests(session, *, ids=None, codes=(), statuses=(), start=None, end=None, limit=MAX_RESULTS):
    """Incidents matching the parsed filters as GeoReport requests, newest first, at most ``limit``."""
    q = select(m.Incident).where(m.Incident.category.in_(PUBLIC_CODES))
    if ids:
        q = q.where(m.Incident.id.in_(ids))
    else:
        if codes:
            q = q.where(m.Incident.category.in_(codes))
        wanted = [s for s, o in OPEN311_STATUS.items() if o in statuses]
        if statuses:
            q = q.where(m.Incident.status.in_(wanted))
        q = q.where(m.Incident.reported_at >= start, m.Incident.reported_at <= end)
    rows = session.scalars(q.order_by(m.Incident.reported_at.desc(), m.Incident.id.desc()).limit(limit)).all()
    notes = _last_notes(session, [r.id for r in rows])
    return [request_dict(r, notes.get(r.id)) for r in rows]


def get_request(session, request_id):
    """One request (as a one-item list, as the spec has it); NotFound for an id not offered."""
    inc = session.get(m.Incident, request_id)
    if inc is None or inc.category not in PUBLIC_CODES:
        raise NotFound(N_("Service request %(request_id)s does not exist."), fix=N_("Use the id you were given."),
                       params={"request_id": request_id})
    return [request_dict(inc, _last_notes(session, [inc.id]).get(inc.id))]


def request_dict(inc, note=None):
    """One incident in the spec's fields. Reporters' contacts never leave: GeoReport lists are public."""
    cat = catalog.CATEGORIES.get(inc.category)
    notes = STATUS_NOTES.get(inc.status, "")
    if inc.status == "merged" and inc.duplicate_of:
        notes = f"{notes} ({inc.duplicate_of})"
    elif note:
        notes = f"{notes} {note}"
    return {"service_request_id": str(inc.id), "status": OPEN311_STATUS.get(inc.status, "open"),
            "status_notes": notes, "service_name": cat.zh if cat else inc.category, "service_code": inc.category,
            "description": inc.description, "agency_responsible": agency(inc), "service_notice": "",
            "requested_datetime": iso(inc.reported_at), "updated_datetime": iso(inc.updated_at),
            "expected_datetime": iso(inc.deadline_at), "address": inc.address, "address_id": "",
            "zipcode": "", "lat": inc.lat, "long": inc.lon, "media_url": ""}


def agency(inc):
    """The department's name, else the level and its code (网格 210213013004001, 社区 210213013004)."""
    if inc.department:
        return inc.department
    name = catalog.LEVEL_NAMES.get(inc.level, (inc.level,))[0]
    code = {"grid": inc.grid_code, "community": inc.community_code}.get(inc.level)
    return f"{name} {code}" if code else name


def place(snapshot, args):
    """Fill ``lon``/``lat`` of parsed POST arguments from their ``address`` when no point was sent.

    The address must name one building (:func:`gridmap.lookup.resolve_address`): a report is not
    filed at a guess. The stored address becomes the register's spelling of it.
    """
    if args["lon"] is not None:
        return args
    hit = resolve_address(snapshot, args["address"], field="address_string")
    return {**args, "lon": hit["lon"], "lat": hit["lat"], "address": hit["address"]}


def _describe(c):
    where = c.department if c.level == "department" else catalog.LEVEL_NAMES[c.level][0]
    return f"{c.en}. 责任: {where}; 不在社区工作事项清单时转 {c.department}."


def _last_notes(session, ids):
    if not ids:
        return {}
    rows = session.execute(select(m.IncidentEvent.incident_id, m.IncidentEvent.note)
                           .where(m.IncidentEvent.incident_id.in_(ids), m.IncidentEvent.note != "")
                           .order_by(m.IncidentEvent.incident_id, m.IncidentEvent.at, m.IncidentEvent.id)).all()
    return {iid: note for iid, note in rows}  # later rows overwrite: the newest note wins
