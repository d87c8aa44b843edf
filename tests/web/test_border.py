"""The web border holds against what an outside tester sent (issue 14, findings 1 and 6): bodies past
their limit are a 413 naming it and are never read, JSON nested past a bound is a 400 before the parser
recurses, NUL and other control characters and lone surrogates are a 400 naming the field, ids past a
database integer are a 404, times and days past the calendar a 400, and Open311 always answers in its
own format. Every refusal writes nothing; both backends where the database is what used to fail.
"""
import io
import json
import xml.etree.ElementTree as ET

import dispatch_world as w
import pytest
from conftest import at, make_app
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from gridmap import apikeys
from gridmap.errors import InvalidInput
from gridmap.store import models as m
from gridmap.web import border


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)])
def world(request, tmp_path_factory):
    """One small world per backend for the module: every test here refuses, and checks that the
    refusal wrote nothing by counting before and after (the few that report count their own)."""
    app, cleanup = make_app(tmp_path_factory.mktemp(request.param), request.param)
    w.build(app.extensions["gridmap.store"])
    app.config["WTF_CSRF_ENABLED"] = False
    yield app
    app.extensions["gridmap.store"].dispose()
    cleanup()


@pytest.fixture
def unchanged(world):
    """Fails the test if it wrote an incident, a whistle task or an event."""
    def counts():
        with world.extensions["gridmap.store"].session() as s:
            return [s.scalar(select(func.count()).select_from(t)) for t in (m.Incident, m.WhistleTask, m.IncidentEvent)]
    before = counts()
    yield
    assert counts() == before


def login(app, username):
    client = app.test_client()
    assert client.post("/login", data={"username": username, "password": w.PASSWORD}).status_code == 302
    return client


def report(**extra):
    lon, lat = at(100, 100)
    return {"category": "noise", "lon": lon, "lat": lat, **extra}


@pytest.fixture(scope="module")
def open311_key(world):
    with world.extensions["gridmap.store"].transaction() as s:
        key, _ = apikeys.create(s, "city-app")
    return key


# --- 1. bodies past their limit ------------------------------------------------------------------

class Unread(io.RawIOBase):
    """A body of ``size`` bytes that fails the test if anyone reads it: a limit must refuse before reading."""

    def __init__(self, size):
        self.size, self.pos = size, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=0):  # the test client measures the body to send its Content-Length
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def tell(self):
        return self.pos

    def readinto(self, b):
        raise AssertionError("the body of a request past its limit was read")


def test_a_body_past_the_limit_is_413_naming_it_and_is_never_read(world, unchanged):
    limit = world.config["MAX_BODY_BYTES"]
    client = world.test_client()
    size = 50 * 1024 * 1024
    r = client.post("/api/v1/incidents", input_stream=Unread(size), content_type="application/json")
    body = r.get_json()
    assert r.status_code == 413 and body["error"] == "request_entity_too_large"
    assert body["details"] == {"limit_bytes": limit, "setting": "GRIDMAP_MAX_BODY_BYTES"}
    assert f"{limit:,} bytes" in body["message"]
    # a form to the login page and a JSON body nobody would read get the same answer
    r = client.post("/login", input_stream=Unread(size), content_type="application/x-www-form-urlencoded")
    assert r.status_code == 413 and "GRIDMAP_MAX_BODY_BYTES" in r.get_data(as_text=True)


def test_a_body_without_a_length_is_cut_at_the_limit(world, unchanged):
    # chunked uploads carry no Content-Length: Werkzeug's stream stops at the limit instead
    limit = world.config["MAX_BODY_BYTES"]
    payload = json.dumps(report(description="x" * 3000)).encode() + b" " * (2 * limit)
    r = world.test_client().post("/api/v1/incidents", input_stream=io.BytesIO(payload),
                                 content_type="application/json",
                                 environ_overrides={"wsgi.input_terminated": True})
    assert r.status_code == 413 and r.get_json()["details"]["limit_bytes"] == limit


def test_the_planners_edits_have_their_own_larger_limit(world):
    client = login(world, "planner")
    padded = b'{"version": 1, "grid_code": "x"' + b" " * (world.config["MAX_BODY_BYTES"] * 2) + b"}"
    r = client.post("/planner/api/plans/1/redraw", data=padded, content_type="application/json")
    # past the bodies' limit but within the edits': read, and refused for what it says
    assert r.status_code == 400 and "grid_code='x'" in r.get_json()["message"]
    big = b" " * (world.config["MAX_EDIT_BYTES"] + 1)
    r = client.post("/planner/api/plans/1/redraw", data=big, content_type="application/json")
    assert r.status_code == 413 and r.get_json()["details"]["setting"] == "GRIDMAP_MAX_EDIT_BYTES"


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_open311_answers_a_body_past_the_limit_in_its_own_format(world, unchanged, fmt):
    r = world.test_client().post(f"/open311/v2/requests.{fmt}", input_stream=Unread(150 * 1024 * 1024),
                                 content_type="application/x-www-form-urlencoded")
    assert r.status_code == 413
    text = r.get_data(as_text=True)
    if fmt == "json":
        [err] = json.loads(text)
        assert err["code"] == 413 and "GRIDMAP_MAX_BODY_BYTES" in err["description"]
    else:
        doc = ET.fromstring(text)
        assert doc.tag == "errors" and doc.find("error/code").text == "413"


# --- 6. JSON the parser must never see ----------------------------------------------------------

@pytest.mark.parametrize("url", ["/api/v1/incidents", "/open311/v2/requests.json"])
def test_json_nested_a_thousand_deep_is_400_before_parsing(world, unchanged, url):
    r = world.test_client().post(url, data="[" * 1000 + "]" * 1000, content_type="application/json")
    assert r.status_code == 400
    text = r.get_data(as_text=True)
    assert "nests 1000 levels deep; at most 32" in text


def test_brackets_inside_strings_do_not_count_as_nesting(world):
    r = world.test_client().post("/api/v1/incidents", json=report(description="[[[[" * 100 + "\"{{{{"))
    assert r.status_code == 201 and r.get_json()["incident"]["description"].startswith("[[[[")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab,:'),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"\\a', max_size=3), inner,
                                                               max_size=3),
    max_leaves=30)


def _depth(value):
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(json_values, st.booleans())
def test_json_depth_agrees_with_the_parsed_value(value, pretty):
    # the oracle: nesting of what json.loads builds, against the bracket count on the raw text
    text = json.dumps(value, indent=2 if pretty else None, ensure_ascii=False)
    assert border.json_depth(text) == _depth(value)


@pytest.mark.parametrize("raw,words", [
    (b'{"category": NaN}', "not valid JSON"),
    (b'{"category": "noise",}', "not valid JSON at line 1, column 22"),
    (b'{"category": "\xff"}', "not UTF-8 (byte 14"),
    (b'{"category": "noise", "description": "a\\u0000b"}', "description holds the character U+0000 at position 1"),
    (b'{"category": "noise", "description": "\\ud800"}', "description holds the character U+D800"),
    (b'{"category": "noise", "description": "bell\\u0007"}', "U+0007"),
    (b'{"category": "noise", "\\u0000": 1}', "a field name in body holds the character U+0000"),
])
def test_bodies_the_parser_refuses_are_400_naming_why(raw, words):
    with pytest.raises(InvalidInput) as err:
        border.parse_json(raw, max_depth=32)
    assert words in err.value.message


def test_tabs_newlines_and_paired_surrogates_are_text(world):
    r = world.test_client().post("/api/v1/incidents",
                                 data=b'{"category": "noise", "lon": %s, "lat": %s, '
                                      b'"description": "line\\n\\tnext \\ud83d\\ude92"}' % tuple(
                                          str(v).encode() for v in at(100, 100)),
                                 content_type="application/json")
    assert r.status_code == 201 and r.get_json()["incident"]["description"] == "line\n\tnext 🚒"


# --- 6. text the database cannot hold, on both backends -----------------------------------------

@pytest.mark.parametrize("field", ["description", "reporter_name", "address"])
def test_nul_and_lone_surrogates_in_a_report_are_400_and_write_nothing(world, unchanged, field):
    client = world.test_client()
    for bad in ("a\x00b", "\udc00"):
        r = client.post("/api/v1/incidents", data=json.dumps(report(**{field: bad})), content_type="application/json")
        assert r.status_code == 400 and r.get_json()["details"]["field"] == field


@pytest.mark.parametrize("url,name", [
    ("/api/v1/addresses?q=%00", "q"),  # on SQLite this once answered every address
    ("/api/v1/geocode?q=%E6%B9%BE%00", "q"),
    ("/api/v1/locate?lon=121.6&lat=38.9%00", "lat"),
    ("/api/v1/stats?community=%00", "community"),
    ("/open311/v2/requests.json?status=open%00", "status"),
    ("/api/v1/grids?x%01=1", "a query parameter name"),
])
def test_control_characters_in_a_query_are_400_naming_the_parameter(world, unchanged, url, name):
    r = world.test_client().get(url)
    assert r.status_code == 400
    text = r.get_data(as_text=True)
    assert f"{name} holds the character U+00" in text


def test_nul_in_the_login_form_is_400_and_signs_nobody_in(world):
    client = world.test_client()
    r = client.post("/login", data={"username": "admin\x00", "password": w.PASSWORD})
    assert r.status_code == 400 and "username 在第 5 个位置含有字符 U+0000" in r.get_data(as_text=True)  # the page's language
    assert client.get("/api/v1/incidents").status_code == 401


def test_nul_in_a_whistle_department_is_400_and_blows_nothing(world):
    iid = world.test_client().post("/api/v1/incidents", json=report()).get_json()["incident"]["id"]
    client = login(world, "dispatcher")
    r = client.post(f"/api/v1/incidents/{iid}/whistle", json={"department": "城管\x00"})
    assert r.status_code == 400 and r.get_json()["details"]["field"] == "department"
    with world.extensions["gridmap.store"].session() as s:
        assert s.scalar(select(func.count()).select_from(m.WhistleTask).where(m.WhistleTask.incident_id == iid)) == 0


# --- 6. numbers past a column, times past the calendar -------------------------------------------

@pytest.mark.parametrize("url", ["/api/v1/incidents/2147483648", "/api/v1/incidents/9223372036854775808/duplicates",
                                 "/api/v1/incidents/2147483648/responders"])
def test_ids_past_a_database_integer_are_404(world, url):
    r = login(world, "dispatcher").get(url)
    assert r.status_code == 404 and "does not exist" in r.get_json()["message"]


@pytest.mark.parametrize("method,url", [("post", "/api/v1/whistles/2147483648/report"),
                                        ("get", "/api/v1/volunteers/2147483648/services")])
def test_path_ids_past_a_database_integer_are_404(world, method, url):
    r = getattr(login(world, "admin"), method)(url, headers={"Accept": "application/json"})
    assert r.status_code == 404 and r.is_json


@pytest.mark.parametrize("body,words", [
    ({"action": "accept", "version": 2**31}, "version=2147483648 is not between 1 and 2147483647"),
    ({"action": "link_duplicate", "version": 1, "duplicate_of": 2**63}, "duplicate_of=9223372036854775808"),
    ({"action": "accept", "version": 1.5}, "version=1.5 is not a whole number"),
    ({"action": ["accept"], "version": 1}, "action=['accept'] is not text"),
    ({"action": "accept", "version": 1, "note": {"a": 1}}, "note={'a': 1} is not text"),
])
def test_a_transition_with_numbers_or_types_out_of_range_is_400(world, body, words):
    iid = world.test_client().post("/api/v1/incidents", json=report()).get_json()["incident"]["id"]
    r = login(world, "dispatcher").post(f"/api/v1/incidents/{iid}/transition", json=body)
    assert r.status_code == 400 and words in r.get_json()["message"]
    with world.extensions["gridmap.store"].session() as s:
        assert s.get(m.Incident, iid).status == "reported"


@pytest.mark.parametrize("url,words", [
    ("/open311/v2/requests.json?start_date=9999-12-31T23:59:59-14:00", "outside the years 1970"),
    ("/open311/v2/requests.json?end_date=0001-01-01T00:00:00%2B14:00", "outside the years 1970"),
    ("/api/v1/stats?start=9999-12-31", "start=9999-12-31 is outside the years 1970"),
    ("/api/v1/stats?end=0001-01-01", "end=0001-01-01 is outside"),
    ("/api/v1/locate?lon=121.6&lat=38.9&at=9999-12-31", "at=9999-12-31 is outside"),
])
def test_days_and_times_past_the_calendar_are_400_without_signing_in(world, unchanged, url, words):
    r = world.test_client().get(url)
    assert r.status_code == 400 and words in r.get_data(as_text=True)


# --- Open311 in its own format, whatever goes wrong ----------------------------------------------

@pytest.mark.parametrize("body", ["[]", '"noise"', "[[]]", "null", "7"])
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_open311_body_that_is_not_an_object_is_400_in_its_format(world, unchanged, open311_key, body, fmt):
    r = world.test_client().post(f"/open311/v2/requests.{fmt}", data=body, content_type="application/json",
                                 headers={"X-Api-Key": open311_key})
    assert r.status_code == 400
    text = r.get_data(as_text=True)
    description = json.loads(text)[0]["description"] if fmt == "json" else \
        ET.fromstring(text).find("error/description").text
    assert "not a JSON object" in description or "not valid JSON" in description


@pytest.mark.parametrize("field,value", [("description", ["a"]), ("first_name", {"x": 1}), ("phone", 13800000000),
                                         ("address_string", True), ("api_key", ["k"]), ("service_code", 5)])
def test_open311_json_fields_that_are_not_text_are_400(world, unchanged, open311_key, field, value):
    lon, lat = at(100, 100)
    body = {"service_code": "noise", "lat": lat, "long": lon, "api_key": open311_key, field: value}
    r = world.test_client().post("/open311/v2/requests.json", json=body)
    assert r.status_code == 400 and field in r.get_json()[0]["description"]


@pytest.mark.parametrize("method,url,status", [
    ("get", "/open311/v2/nothing.json", 404), ("get", "/open311/v2/nothing.xml", 404),
    ("delete", "/open311/v2/requests.json", 405), ("put", "/open311/v2/services.xml", 405),
])
def test_open311_routing_errors_come_in_the_asked_format(world, method, url, status):
    r = getattr(world.test_client(), method)(url)
    assert r.status_code == status
    text = r.get_data(as_text=True)
    if url.endswith(".json"):
        assert r.is_json and json.loads(text)[0]["code"] == status
    else:
        assert ET.fromstring(text).find("error/code").text == str(status)
