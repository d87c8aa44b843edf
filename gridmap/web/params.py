"""The web border's parsers: query-string values and parameters, checked before anything is read or written.

Each turns what a client sent into typed values or raises InvalidInput naming the bad value and
the fix; the command line uses the same parsers for the same values.
"""
from __future__ import annotations

import datetime as dt
import math
import re

from ..catalog import LEVELS, RESPONDER_KINDS, category
from ..dispatch import PERIODS, STATUSES, utcnow
from ..dispatch.georeport import MAX_WINDOW, PUBLIC_CODES
from ..errors import InvalidInput, N_, NotFound
from ..geo import crs as geo_crs
from ..geo.roads import MODES

# checked ids live beside the commands that share them; views keep calling params.plan_id & co.
from ..ids import (  # noqa: F401
    EARLIEST,
    LATEST,
    MAX_ID,
    community_code,
    optional_community,
    parse_day,
    plan_id,
)
from ..ids import ascii_digits as _ascii_digits

COORDINATE_SYSTEMS = ("wgs84", "gcj02", "bd09")
PLACE_NAME_MAX = 128  # the longest courtyard name the store holds
# Administrative division codes: 12 digits for a community, 15 for a grid (community + 3).
_DIVISION_CODE = re.compile(r"^\d{6,20}$")


def parse_point(lon, lat, crs="wgs84"):
    """Validate query-string coordinates and return WGS84 floats.

    Raises InvalidInput naming the bad value: not a number, not finite, out of range,
    lon/lat apparently swapped, or an unknown coordinate system.
    """
    if crs is not None and not isinstance(crs, str):
        raise InvalidInput(N_("crs=%(crs)s is not text."), fix=N_("Send one of %(allowed)s as a string."),
                           details={"field": "crs"},
                           params={"crs": repr(crs), "allowed": ", ".join(map(str, list(COORDINATE_SYSTEMS)))})
    crs = (crs or "wgs84").lower().replace("-", "")
    if crs not in COORDINATE_SYSTEMS:
        raise InvalidInput(N_("crs %(crs)s is not supported here."), fix=N_("Use one of %(allowed)s."),
                           params={"crs": repr(crs), "allowed": ", ".join(map(str, list(COORDINATE_SYSTEMS)))})
    values = {}
    for name, raw in (("lon", lon), ("lat", lat)):
        if raw is None or str(raw).strip() == "":
            raise InvalidInput(N_("%(name)s is missing."),
                               fix=N_("Give both lon and lat in decimal degrees, e.g. lon=121.61&lat=38.91."),
                               params={"name": name})
        try:
            values[name] = float(str(raw).strip())
        except ValueError:
            raise InvalidInput(N_("%(name)s=%(raw)s is not a number."), fix=N_("Write decimal degrees, e.g. 121.6147."),
                               params={"name": name, "raw": repr(raw)}) from None
        if not math.isfinite(values[name]):
            raise InvalidInput(N_("%(name)s=%(raw)s is not a finite number."),
                               fix=N_("Write decimal degrees, e.g. 121.6147."),
                               params={"name": name, "raw": repr(raw)})
    x, y = values["lon"], values["lat"]
    if abs(y) > 90 and abs(x) <= 90:
        raise InvalidInput(N_("lat=%(y)s is out of range and lon=%(x)s looks like a latitude: lon and lat look "
                              "swapped."),
                           fix=N_("Try lon=%(y)s&lat=%(x)s."),
                           params={"y": y, "x": x})
    if abs(x) > 180 or abs(y) > 90:
        raise InvalidInput(N_("lon=%(x)s, lat=%(y)s is outside the globe."),
                           fix=N_("lon must be within ±180 and lat within ±90."),
                           params={"x": x, "y": y})
    if crs == "gcj02":
        x, y = geo_crs.gcj02_to_wgs84(x, y)
    elif crs == "bd09":
        x, y = geo_crs.bd09_to_wgs84(x, y)
    return float(x), float(y)


def parse_grid_code(code):
    """A 15-digit grid code from a URL, or InvalidInput."""
    if not (isinstance(code, str) and len(code) == 15 and code.isdigit()):
        raise InvalidInput(N_("Grid code %(code)s is not 15 digits."),
                           fix=N_("Use a code from /api/v1/grids, e.g. 210213013004001."),
                           params={"code": repr(code)})
    return code


def parse_mode(args):
    """The travel mode a road distance is measured for: ``mode`` of the query string, car when absent."""
    mode = (args.get("mode") or "car").strip()
    if mode not in MODES:
        raise InvalidInput(N_("mode=%(mode)s is not known: the allowed values are %(allowed)s."),
                           fix=N_("Use one of %(allowed)s, or leave it out for car."),
                           params={"mode": repr(mode), "allowed": ", ".join(MODES)},
                           details={"field": "mode", "allowed": list(MODES)})
    return mode


def parse_nearest_query(args):
    """Validate /nearest's query string: lon, lat, crs, kind, skill, k, radius, available."""
    lon, lat = parse_point(args.get("lon"), args.get("lat"), args.get("crs"))
    kinds = sorted(RESPONDER_KINDS) + ["volunteer"]
    kind = (args.get("kind") or "").strip() or None
    if kind is not None and kind not in kinds:
        raise InvalidInput(N_("kind=%(kind)s is not known."), fix=N_("Use one of %(kinds)s."),
                           params={"kind": repr(kind), "kinds": ", ".join(map(str, kinds))})
    k = _bounded_number(args, "k", int, default=5, low=1, high=50)
    radius = _bounded_number(args, "radius", float, default=None, low=1, high=50_000)
    available = (args.get("available") or "").strip().lower()
    if available not in ("", "true", "false", "1", "0"):
        raise InvalidInput(N_("available=%(available)s is not true or false."),
                           fix=N_("Use available=true or leave it out."),
                           params={"available": repr(available)})
    skill = (args.get("skill") or "").strip() or None
    if skill is not None and len(skill) > 32:
        raise InvalidInput(N_("skill is longer than 32 characters."), fix=N_("Name one skill, e.g. skill=维修."))
    by = (args.get("by") or "line").strip()
    if by not in ("line", "road"):
        raise InvalidInput(N_("by=%(by)s is not known."), fix=N_("Use by=road for road distances, or leave it out."),
                           params={"by": repr(by)})
    mode = parse_mode(args)
    return {"lon": lon, "lat": lat, "kind": kind, "skill": skill, "k": k, "radius_m": radius,
            "available": None if available == "" else available in ("true", "1"), "by": by, "mode": mode}


def _bounded_number(args, name, cast, *, default, low, high):
    raw = (args.get(name) or "").strip()
    if raw == "":
        return default
    try:
        value = cast(raw)
    except ValueError:
        value = None
    if value is None or not (low <= value <= high) or (cast is float and not math.isfinite(value)):
        raise InvalidInput(N_("%(name)s=%(raw)s is not a number between %(low)s and %(high)s."),
                           fix=N_("Use e.g. %(name)s=%(value)s."),
                           params={"name": name, "raw": repr(raw), "low": low, "high": high, "value": default or low})
    return value


def parse_limit(raw, *, default, most):
    """``limit`` of a list: ``default`` when absent, else a whole number in 1..``most``."""
    if raw in (None, ""):
        return default
    if not _ascii_digits(str(raw)) or not 1 <= int(raw) <= most:
        raise InvalidInput(N_("limit=%(raw)s is not a whole number between 1 and %(most)s."),
                           fix=N_("Use e.g. limit=%(default)s."),
                           params={"raw": repr(raw), "most": most, "default": default})
    return int(raw)


def parse_time(raw, *, name):
    """An instant as naive UTC: ISO 8601 with ``Z`` or an offset, or Unix seconds, from 1970 to 2099.

    A zoneless time is refused: a wearable's clock in 中国标准时间 read as UTC would be eight hours
    off. So is a number that can only be milliseconds (Unix seconds that large are past 2100):
    the fix says to divide by 1,000 rather than guessing, as the same device might send both."""
    fix = f"Send e.g. {name}=2026-05-03T08:15:00+08:00, or Unix seconds such as 1777767300."
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        if not math.isfinite(raw):
            raise InvalidInput(N_("%(name)s=%(raw)s is not a time."), fix=fix, details={"field": name},
                               params={"name": name, "raw": repr(raw)})
        if LATEST.timestamp() * 1000 > raw >= LATEST.replace(tzinfo=dt.timezone.utc).timestamp():
            raise InvalidInput(N_("%(name)s=%(raw)s looks like Unix milliseconds; seconds are expected."),
                               fix=N_("Divide it by 1000: %(name)s=%(value)s."), details={"field": name},
                               params={"name": name, "raw": repr(raw), "value": format(raw / 1000, '.3f')})
        if not 0 <= raw < LATEST.replace(tzinfo=dt.timezone.utc).timestamp():
            raise InvalidInput(N_("%(name)s=%(raw)s is outside the years %(year)s–%(value)s."),
                               fix=fix, details={"field": name},
                               params={"name": name, "raw": repr(raw), "year": EARLIEST.year, "value": LATEST.year - 1})
        return dt.datetime.fromtimestamp(raw, dt.timezone.utc).replace(tzinfo=None)
    try:
        value = dt.datetime.fromisoformat(str(raw).strip().replace("Z", "+00:00")) if isinstance(raw, str) else None
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise InvalidInput(N_("%(name)s=%(raw)s is not an ISO 8601 time with a time zone."),
                           fix=fix, details={"field": name},
                           params={"name": name, "raw": repr(raw)})
    try:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is past the calendar's end in UTC
        value = LATEST
    if not EARLIEST <= value < LATEST:
        raise InvalidInput(N_("%(name)s=%(raw)s is outside the years %(year)s–%(value)s."),
                           fix=fix, details={"field": name},
                           params={"name": name, "raw": repr(raw), "year": EARLIEST.year, "value": LATEST.year - 1})
    return value


def parse_list_query(args):
    """Validate ``status``, ``level``, ``community``, ``grid``, ``overdue``, ``category``, ``limit``."""
    out = {}
    status = (args.get("status") or "").strip() or None
    if status is not None and status not in STATUSES + ("open", "closed"):
        raise InvalidInput(N_("status=%(status)s is not known."), fix=N_("Use one of %(value)s."),
                           params={"status": repr(status), "value": ", ".join([*STATUSES, "open", "closed"])})
    level = (args.get("level") or "").strip() or None
    if level is not None and level not in LEVELS:
        raise InvalidInput(N_("level=%(level)s is not known."), fix=N_("Use one of %(LEVELS)s."),
                           params={"level": repr(level), "LEVELS": ", ".join(map(str, list(LEVELS)))})
    out.update(status=status, level=level, community=code_arg(args, "community", 12), grid=code_arg(args, "grid", 15))
    wanted = (args.get("category") or "").strip() or None
    out["category"] = category(wanted).code if wanted else None
    overdue = (args.get("overdue") or "").strip().lower()
    if overdue not in ("", "true", "false", "1", "0"):
        raise InvalidInput(N_("overdue=%(overdue)s is not true or false."), fix=N_("Use overdue=true or leave it out."),
                           params={"overdue": repr(overdue)})
    out["overdue"] = None if overdue == "" else overdue in ("true", "1")
    limit = (args.get("limit") or "").strip()
    if limit and not (_ascii_digits(limit) and 1 <= int(limit) <= 1000):
        raise InvalidInput(N_("limit=%(limit)s is not a whole number between 1 and 1000."),
                           fix=N_("Use e.g. limit=100."),
                           params={"limit": repr(limit)})
    out["limit"] = int(limit) if limit else 200
    return out


def parse_stats_query(args):
    """Validate ``period``, ``community``, ``grid``, ``start``, ``end`` of the statistics."""
    period = (args.get("period") or "day").strip()
    if period not in PERIODS:
        raise InvalidInput(N_("period=%(period)s is not known."), fix=N_("Use one of %(PERIODS)s."),
                           params={"period": repr(period), "PERIODS": ", ".join(map(str, list(PERIODS)))})
    out = {"period": period, "community": code_arg(args, "community", 12), "grid": code_arg(args, "grid", 15)}
    for name in ("start", "end"):
        out[name] = parse_day(args[name], name=name) if args.get(name) else None
    return out


def code_arg(args, name, digits):
    """``name`` of a query string: absent (None) or a code of ``digits`` digits."""
    value = (args.get(name) or "").strip() or None
    if value is not None and not re.fullmatch(rf"\d{{{digits}}}", value):
        raise InvalidInput(N_("%(name)s=%(value)s is not a %(digits)s-digit code."),
                           fix=N_("Use a code from /api/v1/%(value2)s."),
                           params={"name": name, "value": repr(value), "digits": digits,
                                   "value2": "communities" if digits == 12 else "grids"})
    return value


def place_name(raw, *, required):
    """A courtyard name, community code or name from the query; None when absent and not required."""
    name = (raw or "").strip()
    if not name:
        if required:
            raise InvalidInput(N_("name is missing."),
                               fix=N_("Send ?name= with a courtyard name, a community code or name."))
        return None
    if len(name) > PLACE_NAME_MAX or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise InvalidInput(N_("name=%(value)s is not a courtyard or community name."),
                           fix=N_("Pick a place from the list (names are at most %(PLACE_NAME_MAX)s printable characters)."),
                           details={"name": name[:PLACE_NAME_MAX]},
                           params={"value": repr(name[:40]), "PLACE_NAME_MAX": PLACE_NAME_MAX})
    return name


def map_view(raw):
    """``lat,lng,zoom`` as floats, or None; anything else is a 400 naming it."""
    if not raw:
        return None
    try:
        lat, lng, zoom = (float(v) for v in raw.split(","))
        if not (-90 <= lat <= 90 and -180 <= lng <= 180 and 0 <= zoom <= 22):
            raise ValueError
    except ValueError:
        raise InvalidInput(N_("view=%(raw)s is not lat,lng,zoom."),
                           fix=N_("Leave view out, or send e.g. 38.9,121.6,16."),
                           details={"view": raw},
                           params={"raw": repr(raw)}) from None
    return lat, lng, zoom


def record_id(raw, *, what=N_("Incident")):
    """A record id from a URL: ASCII digits. Ids no record can have (0, negative, past a database
    integer) are NotFound, as a missing record is; anything else is InvalidInput."""
    text = str(raw).strip()
    # str.isdigit() also takes '²' and '٣', which int() refuses or reads as another number
    if not (text.isascii() and text.lstrip("-").isdigit() and text.count("-") <= 1) or len(text) > 40:
        raise InvalidInput(N_("%(what)s id %(raw)s is not a whole number."),
                           fix=N_("Use an id from /api/v1/%(value)ss."),
                           params={"what": what, "raw": repr(raw), "value": what.lower()})
    value = int(text)
    if not 1 <= value <= MAX_ID:
        raise NotFound(N_("%(what)s %(text)s does not exist."), fix=N_("Use an id from /api/v1/%(value)ss."),
                       params={"what": what, "text": text, "value": what.lower()})
    return value


def division_codes(args):
    """``community`` and ``grid`` of a map's query string: each a numeric division code or absent."""
    out = {}
    for name in ("community", "grid"):
        value = (args.get(name) or "").strip()
        if value and not _DIVISION_CODE.match(value):
            raise InvalidInput(N_("%(name)s=%(value)s is not a division code."),
                               fix=N_("Give the %(name)s's numeric code, e.g. community=210213013004."),
                               params={"name": name, "value": repr(value)})
        out[name] = value or None
    return out


def optional_point(args):
    """``lon``/``lat``/``crs`` of a query string as a WGS84 point, or None when neither is given."""
    if args.get("lon") is None and args.get("lat") is None:
        return None
    return parse_point(args.get("lon"), args.get("lat"), args.get("crs"))


# --- Open311 ----------------------------------------------------------------------------------

def parse_open311_query(args, *, now=None):
    """The spec's GET requests filters: ``service_request_id`` (comma list; overrides the rest),
    ``service_code`` and ``status`` (comma lists), ``start_date``/``end_date`` (ISO 8601 with a zone,
    at most 90 days apart; by default the last 90 days)."""
    now = now or utcnow()
    ids = _list(args, "service_request_id")
    if ids:
        bad = [i for i in ids if request_id(i) is None]
        if bad:
            raise InvalidInput(N_("service_request_id %(value)s is not a request id."),
                               fix=N_("Send ids like 42 or 42,43."),
                               params={"value": repr(bad[0])})
        return {"ids": [request_id(i) for i in ids]}
    codes = _list(args, "service_code")
    unknown = [c for c in codes if c not in PUBLIC_CODES]
    if unknown:
        raise InvalidInput(N_("service_code %(value)s is not offered."), fix=N_("Use codes from services.json."),
                           params={"value": repr(unknown[0])})
    statuses = _list(args, "status")
    bad = [s for s in statuses if s not in ("open", "closed")]
    if bad:
        raise InvalidInput(N_("status %(value)s is not open or closed."),
                           fix=N_("Send status=open, closed or open,closed."),
                           params={"value": repr(bad[0])})
    start = parse_time(args["start_date"], name="start_date") if args.get("start_date") else None
    end = parse_time(args["end_date"], name="end_date") if args.get("end_date") else None
    if start is None and end is None:
        end = now
    if start is None:
        start = end - MAX_WINDOW
    if end is None:
        end = start + MAX_WINDOW
    if end < start:
        raise InvalidInput(N_("end_date is before start_date."), fix=N_("Swap them."))
    if end - start > MAX_WINDOW:
        raise InvalidInput(N_("start_date to end_date spans %(days)s days; at most 90 are allowed."),
                           fix=N_("Ask for 90 days or fewer at a time."),
                           params={"days": (end - start).days})
    return {"codes": codes, "statuses": statuses, "start": start, "end": end}


def request_id(text):
    """The Open311 request id in ``text`` (ASCII digits within a database integer, :data:`MAX_ID`), else None."""
    text = str(text)
    # str.isdigit() also takes '²' and '٣', which int() refuses or reads as another number
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text) if len(text) <= 40 else None
    return value if value is not None and value <= MAX_ID else None


def _list(args, name):
    raw = args.get(name) or ""
    return [p.strip() for p in raw.split(",") if p.strip()]
