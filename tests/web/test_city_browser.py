"""The city map in real (headless) Chromium: vector tiles drawn by the vendored VectorGrid, panned
and zoomed, a grid clicked for its popup and drill-down, a community clicked to drill down to its
grids, and the page's JS API (colour, flyTo, the gridmap:area event)."""
import pytest

from conftest import DEMO_PASSWORD, make_app, serving, staff_page
from gridmap import accounts
from gridmap.store import models as m
from test_tiles import build_world, stored_grids

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    app, _ = make_app(tmp_path_factory.mktemp("city"), "sqlite")
    store = app.extensions["gridmap.store"]
    build_world(store)
    with store.transaction() as s:
        accounts.create_user(s, "admin", DEMO_PASSWORD, "admin")
        accounts.create_user(s, "planner", DEMO_PASSWORD, "planner")
    with serving(app) as url:
        yield app, url
    store.dispose()


def _wait_tiles(page, level, at_least=1):
    page.wait_for_function(
        """([level, n]) => window.GridmapCityMap && GridmapCityMap.layers[level]
             && Object.keys(GridmapCityMap.layers[level]._tiles).length >= n
             && Object.values(GridmapCityMap.layers[level]._tiles).every(t => t.loaded)""", arg=[level, at_least])


def _screen_point(page, lon, lat):
    """Where (lon, lat) is on the page, in CSS pixels."""
    p = page.evaluate("([lat, lon]) => { const pt = GridmapCityMap.map.latLngToContainerPoint([lat, lon]);"
                      " const r = GridmapCityMap.map.getContainer().getBoundingClientRect();"
                      " return [r.left + pt.x, r.top + pt.y]; }", [lat, lon])
    return p[0], p[1]


def test_pan_zoom_and_click_a_grid_for_its_popup_and_drill_down(browser, city):
    app, url = city
    grids = stored_grids(app.extensions["gridmap.store"]).set_index("code")
    context, page = staff_page(browser, url, "admin", "/city")
    tiles = []
    page.on("response", lambda r: tiles.append((r.url, r.status)) if "/tiles/" in r.url else None)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.wait_for_function("() => window.GridmapCityMap")
        assert page.locator("header").inner_text().count("城市地图") == 1  # the header links the page
        # out to street level: districts and streets drawn, no grid tile asked for at that zoom
        page.evaluate("() => GridmapCityMap.map.setZoom(11, {animate: false})")
        _wait_tiles(page, "streets")
        z0 = page.evaluate("() => GridmapCityMap.map.getZoom()")
        assert z0 == 11 and page.evaluate("() => GridmapCityMap.activeLevel()") == "streets"
        asked = [int(u.split("/tiles/")[1].split("/")[1]) for u, _ in tiles if "/tiles/grids/" in u]
        assert asked and min(asked) >= 14  # below the grids' legible zoom no tile is even asked for
        assert any("/tiles/streets/11/" in u or "/tiles/streets/10/" in u for u, _ in tiles)
        # zoom in with the control, then pan by dragging the map
        page.locator(".leaflet-control-zoom-in").click()
        page.wait_for_function("(z) => GridmapCityMap.map.getZoom() === z + 1 && !GridmapCityMap.map._animatingZoom",
                               arg=z0)
        page.wait_for_timeout(400)  # the zoom's CSS transition ends after Leaflet's flag
        box = page.locator("#city-map").bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        before = page.evaluate("() => GridmapCityMap.map.getCenter()")
        page.mouse.move(cx, cy)
        page.mouse.down()
        page.mouse.move(cx - 150, cy - 80, steps=8)
        page.mouse.up()
        after = page.evaluate("() => GridmapCityMap.map.getCenter()")
        assert after["lng"] > before["lng"] and after["lat"] < before["lat"]
        # to grid level, over one grid, and click it
        code = grids.index[13]
        g = grids.loc[code].geometry
        c = g.representative_point()
        page.evaluate("([lat, lon]) => GridmapCityMap.map.setView([lat, lon], 15, {animate: false})", [c.y, c.x])
        _wait_tiles(page, "grids")
        assert page.evaluate("() => GridmapCityMap.activeLevel()") == "grids"
        page.evaluate("() => { window.heard = []; document.addEventListener('gridmap:area', e => heard.push(e.detail)); }")
        page.mouse.click(*_screen_point(page, c.x, c.y))
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for()
        text = popup.inner_text()
        row = grids.loc[code]
        assert code in text and row["name"] in text and f"户数: {row['households']}" in text
        assert page.evaluate("() => window.heard") == [{"level": "grids", "code": code, "name": row["name"]}]
        # the drill-down zooms to the grid: centred on it, and all of it in view
        page.wait_for_function("([lat, lon]) => GridmapCityMap.map.getBounds().contains([[%f, %f], [%f, %f]])"
                               % (g.bounds[1], g.bounds[0], g.bounds[3], g.bounds[2]), arg=[c.y, c.x])
        assert page.evaluate("() => GridmapCityMap.map.getZoom()") >= 14
        statuses = {s for u, s in tiles if "/tiles/grids/" in u}
        assert statuses <= {200, 204, 304} and 200 in statuses
        assert errors == []
    finally:
        context.close()


def test_a_community_click_drills_down_to_its_grids_and_the_api_colours_and_flies(browser, city):
    app, url = city
    store = app.extensions["gridmap.store"]
    grids = stored_grids(store).set_index("code")
    community = grids.index[0][:12]
    with store.session() as s:
        outline = s.get(m.Community, community).geom
    c = outline.representative_point()
    context, page = staff_page(browser, url, "planner", "/city")
    try:
        page.wait_for_function("() => window.GridmapCityMap")
        page.evaluate("([lat, lon]) => GridmapCityMap.map.setView([lat, lon], 13, {animate: false})", [c.y, c.x])
        _wait_tiles(page, "communities")
        assert page.evaluate("() => GridmapCityMap.activeLevel()") == "communities"
        page.mouse.click(*_screen_point(page, c.x, c.y))
        page.locator(".leaflet-popup-content").wait_for()
        assert community in page.locator(".leaflet-popup-content").inner_text()
        page.wait_for_function("() => GridmapCityMap.map.getZoom() >= 14")  # the next level: its grids
        page.wait_for_function("() => GridmapCityMap.activeLevel() === 'grids'")
        # a planner sees no incident points (the permission table) and asks for none
        assert page.evaluate("() => 'incidents' in GridmapCityMap.layers") is False
        # the dashboard's API: colour the grids by its own figures, with a legend titled by it
        values = {code: i for i, code in enumerate(grids.index)}
        page.evaluate("(v) => GridmapCityMap.colour('grids', v, '结案率', [10, 20, 30, 40])", values)
        legend = page.locator("#city-legend").inner_text()
        assert "结案率" in legend and "30 – 40" in legend and "> 40" in legend
        # the selector goes back to a property of the tiles
        page.select_option("#city-colour-by", "workers")
        assert "网格员" in page.locator("#city-legend").inner_text()
        # flyTo a district: its whole outline in view at district level
        d = grids.index[-1][:6] + "000000"
        page.evaluate("(d) => GridmapCityMap.flyTo('districts', d)", d)
        page.wait_for_function("() => GridmapCityMap.map.getZoom() < 10")
        assert page.evaluate("() => GridmapCityMap.activeLevel()") == "districts"
    finally:
        context.close()
