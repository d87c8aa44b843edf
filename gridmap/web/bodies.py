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
from ..errors import InvalidInput, N_
from ..geo.addresses import MAX_QUERY_CHARS
from . import border
from .params import COORDINATE_SYSTEMS, MAX_ID, parse_day, parse_point, parse_time

# Limits of what the planner's map may send in one edit.
MAX_VERTICES = 5000
MAX_BUILDINGS = 1000
_GRID_CODE = re.compile(r"\d{15}")

# --- the bodies' schemas: one source for the checks below and for the OpenAPI document ----------

_ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
#: A day as the border takes it (:func:`gridmap.web.params.parse_day`): YYYY-MM-DD from 1970 to 2099.
DAY = {"type": "string", "format": "date", "pattern": r"^(19[7-9][0-9]|20[0-9]{2})-[0-9]{2}-[0-9]{2}$",
       "examples": ["2026-05-03"], "description": "YYYY-MM-DD, from 1970-01-01 to 2099-12-31."}
_DEGREES = {"type": ["number", "string"], "x-fix": "Write decimal degrees, e.g. 121.6147."}

#: Every JSON body of /api/v1 as JSON Schema. :func:`conform` checks a body against its schema
#: (object, known fields, required fields, types, lengths, ranges, enums) before a parser reads
#: its meaning; :mod:`gridmap.web.openapi` publishes the same dicts. ``x-what`` names the body in
#: errors, ``x-example`` is the fix for a body that is not an object, ``x-fix`` a field's fix.
SCHEMAS = {
    "ReportBody": {
        "type": "object", "required": ["category", "lon", "lat"], "additionalProperties": False,
        "x-what": "report", "x-example": '{"category": "noise", "lon": 121.61, "lat": 38.91, "description": "…"}',
        "properties": {"category": {"type": "string", "maxLength": 64, "description": "A code, or its Chinese name.",
                                    "examples": sorted(catalog.CATEGORIES),
                                    "x-fix": f"Send one of {sorted(catalog.CATEGORIES)}."},
                       "lon": _DEGREES, "lat": _DEGREES,
                       "crs": {"type": "string", "enum": list(COORDINATE_SYSTEMS)},
                       "description": {"type": "string", "maxLength": 4000},
                       "reporter_name": {"type": "string", "maxLength": 64},
                       "reporter_phone": {"type": "string", "maxLength": 32},
                       "reporter_email": {"type": "string", "maxLength": 128},
                       "address": {"type": "string", "maxLength": 256}}},
    "TransitionBody": {
        "type": "object", "required": ["action", "version"], "additionalProperties": False,
        "x-what": "transition", "x-example": '{"action": "accept", "version": 1, "note": "…"}',
        "properties": {"action": {"type": "string", "enum": list(ACTIONS)},
                       "version": {**_ID, "x-fix": "Send the version you loaded from GET /api/v1/incidents/<id>."},
                       "note": {"type": "string", "maxLength": 2000},
                       "duplicate_of": {**_ID, "description": "Only with action link_duplicate.",
                                        "x-fix": "Send the id of the earlier report."}}},
    "WhistleBody": {
        "type": "object", "additionalProperties": False,
        "x-what": "whistle", "x-example": '{"department": "城管", "note": "…"}',
        "properties": {"department": {"type": "string", "maxLength": 64},
                       "note": {"type": "string", "maxLength": 2000}}},
    "ServiceBody": {
        "type": "object", "required": ["day", "skill", "hours"], "additionalProperties": False,
        "x-what": "ledger line", "x-example": '{"day": "2026-05-03", "skill": "理发", "hours": 1.5, "resident_id": 12}',
        "properties": {"day": DAY,
                       "skill": {"type": "string", "maxLength": 32, "examples": list(catalog.VOLUNTEER_SKILLS),
                                 "x-fix": f"Name the service, e.g. one of {list(catalog.VOLUNTEER_SKILLS)}."},
                       "hours": {"type": "number", "exclusiveMinimum": 0, "maximum": 24, "x-fix": "Send e.g. hours=1.5."},
                       "resident_id": {**_ID, "x-fix": "Send the id of the one served."},
                       "household_id": {**_ID, "x-fix": "Send the id of the one served."},
                       "incident_id": {**_ID, "x-fix": "Send the id of the one served."},
                       "note": {"type": "string", "maxLength": 2000}}},
    "SosBody": {
        "type": "object", "required": ["device_id", "lon", "lat", "time"], "additionalProperties": False,
        "x-what": "SOS",
        "x-example": '{"device_id": "W-0001", "lon": 121.61, "lat": 38.91, "time": "2026-05-03T08:15:00+08:00"}',
        "properties": {"device_id": {"type": "string", "minLength": 1, "maxLength": 64,
                                     "x-fix": "Send the id the wearable was registered with."},
                       "lon": _DEGREES, "lat": _DEGREES,
                       "time": {"type": ["string", "number"],
                                "description": "ISO 8601 with a time zone, or Unix seconds (not milliseconds).",
                                "x-fix": "Send e.g. 2026-05-03T08:15:00+08:00, or Unix seconds."}}},
    "RecordPatchBody": {
        "type": "object", "required": ["version", "values"], "additionalProperties": False,
        "x-what": "record correction",
        "x-example": '{"version": N, "values": {"phone": "13812341234"}}',
        "properties": {"version": {**_ID, "x-fix": "Send the record's version as you read it."},
                       "values": {"type": "object", "description": "field → new value (text, number or boolean)",
                                  "x-fix": 'Send e.g. {"name": "王芳"}.'}}},
    "RecordRetireBody": {
        "type": "object", "required": ["version"], "additionalProperties": False,
        "x-what": "record retirement", "x-example": '{"version": N}',
        "properties": {"version": {**_ID, "x-fix": "Send the record's version as you read it."}}},
    "PublishBody": {
        "type": "object", "required": ["version"], "additionalProperties": False,
        "x-what": "publish request",
        "x-example": '{"version": N} (N the version you loaded from GET /api/v1/plans/<id>)',
        "properties": {"version": {**_ID, "x-fix": "Send the version you loaded, from GET /api/v1/plans/<id>."},
                       "valid_from": DAY,
                       "replaces": {**_ID, "type": ["integer", "null"],
                                    "description": "The community's published plan as loaded (null: none). A 409 "
                                                   "names the plan published since, if another one is.",
                                    "x-fix": "Send the id of the community's published plan as you loaded it, "
                                             "or null if none was published."},
                       "accepted_warnings": {
                           "type": "array", "maxItems": 5000,
                           "items": {"type": "string", "maxLength": 400},
                           "description": "The keys of the validation warnings the planner accepted (each "
                                          "finding's `key` from GET /api/v1/plans/<id>/publish-preview); a warning "
                                          "not listed refuses the publish with a 409 listing it.",
                           "x-fix": "Send the keys of the warnings you accepted, e.g. [\"no_worker:210213013004008\"]."}}},
}



def text_schema(schema):
    """``schema`` with the border's character rule as its pattern when it takes free text (no enum, pattern, format)."""
    types = schema.get("type") if isinstance(schema.get("type"), list) else [schema.get("type")]
    if "string" in types and not {"enum", "pattern", "format"} & set(schema):
        return {**schema, "pattern": border.TEXT_PATTERN}
    return schema


for _schema in SCHEMAS.values():
    _schema["properties"] = {k: text_schema(v) for k, v in _schema["properties"].items()}

_JSON_TYPES = {"object": (dict,), "array": (list,), "string": (str,), "integer": (int,), "number": (int, float),
               "boolean": (bool,), "null": (type(None),)}
_TYPE_WORDS = {"object": "an object", "array": "a list", "string": "text", "integer": "a whole number",
               "number": "a number", "boolean": "true or false", "null": "null"}
# One whole sentence per expected type (a phrase spliced into a sentence cannot be translated well).
_NOT_A = {
    frozenset({"object"}): N_("%(field)s=%(value)s is not an object."),
    frozenset({"array"}): N_("%(field)s=%(value)s is not a list."),
    frozenset({"string"}): N_("%(field)s=%(value)s is not text."),
    frozenset({"integer"}): N_("%(field)s=%(value)s is not a whole number."),
    frozenset({"number"}): N_("%(field)s=%(value)s is not a number."),
    frozenset({"boolean"}): N_("%(field)s=%(value)s is not true or false."),
    frozenset({"integer", "null"}): N_("%(field)s=%(value)s is not a whole number or null."),
    frozenset({"number", "string"}): N_("%(field)s=%(value)s is not a number or text."),
}


def conform(body, name, schemas=None):
    """Check ``body`` against ``SCHEMAS[name]`` (or ``schemas[name]``: the workbench keeps its own); return it,
    or raise InvalidInput naming the first bad field.

    A null field counts as absent: clients that send every key of a form send nulls."""
    schema = (schemas or SCHEMAS)[name]
    if not isinstance(body, dict):
        raise InvalidInput(N_("The request body is not a JSON object."),
                           fix=N_("Send %(example)s with Content-Type: application/json."),
                           params={"example": schema["x-example"]})
    props = schema["properties"]
    unknown = sorted(set(body) - set(props))
    if unknown:
        raise InvalidInput(N_("Unknown field(s) %(fields)s in the %(what)s."), fix=N_("Send only %(known)s."),
                           params={"fields": ", ".join(unknown), "what": schema["x-what"],
                                   "known": ", ".join(sorted(props))},
                           details={"unknown": unknown})
    for field in schema.get("required", ()):
        if body.get(field) is None:
            raise InvalidInput(N_("%(field)s is missing."), fix=props[field].get("x-fix", N_("Send %(field)s.")),
                               params={"field": field}, details={"field": field})
    for field, value in body.items():
        if value is not None:
            _conform_field(field, value, props[field])
    return body


def _conform_field(field, value, spec):
    types = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
    fix = spec.get("x-fix")
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "…"
    # bool is an int to Python, never to JSON
    if not any(isinstance(value, _JSON_TYPES[t]) and not (isinstance(value, bool) and t != "boolean") for t in types):
        words = " or ".join(_TYPE_WORDS[t] for t in types)
        template = _NOT_A.get(frozenset(types), N_("%(field)s=%(value)s is not %(expected)s."))
        raise InvalidInput(template, fix=fix or N_("Send %(field)s in the type the API documents."),
                           params={"field": field, "value": shown, "expected": words}, details={"field": field})
    if isinstance(value, list):
        if len(value) > spec.get("maxItems", len(value)):
            raise InvalidInput(N_("%(field)s holds %(n)s items, more than %(most)s."), fix=N_("Send at most %(most)s."),
                               params={"field": field, "n": len(value), "most": spec["maxItems"]},
                               details={"field": field, "most": spec["maxItems"]})
        for i, item in enumerate(value if "items" in spec else ()):  # a list without item schema: its parser checks
            _conform_field(f"{field}[{i}]", item, spec["items"])
    if isinstance(value, str):
        if len(value) > spec.get("maxLength", len(value)):
            raise InvalidInput(N_("%(field)s is longer than %(most)s characters."), fix=N_("Shorten %(field)s."),
                               params={"field": field, "most": spec["maxLength"]},
                               details={"field": field, "most": spec["maxLength"]})
        if len(value.strip()) < spec.get("minLength", 0):
            raise InvalidInput(N_("%(field)s=%(value)s is empty."), fix=fix or N_("Send %(field)s."),
                               params={"field": field, "value": shown}, details={"field": field})
        if "enum" in spec and value not in spec["enum"]:
            raise InvalidInput(N_("%(field)s=%(value)s is not one of %(allowed)s."), fix=N_("Use one of %(allowed)s."),
                               params={"field": field, "value": shown, "allowed": ", ".join(map(str, spec["enum"]))},
                               details={"field": field, "allowed": spec["enum"]})
    elif isinstance(value, (int, float)):
        low, high = spec.get("minimum"), spec.get("maximum")
        above = spec.get("exclusiveMinimum")
        if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high) \
                or (above is not None and value <= above):
            if above is not None:
                template = N_("%(field)s=%(value)s is not above %(low)s.")
            elif high is not None:
                template = N_("%(field)s=%(value)s is not between %(low)s and %(high)s.")
            else:
                template = N_("%(field)s=%(value)s is not at least %(low)s.")
            raise InvalidInput(template, fix=fix or N_("Send a value in that range."),
                               params={"field": field, "value": shown, "low": above if above is not None else low,
                                       "high": high}, details={"field": field})


# --- incidents ---------------------------------------------------------------------------------

def parse_report(body):
    """Validate a report's JSON body; returns keyword arguments for :func:`gridmap.dispatch.report`.

    Raises InvalidInput naming the first bad field (unknown, missing, wrong type, too long).
    """
    body = conform(body, "ReportBody")
    cat = catalog.category(body["category"])
    lon, lat = parse_point(_number_text(body, "lon"), _number_text(body, "lat"), body.get("crs"))
    return {"category": cat.code, "lon": lon, "lat": lat, **_texts(body, _TEXT_FIELDS["ReportBody"])}


def parse_transition(body):
    """Validate ``{"action", "version", "note"?, "duplicate_of"?}``; returns keyword arguments for :func:`gridmap.dispatch.transition`."""
    body = conform(body, "TransitionBody")
    out = {"action": body["action"], "version": body["version"], "note": _texts(body, ("note",))["note"]}
    if body["action"] == "link_duplicate":
        if body.get("duplicate_of") is None:
            raise InvalidInput(N_("duplicate_of is missing."), fix=N_("Send the id of the earlier report."),
                               details={"field": "duplicate_of"})
        out["duplicate_of"] = body["duplicate_of"]
    elif body.get("duplicate_of") is not None:
        raise InvalidInput(N_("duplicate_of only goes with action link_duplicate."), fix=N_("Leave it out."))
    return out


def parse_whistle(body):
    """Validate ``{"department"?, "note"?}`` (an empty body blows the whistle to the catalogue's department)."""
    return _texts(conform(body or {}, "WhistleBody"), ("department", "note"))


def parse_service(body):
    """Validate a ledger line ``{day, skill, hours, resident_id|household_id|incident_id, note?}``."""
    body = conform(body, "ServiceBody")
    day = parse_day(body["day"], name="day")
    if not body["skill"].strip():
        raise InvalidInput(N_("skill=%(skill)s is not a skill name of at most 32 characters."),
                           fix=N_("Name the service, e.g. one of %(VOLUNTEER_SKILLS)s."),
                           params={"skill": repr(body['skill']),
                                   "VOLUNTEER_SKILLS": ", ".join(map(str, list(catalog.VOLUNTEER_SKILLS)))})
    refs = {name: body[name] for name in ("resident_id", "household_id", "incident_id") if body.get(name) is not None}
    if not refs:
        raise InvalidInput(N_("The ledger line names nobody served."),
                           fix=N_("Send resident_id, household_id or incident_id."))
    return {"day": day, "skill": body["skill"].strip(), "hours": float(body["hours"]), **refs,
            **_texts(body, ("note",))}


def parse_sos(body):
    """Validate ``{device_id, lon, lat, time}``; ``time`` is ISO 8601 with a zone, or Unix seconds."""
    body = conform(body, "SosBody")
    lon, lat = parse_point(_number_text(body, "lon"), _number_text(body, "lat"))
    return {"device_id": body["device_id"].strip(), "lon": lon, "lat": lat,
            "time": parse_time(body["time"], name="time")}


_TEXT_FIELDS = {"ReportBody": ("description", "reporter_name", "reporter_phone", "reporter_email", "address")}


def _number_text(body, name):
    value = body.get(name)
    return None if value is None else str(value)


def _texts(body, names):
    """The text fields ``names`` of a conformed body, stripped; absent or null ones as ""."""
    return {name: (body.get(name) or "").strip() for name in names}


# --- plans ------------------------------------------------------------------------------------

def parse_publish_body(body):
    """Validate a publish request's JSON: ``{"version": N, "valid_from": "YYYY-MM-DD"?, "replaces": ID or null?}``.

    ``replaces`` is the community's published plan as the client saw it (null: none was): the
    publish is refused if another one is published by then. Returns ``{"expected_version": int,
    "on": date or None}`` and, when ``replaces`` was sent, ``"replaces": [ID]`` or ``[]``.
    """
    body = conform(body, "PublishBody")
    valid_from = body.get("valid_from")
    out = {"expected_version": body["version"],
           "on": None if valid_from is None else parse_day(valid_from, name="valid_from")}
    if "replaces" in body:  # null is an answer here (none was published), not an absent field
        out["replaces"] = [] if body["replaces"] is None else [body["replaces"]]
    out["accepted_warnings"] = list(body.get("accepted_warnings") or [])
    return out


def parse_record_patch(body):
    """Check a record correction ``{"version": N, "values": {field: value}}``; returns ``(version, values)``."""
    body = conform(body, "RecordPatchBody")
    values = body["values"]
    for name, value in values.items():
        if not isinstance(name, str) or len(name) > 64 or not isinstance(value, (str, int, float, bool)) \
                or (isinstance(value, str) and len(value) > 256):
            raise InvalidInput(N_("values.%(value)s must be text (at most 256 characters), a number or a boolean."),
                               fix=N_("Send one value per field to correct."), details={"field": str(name)[:64]},
                               params={"value": str(name)[:64]})
    return body["version"], values


def parse_edit(kind, body):
    """Check an edit request's JSON body; returns the keyword arguments of the edit function.

    ``kind`` is one of :data:`EDITS`. Raises InvalidInput naming the bad field and value.
    """
    if kind not in EDITS:
        raise InvalidInput(N_("Edit %(kind)s is not known."), fix=N_("Use one of %(EDITS)s."),
                           params={"kind": repr(kind), "EDITS": ", ".join(map(str, sorted(EDITS)))})
    if not isinstance(body, dict):
        raise InvalidInput(N_("The request body is not a JSON object."),
                           fix=N_("Send a JSON object with Content-Type: application/json."))
    fields = EDITS[kind]
    unknown = sorted(set(body) - set(fields) - {"version"})
    if unknown:
        raise InvalidInput(N_("Unknown field(s) %(unknown)s in the %(kind)s request."),
                           fix=N_("Send only version and %(value)s."), details={"unknown": unknown},
                           params={"unknown": unknown, "kind": kind, "value": ', '.join(fields)})
    out = {"version": _version(body.get("version"))}
    for name, parse in fields.items():
        out[name] = parse(body.get(name), name)
    return out


def _version(v):
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_ID:
        raise InvalidInput(N_("version=%(v)s is not a positive whole number."),
                           fix=N_("Send the plan version you loaded."), details={"version": v},
                           params={"v": repr(v)})
    return v


def _code(v, name):
    if not (isinstance(v, str) and _GRID_CODE.fullmatch(v)):
        raise InvalidInput(N_("%(name)s=%(v)s is not a 15-digit grid code."), fix=N_("Select a grid on the map."),
                           details={name: v},
                           params={"name": name, "v": repr(v)})
    return v


def _codes_pair(v, name):
    if not (isinstance(v, list) and len(v) == 2):
        raise InvalidInput(N_("%(name)s=%(v)s is not a list of two grid codes."), fix=N_("Select two grids."),
                           details={name: v},
                           params={"name": name, "v": repr(v)})
    return [_code(c, name) for c in v]


def _geometry(kinds):
    def parse(v, name):
        if not isinstance(v, dict) or v.get("type") not in kinds:
            got = v.get("type") if isinstance(v, dict) else type(v).__name__
            raise InvalidInput(N_("%(name)s is a %(got)s, not a GeoJSON %(value)s."),
                               fix=N_("Draw a %(value2)s on the map."), details={name: got},
                               params={"name": name, "got": repr(got), "value": ' or '.join(kinds),
                                       "value2": ' or '.join(kinds).lower()})
        coords = v.get("coordinates")
        flat = _flatten(coords, depth=2 if v["type"] == "Polygon" else 1, name=name)
        if len(flat) > MAX_VERTICES:
            raise InvalidInput(N_("%(name)s has %(flat)s vertices, more than %(MAX_VERTICES)s."),
                               fix=N_("Draw a simpler shape."), details={name: len(flat)},
                               params={"name": name, "flat": len(flat), "MAX_VERTICES": MAX_VERTICES})
        for x, y in flat:
            if not (-180 <= x <= 180 and -90 <= y <= 90):
                raise InvalidInput(N_("%(name)s has the point (%(x)s, %(y)s), which is not WGS84 lon/lat."),
                                   fix=N_("Send longitude, latitude in degrees."), details={name: [x, y]},
                                   params={"name": name, "x": x, "y": y})
        try:
            geom = shapely.geometry.shape(v)
        except (ValueError, TypeError, AttributeError) as err:
            raise InvalidInput(N_("%(name)s is not a valid %(type)s: %(err)s."), fix=N_("Draw the shape again."),
                               details={name: v["type"]},
                               params={"name": name, "type": v['type'], "err": err}) from None
        if geom.is_empty or (v["type"] == "Polygon" and geom.area == 0) or (v["type"] == "LineString"
                                                                            and geom.length == 0):
            raise InvalidInput(N_("%(name)s is an empty %(type)s."), fix=N_("Draw the shape again."),
                               details={name: v["type"]},
                               params={"name": name, "type": v['type']})
        return geom
    return parse


def _flatten(coords, depth, name):
    """Positions of a GeoJSON coordinates array ``depth`` levels deep, each checked to be two finite numbers."""
    level = [coords]
    for _ in range(depth):
        nxt = []
        for item in level:
            if not isinstance(item, list) or not item:
                raise InvalidInput(N_("%(name)s has malformed coordinates."), fix=N_("Send GeoJSON coordinates."),
                                   details={name: "coordinates"},
                                   params={"name": name})
            nxt += item
        level = nxt
    out = []
    for p in level:
        if not (isinstance(p, list) and len(p) in (2, 3) and all(
                isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in p)):
            raise InvalidInput(N_("%(name)s has the position %(p)s, not [lon, lat]."),
                               fix=N_("Send GeoJSON coordinates."),
                               details={name: repr(p)[:80]},
                               params={"name": name, "p": repr(p)})
        out.append((float(p[0]), float(p[1])))
    return out


def _building_ids(v, name):
    if not isinstance(v, list) or not v or len(v) > MAX_BUILDINGS or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 < i <= MAX_ID for i in v):
        raise InvalidInput(N_("%(name)s=%(value)s is not a list of 1–%(MAX_BUILDINGS)s building ids."),
                           fix=N_("Select buildings on the map."), details={name: str(v)[:80]},
                           params={"name": name, "value": str(v)[:80], "MAX_BUILDINGS": MAX_BUILDINGS})
    return v


def _grid_mapping(v, name):
    if not isinstance(v, dict) or not v or len(v) > 999:
        raise InvalidInput(N_("%(name)s is not an object of grid code → GeoJSON Polygon or null."),
                           fix=N_("Send the undo or redo mapping the last edit returned."), details={name: str(v)[:80]},
                           params={"name": name})
    poly = _geometry(("Polygon",))
    return {_code(code, f"{name} key"): (None if g is None else poly(g, f"{name}[{code}]")) for code, g in v.items()}


def _names(v, name):
    if v is None:
        return {}
    if not isinstance(v, dict) or not all(isinstance(k, str) and isinstance(n, str) and 0 < len(n) <= 128
                                          for k, n in v.items()):
        raise InvalidInput(N_("%(name)s is not an object of grid code → name (1–128 characters)."),
                           fix=N_("Send the names the last edit returned."), details={name: str(v)[:80]},
                           params={"name": name})
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
        raise InvalidInput(N_("service_code is missing."), fix=N_("Send a service_code from services.json."))
    if code not in PUBLIC_CODES:
        raise InvalidInput(N_("service_code %(code)s is not offered."),
                           fix=N_("Send a service_code from services.json."),
                           params={"code": repr(code)})
    texts = {}
    for name, most in _POST_TEXT.items():
        value = form.get(name)
        if value is not None and not isinstance(value, str):
            raise InvalidInput(N_("%(name)s=%(value)s is not text."), fix=N_("Send %(name)s as a string."),
                               details={"field": name},
                               params={"name": name, "value": repr(str(value)[:40])})
        value = (value or "").strip()
        if len(value) > most:
            raise InvalidInput(N_("%(name)s is longer than %(most)s characters."), fix=N_("Shorten %(name)s."),
                               params={"name": name, "most": most})
        texts[name] = value
    address = texts.pop("address_string")
    lon = lat = None
    if form.get("lat") not in (None, "") or form.get("long") not in (None, ""):
        lon, lat = parse_point(form.get("long"), form.get("lat"))
    elif not address:
        raise InvalidInput(N_("The request has no location."), fix=N_("Send lat and long, or address_string."))
    name = " ".join(p for p in (texts.pop("last_name"), texts.pop("first_name")) if p)  # 姓 then 名
    return {"category": code, "lon": lon, "lat": lat, "description": texts["description"], "address": address,
            "reporter_name": name[:64], "reporter_phone": texts["phone"], "reporter_email": texts["email"]}
