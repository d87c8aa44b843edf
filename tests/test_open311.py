"""Open311 GeoReport v2 conformance: services, service definitions, requests (GET filters and defaults, POST with
and without api_key), single requests, and the spec's error format — each in JSON and in well-formed XML.

Followed: the GeoReport v2 spec at wiki.open311.org/GeoReport_v2 (element names, the 90-day and
1,000-request defaults, comma-delimited filters, service_request_id overriding the rest).
"""
import datetime as dt
import json
import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import func, select

from gridmap import apikeys, dispatch
from gridmap.store import models as m

import dispatch_world as w
from dispatch_world import G2, at

REQUEST_FIELDS = ["service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                  "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
                  "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url"]
SERVICE_FIELDS = ["service_code", "service_name", "description", "metadata", "type", "keywords", "group"]


@pytest.fixture
def world(app):
    w.build(app.extensions["gridmap.store"])
    app.config["WTF_CSRF_ENABLED"] = True  # Open311 is exempt: a client has no session to take a token from
    return app


@pytest.fixture
def key(world):
    with world.extensions["gridmap.store"].transaction() as s:
        return apikeys.create(s, "citizen-app")[0]


def get(app, path, fmt, **query):
    r = app.test_client().get(f"/open311/v2/{path}.{fmt}", query_string=query)
    return r, parse(r, fmt)


def parse(r, fmt):
    if fmt == "json":
        assert r.content_type == "application/json; charset=utf-8"
        return r.get_json()
    assert r.content_type == "text/xml; charset=utf-8"
    text = r.get_data(as_text=True)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(r.get_data())  # raises on anything not well-formed


def records(doc, fmt, root, item):
    """The list of dicts the document holds, checking the XML root and item element names."""
    if fmt == "json":
        assert isinstance(doc, list)
        return doc
    assert doc.tag == root and all(child.tag == item for child in doc)
    return [{c.tag: (c.text or "") for c in child} for child in doc]


def same_fields(item, fmt, expected):
    """XML keeps the spec's element order; a JSON object has no order to keep."""
    return list(item) == expected if fmt == "xml" else sorted(item) == sorted(expected)


def report(app, category="noise", xy=(300, 100), now=None, **kw):
    lon, lat = at(*xy)
    with app.extensions["gridmap.store"].transaction() as s:
        return dispatch.report(s, app.extensions["gridmap.snapshots"].get(), category=category, lon=lon, lat=lat,
                               now=now or dispatch.utcnow(), **kw).id


def count(app):
    with app.extensions["gridmap.store"].session() as s:
        return s.scalar(select(func.count()).select_from(m.Incident))


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_services_list_the_public_catalogue_with_the_specs_fields(world, fmt):
    r, doc = get(world, "services", fmt)
    items = records(doc, fmt, "services", "service")
    assert r.status_code == 200
    assert all(same_fields(s, fmt, SERVICE_FIELDS) for s in items)
    codes = [s["service_code"] for s in items]
    assert "noise" in codes and "gas_leak" in codes
    assert "elderly_help" not in codes  # an SOS names a vulnerable person: never offered publicly
    noise = next(s for s in items if s["service_code"] == "noise")
    assert (noise["service_name"], noise["type"], str(noise["metadata"]).lower()) == ("噪音扰民", "realtime", "false")


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_service_definition_and_an_unknown_service(world, fmt):
    r, doc = get(world, "services/water_leak", fmt)
    if fmt == "json":
        assert doc == {"service_code": "water_leak", "attributes": []}
    else:
        assert doc.tag == "service_definition" and [c.tag for c in doc] == ["service_code", "attributes"]
        assert doc.findtext("service_code") == "water_leak" and list(doc.find("attributes")) == []
    r, doc = get(world, "services/ufo", fmt)
    [err] = records(doc, fmt, "errors", "error")
    assert r.status_code == 404 and str(err["code"]) == "404" and "'ufo' is not offered" in err["description"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_post_without_or_with_a_wrong_api_key_is_403_in_the_error_format_and_writes_nothing(world, key, fmt):
    lon, lat = at(300, 100)
    for api_key in (None, "gm_not-a-key"):
        form = {"service_code": "noise", "lat": lat, "long": lon, **({"api_key": api_key} if api_key else {})}
        r = world.test_client().post(f"/open311/v2/requests.{fmt}", data=form)
        [err] = records(parse(r, fmt), fmt, "errors", "error")
        assert r.status_code == 403 and str(err["code"]) == "403" and "api_key" in err["description"]
    assert count(world) == 0


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_post_creates_a_request_that_reads_back_mapped_onto_the_lifecycle(world, key, fmt):
    lon, lat = at(300, 100)
    r = world.test_client().post(f"/open311/v2/requests.{fmt}", data={
        "api_key": key, "service_code": "street_vending", "lat": str(lat), "long": str(lon),
        "description": "早市占道", "email": "li@example.cn", "first_name": "明", "last_name": "李",
        "phone": "13811112222"})
    assert r.status_code == 201
    [created] = records(parse(r, fmt), fmt, "service_requests", "request")
    rid = created["service_request_id"]
    assert same_fields(created, fmt, ["service_request_id", "service_notice", "account_id"]) and rid.isdigit()
    r, doc = get(world, f"requests/{rid}", fmt)
    [req] = records(doc, fmt, "service_requests", "request")
    assert same_fields(req, fmt, REQUEST_FIELDS)
    assert (req["status"], req["service_code"], req["service_name"]) == ("open", "street_vending", "占道经营")
    assert req["agency_responsible"] == "城市管理综合执法局"  # vetoed: not on the community's list
    assert float(req["lat"]) == pytest.approx(lat) and float(req["long"]) == pytest.approx(lon)
    assert req["requested_datetime"].endswith("Z") and dt.datetime.fromisoformat(req["expected_datetime"])
    assert "13811112222" not in json.dumps(req, ensure_ascii=False) and "li@example.cn" not in str(req)
    with world.extensions["gridmap.store"].session() as s:
        inc = s.get(m.Incident, int(rid))
        assert (inc.reporter_name, inc.reporter_phone, inc.source, inc.grid_code) == ("李 明", "13811112222", "open311", G2)
        assert dispatch.history(s, inc.id)[0]["actor"] == "api_key:citizen-app"
        # closing it in gridmap closes it in Open311
        for action in ("accept", "start", "resolve"):
            dispatch.transition(s, inc.id, action, actor=dispatch.Actor("d", "admin"), version=inc.version)
        s.commit()
    r, doc = get(world, f"requests/{rid}", fmt)
    [req] = records(doc, fmt, "service_requests", "request")
    assert req["status"] == "closed" and "Resolved" in req["status_notes"]


def test_post_by_address_finds_the_building_by_exact_or_prefix_address(world, key):
    client = world.test_client()
    r = client.post("/open311/v2/requests.json", data={"api_key": key, "service_code": "water_leak",
                                                        "address_string": "湾里路1号"})
    assert r.status_code == 201
    req = client.get(f"/open311/v2/requests/{r.get_json()[0]['service_request_id']}.json").get_json()[0]
    assert req["address"] == "湾里路1号" and (float(req["long"]), float(req["lat"])) == pytest.approx(at(100, 100))
    r = client.post("/open311/v2/requests.json", data={"api_key": key, "service_code": "water_leak",
                                                        "address_string": "1号"})  # a mere suffix is no prefix
    assert r.status_code == 400 and "matches no building address" in r.get_json()[0]["description"]


@pytest.mark.parametrize("form,words", [
    ({"lat": "38.9", "long": "121.6"}, "service_code is missing"),
    ({"service_code": "ufo", "lat": "38.9", "long": "121.6"}, "service_code 'ufo' is not offered"),
    ({"service_code": "elderly_help", "lat": "38.9", "long": "121.6"}, "'elderly_help' is not offered"),
    ({"service_code": "noise"}, "has no location"),
    ({"service_code": "noise", "lat": "north", "long": "121.6"}, "lat='north' is not a number"),
    ({"service_code": "noise", "lat": "10", "long": "10"}, "lies in no community"),
])
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_bad_posts_are_400_in_the_error_format_and_write_nothing(world, key, fmt, form, words):
    r = world.test_client().post(f"/open311/v2/requests.{fmt}", data={"api_key": key, **form})
    [err] = records(parse(r, fmt), fmt, "errors", "error")
    assert r.status_code == 400 and str(err["code"]) == "400" and words in err["description"]
    assert count(world) == 0


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_get_requests_filters_by_code_status_dates_and_ids(world, fmt):
    now = dispatch.utcnow().replace(microsecond=0)
    noise = report(world, "noise", now=now - dt.timedelta(days=1))
    leak = report(world, "water_leak", xy=(100, 100), now=now - dt.timedelta(days=10))
    old = report(world, "noise", xy=(150, 150), now=now - dt.timedelta(days=100))
    report(world, "elderly_help", now=now - dt.timedelta(days=2))  # never listed
    with world.extensions["gridmap.store"].transaction() as s:
        for action in ("accept", "start", "resolve"):
            dispatch.transition(s, leak, action, actor=dispatch.Actor("d", "admin"),
                                version=s.get(m.Incident, leak).version)

    def ids(**query):
        r, doc = get(world, "requests", fmt, **query)
        assert r.status_code == 200, r.get_data(as_text=True)
        return [int(x["service_request_id"]) for x in records(doc, fmt, "service_requests", "request")]

    assert ids() == [noise, leak]  # the last 90 days, newest first; SOS left out
    assert ids(service_code="water_leak") == [leak]
    assert ids(service_code="noise,water_leak", status="open") == [noise]
    assert ids(status="closed") == [leak]
    iso = lambda d: d.isoformat() + "Z"  # noqa: E731
    assert ids(start_date=iso(now - dt.timedelta(days=120)), end_date=iso(now - dt.timedelta(days=50))) == [old]
    assert ids(end_date=iso(now - dt.timedelta(days=5))) == [leak]  # 90 days back from the end date
    assert ids(service_request_id=f"{old},{noise}", service_code="water_leak") == [noise, old]  # ids override


@pytest.mark.parametrize("query,words", [
    ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"}, "at most 90 are allowed"),
    ({"start_date": "yesterday"}, "start_date='yesterday' is not an ISO 8601 time"),
    ({"start_date": "2026-05-01T00:00:00"}, "with a time zone"),
    ({"status": "pending"}, "status 'pending' is not open or closed"),
    ({"service_request_id": "7;drop"}, "'7;drop' is not a request id"),
    ({"service_request_id": "7,²"}, "'²' is not a request id"),  # a digit to str.isdigit, not to int()
    ({"service_request_id": "99999999999999999999999"}, "is not a request id"),  # past any database integer
])
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_bad_get_filters_are_400_in_the_error_format(world, fmt, query, words):
    r, doc = get(world, "requests", fmt, **query)
    [err] = records(doc, fmt, "errors", "error")
    assert r.status_code == 400 and words in err["description"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_get_requests_returns_at_most_1000_by_default(world):
    now = dispatch.utcnow().replace(microsecond=0)
    lon, lat = at(300, 100)
    from shapely.geometry import Point
    with world.extensions["gridmap.store"].transaction() as s:
        s.add_all([m.Incident(category="noise", status="reported", level="grid", community_code=w.COMMUNITY,
                              grid_code=G2, reported_at=now - dt.timedelta(minutes=i), updated_at=now,
                              lon=lon, lat=lat, geom=Point(lon, lat)) for i in range(1005)])
    body = world.test_client().get("/open311/v2/requests.json").get_json()
    assert len(body) == 1000 and body[0]["requested_datetime"] == now.isoformat() + "Z"


def test_an_unknown_request_and_an_unknown_format(world):
    r, doc = get(world, "requests/424242", "xml")
    assert r.status_code == 404 and doc.find("error/code").text == "404"
    for bad in ("99999999999999999999999", "²"):
        r, doc = get(world, f"requests/{bad}", "json")
        assert r.status_code == 400 and "is not a request id" in doc[0]["description"]
    r = world.test_client().get("/open311/v2/services.csv")
    assert r.status_code == 400 and ET.fromstring(r.get_data()).find("error/description").text.startswith("Format 'csv'")
