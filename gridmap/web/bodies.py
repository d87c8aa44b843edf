"""The web border's request bodies: every JSON body (and Open311's form) checked field by field.

Each parser takes what the client sent and returns the keyword arguments of the service it is
for, or raises InvalidInput naming the first bad field, its value and the fix. Nothing is read
from or written to the store before a body has passed.
"""
from __future__ import annotations

import math
import re

import shapely

from .. import catalog
from ..dispatch import ACTIONS
from ..dispatch.georeport import PUBLIC_CODES
from ..errors import InvalidInput
from ..geo.addresses import MAX_QUERY_CHARS
from .params import parse_day, parse_point, parse_time

# Limits of what the planner's map may send in one edit.
MAX_VERTICES = 5000
MAX_BUILDINGS = 1000
_GRID_CODE = re.compile(r"\d{15}")

# --- incidents ---------------------------------------------------------------------------------

_REPORT_FIELDS = {"category", "lon", "lat", "crs", "description", "reporter_name", "reporter_phone",
                  "reporter_email", "address"}
_TEXT_LIMITS = {"description": 4000, "reporter_name": 64, "reporter_phone": 32, "reporter_email": 128,
                "address": 256}


def parse_report(body):
    """Validate a report's JSON body; returns keyword arguments for :func:`gridmap.dispatch.report`.

    Raises InvalidInput naming the first bad field (unknown, missing, wrong type, too long).
    """
    body = _object(body, '{"category": "noise", "lon": 121.61, "lat": 38.91, "description": "…"}')
    unknown = sorted(set(body) - _REPORT_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown field(s) {unknown} in the report.", fix=f"Send only {sorted(_REPORT_FIELDS)}.",
                           details={"unknown": unknown})
    if not isinstance(body.get("category"), str):
        raise InvalidInput("category is missing.", fix=f"Send one of {sorted(catalog.CATEGORIES)}.",
                           details={"field": "category"})
    cat = catalog.category(body["category"])
    lon, lat = parse_point(_number_text(body, "lon"), _number_text(body, "lat"), body.get("crs"))
    return {"category": cat.code, "lon": lon, "lat": lat, **_texts(body, _TEXT_LIMITS)}


def parse_transition(body):
    """Validate ``{"action", "version", "note"?, "duplicate_of"?}``; returns keyword arguments for :func:`gridmap.dispatch.transition`."""
    body = _object(body, '{"action": "accept", "version": 1, "note": "…"}')
    unknown = sorted(set(body) - {"action", "version", "note", "duplicate_of"})
    if unknown:
        raise InvalidInput(f"Unknown field(s) {unknown} in the transition.",
                           fix='Send "action", "version" and optionally "note" and "duplicate_of".',
                           details={"unknown": unknown})
    action = body.get("action")
    if action not in ACTIONS:
        raise InvalidInput(f"action={action!r} is not an incident action.", fix=f"Use one of {list(ACTIONS)}.",
                           details={"field": "action", "allowed": list(ACTIONS)})
    out = {"action": action, "version": _positive_int(body, "version",
                                                       "Send the version you loaded from GET /api/v1/incidents/<id>."),
           "note": _texts(body, {"note": 2000})["note"]}
    if action == "link_duplicate":
        out["duplicate_of"] = _positive_int(body, "duplicate_of", "Send the id of the earlier report.")
    elif "duplicate_of" in body:
        raise InvalidInput("duplicate_of only goes with action link_duplicate.", fix="Leave it out.")
    return out


def parse_whistle(body):
    body = _object(body or {}, '{"department": "城管", "note": "…"}')
    unknown = sorted(set(body) - {"department", "note"})
    if unknown:
        raise InvalidInput(f"Unknown field(s) {unknown} in the whistle.", fix='Send "department" and "note", both optional.')
    return _texts(body, {"department": 64, "note": 2000})


_LEDGER_FIELDS = {"day", "skill", "hours", "resident_id", "household_id", "incident_id", "note"}


def parse_service(body):
    """Validate a ledger line ``{day, skill, hours, resident_id|household_id|incident_id, note?}``."""
    body = _object(body, '{"day": "2026-05-03", "skill": "理发", "hours": 1.5, "resident_id": 12}')
    unknown = sorted(set(body) - _LEDGER_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown field(s) {unknown} in the ledger line.", fix=f"Send only {sorted(_LEDGER_FIELDS)}.")
    day = parse_day(body.get("day"), name="day")
    skill = body.get("skill")
    if not isinstance(skill, str) or not skill.strip() or len(skill) > 32:
        raise InvalidInput(f"skill={skill!r} is not a skill name of at most 32 characters.",
                           fix=f"Name the service, e.g. one of {list(catalog.VOLUNTEER_SKILLS)}.")
    hours = body.get("hours")
    if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not 0 < hours <= 24:
        raise InvalidInput(f"hours={hours!r} is not a number of hours above 0 and at most 24.",
                           fix="Send e.g. hours=1.5.")
    refs = {name: _positive_int(body, name, "Send the id of the one served.") for name in
            ("resident_id", "household_id", "incident_id") if body.get(name) is not None}
    if not refs:
        raise InvalidInput("The ledger line names nobody served.",
                           fix="Send resident_id, household_id or incident_id.")
    return {"day": day, "skill": skill.strip(), "hours": float(hours), **refs, **_texts(body, {"note": 2000})}


def parse_sos(body):
    """Validate ``{device_id, lon, lat, time}``; ``time`` is ISO 8601 with a zone, or Unix seconds."""
    body = _object(body, '{"device_id": "W-0001", "lon": 121.61, "lat": 38.91, "time": "2026-05-03T08:15:00+08:00"}')
    unknown = sorted(set(body) - {"device_id", "lon", "lat", "time"})
    if unknown:
        raise InvalidInput(f"Unknown field(s) {unknown} in the SOS.", fix="Send only device_id, lon, lat and time.")
    device = body.get("device_id")
    if not isinstance(device, str) or not device.strip() or len(device) > 64:
        raise InvalidInput(f"device_id={device!r} is not a device id of at most 64 characters.",
                           fix="Send the id the wearable was registered with.", details={"field": "device_id"})
    lon, lat = parse_point(_number_text(body, "lon"), _number_text(body, "lat"))
    return {"device_id": device.strip(), "lon": lon, "lat": lat, "time": parse_time(body.get("time"), name="time")}


def _object(body, example):
    if not isinstance(body, dict):
        raise InvalidInput("The request body is not a JSON object.",
                           fix=f"Send {example} with Content-Type: application/json.")
    return body


def _number_text(body, name):
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float, str, type(None))):
        raise InvalidInput(f"{name}={value!r} is not a number.", fix="Write decimal degrees, e.g. 121.6147.",
                           details={"field": name})
    return None if value is None else str(value)


def _texts(body, limits):
    out = {}
    for name, most in limits.items():
        value = body.get(name, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise InvalidInput(f"{name}={value!r} is not text.", fix=f"Send {name} as a string.", details={"field": name})
        if len(value) > most:
            raise InvalidInput(f"{name} is longer than {most} characters.", fix=f"Shorten {name}.", details={"field": name})
        out[name] = value.strip()
    return out


def _positive_int(body, name, fix):
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"{name}={value!r} is not a positive whole number.", fix=fix, details={"field": name})
    return value


# --- plans ------------------------------------------------------------------------------------

def parse_publish_body(body):
    """Validate a publish request's JSON: ``{"version": N, "valid_from": "YYYY-MM-DD"?, "replaces": ID or null?}``.

    ``replaces`` is the community's published plan as the client saw it (null: none was): the
    publish is refused if another one is published by then. Returns ``{"expected_version": int,
    "on": date or None}`` and, when ``replaces`` was sent, ``"replaces": [ID]`` or ``[]``.
    """
    if not isinstance(body, dict):
        raise InvalidInput("The request body is not a JSON object.",
                           fix='Send {"version": N} with Content-Type: application/json, N the version you loaded.')
    unknown = sorted(set(body) - {"version", "valid_from", "replaces"})
    if unknown:
        raise InvalidInput(f"Unknown field(s) {unknown} in the publish request.",
                           fix='Send only "version" and optionally "valid_from" and "replaces".',
                           details={"unknown": unknown})
    version = body.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInput(f"version={version!r} is not a positive whole number.",
                           fix="Send the version you loaded, from GET /api/v1/plans/<id>.",
                           details={"version": version})
    valid_from = body.get("valid_from")
    on = None if valid_from is None else parse_day(valid_from, name="valid_from")
    out = {"expected_version": version, "on": on}
    if "replaces" in body:
        replaces = body["replaces"]
        if replaces is not None and (isinstance(replaces, bool) or not isinstance(replaces, int) or replaces < 1):
            raise InvalidInput(f"replaces={replaces!r} is neither a plan id nor null.",
                               fix="Send the id of the community's published plan as you loaded it, or null if "
                                   "none was published.", details={"replaces": replaces})
        out["replaces"] = [] if replaces is None else [replaces]
    return out


def parse_edit(kind, body):
    """Check an edit request's JSON body; returns the keyword arguments of the edit function.

    ``kind`` is one of :data:`EDITS`. Raises InvalidInput naming the bad field and value.
    """
    if kind not in EDITS:
        raise InvalidInput(f"Edit {kind!r} is not known.", fix=f"Use one of {sorted(EDITS)}.")
    if not isinstance(body, dict):
        raise InvalidInput("The request body is not a JSON object.",
                           fix="Send a JSON object with Content-Type: application/json.")
    fields = EDITS[kind]
    unknown = sorted(set(body) - set(fields) - {"version"})
    if unknown:
        raise InvalidInput(f"Unknown field(s) {unknown} in the {kind} request.",
                           fix=f"Send only version and {', '.join(fields)}.", details={"unknown": unknown})
    out = {"version": _version(body.get("version"))}
    for name, parse in fields.items():
        out[name] = parse(body.get(name), name)
    return out


def _version(v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise InvalidInput(f"version={v!r} is not a positive whole number.",
                           fix="Send the plan version you loaded.", details={"version": v})
    return v


def _code(v, name):
    if not (isinstance(v, str) and _GRID_CODE.fullmatch(v)):
        raise InvalidInput(f"{name}={v!r} is not a 15-digit grid code.", fix="Select a grid on the map.",
                           details={name: v})
    return v


def _codes_pair(v, name):
    if not (isinstance(v, list) and len(v) == 2):
        raise InvalidInput(f"{name}={v!r} is not a list of two grid codes.", fix="Select two grids.",
                           details={name: v})
    return [_code(c, name) for c in v]


def _geometry(kinds):
    def parse(v, name):
        if not isinstance(v, dict) or v.get("type") not in kinds:
            got = v.get("type") if isinstance(v, dict) else type(v).__name__
            raise InvalidInput(f"{name} is a {got!r}, not a GeoJSON {' or '.join(kinds)}.",
                               fix=f"Draw a {' or '.join(kinds).lower()} on the map.", details={name: got})
        coords = v.get("coordinates")
        flat = _flatten(coords, depth=2 if v["type"] == "Polygon" else 1, name=name)
        if len(flat) > MAX_VERTICES:
            raise InvalidInput(f"{name} has {len(flat)} vertices, more than {MAX_VERTICES}.",
                               fix="Draw a simpler shape.", details={name: len(flat)})
        for x, y in flat:
            if not (-180 <= x <= 180 and -90 <= y <= 90):
                raise InvalidInput(f"{name} has the point ({x}, {y}), which is not WGS84 lon/lat.",
                                   fix="Send longitude, latitude in degrees.", details={name: [x, y]})
        try:
            geom = shapely.geometry.shape(v)
        except (ValueError, TypeError, AttributeError) as err:
            raise InvalidInput(f"{name} is not a valid {v['type']}: {err}.", fix="Draw the shape again.",
                               details={name: v["type"]}) from None
        if geom.is_empty or (v["type"] == "Polygon" and geom.area == 0) or (v["type"] == "LineString"
                                                                            and geom.length == 0):
            raise InvalidInput(f"{name} is an empty {v['type']}.", fix="Draw the shape again.",
                               details={name: v["type"]})
        return geom
    return parse


def _flatten(coords, depth, name):
    """Positions of a GeoJSON coordinates array ``depth`` levels deep, each checked to be two finite numbers."""
    level = [coords]
    for _ in range(depth):
        nxt = []
        for item in level:
            if not isinstance(item, list) or not item:
                raise InvalidInput(f"{name} has malformed coordinates.", fix="Send GeoJSON coordinates.",
                                   details={name: "coordinates"})
            nxt += item
        level = nxt
    out = []
    for p in level:
        if not (isinstance(p, list) and len(p) in (2, 3) and all(
                isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in p)):
            raise InvalidInput(f"{name} has the position {p!r}, not [lon, lat].", fix="Send GeoJSON coordinates.",
                               details={name: repr(p)[:80]})
        out.append((float(p[0]), float(p[1])))
    return out


def _building_ids(v, name):
    if not isinstance(v, list) or not v or len(v) > MAX_BUILDINGS or not all(
            isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in v):
        raise InvalidInput(f"{name}={str(v)[:80]} is not a list of 1–{MAX_BUILDINGS} building ids.",
                           fix="Select buildings on the map.", details={name: str(v)[:80]})
    return v


def _grid_mapping(v, name):
    if not isinstance(v, dict) or not v or len(v) > 999:
        raise InvalidInput(f"{name} is not an object of grid code → GeoJSON Polygon or null.",
                           fix="Send the undo or redo mapping the last edit returned.", details={name: str(v)[:80]})
    poly = _geometry(("Polygon",))
    return {_code(code, f"{name} key"): (None if g is None else poly(g, f"{name}[{code}]")) for code, g in v.items()}


def _names(v, name):
    if v is None:
        return {}
    if not isinstance(v, dict) or not all(isinstance(k, str) and isinstance(n, str) and 0 < len(n) <= 128
                                          for k, n in v.items()):
        raise InvalidInput(f"{name} is not an object of grid code → name (1–128 characters).",
                           fix="Send the names the last edit returned.", details={name: str(v)[:80]})
    return v


#: The edits the planner page can ask for, and how each field of their body is checked.
EDITS = {
    "redraw": {"grid_code": _code, "polygon": _geometry(("Polygon",))},
    "move": {"building_ids": _building_ids, "to_grid": _code},
    "split": {"grid_code": _code, "line": _geometry(("LineString",))},
    "merge": {"codes": _codes_pair},
    "set_grids": {"grids": _grid_mapping, "names": _names},
}


# --- Open311 ----------------------------------------------------------------------------------

_POST_TEXT = {"description": 4000, "email": 128, "first_name": 32, "last_name": 32, "phone": 32,
              "address_string": MAX_QUERY_CHARS}


def parse_open311_post(form):
    """POST requests' fields → keyword arguments for :func:`gridmap.dispatch.report`.

    ``lat``/``long`` locate the request, else ``address_string`` does (``lon`` and ``lat`` are then
    None: :func:`gridmap.dispatch.georeport.place` resolves the address to its building);
    InvalidInput names the first missing or bad field.
    """
    code = form.get("service_code")
    code = code.strip() if isinstance(code, str) else ""
    if not code:
        raise InvalidInput("service_code is missing.", fix="Send a service_code from services.json.")
    if code not in PUBLIC_CODES:
        raise InvalidInput(f"service_code {code!r} is not offered.", fix="Send a service_code from services.json.")
    texts = {}
    for name, most in _POST_TEXT.items():
        value = form.get(name)
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{name}={str(value)[:40]!r} is not text.", fix=f"Send {name} as a string.",
                               details={"field": name})
        value = (value or "").strip()
        if len(value) > most:
            raise InvalidInput(f"{name} is longer than {most} characters.", fix=f"Shorten {name}.")
        texts[name] = value
    address = texts.pop("address_string")
    lon = lat = None
    if form.get("lat") not in (None, "") or form.get("long") not in (None, ""):
        lon, lat = parse_point(form.get("long"), form.get("lat"))
    elif not address:
        raise InvalidInput("The request has no location.", fix="Send lat and long, or address_string.")
    name = " ".join(p for p in (texts.pop("last_name"), texts.pop("first_name")) if p)  # 姓 then 名
    return {"category": code, "lon": lon, "lat": lat, "description": texts["description"], "address": address,
            "reporter_name": name[:64], "reporter_phone": texts["phone"], "reporter_email": texts["email"]}
