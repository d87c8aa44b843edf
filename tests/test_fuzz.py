"""No request to the API answers 5xx (issue 14, finding 6): schemathesis sends valid and invalid
requests to every operation of the OpenAPI document, and hypothesis sends Open311 any fields of any
type, on SQLite and on PostGIS, signed in as an admin (the role that reaches furthest). A bounded
run; bench/fuzz_bench.py runs longer and prints the counts."""
import dispatch_world as w
import pytest
from conftest import at, make_app
from fuzzing import Anchors, fuzz_api, fuzz_open311, fuzz_pages
from sqlalchemy import select

from gridmap import apikeys
from gridmap.catalog import CATEGORIES
from gridmap.dispatch.georeport import PUBLIC_CODES
from gridmap.store import models as m
from gridmap.web import openapi


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)])
def fuzzed(request, tmp_path_factory):
    app, cleanup = make_app(tmp_path_factory.mktemp(request.param), request.param)
    store = app.extensions["gridmap.store"]
    w.build(store)
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    assert client.post("/login", data={"username": "admin", "password": w.PASSWORD}).status_code == 302
    lon, lat = at(100, 100)
    for category in ("noise", "water_leak"):
        assert client.post("/api/v1/incidents", json={"category": category, "lon": lon, "lat": lat}).status_code == 201
    with store.transaction() as s:
        key, _ = apikeys.create(s, "fuzz")
        iid = s.scalar(select(m.Incident.id).limit(1))
    assert client.post(f"/api/v1/incidents/{iid}/whistle", json={"department": "城管"}).status_code == 201
    with store.session() as s:
        ids = lambda model: [str(i) for i in s.scalars(select(model.id))]  # noqa: E731
        plans = ids(m.GridPlan)
        anchors = Anchors(path={"incident_id": ids(m.Incident), "task_id": ids(m.WhistleTask),
                                "volunteer_id": ids(m.Volunteer), "plan_id": plans, "plan_a": plans, "plan_b": plans,
                                "code": [w.G1, w.G2]},
                          body={"lon": [lon], "lat": [lat], "device_id": ["W-0001", "W-0002"],
                                "category": sorted(CATEGORIES)[:6], "time": ["2026-05-04T16:00:00+08:00", 1777881600],
                                "action": ["accept", "dispatch", "resolve"], "version": [1, 2]},
                          lon=lon, lat=lat)
    yield app, client, anchors, key
    store.dispose()
    cleanup()


def test_no_request_to_the_json_api_answers_5xx(fuzzed):
    app, client, anchors, key = fuzzed
    report = fuzz_api(app, client, anchors, examples=12, api_key=key, seed=14)
    assert report.failures == []
    operations = {f"{method.upper()} {path}" for path, ops in openapi.PATHS.items() for method in ops}
    assert {op for op, _ in report.counts} == operations  # every operation was called
    # and not only refused: valid, anchored requests got through to the services
    assert report.statuses("POST /incidents")[201] > 0 and report.statuses("POST /sos")[201] > 0
    assert report.statuses("GET /incidents/{incident_id}")[200] > 0
    assert report.statuses()[400] > 0 and report.server_errors() == 0


def test_no_request_to_open311_answers_5xx(fuzzed):
    app, _, anchors, key = fuzzed
    report = fuzz_open311(app, anchors=anchors, api_key=key, codes=PUBLIC_CODES, examples=150, seed=14)
    assert report.failures == []
    assert report.statuses("POST /open311/v2/requests (form)")[201] > 0
    assert {400, 200} <= set(report.statuses())


def test_no_page_or_map_answers_5xx_whatever_its_query(fuzzed):
    app, client, anchors, _ = fuzzed
    report = fuzz_pages(app, client, anchors, examples=8, seed=14)
    assert report.failures == []
    pages = {op for op, _ in report.counts}
    assert "GET /dispatch/map" in pages and "GET /planner/map" in pages
    assert report.statuses()[200] > 0 and report.statuses()[400] > 0
