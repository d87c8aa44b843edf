"""The city dashboard in real (headless) Chromium at desktop and phone size: open it, drill down city → district →
street → community → grid by clicking rows, climb back by the breadcrumbs; the embedded city map (gridmap.maps.city)
shows the area's children at the zoom where their layer is drawn, coloured by the chosen KPI with a legend, and a
click of an area on it drills the dashboard down."""
import datetime as dt
import re

import pytest

import dispatch_world as world_
from conftest import at, make_app, serving

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DISTRICT, STREET = "210213000000", "210213013000"
SIZES = {"desktop": {"width": 1400, "height": 1000}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """tests/dispatch_world.py's community with incidents in both grids, served with CSRF checks on."""
    from gridmap import dispatch
    app, cleanup = make_app(tmp_path_factory.mktemp("dashboard-browser"), "sqlite")
    store = app.extensions["gridmap.store"]
    world_.build(store)
    snap = app.extensions["gridmap.snapshots"].get()
    with store.transaction() as s:
        for xy in ((50, 50), (150, 120), (250, 80)):
            dispatch.report(s, snap, category="noise", lon=at(*xy)[0], lat=at(*xy)[1], now=world_.T0)
    app.config["WTF_CSRF_ENABLED"] = True
    with serving(app) as url:
        yield app, url
    store.dispose()
    cleanup()


def _signed_in(browser, base, size):
    context = browser.new_context(viewport=SIZES[size], locale="zh-CN")
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base)
                  or route.request.url.startswith("data:") else route.abort())
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.set_default_timeout(10000)
    page.goto(f"{base}/login?next=/dashboard")
    page.fill("#username", "admin")
    page.fill("#password", world_.PASSWORD)
    page.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/dashboard$"))
    return context, page


def _row(page, code):
    return page.locator(f'#by-child tr[data-code="{code}"]')


COLOURS = ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"]  # city.js's classes, lowest first; no figure: grey


def _map_shows(page, layer):
    """Wait until the dashboard has placed the map on its area with ``layer`` the one drawn, and its tiles are in;
    return the fill colour of each feature of ``layer`` drawn (code → colour)."""
    page.wait_for_selector(f'#dashboard-map .folium-map[data-placed="{layer}"]', state="attached")
    page.wait_for_function(
        """(layer) => GridmapCityMap.activeLevel() === layer && !GridmapCityMap.map._animatingZoom
             && Object.keys(GridmapCityMap.layers[layer]._tiles).length > 0
             && Object.values(GridmapCityMap.layers[layer]._tiles).every(t => t.loaded)""", arg=layer)
    return page.evaluate("""(layer) => { const out = {};
        for (const t of Object.values(GridmapCityMap.layers[layer]._vectorTiles))
          for (const [code, f] of Object.entries(t._features || {})) out[code] = f.feature.options.fillColor;
        return out; }""", layer)


def _legend(page):
    return page.locator("#city-legend").inner_text()


def _screen_point(page, lon, lat):
    p = page.evaluate("([lat, lon]) => { const pt = GridmapCityMap.map.latLngToContainerPoint([lat, lon]);"
                      " const r = GridmapCityMap.map.getContainer().getBoundingClientRect();"
                      " return [r.left + pt.x, r.top + pt.y]; }", [lat, lon])
    return p[0], p[1]


@pytest.mark.parametrize("size", sorted(SIZES))
def test_drill_down_from_the_city_to_a_grid_and_back(browser, server, size):
    _, base = server
    context, page = _signed_in(browser, base, size)
    try:
        day = world_.T0.date().isoformat()
        page.goto(f"{base}/dashboard?from={day}&to={day}&period=day")
        assert page.locator("#k-reported strong").inner_text() == "3"
        assert page.locator("#k-closure-rate").inner_text().startswith("结案率")
        # the city: the map at the districts' zooms (8–9), the district filled by the first KPI, with its legend
        reported, opened = (page.locator(f"#map-kpi option[value={k}]").inner_text() for k in ("reported", "open"))
        assert _map_shows(page, "districts") == {DISTRICT: COLOURS[0]}
        assert 8 <= page.evaluate("GridmapCityMap.map.getZoom()") <= 9
        assert f"{reported} · 全市" in _legend(page)
        page.select_option("#map-kpi", "open")
        assert f"{opened} · 全市" in _legend(page) and _map_shows(page, "districts") == {DISTRICT: COLOURS[0]}
        for level, code, layer in (("district", DISTRICT, "streets"), ("street", STREET, "communities"),
                                   ("community", world_.COMMUNITY, "grids")):
            _row(page, code).locator("td.num").first.click()  # the row, not its link: the script drills down
            page.wait_for_url(re.compile(rf"level={level}&code={code}"))
            assert page.locator(".crumbs [aria-current=page]").count() == 1
            _map_shows(page, layer)  # each level's children drawn where their tiles are (z10, z12, z14 up)
        assert sorted(page.locator("#by-child tbody tr[data-code]").evaluate_all(
            "rows => rows.map(r => r.dataset.code)")) == [world_.G1, world_.G2]
        assert page.locator(f'#by-child tr[data-code="{world_.G1}"] td.num').first.inner_text() == "2"
        # the grids coloured by what the table says: 2 reported in the first, 1 in the second
        assert _map_shows(page, "grids") == {world_.G1: COLOURS[1], world_.G2: COLOURS[0]}
        assert page.evaluate("GridmapCityMap.map.getZoom()") >= 14
        assert f"{reported} · 城志社区" in _legend(page) and "≤ 1" in _legend(page)
        # a click on the second grid on the map drills the dashboard down to it, as its row does
        page.locator("#dashboard-map").scroll_into_view_if_needed()  # on a phone it is below the figures
        # a point of the second grid not under the legend or the picker (on a phone they cover part of the map)
        xy = next(p for p in (_screen_point(page, *at(x, y)) for x, y in ((300, 100), (230, 170), (230, 30), (370, 170)))
                  if page.evaluate("([x, y]) => document.elementFromPoint(x, y).tagName", list(p)) == "CANVAS")
        page.mouse.click(*xy)
        page.wait_for_url(re.compile(rf"level=grid&code={world_.G2}"))
        assert "第2网格" in page.locator("h1").inner_text()
        assert page.locator("#k-reported strong").inner_text() == "1"
        _map_shows(page, "grids")
        assert page.locator(".crumbs li").count() == 5
        # nothing wider than the screen: wide tables scroll inside their box
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        page.locator(".crumbs a", has_text="湾里街道").click()
        page.wait_for_url(re.compile(rf"level=street&code={STREET}"))
        assert page.locator("#k-reported strong").inner_text() == "3"
        assert _map_shows(page, "communities")[world_.COMMUNITY] == COLOURS[0]
        assert 12 <= page.evaluate("GridmapCityMap.map.getZoom()") <= 13  # back out to the communities' zooms
        assert page.errors == []
        assert f"from={day}" in page.url and dt.date.fromisoformat(page.input_value("input[name=from]")) == \
            world_.T0.date()
    finally:
        context.close()
