"""The OpenAPI 3.1 document of the JSON API (/api/v1), written as data beside the code it describes.

Parameter schemas say what the parsers accept (types, enums, ranges, patterns), so the property
tests in tests/test_openapi.py can generate valid and invalid queries from them. A test checks
that every /api/v1 rule of the app's url map is documented here.
"""
from __future__ import annotations

import copy
import re

from .. import catalog
from ..dispatch import ACTIONS, PERIODS, STATUSES
from ..geo.addresses import MAX_QUERY_CHARS
from ..geo.roads import MODES
from . import bodies
from .params import COORDINATE_SYSTEMS

PREFIX = "/api/v1"


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema):
    return {"anyOf": [schema, {"type": "null"}]}


_STR = {"type": "string"}
_NUM = {"type": "number"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
_CODE12 = {"type": "string", "pattern": r"^[0-9]{12}$", "examples": ["210213013004"]}
_CODE15 = {"type": "string", "pattern": r"^[0-9]{15}$", "examples": ["210213013004001"]}
_DAY = bodies.DAY
_NAMED = {"type": "object", "properties": {"code": _STR, "name": _nullable(_STR)}, "required": ["code"]}
_BOOLTEXT = {"type": "string", "enum": ["true", "false", "1", "0"]}

SCHEMAS = {
    "Error": {
        "type": "object", "required": ["error", "message"],
        "properties": {"error": _STR, "message": _STR, "fix": _STR, "details": {"type": "object"}},
        "description": "Every error: a machine-readable code, what went wrong, and what to do about it.",
    },
    **bodies.SCHEMAS,  # the request bodies, as the border checks them
    "Place": {
        "type": "object", "required": ["lon", "lat", "grid", "community", "on_shared_edge", "workers"],
        "properties": {
            "lon": _NUM, "lat": _NUM, "grid": _nullable(_NAMED), "community": _nullable(_NAMED),
            "street": _nullable(_NAMED), "district": _nullable(_NAMED),
            "service_centre": _nullable({"type": "object"}), "on_shared_edge": _BOOL,
            "workers": {"type": "array", "items": {"type": "object", "required": ["name", "phone"],
                                                   "properties": {"name": _STR, "phone": _nullable(_STR)}}},
            "party_branch": _nullable(_STR), "edge_rule": _nullable(_STR), "note": _STR, "at": _DAY},
    },
    "Community": {"type": "object", "required": ["code", "name", "street", "district"],
                  "properties": {"code": _CODE12, "name": _STR, "street": _NAMED, "district": _NAMED}},
    "FeatureCollection": {
        "type": "object", "required": ["type", "features"],
        "properties": {"type": {"type": "string", "enum": ["FeatureCollection"]},
                       "features": {"type": "array", "items": {
                           "type": "object", "required": ["type", "geometry", "properties"],
                           "properties": {"type": {"type": "string", "enum": ["Feature"]},
                                          "geometry": {"type": "object"}, "properties": {"type": "object"}}}}}},
    "Address": {"type": "object", "required": ["id", "address", "lon", "lat"],
                "properties": {"id": _INT, "address": _STR, "name": _nullable(_STR), "lon": _NUM, "lat": _NUM}},
    "GeocodeCandidate": {"type": "object", "required": ["address", "building_id", "lon", "lat", "score"],
                         "properties": {"address": _STR, "building_id": _INT, "lon": _NUM, "lat": _NUM,
                                        "score": {"type": "number", "minimum": 0, "maximum": 100}}},
    "Nearby": {
        "type": "object", "required": ["id", "name", "kind", "lon", "lat", "distance_m"],
        "properties": {"id": {"type": ["integer", "string"]}, "name": _STR, "kind": _STR,
                       "skills": {"type": "array", "items": _STR}, "available": _nullable(_BOOL),
                       "phone": _nullable(_STR), "lon": _NUM, "lat": _NUM,
                       "distance_m": {"type": "number", "minimum": 0},
                       "road_distance_m": _nullable({"type": "number", "minimum": 0}),
                       "eta_s": _nullable({"type": "number", "minimum": 0}),
                       "reachable": _nullable(_BOOL)}},
    "Nearest": {"type": "object", "required": ["lon", "lat", "k", "by", "distance_basis", "results"],
                "properties": {"lon": _NUM, "lat": _NUM, "kind": _nullable(_STR), "skill": _nullable(_STR),
                               "k": {"type": "integer", "minimum": 1, "maximum": 50},
                               "radius_m": _nullable(_NUM), "by": {"type": "string", "enum": ["line", "road"]},
                               "mode": _nullable({"type": "string", "enum": list(MODES)}),
                               "distance_basis": {"type": "string", "enum": ["straight line", "road"]},
                               "exact": _nullable(_BOOL),
                               "results": {"type": "array", "items": _ref("Nearby")}}},
    "Incident": {
        "type": "object",
        "required": ["id", "category", "status", "level", "lon", "lat", "version", "allowed_actions", "overdue"],
        "properties": {"id": _INT, "category": {"type": "string", "enum": sorted(catalog.CATEGORIES)},
                       "category_name": _STR, "category_name_en": _STR,
                       "status": {"type": "string", "enum": list(STATUSES)},
                       "level": {"type": "string", "enum": list(catalog.LEVELS)}, "department": _nullable(_STR),
                       "vetoed": _BOOL, "priority": _BOOL, "community_code": _nullable(_STR),
                       "grid_code": _nullable(_STR), "lon": _NUM, "lat": _NUM, "address": _nullable(_STR),
                       "description": _nullable(_STR), "reporter_name": _nullable(_STR),
                       "reporter_phone": _nullable(_STR), "reporter_email": _nullable(_STR),
                       "source": _STR, "reported_at": _nullable(_STR), "updated_at": _nullable(_STR),
                       "resolved_at": _nullable(_STR), "deadline_at": _nullable(_STR), "overdue": _BOOL,
                       "duplicate_of": _nullable(_INT), "version": {"type": "integer", "minimum": 1},
                       "allowed_actions": {"type": "array", "items": {"type": "string", "enum": list(ACTIONS)}},
                       "may_whistle": {**_BOOL, "description": "whether the caller may blow the whistle on it "
                                                               "now (open, with the grid or community)"}}},
    "Event": {"type": "object", "required": ["at", "actor", "action", "to_status"],
              "properties": {"at": _STR, "actor": _STR, "role": _STR, "action": _STR,
                             "from_status": _nullable(_STR), "to_status": _STR,
                             "from_level": _nullable(_STR), "to_level": _nullable(_STR), "note": _STR}},
    "Whistle": {"type": "object", "required": ["id", "department", "report_by", "overdue"],
                "properties": {"id": _INT, "department": _STR, "blown_by": _STR, "blown_at": _STR,
                               "report_by": _STR, "reported_at": _nullable(_STR), "note": _nullable(_STR),
                               "overdue": _BOOL}},
    "IncidentDetail": {"allOf": [_ref("Incident"), {
        "type": "object", "required": ["history", "whistles", "photos"],
        "properties": {"history": {"type": "array", "items": _ref("Event")},
                       "whistles": {"type": "array", "items": _ref("Whistle")},
                       "photos": {"type": "array", "items": _INT,
                                  "description": "Ids of the incident's photos (a resident's report), each served at "
                                                 "/photos/<id> to those who may read the incident."}}}]},
    "Proposal": {"type": "object", "required": ["grid_workers", "responders", "volunteers"],
                 "properties": {"grid_workers": {"type": "array", "items": {"type": "object"}},
                                "responders": {"type": "object", "additionalProperties": {
                                    "type": "array", "items": _ref("Nearby")}},
                                "volunteers": {"type": "array", "items": _ref("Nearby")},
                                "mode": {"type": "string", "enum": list(MODES)},
                                "distance_basis": {"type": "string", "enum": ["straight line", "road"],
                                                   "description": "what responders and volunteers are ranked "
                                                                  "and capped by"},
                                "exact": _nullable(_BOOL)}},
    "Submitted": {"type": "object", "required": ["incident", "possible_duplicates", "proposal"],
                  "properties": {"incident": _ref("Incident"),
                                 "possible_duplicates": {"type": "array", "items": _ref("Incident")},
                                 "proposal": _ref("Proposal")}},
    "Ledger": {"type": "object", "required": ["volunteer", "total_hours", "hours_by_skill", "services"],
               "properties": {"volunteer": {"type": "object"}, "total_hours": _NUM,
                              "hours_by_skill": {"type": "object", "additionalProperties": _NUM},
                              "services": {"type": "array", "items": {"type": "object"}}}},
    "Group": {"type": "object", "required": ["total", "resolved", "open", "overdue", "resolution_rate"],
              "properties": {"total": {"type": "integer", "minimum": 0}, "resolved": {"type": "integer", "minimum": 0},
                             "open": {"type": "integer", "minimum": 0}, "overdue": {"type": "integer", "minimum": 0},
                             "resolution_rate": _nullable({"type": "number", "minimum": 0, "maximum": 1})}},
    "Stats": {
        "type": "object",
        "required": ["filters", "total", "resolved", "open", "duplicates", "resolution_rate", "hours_to_resolve",
                     "open_by_level", "overdue", "by_community", "by_grid", "by_period", "heatmap"],
        "properties": {
            "filters": {"type": "object"}, "total": {"type": "integer", "minimum": 0},
            "resolved": {"type": "integer", "minimum": 0}, "open": {"type": "integer", "minimum": 0},
            "duplicates": {"type": "integer", "minimum": 0},
            "resolution_rate": _nullable({"type": "number", "minimum": 0, "maximum": 1}),
            "hours_to_resolve": {"type": "object", "required": ["median", "p90", "count"],
                                 "properties": {"median": _nullable(_NUM), "p90": _nullable(_NUM), "count": _INT}},
            "open_by_level": {"type": "object", "required": list(catalog.LEVELS),
                              "additionalProperties": {"type": "integer", "minimum": 0}},
            "overdue": {"type": "integer", "minimum": 0},
            "by_community": {"type": "array", "items": _ref("Group")},
            "by_grid": {"type": "array", "items": _ref("Group")},
            "by_period": {"type": "array", "items": _ref("Group")},
            "heatmap": {"type": "array", "description": "[lat, lon, weight] per incident, as Leaflet.heat takes them.",
                        "items": {"type": "array", "items": _NUM, "minItems": 3, "maxItems": 3}}}},
    "Kpis": {
        "type": "object", "description": "An area's (or a group's) figures over the incidents reported in the window.",
        "required": ["reported", "closed", "closure_rate", "on_time", "on_time_rate", "open", "overdue", "escalated",
                     "whistled", "duplicates"],
        "properties": {**{k: {"type": "integer", "minimum": 0} for k in (
            "reported", "closed", "on_time", "open", "overdue", "escalated", "whistled", "duplicates")},
            "closure_rate": _nullable({"type": "number", "minimum": 0, "maximum": 1}),
            "on_time_rate": _nullable({"type": "number", "minimum": 0, "maximum": 1})}},
    "Dashboard": {
        "type": "object", "required": ["area", "window", "kpis", "children", "categories", "trend", "workers"],
        "properties": {
            "area": {"type": "object", "required": ["level", "code", "breadcrumbs", "child_level", "partial"]},
            "window": {"type": "object", "required": ["from", "to", "period", "now"]},
            "kpis": _ref("Kpis"),
            "children": {"type": "array", "items": {"allOf": [_ref("Kpis"), {"type": "object",
                                                                             "required": ["code", "name"]}]}},
            "categories": {"type": "array", "items": {"allOf": [_ref("Kpis"), {"type": "object",
                                                                               "required": ["category"]}]}},
            "trend": {"type": "array", "items": {"allOf": [_ref("Kpis"), {"type": "object",
                                                                          "required": ["period"]}]}},
            "workers": {"type": "object", "required": ["rows", "total"]}}},
}


def _q(name, schema, description, required=False):
    return {"name": name, "in": "query", "required": required, "schema": bodies.text_schema(schema),
            "description": description}


def _path(name, schema, description):
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


_LON = _q("lon", {"type": "number", "minimum": -180, "maximum": 180}, "Longitude in decimal degrees.", True)
_LAT = _q("lat", {"type": "number", "minimum": -90, "maximum": 90}, "Latitude in decimal degrees.", True)
_CRS = _q("crs", {"type": "string", "enum": list(COORDINATE_SYSTEMS), "default": "wgs84"},
          "Coordinate system of lon/lat; GCJ-02 and BD-09 are converted to WGS84 at the border.")
_COMMUNITY = _q("community", _CODE12, "A 12-digit community code from /communities.")
_GRID = _q("grid", _CODE15, "A 15-digit grid code.")
_INCIDENT_ID = _path("incident_id", {"type": "integer", "minimum": 1}, "Incident id.")
_MODE = _q("mode", {"type": "string", "enum": list(MODES), "default": "car"},
           "Travel mode of road distances: the roads it may use, one-way streets, speeds.")
_PLAN_ID = _path("plan_id", {"type": "integer", "minimum": 1}, "Plan id.")


def _limit(default, most):
    return _q("limit", {"type": "integer", "minimum": 1, "maximum": most, "default": default}, "How many at most.")


def _ok(schema, description="OK", status="200"):
    return {status: {"description": description, "content": {"application/json": {"schema": schema}}}}


def _body(name):
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


def _errors(*statuses):
    words = {"400": "Invalid input: the message names the parameter and the fix.", "401": "Not logged in.",
             "403": "The role may not do this.", "404": "Not found.",
             "409": "Conflict: a stale version (details.current_version) or an action the status forbids.",
             "429": "Too many requests from this address, account or device (details.limit, details.per, "
                    "details.retry_after; the Retry-After header says the same): nothing was written."}
    return {s: {"description": words[s], "content": {"application/json": {"schema": _ref("Error")}}}
            for s in statuses}


def _op(summary, *, params=(), ok=None, body=None, errors=("400",), tags=(), security=None, status="200"):
    if "403" in errors and "401" not in errors:  # whatever refuses a role refuses the public first
        errors = tuple(sorted({*errors, "401"}))
    op = {"summary": summary, "parameters": list(params), "tags": list(tags),
          "responses": {**(ok or _ok({"type": "object"}, status=status)), **_errors(*errors)}}
    if body:
        op["requestBody"] = _body(body)
    if security is not None:
        op["security"] = security
    return op


_SESSION = [{"session": []}]
_KINDS = sorted(catalog.RESPONDER_KINDS) + ["volunteer"]
_RECORD = [_path("kind", {"type": "string", "enum": ["buildings", "cameras", "party-members", "responders", "roads",
                                                     "volunteers", "workers"]}, "The kind of record."),
           _path("record_id", {"type": "integer", "minimum": 1}, "Record id.")]

PATHS = {
    "/locate": {"get": _op(
        "Locate a point: community, grid, workers (phones masked by role), party branch.",
        params=[_LON, _LAT, _CRS, _q("at", _DAY, "A past day: locate against the plan valid then.")],
        ok=_ok(_ref("Place")), errors=("400", "404"), tags=["locate"])},
    "/grids": {"get": _op("Published grids as GeoJSON, optionally of one community.", params=[_COMMUNITY],
                          ok=_ok(_ref("FeatureCollection")), errors=("400", "404"), tags=["locate"])},
    "/communities": {"get": _op("All communities with street and district.",
                                ok=_ok({"type": "array", "items": _ref("Community")}), errors=(), tags=["locate"])},
    "/addresses": {"get": _op(
        "Type-ahead over building addresses: the fuzzy search of /geocode, best first.",
        params=[_q("q", {"type": "string", "maxLength": MAX_QUERY_CHARS}, "Part of an address."), _limit(10, 50)],
        ok=_ok({"type": "array", "items": _ref("Address")}), tags=["locate"])},
    "/geocode": {"get": _op(
        "Ranked buildings for a loosely typed Chinese address (offline, fuzzy).",
        params=[_q("q", {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS}, "The address as typed.", True),
                _COMMUNITY, _limit(10, 50)],
        ok=_ok({"type": "array", "items": _ref("GeocodeCandidate")}), tags=["locate"])},
    "/nearest": {"get": _op(
        "The k nearest responders or volunteers in metres; by=road ranks them by road distance for the mode "
        "(exactly: exact says so), adds road_distance_m, eta_s and reachable, and lists the unreachable last.",
        params=[_LON, _LAT, _CRS, _q("kind", {"type": "string", "enum": _KINDS}, "Responder kind, or volunteer."),
                _q("skill", {"type": "string", "maxLength": 32}, "Keep those with this skill."),
                _q("k", {"type": "integer", "minimum": 1, "maximum": 50, "default": 5}, "How many."),
                _q("radius", {"type": "number", "minimum": 1, "maximum": 50000}, "Only within this many metres."),
                _q("available", _BOOLTEXT, "Only available (true) or unavailable (false)."),
                _q("by", {"type": "string", "enum": ["line", "road"], "default": "line"}, "Distance basis."),
                _MODE],
        ok=_ok(_ref("Nearest")), errors=("400", "404"), tags=["dispatch"])},
    "/grids/{code}/members": {"get": _op(
        "Residents, party members and contact links of one grid, for the roles that need them.",
        params=[_path("code", _CODE15, "Grid code.")], errors=("400", "403", "404"), tags=["locate"])},
    "/csrf": {"get": _op("A CSRF token for this session: send it as the X-CSRFToken header on POSTs.",
                         ok=_ok({"type": "object", "required": ["csrf_token"], "properties": {"csrf_token": _STR}}),
                         errors=(), tags=["session"])},
    "/plans": {"get": _op("Plans of every status, newest first.", params=[_COMMUNITY],
                          ok=_ok({"type": "array", "items": {"type": "object"}}), tags=["plans"])},
    "/plans/{plan_id}": {"get": _op("One plan with its grids as GeoJSON.", params=[_PLAN_ID],
                                    errors=("400", "404"), tags=["plans"])},
    "/plans/{plan_id}/validation": {"get": _op(
        "Validation findings of a plan, errors first.", params=[_PLAN_ID],
        ok=_ok({"type": "array", "items": {"type": "object"}}), errors=("400", "404"), tags=["plans"])},
    "/plans/{plan_id}/publish-preview": {"get": _op(
        "What publishing a draft will do: errors (blocking), warnings to accept by key, the earliest effective "
        "date, and the buildings and households changing grid with each side's grid workers.", params=[_PLAN_ID],
        ok=_ok({"type": "object"}), errors=("400", "403", "404"), tags=["plans"], security=_SESSION)},
    "/plans/{plan_id}/publish": {"post": _op(
        "Publish a draft (planner or admin). Every validation warning must be accepted by its key "
        "(`accepted_warnings`); one that is not refuses the publish with 409 `warnings_not_accepted`.",
        params=[_PLAN_ID], errors=("400", "403", "404", "409"),
        body="PublishBody", tags=["plans"], security=_SESSION)},
    "/records/{kind}/{record_id}": {
        "patch": _op("Correct fields of one imported record (admin); 409 with the current version if stale.",
                     params=_RECORD, body="RecordPatchBody", errors=("400", "403", "404", "409"),
                     tags=["records"], security=_SESSION),
        "delete": _op("Retire one imported record (admin); undone with its batch (gridmap import undo).",
                      params=_RECORD, body="RecordRetireBody", errors=("400", "403", "404", "409"),
                      tags=["records"], security=_SESSION)},
    "/plans/{plan_id}/copy": {"post": _op("Copy a plan into a new draft (planner or admin).", params=[_PLAN_ID],
                                          ok=_ok({"type": "object"}, status="201"),
                                          errors=("400", "403", "404"), tags=["plans"], security=_SESSION)},
    "/plans/{plan_a}/diff/{plan_b}": {"get": _op(
        "What changes grid between two plans: buildings, households, party members, workers.",
        params=[_path("plan_a", {"type": "integer", "minimum": 1}, "The older plan."),
                _path("plan_b", {"type": "integer", "minimum": 1}, "The newer plan.")],
        errors=("400", "404"), tags=["plans"])},
    "/crosswalk": {"get": _op("Department grids against unified grids: area and household shares.",
                              params=[_COMMUNITY, _q("plan", {"type": "integer", "minimum": 1}, "Plan id.")],
                              errors=("400", "404"), tags=["plans"])},
    "/incidents": {
        "post": _op("Report an incident; answers with possible duplicates and whom to send.", body="ReportBody",
                    ok=_ok(_ref("Submitted"), status="201"), errors=("400", "429"), tags=["incidents"]),
        "get": _op("Incidents matching every filter within your area (staff only), newest first.", params=[
            _q("status", {"type": "string", "enum": list(STATUSES) + ["open", "closed"]}, "A status, open or closed."),
            _q("level", {"type": "string", "enum": list(catalog.LEVELS)}, "Responsible level."),
            _COMMUNITY, _GRID,
            _q("category", {"type": "string", "enum": sorted(catalog.CATEGORIES)}, "Category code (or Chinese name)."),
            _q("overdue", _BOOLTEXT, "Only overdue (true) or not overdue (false)."), _limit(200, 1000)],
            ok=_ok({"type": "array", "items": _ref("Incident")}), errors=("400", "403"), tags=["incidents"],
            security=_SESSION)},
    "/incidents/{incident_id}": {"get": _op("One incident with its audited history and whistle tasks; 404 outside your area, as for none.",
                                            params=[_INCIDENT_ID], ok=_ok(_ref("IncidentDetail")),
                                            errors=("400", "403", "404"), tags=["incidents"], security=_SESSION)},
    "/incidents/{incident_id}/transition": {"post": _op(
        "Move an incident on with the version you loaded; 409 on a stale version or a forbidden action; "
        "404 outside your area (nothing written).",
        params=[_INCIDENT_ID], body="TransitionBody", ok=_ok(_ref("Incident")),
        errors=("400", "403", "404", "409"), tags=["incidents"], security=_SESSION)},
    "/incidents/{incident_id}/whistle": {"post": _op(
        "The community blows the whistle (吹哨): a department task with a report-by deadline.",
        params=[_INCIDENT_ID], body="WhistleBody", ok=_ok(_ref("Whistle"), status="201"),
        errors=("400", "403", "404", "409"), tags=["incidents"], security=_SESSION)},
    "/whistles/{task_id}/report": {"post": _op(
        "The department reports in (报到) on a whistle task.",
        params=[_path("task_id", {"type": "integer", "minimum": 0}, "Whistle task id.")], ok=_ok(_ref("Whistle")),
        errors=("403", "404", "409"), tags=["incidents"], security=_SESSION)},
    "/incidents/{incident_id}/duplicates": {"get": _op(
        "Reports of the same category within 50 m and 24 h, nearest first.", params=[_INCIDENT_ID],
        ok=_ok({"type": "array", "items": _ref("Incident")}), errors=("400", "403", "404"), tags=["incidents"],
        security=_SESSION)},
    "/incidents/{incident_id}/responders": {"get": _op(
        "Whom to send: grid workers, nearest responders of the category's kinds, volunteers by skill; "
        "ranked by road for the mode over the imported roads (straight line without roads).",
        params=[_INCIDENT_ID, _MODE], ok=_ok(_ref("Proposal")), errors=("400", "403", "404"), tags=["incidents"],
        security=_SESSION)},
    "/volunteers/{volunteer_id}/services": {
        "get": _op("A volunteer's service ledger (台账).",
                   params=[_path("volunteer_id", {"type": "integer", "minimum": 0}, "Volunteer id.")],
                   ok=_ok(_ref("Ledger")), errors=("403", "404"), tags=["volunteers"], security=_SESSION),
        "post": _op("Add a line to a volunteer's ledger.",
                    params=[_path("volunteer_id", {"type": "integer", "minimum": 0}, "Volunteer id.")],
                    body="ServiceBody", ok=_ok(_ref("Ledger"), status="201"), errors=("400", "403", "404"),
                    tags=["volunteers"], security=_SESSION)},
    "/sos": {"post": _op("A registered wearable's alarm → a priority incident for its resident.", body="SosBody",
                         ok=_ok({"type": "object", "required": ["incident", "proposal"],
                                 "properties": {"incident": _ref("Incident"), "proposal": _ref("Proposal")}},
                                status="201"),
                         errors=("400", "401", "403", "404", "429"), tags=["incidents"], security=[{"apiKey": []}])},
    "/stats": {"get": _op(
        "Resolution rate, hours to resolve, open by level, by grid/community/period, heatmap points.",
        params=[_q("period", {"type": "string", "enum": list(PERIODS), "default": "day"}, "Period of by_period."),
                _COMMUNITY, _GRID, _q("start", _DAY, "First day of reports (inclusive)."),
                _q("end", _DAY, "Last day of reports (inclusive).")],
        ok=_ok(_ref("Stats")), tags=["statistics"])},
    "/dashboard": {"get": _op(
        "An area's KPIs (reported, closed, closure and on-time rates, open, overdue, escalated, whistled), per child "
        "area, category, grid worker's load and period; computed in the store.",
        params=[_q("level", {"type": "string", "enum": ["city", "district", "street", "community", "grid"],
                             "default": "city"}, "The area's level."),
                _q("code", {"type": "string", "pattern": r"^[0-9]{12}([0-9]{3})?$"},
                   "The area's code: 12 digits (district, street, community) or 15 (grid); none for the city."),
                _q("from", _DAY, "First day of reports (inclusive); 29 days before `to` by default."),
                _q("to", _DAY, "Last day of reports (inclusive); today by default."),
                _q("period", {"type": "string", "enum": list(PERIODS), "default": "day"}, "Period of the trend.")],
        ok=_ok(_ref("Dashboard")), errors=("400", "403", "404"), tags=["statistics"], security=_SESSION)},
    "/openapi.json": {"get": _op("This document.", ok=_ok({"type": "object", "required": ["openapi", "paths"]}),
                                 errors=(), tags=["meta"])},
}


def document(server_url=PREFIX):
    """The OpenAPI 3.1 document as a dict (a fresh copy: callers may change it)."""
    return copy.deepcopy({
        "openapi": "3.1.0",
        "info": {"title": "gridmap JSON API", "version": "1",
                 "description": "Community grid governance: locate, address search, responders, plans, incidents. "
                                "Errors are always {error, message, fix?, details?}."},
        "servers": [{"url": server_url}],
        "paths": PATHS,
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": "session",
                        "description": "Log in at /login; POSTs also need the X-CSRFToken header from /csrf."},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}}},
    })


def openapi_path(rule):
    """A werkzeug rule under /api/v1 as an OpenAPI path: ``/whistles/<int:task_id>/report`` → ``/whistles/{task_id}/report``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule[len(PREFIX):])
