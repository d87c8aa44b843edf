"""One language at a time: every page each role may open, rendered in Chinese and in English, shows
no sentence of the other language.

On a Chinese page no run of English words is visible (codes, numbers, units and a short list of
names — gridmap, OpenStreetMap, Leaflet — are allowed); on an English page no Han character is,
except in what people typed into the store: personal names, addresses, descriptions. Place names
are not among those: districts, streets, communities and grids have English names now.
"""
import html
import re

import pytest
from flask import url_for
from sqlalchemy import select

from conftest import DEMO_PASSWORD, a_resident_report
from gridmap.store import models as m
from gridmap.web import nav

#: demo accounts by role (None: the public)
LANG = {"zh": "zh_CN", "en": "en"}  # the language switch's codes
ACCOUNTS = {None: None, "grid_worker": "worker", "dispatcher": "dispatcher", "planner": "planner", "admin": "admin"}
#: Latin words a Chinese page may show: the brand, map credits, units and technical names
ALLOWED_LATIN = {"gridmap", "openstreetmap", "leaflet", "osm", "csv", "geojson", "geopackage", "shapefile", "zip",
                 "gpkg", "shp", "kml", "pdf", "png", "svg", "api", "open311", "wgs84", "epsg", "gcj02", "bd09",
                 "english", "km", "kb", "mb", "gb", "cgcs2000", "gbk", "utf", "id", "sos", "json", "url", "html", "jpeg",
                 "webp", "polsby", "popper", "demo"}
#: Han text an English page may show that is not user data: the language switch's own name
ALLOWED_HAN = ("中文",)
_HIDDEN = re.compile(r"<(script|style|template|noscript)\b.*?</\1\s*>", re.S | re.I)
_ATTR_TEXT = re.compile(r'\b(?:title|aria-label|placeholder|alt)="([^"]*)"')
_OPTION_LANG = re.compile(r'<(a|option)\b[^>]*\blang="(?:zh|zh-CN|en)"[^>]*>.*?</\1>', re.S)
_TAG = re.compile(r"<[^>]+>")
_HAN = re.compile(r"[\u3400-\u9fff]+")
# two or more Latin words in a row (a phrase), or one word of four letters or more
_ENGLISH = re.compile(r"[A-Za-z][A-Za-z']+(?:[ ,;:-]+[A-Za-z][A-Za-z']+)+|[A-Za-z]{4,}")


def visible_text(page):
    """What a person reads on ``page``: text outside scripts and styles, and the titles, labels and
    placeholders of elements, entities decoded; the other language's own name in the switch left out."""
    page = _HIDDEN.sub(" ", page)
    page = _OPTION_LANG.sub(" ", page)
    attrs = " ".join(_ATTR_TEXT.findall(page))
    return html.unescape(_TAG.sub(" ", page) + " " + attrs)


def english_leaks(text):
    """Latin phrases on a Chinese page that are not codes, numbers or allowed names."""
    leaks = []
    text = re.sub(r"--[a-z][a-z-]*", " ", text)  # a command line's options are names, as typed
    for found in _ENGLISH.findall(text):
        words = re.findall(r"[A-Za-z']+", found)
        if not all(w.lower().strip("'") in ALLOWED_LATIN for w in words):
            leaks.append(found)
    return leaks


def without(text, user_data):
    """``text`` with what people typed taken out (longest first: an address before the name inside it)."""
    for value in sorted(user_data, key=len, reverse=True):
        text = text.replace(value, " ")
    return text


def han_leaks(text, user_data):
    """Han text on an English page that is not user data."""
    return _HAN.findall(without(text, user_data))


@pytest.fixture(scope="module")
def report_token(demo_app):
    """A resident's report in the demo: its status page is a public page."""
    with a_resident_report(demo_app) as token:
        yield token


@pytest.fixture(scope="module")
def user_data(demo_app, report_token):
    """What people typed into the demo's store: names of people and organisations, addresses, descriptions."""
    store = demo_app.extensions["gridmap.store"]
    columns = [m.GridWorker.name, m.Resident.name, m.Volunteer.name, m.PartyMember.name, m.PartyOrganization.name,
               m.Responder.name, m.User.display_name, m.Building.address, m.Incident.description,
               m.Incident.address, m.Courtyard.name, m.Camera.name, m.Community.service_centre,
               m.Community.service_address, m.Incident.reporter_name, m.Road.name, m.Household.unit,
               m.ImportBatch.source, m.ImportBatch.user]
    found = set()
    with store.session() as s:
        for column in columns:
            found.update(v for v in s.scalars(select(column).distinct()) if v)
    return found


def client_for(app, role):
    client = app.test_client()
    if role:
        app.config["WTF_CSRF_ENABLED"] = False
        r = client.post("/login", data={"username": ACCOUNTS[role], "password": DEMO_PASSWORD})
        app.config["WTF_CSRF_ENABLED"] = True
        assert r.status_code == 302
    return client


def pages_of(app, role, token):
    """Every page ``role`` may open: the header's pages, the public ones, a report's status page and the error pages."""
    with app.test_request_context():
        paths = [url_for(endpoint) for endpoint, _ in nav.PAGES if nav.may_open(role, endpoint)]
        refused = next((url_for(e) for e, _ in nav.PAGES if not nav.may_open(role, e) and nav.required_action(e)),
                       None)
    paths += ["/", f"/reports/{token}", "/no-such-page"]
    if role and refused:
        paths.append(refused)  # the 403 page
    return sorted(set(paths))


@pytest.fixture(scope="module")
def rendered(demo_app, report_token):
    """(role, lang, path) → (status, visible text) for every page of every role in both languages."""
    out = {}
    for role in ACCOUNTS:
        client = client_for(demo_app, role)
        for lang in ("zh", "en"):
            client.get(f"/?lang={LANG[lang]}")  # the switch: remembered for the session
            for path in pages_of(demo_app, role, report_token):
                r = client.get(path)
                out[role, lang, path] = (r.status_code, visible_text(r.get_data(as_text=True)))
    return out


def test_the_walk_covers_each_roles_pages_and_the_error_pages(rendered):
    statuses = {(role, path): status for (role, lang, path), (status, _) in rendered.items() if lang == "zh"}
    assert statuses[None, "/"] == 200 and statuses[None, "/no-such-page"] == 404
    assert statuses["planner", "/planner"] == 200 and statuses["admin", "/admin/imports"] == 200
    assert statuses["grid_worker", "/worker/"] == 200 and statuses["dispatcher", "/dispatch/"] == 200
    assert 403 in {s for (role, _), s in statuses.items() if role == "dispatcher"}
    assert all(s == 200 for (_, path), s in statuses.items() if path.startswith("/reports/"))


@pytest.mark.parametrize("role", list(ACCOUNTS), ids=[r or "public" for r in ACCOUNTS])
def test_chinese_pages_show_no_english_sentence(rendered, role, user_data):
    leaks = {path: english_leaks(without(text, user_data)) for (r, lang, path), (_, text) in rendered.items()
             if r == role and lang == "zh"}
    leaks = {path: found for path, found in leaks.items() if found}
    assert not leaks, leaks


@pytest.mark.parametrize("role", list(ACCOUNTS), ids=[r or "public" for r in ACCOUNTS])
def test_english_pages_show_no_chinese_but_what_people_typed(rendered, role, user_data):
    allowed = user_data | set(ALLOWED_HAN)
    leaks = {path: han_leaks(text, allowed) for (r, lang, path), (_, text) in rendered.items()
             if r == role and lang == "en"}
    leaks = {path: found for path, found in leaks.items() if found}
    assert not leaks, leaks


#: (role, map page): the maps the pages frame; their tooltips and popups live in the page's script
MAPS = [(None, "/map"), ("dispatcher", "/dispatch/map"), ("dispatcher", "/dispatch/stats/map"),
        ("grid_worker", "/worker/map"), ("planner", "/planner/map?plan={plan}")]


@pytest.fixture(scope="module")
def maps(demo_app):
    """(role, lang, path) → the whole HTML of each map page (scripts included: that is where its labels are)."""
    store = demo_app.extensions["gridmap.store"]
    with store.session() as s:
        plan = s.scalar(select(m.GridPlan.id).where(m.GridPlan.community_code == CHENGZHI,
                                                    m.GridPlan.status == "published"))
    out = {}
    for role in {r for r, _ in MAPS}:
        client = client_for(demo_app, role)
        for lang in ("zh", "en"):
            client.get(f"/?lang={LANG[lang]}")
            for r, path in MAPS:
                if r == role:
                    got = client.get(path.format(plan=plan))
                    assert got.status_code == 200, path
                    out[role, lang, path] = got.get_data(as_text=True)
    return out


CHENGZHI = "210213013004"


def test_maps_name_places_in_the_pages_language(maps, user_data):
    for (role, lang, path), page in maps.items():
        if lang == "en":
            # json-escaped text in the map's script: \u57ce… as well as 城…
            text = page.encode().decode("unicode_escape", errors="ignore") if "\\u" in page else page
            assert not han_leaks(text, user_data | set(ALLOWED_HAN)), (role, path, han_leaks(text, user_data)[:10])
    assert "Chengzhi Community" in maps[None, "en", "/map"] and "Chengzhi Community" not in maps[None, "zh", "/map"]


def test_english_place_names_come_from_the_store_and_chinese_pages_keep_the_chinese(demo_app, rendered):
    with demo_app.extensions["gridmap.store"].session() as s:
        community = s.get(m.Community, CHENGZHI)
        assert (community.name, community.name_en) == ("城志社区", "Chengzhi Community")
        assert (community.street.name_en, community.street.district.name_en) == (
            "Laohutan Subdistrict", "Zhongshan District") or community.street.name_en.endswith("Subdistrict")
    _, en = rendered["dispatcher", "en", "/dispatch/stats"]
    _, zh = rendered["dispatcher", "zh", "/dispatch/stats"]
    assert "Chengzhi Community" in en and "城志社区" not in en
    assert "城志社区" in zh and "Chengzhi Community" not in zh


def test_the_checks_find_what_they_look_for():
    assert english_leaks("网格 Grid planning 编号 210213013004 gridmap 5 km") == ["Grid planning"]
    assert english_leaks("共 3 个 CSV 文件，OpenStreetMap") == []
    assert han_leaks("Worker 王小明 of 城志社区", {"王小明"}) == ["城志社区"]
    assert visible_text('<p title="提示">a<script>var x="网格";</script></p>').split() == ["a", "提示"]
