"""In real (headless) Chromium: each map page shows its "loading" status while the map's iframe is
still on its way, hides it once the map has drawn, says so when the map fails, runs without a CSP
violation, and every style the planner map draws is explained in its legend."""
from urllib.parse import quote

import pytest

from conftest import DEMO_PASSWORD, staff_page
from gridmap.maps import planner as planner_maps

pytestmark = pytest.mark.browser

MAP_PAGES = [("/", "#map"), ("/planner?community=210213013004", "#map"),
             ("/planner/coverage?name=" + quote("和合大院"), "#map"), ("/dispatch/", "#map"),
             ("/dispatch/stats", "#heatmap")]

COLLECT_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", e => window.__csp.push(
    `${e.violatedDirective} blocked ${e.blockedURI || "inline"} in ${e.sourceFile || location.href}`));
"""


def _framed_document(route):
    request = route.request
    return request.resource_type == "document" and request.frame.parent_frame is not None


def _violations(page):
    return [v for f in page.frames for v in f.evaluate("() => window.__csp || []")]


@pytest.fixture
def admin_page(browser, live_server):
    context, page = staff_page(browser, live_server, "admin", "/")
    context.add_init_script(COLLECT_VIOLATIONS)
    yield page
    context.close()


@pytest.mark.parametrize("path, frame", MAP_PAGES)
def test_the_loading_status_shows_until_the_map_has_drawn(admin_page, live_server, path, frame):
    page, held, released = admin_page, [], []
    # The map's document is held back, so "before the map drew" is a state the test can look at.
    page.route("**/*", lambda route: held.append(route) if _framed_document(route) and not released
               else route.continue_())
    page.goto(live_server + path, wait_until="domcontentloaded")
    status = page.locator(f'.map-status[data-map="{frame[1:]}"]')
    page.wait_for_function("() => window.gridmapMapWait === true")
    while not held:
        page.wait_for_timeout(50)  # the planner asks for its map once it has the plan
    assert status.is_visible()
    assert (status.get_attribute("role"), status.get_attribute("aria-live")) == ("status", "polite")
    assert status.inner_text().strip() == "地图加载中…"
    assert page.frame_locator(frame).locator(".leaflet-container").count() == 0

    released.append(True)
    held.pop().continue_()
    page.frame_locator(frame).locator(".leaflet-container").wait_for()
    status.wait_for(state="hidden")
    assert _violations(page) == [], path


def _held_until_released(page):
    """Hold every framed document (the maps) until the test releases them: (held routes, release())."""
    held, released = [], []
    page.route("**/*", lambda route: held.append(route) if _framed_document(route) and not released
               else route.fallback())  # the context's own routes (nothing but the server) still apply

    def release():
        released.append(True)
        while held:
            held.pop().continue_()
    return held, release


def _waits_then_draws(page, frame, held, release):
    status = page.locator(f'.map-status[data-map="{frame[1:]}"]')
    page.wait_for_function("() => window.gridmapMapWait === true")
    for _ in range(400):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the map's document was never asked for"
    assert status.is_visible() and status.inner_text().strip() == "地图加载中…"
    assert page.frame_locator(frame).locator(".leaflet-container").count() == 0
    release()
    page.frame_locator(frame).locator(".leaflet-container").wait_for()
    # hidden only once the map's layers are in: the iframe's load comes after its scripts drew them
    status.wait_for(state="hidden")
    assert page.frame_locator(frame).locator("path.leaflet-interactive").count() > 0
    assert _violations(page) == []


def test_the_workbench_map_shows_its_loading_status_until_drawn(browser, live_server):
    # the two map pages of MAP_PAGES' admin cannot open: the grid worker's workbench …
    # (its service worker blocked: the map's request would go through it, past the test's hold)
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", service_workers="block")
    context.add_init_script(COLLECT_VIOLATIONS)
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(live_server)
                  or route.request.url.startswith("data:") else route.abort())
    try:
        page = context.new_page()
        page.set_default_timeout(10000)
        held, release = _held_until_released(page)
        page.goto(f"{live_server}/login?next=/worker/")
        page.fill("#username", "worker")
        page.fill("#password", DEMO_PASSWORD)
        page.locator("button[type=submit]").click()
        page.wait_for_url(f"{live_server}/worker/", wait_until="domcontentloaded")
        _waits_then_draws(page, "#map", held, release)
    finally:
        context.close()


def test_the_import_preview_map_shows_its_loading_status_until_drawn(browser, live_server):
    # … and an upload's preview, which exists only once a file is uploaded
    import re

    from test_imports_page import buildings_geojson
    context, page = staff_page(browser, live_server, "admin", "/admin/imports", timeout=30000)
    context.add_init_script(COLLECT_VIOLATIONS)
    try:
        held, release = _held_until_released(page)
        page.set_input_files("#file", files=[{"name": "楼栋.geojson", "mimeType": "application/geo+json",
                                              "buffer": buildings_geojson()}])
        page.select_option("#kind", "buildings")
        page.locator("#upload-form button[type=submit]").click()
        page.wait_for_url(re.compile(r"/admin/imports/[A-Za-z0-9_-]{22}$"), wait_until="domcontentloaded")
        _waits_then_draws(page, "#map", held, release)
    finally:
        context.close()


def test_a_map_that_fails_says_so(admin_page, live_server):
    page = admin_page
    page.route("**/*", lambda route: route.fulfill(status=500, content_type="text/html", body="<p>oops</p>")
               if _framed_document(route) else route.continue_())
    page.goto(live_server + "/dispatch/stats")
    status = page.locator('.map-status[data-map="heatmap"]')
    page.wait_for_function("() => document.querySelector('.map-status.error') !== null")
    assert status.is_visible() and status.inner_text().strip() == "地图加载失败，请刷新页面重试。"
    assert _violations(page) == []


def test_every_style_the_planner_map_draws_is_in_its_legend(admin_page, live_server):
    page = admin_page
    page.goto(live_server + "/planner?community=210213013004")
    deviation, lines = planner_maps.legend()
    legend = page.locator("#legend li[data-legend]")
    assert [legend.nth(i).get_attribute("data-legend") for i in range(legend.count())] == \
        [d["key"] for d in deviation] + [line["key"] for line in lines]
    assert legend.first.is_visible()
    status = page.locator('.map-status[data-map="map"]')

    def drawn_styles():
        page.frame_locator("#map").locator("path.leaflet-interactive").first.wait_for()
        status.wait_for(state="hidden")
        return page.frame_locator("#map").locator(".leaflet-overlay-pane path").evaluate_all(
            """paths => paths.map(p => [p.getAttribute("stroke"), p.getAttribute("fill"),
                                        p.getAttribute("stroke-dasharray") || ""])""")

    fills = {d["fill"] for d in deviation} | {line["fill"] for line in lines if line["fill"]}
    pairs = {(line["stroke"], line["dash"] or "") for line in lines}
    drawn_styles()
    # What the map draws on the page's request: a selected grid, a finding picked from the list (the
    # published plan opens read-only, without the sketch).
    code = page.locator("#metrics tr[data-code]").first.get_attribute("data-code")
    square = page.frame(url=lambda url: "/planner/map" in url).evaluate("""() => {
        const reg = window.gridmapPlanner, c = reg.map.getCenter(), d = 0.0005;
        const square = {type: "Polygon", coordinates: [[[c.lng - d, c.lat - d], [c.lng + d, c.lat - d],
                        [c.lng + d, c.lat + d], [c.lng - d, c.lat + d], [c.lng - d, c.lat - d]]]};
        return square;
    }""")
    page.evaluate("""([code, square]) => {  // as planner.js does: only the embedding page may steer the map
        const map = document.getElementById("map").contentWindow;
        map.postMessage({type: "gridmap:select", grids: [code], buildings: []}, location.origin);
        map.postMessage({type: "gridmap:problem", geometry: square}, location.origin);
    }""", [code, square])
    problem = (planner_maps.PROBLEM["color"], planner_maps.PROBLEM["dashArray"])
    page.frame_locator("#map").locator(f'path[stroke="{problem[0]}"][stroke-dasharray="{problem[1]}"]').wait_for()
    seen = drawn_styles()
    for style in (planner_maps.SELECTED_GRID, planner_maps.PROBLEM, planner_maps.GRID_OUTLINE, planner_maps.BUILDING):
        assert any(stroke == style["color"] for stroke, _, _ in seen), style
    for stroke, fill, dash in seen:
        assert (stroke, dash) in pairs, (stroke, dash)
        assert fill == "none" or fill in fills, fill
    assert _violations(page) == []
