"""The camera coverage page and its map through the Flask test client: figures, blind spots, escaping, roles, names."""
import html
import json
import re

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import select

from conftest import login_client, make_app
from gridmap import coverage
from gridmap.geo.crs import local_metric_crs
from gridmap.maps import cameras as camera_maps
from gridmap.store import models as m

YARD = "和合大院"
HUSHAN = "210202012001"  # 虎山社区, around 和合大院


@pytest.fixture
def dispatcher(demo_app):
    yield login_client(demo_app, "dispatcher")
    demo_app.config["WTF_CSRF_ENABLED"] = True


def _report(app, name):
    with app.extensions["gridmap.store"].session() as s:
        return coverage.report_for(s, name, min_blind_m2=app.config.get("BLIND_SPOT_MIN_M2"), geometries=True)


def _text(body, id_):
    """The text inside the element of id ``id_``, tags dropped and entities decoded."""
    match = re.search(rf'id="{id_}"[^>]*>(.*?)</(?:strong|small|h2|p)>', body, re.S)
    assert match, f"no #{id_} in the page"
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip()


def _rows(body, table_id):
    table = re.search(rf'<table[^>]*id="{table_id}".*?<tbody>(.*?)</tbody>', body, re.S).group(1)
    return [[html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)]


def _layers(body):
    """Every folium GeoJson layer of a map page: (style dict, GeoJSON data), in drawing order."""
    styles = {name: json.loads(style) for name, style in re.findall(
        r"function geo_json_(\w+)_styler\(feature\) \{\s*switch\(feature\.id\) \{\s*default:\s*return (\{.*?\});",
        body, re.S)}
    data = re.findall(r"^\s*geo_json_(\w+)_add\((\{.*\})\);$", body, re.M)
    return [(styles[name], json.loads(d)) for name, d in data]


def _shapes(layers, class_name):
    return [shapely.geometry.shape(d["features"][0]["geometry"]) for style, d in layers
            if style.get("className") == class_name]


# --- figures -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [YARD, HUSHAN])
def test_the_page_shows_the_figures_and_tables_of_report_for(demo_app, dispatcher, name):
    r = _report(demo_app, name)
    body = dispatcher.get("/planner/coverage", query_string={"name": name, "lang": "en"}).get_data(as_text=True)
    assert _text(body, "place-name") == f"{'Courtyard' if r['kind'] == 'courtyard' else 'Community'}: {r['name']}"
    assert _text(body, "f-cameras") == str(r["cameras"])
    assert _text(body, "f-public") == f"{r['public_m2']:,.0f} m²"
    assert _text(body, "f-percent") == f"{r['percent']:.1f} %"
    assert _text(body, "f-blind-count") == str(r["blind_count"])
    assert _text(body, "f-blind-m2").startswith(f"{r['blind_m2']:,.0f} m²")
    lon, lat, m2 = r["largest_blind"]
    assert _text(body, "f-largest") == f"{m2:,.0f} m²"
    assert _text(body, "f-largest-at") == f"around {lon:.6f}, {lat:.6f}"
    assert _rows(body, "overlap") == [[str(c), f"{a:,.0f}", f"{100 * a / r['public_m2']:.1f} %"]
                                      for c, a in r["overlap"]]
    assert _rows(body, "blind-spots") == [[str(i), f"{b['m2']:,.0f}", f"{b['lon']:.6f}", f"{b['lat']:.6f}"]
                                          for i, b in enumerate(r["blind_spots"], 1)]
    assert [row[0] for row in _rows(body, "cameras")] == [v["name"] for v in r["views"]]
    assert 'src="/planner/coverage/map?name=' in body


def test_the_hehe_figures_are_those_the_command_prints(demo_app, dispatcher):
    """The page and `gridmap coverage` give the same figures: one report, two faces."""
    out = demo_app.test_cli_runner().invoke(args=["coverage", YARD]).output
    body = dispatcher.get("/planner/coverage", query_string={"name": YARD}).get_data(as_text=True)
    assert "25 cameras" in out and _text(body, "f-cameras") == "25"
    assert f"coverage {_text(body, 'f-percent')}" in out
    assert f"blind spots ≥ 4 m²: {_text(body, 'f-blind-count')}," in out
    assert 20 < float(_text(body, "f-percent").split()[0]) < 99


def test_the_page_is_in_chinese_by_default_and_english_on_request(dispatcher):
    zh = dispatcher.get("/planner/coverage", query_string={"name": YARD}).get_data(as_text=True)
    en = dispatcher.get("/planner/coverage", query_string={"name": YARD, "lang": "en"}).get_data(as_text=True)
    assert "<h1>监控覆盖</h1>" in zh and "覆盖率" in zh and "按可见摄像头数统计的面积" in zh
    assert "<h1>Camera coverage</h1>" in en and "Area by number of cameras seeing it" in en


def test_without_a_name_the_page_offers_every_courtyard_and_community(demo_app, dispatcher):
    r = dispatcher.get("/planner/coverage")
    body = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="figures"' not in body and 'id="map"' not in body
    with demo_app.extensions["gridmap.store"].session() as s:
        yards = s.scalars(select(m.Courtyard.name)).all()
        codes = s.scalars(select(m.Community.code)).all()
    values = re.findall(r'<option value="([^"]*)"', body)
    assert sorted(values) == sorted(set(yards) | set(codes))


# --- the map -----------------------------------------------------------------------------------------

def test_the_map_has_one_sector_per_camera_in_its_colour_and_the_hatched_blind_spots(demo_app, dispatcher):
    r = _report(demo_app, YARD)
    body = dispatcher.get("/planner/coverage/map", query_string={"name": YARD}).get_data(as_text=True)
    layers = _layers(body)
    views = [(s, d) for s, d in layers if s.get("className") == "gridmap-camera-view"]
    assert [s["fillColor"] for s, _ in views] == [camera_maps.camera_colour(v["id"]) for v in r["views"]]
    assert len(views) == 25
    # the hatched shapes are the report's blind spots: as many, with their areas
    blind = _shapes(layers, "gridmap-blind-spot")
    assert len(blind) == r["blind_count"] == 7
    assert all(s["fillColor"] == "url(#gridmap-blind-hatch)"
               for s, _ in layers if s.get("className") == "gridmap-blind-spot")
    crs = local_metric_crs(r["largest_blind"][0], r["largest_blind"][1])
    assert list(gpd.GeoSeries(blind, crs=4326).to_crs(crs).area) == pytest.approx([b["m2"] for b in r["blind_spots"]],
                                                                                  rel=1e-4)
    # the pattern the fill points to is defined once, in the map's SVG renderer
    assert body.count('"gridmap-blind-hatch", "#b91c1c");') == 1 and "getRenderer" in body
    # markers at the cameras, and only the vendored Leaflet
    assert body.count("gridmap-camera-marker") == 25
    assert all(s.startswith("/static/") for s in re.findall(r'<script[^>]*\ssrc="([^"]+)"', body))


def test_a_camera_named_like_markup_is_escaped_on_the_page_and_the_map(tmp_path, demo_frames):
    from gridmap import demo
    app, _ = make_app(tmp_path, "sqlite")
    demo.build(app.extensions["gridmap.store"], frames=demo_frames)
    evil = "<script>alert(1)</script>"
    with app.extensions["gridmap.store"].transaction() as s:
        cam = s.scalars(select(m.Camera).join(m.Courtyard, m.Camera.courtyard_id == m.Courtyard.id)
                        .where(m.Courtyard.name == YARD).order_by(m.Camera.id)).first()
        cam.name = evil
    client = login_client(app, "planner")
    page = client.get("/planner/coverage", query_string={"name": YARD}).get_data(as_text=True)
    assert evil not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert _rows(page, "cameras")[0][0] == evil  # shown as text, not run
    body = client.get("/planner/coverage/map", query_string={"name": YARD}).get_data(as_text=True)
    assert evil not in body and "<script>alert" not in body
    # in the tooltip string it is HTML-escaped text (and no "<" survives in the script)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    app.extensions["gridmap.store"].dispose()


# --- roles and bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("username", ["planner", "admin", "dispatcher"])
def test_planners_admins_and_dispatchers_may_see_the_page_and_the_map(demo_app, username):
    client = login_client(demo_app, username)
    try:
        page = client.get("/planner/coverage", query_string={"name": YARD})
        assert page.status_code == 200 and _text(page.get_data(as_text=True), "f-cameras") == "25"
        the_map = client.get("/planner/coverage/map", query_string={"name": YARD})
        assert the_map.status_code == 200 and "gridmap-camera-view" in the_map.get_data(as_text=True)
        assert 'href="/planner/coverage"' in page.get_data(as_text=True)  # the nav link
    finally:
        demo_app.config["WTF_CSRF_ENABLED"] = True


@pytest.mark.parametrize("url", ["/planner/coverage?name=和合大院", "/planner/coverage/map?name=和合大院"])
def test_a_grid_worker_gets_403_and_an_anonymous_visitor_the_login_page(demo_app, url):
    anonymous = demo_app.test_client().get(url)
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login?next=")
    worker = login_client(demo_app, "worker")
    try:
        r = worker.get(url)
        body = r.get_data(as_text=True)
        assert r.status_code == 403 and "网格员" in body and "gridmap-camera-view" not in body  # the page's language
        assert "25" not in re.sub(r"<[^>]+>", "", body.split("<main", 1)[1])  # no figure leaks
        assert 'href="/planner/coverage"' not in body  # and no nav link to a page it may not see
    finally:
        demo_app.config["WTF_CSRF_ENABLED"] = True


def test_an_unknown_name_is_a_404_page_with_the_message_the_fix_and_the_form(dispatcher):
    r = dispatcher.get("/planner/coverage", query_string={"name": "没有这个院", "lang": "en"})
    body = r.get_data(as_text=True)
    assert r.status_code == 404
    assert _text(body, "error").startswith('No courtyard or community is called "没有这个院".')
    assert "What to do:" in body and "12-digit community code" in body
    assert '<select name="name" id="place">' in body and 'id="figures"' not in body
    m404 = dispatcher.get("/planner/coverage/map", query_string={"name": "没有这个院"})
    assert m404.status_code == 404 and "没有这个院" in m404.get_data(as_text=True)


@pytest.mark.parametrize("name, status, named", [
    ("a\x00b", 400, "name holds the character U+0000 at position 1"),  # refused at the border, for every page
    ("院" * 200, 400, "at most 128"),
    ("   ", 200, None),  # blank is no choice yet, not an error
])
def test_bad_names_are_refused_at_the_border_naming_the_value(dispatcher, name, status, named):
    r = dispatcher.get("/planner/coverage", query_string={"name": name, "lang": "en"})
    body = html.unescape(r.get_data(as_text=True))
    assert r.status_code == status
    if named:
        assert named in body and ("Pick a place from the list" in body or "Remove control characters" in body)
    else:
        assert 'id="figures"' not in body and 'id="error"' not in body


def test_the_map_without_a_name_is_a_400_saying_what_to_send(dispatcher):
    r = dispatcher.get("/planner/coverage/map", query_string={"lang": "en"})
    body = html.unescape(r.get_data(as_text=True))
    assert r.status_code == 400 and "name is missing" in body and "?name=" in body


def test_on_each_backend_an_empty_store_offers_nothing_and_bad_names_never_reach_it(app):
    """The same answers on SQLite and PostGIS: no choices, a 404 naming the place, a 400 for a control character."""
    from gridmap import accounts
    with app.extensions["gridmap.store"].transaction() as s:
        accounts.create_user(s, "planner", "gridmap-demo", "planner")
    client = login_client(app, "planner")
    empty = client.get("/planner/coverage", query_string={"lang": "en"})
    assert empty.status_code == 200 and "<option" not in empty.get_data(as_text=True)
    assert "Choose a courtyard or a community" in empty.get_data(as_text=True)
    missing = client.get("/planner/coverage", query_string={"name": "和合大院", "lang": "en"})
    assert missing.status_code == 404 and 'No courtyard or community is called "和合大院"' in \
        html.unescape(missing.get_data(as_text=True))
    for url in ("/planner/coverage", "/planner/coverage/map"):
        r = client.get(url, query_string={"name": "和合\x00大院", "lang": "en"})
        assert r.status_code == 400 and "name holds the character U+0000 at position 2" in r.get_data(as_text=True)
