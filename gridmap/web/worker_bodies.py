"""The workbench's request bodies: patrol positions, check-ins and reports from the phone, checked field by field."""
from __future__ import annotations

from .. import catalog
from ..dispatch import patrol
from ..errors import InvalidInput, N_
from .bodies import conform, parse_report, text_schema
from .params import parse_point, parse_time

_KEY = {"type": "string", "minLength": 16, "maxLength": 64,
        "x-fix": "Send the key the page made when the entry was typed (crypto.randomUUID())."}
#: The account the entry was typed under (``account`` of the workbench's config): a phone shared by two
#: workers never sends one's queued entries under the other's sign-in (web/worker.py refuses a mismatch).
_OWNER = {"type": "string", "maxLength": 64,
          "x-fix": "Send the account the page said when the entry was typed, or leave it out."}
_TIME = {"type": ["string", "number"], "description": "ISO 8601 with a time zone, or Unix seconds.",
         "x-fix": "Send e.g. 2026-05-03T08:15:00+08:00, or Unix seconds."}
_DEGREES = {"type": ["number", "string"], "x-fix": "Write decimal degrees, e.g. 121.6147."}

SCHEMAS = {
    "PointsBody": {
        "type": "object", "required": ["points"], "additionalProperties": False, "x-what": "positions",
        "x-example": '{"points": [{"lon": 121.61, "lat": 38.91, "accuracy": 12, "time": 1777767300}]}',
        "properties": {"points": {"type": "array", "x-fix": "Send a list of positions."}}},
    "PointBody": {
        "type": "object", "required": ["lon", "lat", "accuracy", "time"], "additionalProperties": False,
        "x-what": "position", "x-example": '{"lon": 121.61, "lat": 38.91, "accuracy": 12, "time": 1777767300}',
        "properties": {"lon": {"type": "number", "minimum": -180, "maximum": 180},
                       "lat": {"type": "number", "minimum": -90, "maximum": 90},
                       "accuracy": {"type": "number", "minimum": 0, "maximum": 100000,
                                    "x-fix": "Send the fix's accuracy in metres (GeolocationCoordinates.accuracy)."},
                       "time": _TIME}},
    "CheckinBody": {
        "type": "object", "required": ["key", "building_id"], "additionalProperties": False, "x-what": "check-in",
        "x-example": '{"key": "0b9e…", "building_id": 12, "note": "…", "time": 1777767300}',
        "properties": {"key": _KEY, "building_id": {"type": "integer", "minimum": 1, "maximum": 2 ** 53,
                                                    "x-fix": "Pick a building of your grids from the list."},
                       "note": {"type": "string", "maxLength": 2000}, "time": _TIME,
                       "lon": _DEGREES, "lat": _DEGREES,
                       "accuracy": {"type": "number", "minimum": 0, "maximum": 100000}, "owner": _OWNER}},
    "WorkerReportBody": {
        "type": "object", "required": ["key", "category", "lon", "lat"], "additionalProperties": False,
        "x-what": "report", "x-example": '{"key": "0b9e…", "category": "noise", "lon": 121.61, "lat": 38.91}',
        "properties": {"key": _KEY, "category": {"type": "string", "maxLength": 64,
                                                 "x-fix": f"Send one of {sorted(catalog.CATEGORIES)}."},
                       "lon": _DEGREES, "lat": _DEGREES, "description": {"type": "string", "maxLength": 4000},
                       "address": {"type": "string", "maxLength": 256}, "owner": _OWNER}},
}
for _schema in SCHEMAS.values():
    _schema["properties"] = {k: text_schema(v) for k, v in _schema["properties"].items()}


def parse_points(body):
    """``{"points": [{lon, lat, accuracy, time}…]}`` → the positions :func:`gridmap.dispatch.patrol.add_points` takes."""
    points = conform(body, "PointsBody", SCHEMAS)["points"]
    if len(points) > patrol.MAX_BATCH:
        raise InvalidInput(N_("The batch holds %(points)s positions, more than %(MAX_BATCH)s."),
                           fix=N_("Send at most %(MAX_BATCH)s positions a request."),
                           details={"field": "points", "most": patrol.MAX_BATCH},
                           params={"points": len(points), "MAX_BATCH": patrol.MAX_BATCH})
    out = []
    for i, p in enumerate(points):
        try:
            p = conform(p, "PointBody", SCHEMAS)
            out.append({"lon": float(p["lon"]), "lat": float(p["lat"]), "accuracy_m": float(p["accuracy"]),
                        "at": parse_time(p["time"], name="time")})
        except InvalidInput as err:
            raise InvalidInput(N_("points[%(i)s]: %(message)s"), fix=err.fix,
                               details={**(err.details or {}), "index": i},
                               params={"i": i, "message": err.message}) from None
    return out


def parse_checkin(body):
    """A check-in ``{key, building_id, note?, time?, lon?, lat?, accuracy?}`` → :func:`~gridmap.dispatch.patrol.check_in` arguments."""
    body = conform(body, "CheckinBody", SCHEMAS)
    out = {"key": body["key"], "building_id": body["building_id"], "note": (body.get("note") or "").strip(),
           "at": parse_time(body["time"], name="time") if body.get("time") is not None else None}
    if (body.get("lon") is None) != (body.get("lat") is None):
        raise InvalidInput(N_("Only one of lon and lat was sent."),
                           fix=N_("Send both, or neither."), details={"field": "lon"})
    if body.get("lon") is not None:
        out["lon"], out["lat"] = parse_point(str(body["lon"]), str(body["lat"]))
        out["accuracy_m"] = float(body.get("accuracy") or 0.0)
    return out


def parse_worker_report(body):
    """A report typed on the workbench ``{key, category, lon, lat, description?, address?}``."""
    body = conform(body, "WorkerReportBody", SCHEMAS)
    key = body.pop("key")
    body.pop("owner", None)  # checked by the view against the signed-in account
    return {"key": key, **parse_report(body)}
