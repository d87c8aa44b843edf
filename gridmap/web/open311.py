"""Open311 GeoReport v2 under /open311/v2/: services, service definitions, requests (GET and POST), in JSON or XML.

Clients authenticate a POST with ``api_key`` (see ``gridmap api-key create``), not a session, so
the blueprint is exempt from CSRF. Errors use the spec's format in the format asked for.
"""
import xml.etree.ElementTree as ET

from flask import Blueprint, Response, json, request

from .. import apikeys, dispatch
from ..dispatch import georeport
from ..errors import InvalidInput
from . import bodies, border, params
from .common import snapshot, store

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")
FORMATS = ("json", "xml")
# XML element names of the spec: a list's root → the name of each item
_ITEM = {"services": "service", "service_requests": "request", "errors": "error", "attributes": "attribute",
         "values": "value"}


@bp.get("/services.<fmt>")
def services(fmt):
    """Every service (incident category) offered."""
    return render(fmt, "services", georeport.services())


@bp.get("/services/<code>.<fmt>")
def service_definition(code, fmt):
    """One service's definition (its extra attributes: none)."""
    return render(fmt, "service_definition", georeport.service_definition(code))


@bp.get("/requests.<fmt>")
def requests_list(fmt):
    """Service requests by the spec's filters; the last 90 days and at most 1,000 by default."""
    _format(fmt)
    filters = params.parse_open311_query(request.args)
    with store().session() as session:
        return render(fmt, "service_requests", georeport.find_requests(session, **filters))


@bp.post("/requests.<fmt>")
def requests_create(fmt):
    """Create a service request (needs api_key); answers with its service_request_id."""
    _format(fmt)
    form = _fields()
    api_key = form.get("api_key") or request.headers.get("X-Api-Key")
    if api_key is not None and not isinstance(api_key, str):
        raise InvalidInput("api_key is not text.", fix="Send the key `gridmap api-key create` printed, as a string.")
    with store().transaction() as session:
        key = apikeys.check(session, api_key, what="creating a request")
        snap = snapshot()
        args = georeport.place(snap, bodies.parse_open311_post(form))
        inc = dispatch.report(session, snap, **args, source="open311",
                              actor=dispatch.Actor(f"api_key:{key.name}", "open311"))
        out = [{"service_request_id": str(inc.id), "service_notice": georeport.STATUS_NOTES["reported"],
                "account_id": None}]
    return render(fmt, "service_requests", out, status=201)


def _fields():
    """A POST's fields: the form (the spec's encoding) or a JSON object."""
    if not request.is_json:
        return request.form
    body = border.json_body()
    if not isinstance(body, dict):
        raise InvalidInput("The request body is not a JSON object of the request's fields.",
                           fix='Send e.g. {"service_code": "noise", "lat": 38.91, "long": 121.61, "api_key": "…"}, '
                               "or the spec's form encoding.")
    return body


@bp.get("/requests/<request_id>.<fmt>")
def request_detail(request_id, fmt):
    """One service request (as a one-item list, as the spec has it)."""
    _format(fmt)
    iid = params.request_id(request_id)
    if iid is None:
        raise InvalidInput(f"service_request_id {request_id!r} is not a request id.", fix="Use the id you were given.")
    with store().session() as session:
        return render(fmt, "service_requests", georeport.get_request(session, iid))


def error(status, description):
    """An error in the spec's format, in the format the path asked for (XML, the spec's default, otherwise).

    The app's error handlers call this for every path under /open311/, so a 404, 405, 413 or 500
    reaches an Open311 client in its own format too, not as a page."""
    return render(_asked_format(), "errors", [{"code": status, "description": description}], status=status)


def render(fmt, root, data, status=200):
    """``data`` as the spec's JSON (lists and objects as they are) or XML (``root`` element, items named per spec)."""
    fmt = _format(fmt)
    if fmt == "json":
        return Response(json.dumps(data, ensure_ascii=False), status=status,
                        content_type="application/json; charset=utf-8")
    tree = ET.Element(root)
    _fill(tree, data)
    body = ET.tostring(tree, encoding="unicode")
    return Response(f'<?xml version="1.0" encoding="UTF-8"?>\n{body}', status=status,
                    content_type="text/xml; charset=utf-8")


def _fill(element, value):
    if isinstance(value, list):
        for item in value:
            _fill(ET.SubElement(element, _ITEM.get(element.tag, "item")), item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _fill(ET.SubElement(element, key), item)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)


def _format(fmt):
    if fmt not in FORMATS:
        raise InvalidInput(f"Format {fmt!r} is not offered.", fix="End the path in .json or .xml.")
    return fmt


def _asked_format():
    # errors come back in the format the path asked for; XML, the spec's required format, otherwise
    fmt = (request.view_args or {}).get("fmt") or request.path.rpartition(".")[2]
    return fmt if fmt in FORMATS else "xml"
