"""Every map page says its map is loading (in the page's language), and the planner's legend explains
exactly the styles maps.planner draws with, in Chinese and in English (through the Flask test client)."""
import html
import re
from urllib.parse import quote

import pytest

from gridmap.maps import planner as planner_maps

MAP_PAGES = [("/", "map"), ("/planner?community=210213013004", "map"),
             ("/planner/coverage?name=" + quote("和合大院"), "map"), ("/dispatch/", "map"),
             ("/dispatch/stats", "heatmap")]
TEXT = {"zh": ("地图加载中…", "地图加载失败，请刷新页面重试。", "图例", "网格边界", "您绘制的图形"),
        "en": ("Loading map…", "The map could not be loaded. Reload the page to try again.", "Legend",
               "Grid boundary", "Your drawing")}


@pytest.fixture
def admin(demo_app):
    demo_app.config["WTF_CSRF_ENABLED"] = False
    client = demo_app.test_client()
    assert client.post("/login", data={"username": "admin", "password": "gridmap-demo"}).status_code == 302
    return client


def _status(body, frame):
    """The status element announcing the map in iframe ``frame``, and its text."""
    found = re.search(r'<p class="map-status" role="status" aria-live="polite" data-map="%s"\s+'
                      r'data-failed="([^"]*)"><span[^>]*></span><span class="map-status-text">([^<]*)</span></p>' % frame,
                      body)
    assert found, f"no loading status for #{frame}"
    return html.unescape(found.group(1)), found.group(2)


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("path, frame", MAP_PAGES)
def test_every_map_page_announces_its_map_loading_in_the_page_language(admin, path, frame, lang):
    r = admin.get(path + ("&" if "?" in path else "?") + f"lang={lang}")
    assert r.status_code == 200, path
    body = r.get_data(as_text=True)
    failed, loading = _status(body, frame)
    assert (loading, failed) == TEXT[lang][:2]
    assert body.count('src="/static/mapwait.js"') == 1
    # the status comes before its iframe, inside the same positioned box
    assert body.index('data-map="%s"' % frame) < body.index('<iframe id="%s"' % frame)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_planner_legend_lists_every_style_of_the_map_in_the_page_language(admin, lang):
    body = admin.get(f"/planner?community=210213013004&lang={lang}").get_data(as_text=True)
    legend = body[body.index('id="legend"'):body.index("</section>", body.index('id="legend"'))]
    deviation, lines = planner_maps.legend()
    keys = re.findall(r'data-legend="([^"]+)"', legend)
    assert keys == [d["key"] for d in deviation] + [line["key"] for line in lines]
    # every deviation colour of the map's table, in its order
    assert re.findall(r'<rect[^>]*fill="(#[0-9a-f]{6})"', legend)[:len(planner_maps.DEVIATION_STEPS)] == \
        [colour for _, colour in planner_maps.DEVIATION_STEPS]
    # each line style as the map's own tables say: stroke, fill (none when unfilled) and dashes
    drawn = {k: (stroke, fill, dash) for k, stroke, fill, dash in re.findall(
        r'data-legend="([^"]+)" data-stroke="([^"]*)" data-fill="([^"]*)"\s+data-dash="([^"]*)"', legend)}
    d = planner_maps.DEPARTMENT
    assert drawn["department"] == (d["color"], "", d["dashArray"])
    assert drawn["warning"][2] == planner_maps.FINDING["warning"]["dashArray"] and drawn["error"][2] == ""
    assert drawn["grid"] == (planner_maps.GRID_OUTLINE["color"], "", "")
    for word in TEXT[lang][2:]:
        assert word in legend, (lang, word)
    other = TEXT["en" if lang == "zh" else "zh"]
    assert not any(word in legend for word in other[3:]), lang
    text = html.unescape(legend)
    assert "−15 % … −5 %" in text and "≥ +30 %" in text and "< −30 %" in text


def test_the_legend_labels_come_from_the_caller_and_default_to_english():
    _, lines = planner_maps.legend({"grid": "网格边界"})
    labels = {line["key"]: line["label"] for line in lines}
    assert labels["grid"] == "网格边界" and labels["sketch"] == "Your drawing"
    assert set(labels) == set(planner_maps.LEGEND_LABELS)
