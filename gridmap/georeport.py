"""Open311 GeoReport v2 as data: services from the incident catalogue, requests from incidents, filters parsed.

The wire format (JSON or XML) is the web layer's business (``gridmap.web.open311``); this module
only maps the catalogue and the lifecycle onto the spec's fields and checks the spec's parameters.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from . import catalog, dispatch
from .errors import InvalidInput, NotFound
from .store import models as m

MAX_WINDOW = dt.timedelta(days=90)  # the spec's default window, and the widest one a query may ask for
MAX_RESULTS = 1000  # the spec's default (and our only) cap on GET requests
OPEN311_STATUS = {s: "open" for s in dispatch.OPEN_STATUSES} | {s: "closed" for s in dispatch.CLOSED_STATUSES}
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
        raise NotFound(f"service_code {code!r} is not offered.", fix=f"Use one of {sorted(catalog.CATEGORIES)}.")
    return {"service_code": code, "attributes": []}


def parse_query(args, *, now=None):
    """The spec's GET requests filters: ``service_request_id`` (comma list; overrides the rest),
    ``service_code`` and ``status`` (comma lists), ``start_date``/``end_date`` (ISO 8601 with a zone,
    at most 90 days apart; by default the last 90 days)."""
    now = now or dispatch.utcnow()
    ids = _list(args, "service_request_id")
    if ids:
        bad = [i for i in ids if _request_id(i) is None]
        if bad:
            raise InvalidInput(f"service_request_id {bad[0]!r} is not a request id.", fix="Send ids like 42 or 42,43.")
        return {"ids": [_request_id(i) for i in ids]}
    codes = _list(args, "service_code")
    unknown = [c for c in codes if c not in PUBLIC_CODES]
    if unknown:
        raise InvalidInput(f"service_code {unknown[0]!r} is not offered.", fix="Use codes from services.json.")
    statuses = _list(args, "status")
    bad = [s for s in statuses if s not in ("open", "closed")]
    if bad:
        raise InvalidInput(f"status {bad[0]!r} is not open or closed.", fix="Send status=open, closed or open,closed.")
    start = dispatch.parse_time(args["start_date"], name="start_date") if args.get("start_date") else None
    end = dispatch.parse_time(args["end_date"], name="end_date") if args.get("end_date") else None
    if start is None and end is None:
        end = now
    if start is None:
        start = end - MAX_WINDOW
    if end is None:
        end = start + MAX_WINDOW
    if end < start:
        raise InvalidInput("end_date is before start_date.", fix="Swap them.")
    if end - start > MAX_WINDOW:
        raise InvalidInput(f"start_date to end_date spans {(end - start).days} days; at most 90 are allowed.",
                           fix="Ask for 90 days or fewer at a time.")
    return {"codes": codes, "statuses": statuses, "start": start, "end": end}


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


def _request_id(text):
    """The id in ``text`` (ASCII digits, within a database integer), else None."""
    text = str(text)
    # str.isdigit() also takes '²' and '٣', which int() refuses or reads as another number
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value < 2 ** 63 else None


def get_request(session, request_id):
    iid = _request_id(request_id)
    if iid is None:
        raise InvalidInput(f"service_request_id {request_id!r} is not a request id.", fix="Use the id you were given.")
    inc = session.get(m.Incident, iid)
    if inc is None or inc.category not in PUBLIC_CODES:
        raise NotFound(f"Service request {request_id} does not exist.", fix="Use the id you were given.")
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
            "requested_datetime": dispatch._iso(inc.reported_at), "updated_datetime": dispatch._iso(inc.updated_at),
            "expected_datetime": dispatch._iso(inc.deadline_at), "address": inc.address, "address_id": "",
            "zipcode": "", "lat": inc.lat, "long": inc.lon, "media_url": ""}


def agency(inc):
    """The department's name, else the level and its code (网格 210213013004001, 社区 210213013004)."""
    if inc.department:
        return inc.department
    name = catalog.LEVEL_NAMES.get(inc.level, (inc.level,))[0]
    code = {"grid": inc.grid_code, "community": inc.community_code}.get(inc.level)
    return f"{name} {code}" if code else name


_POST_TEXT = {"description": 4000, "email": 128, "first_name": 32, "last_name": 32, "phone": 32,
              "address_string": 256}


def parse_post(session, form):
    """POST requests' fields → keyword arguments for :func:`gridmap.dispatch.report`.

    ``lat``/``long`` or ``address_string`` (a building address, matched exactly or by prefix)
    locate the request; InvalidInput names the first missing or bad field.
    """
    from .lookup import parse_point, search_addresses
    code = (form.get("service_code") or "").strip()
    if not code:
        raise InvalidInput("service_code is missing.", fix="Send a service_code from services.json.")
    if code not in PUBLIC_CODES:
        raise InvalidInput(f"service_code {code!r} is not offered.", fix="Send a service_code from services.json.")
    texts = {}
    for name, most in _POST_TEXT.items():
        value = (form.get(name) or "").strip()
        if len(value) > most:
            raise InvalidInput(f"{name} is longer than {most} characters.", fix=f"Shorten {name}.")
        texts[name] = value
    address = texts.pop("address_string")
    if form.get("lat") not in (None, "") or form.get("long") not in (None, ""):
        lon, lat = parse_point(form.get("long"), form.get("lat"))
    elif address:
        hits = [h for h in search_addresses(session, address, limit=20) if h["address"].startswith(address)]
        if not hits:
            raise InvalidInput(f"address_string {address!r} matches no building address.",
                               fix="Send lat and long, or a building address as the register writes it.")
        lon, lat, address = hits[0]["lon"], hits[0]["lat"], hits[0]["address"]
    else:
        raise InvalidInput("The request has no location.", fix="Send lat and long, or address_string.")
    name = " ".join(p for p in (texts.pop("last_name"), texts.pop("first_name")) if p)  # 姓 then 名
    return {"category": code, "lon": lon, "lat": lat, "description": texts["description"], "address": address,
            "reporter_name": name[:64], "reporter_phone": texts["phone"], "reporter_email": texts["email"]}


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


def _list(args, name):
    raw = args.get(name) or ""
    return [p.strip() for p in raw.split(",") if p.strip()]
