"""The resident's page and its map, through the Flask test client on the Dalian demo."""
import html
import json
import re

import geopandas as gpd
import pytest
import shapely

from gridmap.maps.resident import grid_map

CHENGZHI = "210213013004"
CHENGZHI_GRIDS = [f"{CHENGZHI}{i:03d}" for i in range(1, 19)]
MASKED_MOBILE = re.compile(r"^1\d\d\*{4}\d{4}$")


def _config(body):
    """The JSON of translated words the page hands to resident.js."""
    raw = re.search(r'<script type="application/json" id="gridmap-config">(.*?)</script>', body, re.S).group(1)
    return json.loads(raw)


def _asset_urls(body):
    return re.findall(r'<script[^>]*\ssrc="([^"]+)"', body) + re.findall(r'<link[^>]*\shref="([^"]+)"', body)


def _inside(grid_code, demo_app):
    """A point surely inside a published grid (not on its edge)."""
    from gridmap.web.common import snapshot
    with demo_app.app_context():
        grids = snapshot().grids
    p = grids.loc[grids["code"] == grid_code].geometry.iloc[0].representative_point()
    return p.x, p.y


def test_the_page_is_chinese_by_default(demo_client):
    body = demo_client.get("/").get_data(as_text=True)
    assert '<html lang="zh-CN">' in body
    assert "<h1>找网格员</h1>" in body
    assert "使用我的位置" in body
    assert '<label for="address">您的地址</label>' in body
    assert _config(body)["text"]["outside"].startswith("此处不在本系统覆盖的任何社区内")


def test_lang_en_switches_the_page_and_its_script_words_to_english(demo_client):
    body = demo_client.get("/?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in body
    assert "<h1>Find my grid worker</h1>" in body
    assert "Use my location" in body
    assert "找网格员" not in body
    assert _config(body)["text"]["noWorkers"] == (
        "No grid worker is assigned to this grid yet; contact the community service centre.")


def test_the_language_choice_sticks_for_the_session(demo_client):
    demo_client.get("/?lang=en")
    later = demo_client.get("/").get_data(as_text=True)
    assert "<h1>Find my grid worker</h1>" in later
    assert '<strong class="lang current" lang="en" hreflang' not in later  # current language is not a link
    assert re.search(r'<strong class="lang current" lang="en"[^>]*>English</strong>', later)
    back = demo_client.get("/?lang=zh_CN").get_data(as_text=True)
    assert "<h1>找网格员</h1>" in back
    assert "<h1>找网格员</h1>" in demo_client.get("/").get_data(as_text=True)


def test_the_login_page_has_labelled_fields_and_a_csrf_token(demo_client):
    body = demo_client.get("/login?lang=en").get_data(as_text=True)
    assert '<label for="username">Username</label>' in body
    assert '<label for="password">Password</label>' in body
    assert re.search(r'name="csrf_token"[^>]*value="[^"]+"', body)


def test_the_map_loads_only_local_assets_and_outlines_every_chengzhi_grid(demo_client):
    body = demo_client.get(f"/map?community={CHENGZHI}").get_data(as_text=True)
    assert "L.map(" in body
    assets = _asset_urls(body)
    # Leaflet and the app's own label script, nothing from elsewhere
    assert sorted(assets) == ["/static/labels.js", "/static/vendor/leaflet/leaflet.css", "/static/vendor/leaflet/leaflet.js"]
    assert not re.search(r'(src|href)="(https?:)?//', body)
    for code in CHENGZHI_GRIDS:
        assert f"网格: {code}" in body, code
    assert "gridmap:click" in body  # taps are posted to the page
    # The vendored files really are served.
    leaflet = demo_client.get("/static/vendor/leaflet/leaflet.js")
    assert leaflet.get_data(as_text=True).lstrip().startswith("/* @preserve")
    leaflet.close()


def test_the_map_fills_the_chosen_grid_and_marks_the_point(demo_client, demo_app):
    lon, lat = _inside(CHENGZHI_GRIDS[4], demo_app)
    body = demo_client.get(f"/map?grid={CHENGZHI_GRIDS[4]}&lon={lon}&lat={lat}&lang=en").get_data(as_text=True)
    assert body.count('"fillColor": "#f97316"') == 1  # only the highlighted grid is filled
    assert f"[{lat}, {lon}]" in body  # the circle marker, Leaflet's lat/lon order
    assert "You are here" in body
    assert f"Grid: {CHENGZHI_GRIDS[0]}" in body  # the neighbours are drawn too


@pytest.mark.parametrize("query, named", [
    ("community=abc", "community='abc' is not a division code."),
    ("community=999999999999", "community='999999999999' has no published grids."),
    (f"grid={CHENGZHI}999", f"grid='{CHENGZHI}999' is not a published grid."),
    ("lon=abc&lat=39.06", "lon='abc' is not a number."),
    ("lon=121.74", "lat is missing."),
])
def test_the_map_with_bad_arguments_answers_400_naming_the_bad_value(demo_client, query, named):
    response = demo_client.get(f"/map?{query}&lang=en")
    body = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 400
    assert named in body
    assert "What to do:" in body


def test_a_hostile_grid_name_is_escaped_in_the_map():
    """Two hand-drawn grids side by side; the first is named like an attack.

        +-----+-----+
        | 001 | 002 |
        +-----+-----+
    """
    hostile = "<script>alert(1)</script>"
    grids = gpd.GeoDataFrame({"code": ["001", "002"], "name": [hostile, "`${alert(2)}`"]},
                             geometry=[shapely.box(0, 0, 0.01, 0.01), shapely.box(0.01, 0, 0.02, 0.01)], crs=4326)
    body = grid_map(grids, highlight="001", point=(0.005, 0.005)).get_root().render()
    assert hostile not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    # A JS string, not a template literal: ${...} stays inert text.
    assert '.bindTooltip("\\u003cstrong>`${alert(2)}`\\u003c/strong>' in body


def test_a_tile_url_without_attribution_is_refused_with_a_fix():
    from gridmap.errors import InvalidInput
    from gridmap.maps.base import base_map
    with pytest.raises(InvalidInput, match="MAP_TILES_ATTRIBUTION is empty"):
        base_map((0, 0, 1, 1), "https://tiles.example/{z}/{x}/{y}.png", "")
    m = base_map((0, 0, 1, 1), "https://tiles.example/{z}/{x}/{y}.png", "© Example")
    assert "https://tiles.example/{z}/{x}/{y}.png" in m.get_root().render()


def test_the_public_sees_only_masked_worker_phones(demo_client, demo_app, demo_frames):
    lon, lat = _inside(CHENGZHI_GRIDS[0], demo_app)
    response = demo_client.get(f"/api/v1/locate?lon={lon}&lat={lat}")
    where = response.get_json()
    assert where["grid"]["code"] == CHENGZHI_GRIDS[0]
    assert where["workers"], "the demo staffs every grid"
    assert all(MASKED_MOBILE.match(w["phone"]) for w in where["workers"])
    text = response.get_data(as_text=True)
    assert not any(str(p) in text for p in demo_frames["workers"]["phone"])


def test_the_overview_map_names_every_community_and_a_tap_on_its_dot_asks_about_the_community(demo_client, demo_app):
    import json

    from gridmap.web.common import snapshot
    body = demo_client.get("/map").get_data(as_text=True)
    items = json.loads(re.search(r"window\.gridmapLabels\.add\(\w+, (\[.*?\])\);", body, re.S).group(1))
    names = {i["text"] for i in items if i["kind"] == "community"}
    assert names == {"城志社区", "林茂社区", "和合居社区", "久寿社区", "虎山社区"}
    with demo_app.app_context():
        snap = snapshot()
    for item in items:
        if item["kind"] == "community":
            # the name's anchor lies in its own community: a tap there (posted as the map's click) finds it
            assert snap.locate(item["lng"], item["lat"])["community"]["code"] == item["key"].split(":")[1]
    assert body.count("L.DomEvent.stopPropagation(e)") == 5  # each dot zooms to its community
    assert body.count("var at = ") == 5  # and asks about the place it stands on
