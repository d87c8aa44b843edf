"""A resident's report from the resident page: an incident like any other, its photos, and the token of its status page.

The report is routed by :func:`gridmap.dispatch.incidents.report`, as the API's and Open311's are;
what is the resident's own is the token. Only its SHA-256 is stored (as for api keys): the link
``/reports/<token>`` is the resident's alone, and a copy of the database does not hand it out.
What the status page may show is decided here too (:func:`public_status`): category, status and
its history, the grid and its workers' masked phones, the resident's own words and photos, and the
photos of the fix its worker chose to show (``incident.show_photos``; by default a resolve's photos
stay with staff) — never the contact they left, staff names or notes, or the spot's coordinates.
"""
from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import select

from .. import access, catalog, photos
from ..errors import InvalidInput, N_, NotFound
from ..store import models as m
from .georeport import PUBLIC_CODES
from .incidents import iso, report
from .rules import Actor

#: Most characters of a resident's description (the API's report takes as many).
MAX_DESCRIPTION = 4000
#: Photos one report may carry.
MAX_PHOTOS = 3
PHOTO_OWNER = "incident"
# secrets.token_urlsafe(16): 22 characters of the URL-safe alphabet (128 bits)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")


def resident_report(session, snapshot, *, category, lon, lat, description="", address="", contact_name="",
                    contact_phone="", files=(), photo_limits=None, now=None, actor=Actor()):
    """Record a resident's report with its photos; returns ``(incident, token)``.

    ``category`` must be a public one (what Open311 offers: an SOS is not reported here). Every
    field and photo is checked before anything is written; the caller commits.

    Raises InvalidInput with ``details["reason"]``: ``category_not_offered``, ``description_too_long``,
    ``description_missing``, ``field_too_long``, a reason of :mod:`gridmap.photos`, or the report's own (a spot in no community).
    """
    cat = _public_category(category)
    description = (description or "").strip()
    if not description:
        raise InvalidInput(N_("The description is empty."), fix=N_("Say in a few words what is wrong there."),
                           details={"reason": "description_missing", "field": "description"})
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInput(N_("The description has %(description)s characters; at most %(MAX_DESCRIPTION)s are taken."),
                           fix=N_("Shorten it to %(MAX_DESCRIPTION)s characters."),
                           details={"reason": "description_too_long", "field": "description",
                                    "length": len(description), "most": MAX_DESCRIPTION},
                           params={"description": len(description), "MAX_DESCRIPTION": MAX_DESCRIPTION})
    for field, value, most in (("address", address, 256), ("contact_name", contact_name, 64),
                               ("contact_phone", contact_phone, 32)):  # the incident's columns
        if len(value or "") > most:
            raise InvalidInput(N_("%(field)s has %(value)s characters; at most %(most)s are taken."),
                               fix=N_("Shorten %(field)s to %(most)s characters."),
                               details={"reason": "field_too_long", "field": field, "length": len(value), "most": most},
                               params={"field": field, "value": len(value), "most": most})
    if snapshot.locate(lon, lat)["community"] is None:
        raise InvalidInput(N_("(%(lon)s, %(lat)s) lies in no community gridmap knows; nobody could take the report."),
                           fix=N_("Choose the place again, by address or on the map."),
                           details={"reason": "spot_outside"},
                           params={"lon": format(lon, '.6f'), "lat": format(lat, '.6f')})
    limits = photo_limits or photos.PhotoLimits(max_count=MAX_PHOTOS)
    cleaned = photos.clean_photos(files, limits=limits)  # every photo passes before the incident is written
    inc = report(session, snapshot, category=cat.code, lon=lon, lat=lat, actor=actor, now=now, source="resident",
                 description=description, address=address, reporter_name=contact_name,
                 reporter_phone=contact_phone)
    photos.save_photos(session, cleaned, owner_kind=PHOTO_OWNER, owner_id=inc.id, limits=limits)
    token = secrets.token_urlsafe(16)
    session.add(m.ResidentReport(incident_id=inc.id, token_hash=_hash(token), created_at=inc.reported_at))
    session.flush()
    return inc, token


def by_token(session, token):
    """The incident whose status page ``token`` opens; NotFound, the same for every wrong token."""
    gone = NotFound("No report has this link.", fix="Open the link you were given when you reported, in full.",
                    details={"reason": "report_not_found"})
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise gone
    inc = session.scalar(select(m.Incident).join(m.ResidentReport, m.ResidentReport.incident_id == m.Incident.id)
                         .where(m.ResidentReport.token_hash == _hash(token)))
    if inc is None:
        raise gone
    return inc


def public_status(session, snapshot, token):
    """What the status page of ``token`` shows, as data (see the module); NotFound for a wrong token.

    ``history`` lists each step's time, action, status and level — not who took it or their note
    (staff names and remarks are not for the public). ``workers`` are the grid's current workers
    with their phones masked as the resident page shows them."""
    inc = by_token(session, token)
    cat = catalog.CATEGORIES[inc.category]
    events = session.execute(select(m.IncidentEvent.at, m.IncidentEvent.action, m.IncidentEvent.to_status,
                                    m.IncidentEvent.to_level)
                             .where(m.IncidentEvent.incident_id == inc.id)
                             .order_by(m.IncidentEvent.at, m.IncidentEvent.id)).all()
    grid = _grid(snapshot, inc.grid_code)
    community = _community(snapshot, inc.community_code)
    workers = [{"name": w["name"], "phone": access.phone_for(None, w["phone"])}
               for w in snapshot.workers.get(inc.grid_code, [])] if inc.grid_code else []
    return {"id": inc.id, "category": cat.code, "category_zh": cat.zh, "category_en": cat.en,
            "status": inc.status, "level": inc.level, "department": inc.department if inc.level == "department" else "",
            "reported_at": iso(inc.reported_at), "updated_at": iso(inc.updated_at),
            "resolved_at": iso(inc.resolved_at), "description": inc.description,
            "grid": grid, "community": community, "workers": workers,
            "history": [{"at": iso(e.at), "action": e.action, "status": e.to_status, "level": e.to_level}
                        for e in events],
            **_shown_photos(session, inc.id)}


def _shown_photos(session, incident_id):
    """The photos the report's link holder sees: ``photos`` (what they sent) and ``fix_photos`` (those of a
    resolve its worker chose to show); a resolve's other photos are for staff (``incident.show_photos``)."""
    shown = [p for p in photos.photos_of(session, PHOTO_OWNER, incident_id) if p["reporter_sees"]]
    return {"photos": [p["id"] for p in shown if p["stage"] != "resolve"],
            "fix_photos": [p["id"] for p in shown if p["stage"] == "resolve"]}


def report_photo(session, token, photo_id):
    """``(bytes, content type)`` of a photo of the report ``token`` opens and shows; NotFound for any other."""
    inc = by_token(session, token)
    return photos.photo_bytes(session, photo_id, owner_kind=PHOTO_OWNER, owner_id=inc.id, reporter=True)


def incident_photo(session, photo_id, *, role, area):
    """``(bytes, content type)`` of an incident's photo for staff who may read that incident
    (:mod:`gridmap.access`, ``incident.read`` at its place); NotFound otherwise, as for a missing photo."""
    owner = photos.photo_owner(session, photo_id)
    inc = session.get(m.Incident, owner[1]) if owner and owner[0] == PHOTO_OWNER else None
    if inc is None or not access.can(role, "incident.read", at=(inc.grid_code, inc.community_code), area=area):
        raise photos.missing(photo_id)
    return photos.photo_bytes(session, photo_id, owner_kind=PHOTO_OWNER, owner_id=inc.id)


def _public_category(code):
    if not isinstance(code, str) or code not in PUBLIC_CODES:
        shown = repr(code)[:40]
        raise InvalidInput(N_("category=%(shown)s is not a category residents may report."),
                           fix=N_("Choose one of %(PUBLIC_CODES)s."),
                           details={"reason": "category_not_offered", "field": "category", "category": str(code)[:40],
                                    "allowed": list(PUBLIC_CODES)},
                           params={"shown": shown, "PUBLIC_CODES": ", ".join(map(str, list(PUBLIC_CODES)))})
    return catalog.category(code)


def _grid(snapshot, code):
    if not code:
        return None
    grids = snapshot.grids
    row = grids[grids["code"] == code]
    return {"code": code, "name": row.iloc[0]["name"] if not row.empty else code}


def _community(snapshot, code):
    if not code:
        return None
    rows = snapshot.communities
    row = rows[rows["code"] == code]
    if row.empty:
        return {"code": code, "name": code, "service_centre": None}
    row = row.iloc[0]
    # the community's service centre: a public office and its public phone, as the resident page shows it
    centre = {key: _text(row.get(column)) for key, column in
              (("name", "service_centre"), ("address", "service_address"), ("phone", "service_phone"))}
    return {"code": code, "name": row["name"], "service_centre": centre if any(centre.values()) else None}


def _text(value):
    return "" if value is None or value != value else str(value)  # NaN: a column the import left empty


def _hash(token):
    return hashlib.sha256(token.encode("ascii")).hexdigest()
