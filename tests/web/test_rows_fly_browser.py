"""A row of a list flies its map there, in real (headless) Chromium: the coverage page's blind spots and the
planner's grid table, by mouse and by keyboard. (The dispatcher's incident rows: test_dispatch_browser.py.)"""
import re

import pytest
import shapely

from conftest import staff_page
from gridmap import coverage

pytestmark = pytest.mark.browser

YARD = "和合大院"
CHENGZHI = "210213013004"

CENTRE = """() => { const m = Object.values(window).find(v => v instanceof L.Map); const c = m.getCenter();
                    return [c.lat, c.lng, m.getZoom()]; }"""


def _centred_on(frame, box, tolerance_px=3):
    """Wait until the map's centre is the middle of ``box`` (minx, miny, maxx, maxy), as Leaflet's fit puts it,
    within a few pixels at the map's zoom; answers the zoom."""
    minx, miny, maxx, maxy = box
    frame.wait_for_function("""([lat, lng, tol]) => {
        const m = Object.values(window).find(v => v instanceof L.Map);
        const a = m.latLngToContainerPoint(m.getCenter()), b = m.latLngToContainerPoint([lat, lng]);
        return Math.abs(a.x - b.x) <= tol && Math.abs(a.y - b.y) <= tol;
    }""", arg=[(miny + maxy) / 2, (minx + maxx) / 2, tolerance_px])
    return frame.evaluate(CENTRE)[2]


def _highlighted(frame):
    """The outline fly.js draws: its bounds as (minx, miny, maxx, maxy)."""
    frame.locator(".gridmap-flown").first.wait_for()
    b = frame.evaluate("""() => { let out = null; const m = Object.values(window).find(v => v instanceof L.Map);
        m.eachLayer(l => { if (l.options && l.options.className === "gridmap-flown" && l.getBounds) {
            const b = l.getBounds(); out = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; } });
        return out; }""")
    return b


@pytest.fixture(scope="module")
def blind_spots(demo_app):
    with demo_app.extensions["gridmap.store"].session() as s:
        report = coverage.report_for(s, YARD, min_blind_m2=demo_app.config.get("BLIND_SPOT_MIN_M2"), geometries=True)
    return [shapely.geometry.shape(b["geometry"]) for b in report["blind_spots"]]


@pytest.mark.parametrize("size", [{"width": 1400, "height": 1000}, {"width": 390, "height": 844}], ids=["desktop", "phone"])
def test_a_blind_spot_row_flies_the_coverage_map_to_that_blind_spot_and_outlines_it(browser, live_server, blind_spots,
                                                                                     size):
    assert len(blind_spots) >= 2
    context, page = staff_page(browser, live_server, "dispatcher", "/planner/coverage")
    try:
        page.set_viewport_size(size)
        page.goto(f"{live_server}/planner/coverage?name={YARD}")
        page.frame_locator("#map").locator("path.gridmap-blind-spot").first.wait_for()
        frame = page.frame(url=re.compile(r"/planner/coverage/map"))
        rows = page.locator("#blind-spots tbody tr")

        last = len(blind_spots)  # the smallest, far from the middle the map opens on
        rows.nth(last - 1).click()
        _centred_on(frame, blind_spots[last - 1].bounds)
        view = frame.evaluate("""() => { const b = Object.values(window).find(v => v instanceof L.Map).getBounds();
                                         return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; }""")
        assert shapely.box(*view).contains(blind_spots[last - 1])  # all of it in view
        assert _highlighted(frame) == pytest.approx(blind_spots[last - 1].bounds, abs=1e-6)

        # the keyboard: Tab reaches the rows, Enter and Space open one
        rows.nth(0).focus()
        assert page.evaluate("() => document.activeElement.getAttribute('data-key')") == "blind:1"
        page.keyboard.press("Enter")
        _centred_on(frame, blind_spots[0].bounds)
        assert _highlighted(frame) == pytest.approx(blind_spots[0].bounds, abs=1e-6)
        rows.nth(1).focus()
        page.keyboard.press(" ")
        _centred_on(frame, blind_spots[1].bounds)
        # the focused row is marked plainly
        assert page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle") == "solid"
    finally:
        context.close()


def test_the_planners_grid_rows_are_reached_by_keyboard_select_the_grid_and_fly_the_map_there(browser, live_server,
                                                                                              demo_app):
    from gridmap.web.common import snapshot
    with demo_app.app_context():
        grids = snapshot().grids.set_index("code")
    context, page = staff_page(browser, live_server, "planner", f"/planner?community={CHENGZHI}")
    try:
        page.locator("#metrics tbody tr").first.wait_for()
        page.frame_locator("#map").locator(".leaflet-container").wait_for()
        frame = page.frame(url=re.compile(r"/planner/map"))
        frame.wait_for_function("() => window.gridmapFly && window.gridmapPlanner")
        table = page.get_by_role("grid")
        assert table.get_attribute("aria-multiselectable") == "true"
        rows = page.locator("#metrics tbody tr")
        codes = [rows.nth(i).get_attribute("data-code") for i in range(rows.count())]

        # click a row: selected (for the map and for a screen reader) and the map flies to the grid
        rows.nth(2).click()
        _centred_on(frame, grids.loc[codes[2]].geometry.bounds)
        assert rows.nth(2).get_attribute("aria-selected") == "true"
        assert "selected" in rows.nth(2).get_attribute("class")

        # keyboard only: focus the first row, arrow down twice more, Space selects, Enter on another adds it
        rows.nth(0).focus()
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
        assert page.evaluate("() => document.activeElement.getAttribute('data-code')") == codes[3]
        assert page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle") == "solid"
        page.keyboard.press(" ")
        _centred_on(frame, grids.loc[codes[3]].geometry.bounds)
        assert _highlighted(frame) == pytest.approx(grids.loc[codes[3]].geometry.bounds, abs=1e-6)
        assert [rows.nth(i).get_attribute("aria-selected") for i in (2, 3)] == ["true", "true"]
        page.keyboard.press("ArrowUp")
        page.keyboard.press("Enter")  # the selected row again: unselected (as a second click on the map does)
        assert rows.nth(2).get_attribute("aria-selected") == "false"
        assert page.locator("#selection").inner_text().count(codes[3]) == 1
    finally:
        context.close()
