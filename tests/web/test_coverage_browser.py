"""The camera coverage page in real (headless) Chromium: figures, one sector per camera, hatched blind spots."""
import re

import pytest

from conftest import staff_page
from gridmap import coverage
from gridmap.maps import cameras as camera_maps

pytestmark = pytest.mark.browser

YARD = "和合大院"
SCREENSHOT = "/tmp/gridmap-coverage.png"


@pytest.fixture(scope="module")
def expected(demo_app):
    with demo_app.extensions["gridmap.store"].session() as s:
        return coverage.report_for(s, YARD, min_blind_m2=demo_app.config.get("BLIND_SPOT_MIN_M2"), geometries=True)


def _paths(frame, cls):
    """Per SVG path of class ``cls``: its fill attribute and whether its own <svg> defines that pattern."""
    return frame.evaluate("""(cls) => Array.from(document.querySelectorAll("path." + cls)).map(p => {
        const fill = p.getAttribute("fill");
        const m = /^url\\(#(.+)\\)$/.exec(fill || "");
        const pattern = m ? p.ownerSVGElement.querySelector("defs pattern#" + CSS.escape(m[1])) : null;
        return {fill: fill, pattern: !!pattern, lines: pattern ? pattern.querySelectorAll("line").length : 0};
    })""", cls)


def test_a_dispatcher_sees_the_figures_one_sector_per_camera_and_hatched_blind_spots(browser, live_server, expected):
    context, page = staff_page(browser, live_server, "dispatcher", "/planner/coverage")
    try:
        # the place is chosen in the form, as a person would
        page.select_option("#place", YARD)
        page.get_by_role("button", name="显示").click()
        page.wait_for_url(re.compile(r"name="))

        assert page.locator("#f-cameras").inner_text() == "25" == str(expected["cameras"])
        assert page.locator("#f-percent").inner_text() == f"{expected['percent']:.1f} %"
        assert page.locator("#f-blind-count").inner_text() == str(expected["blind_count"])
        assert page.locator("#blind-spots tbody tr").count() == expected["blind_count"]

        page.frame_locator("#map").locator("path.gridmap-camera-view").first.wait_for()
        frame = page.frame(url=re.compile(r"/planner/coverage/map"))
        views = _paths(frame, "gridmap-camera-view")
        seeing = [v for v in expected["views"] if v["geometry"] is not None]
        assert len(views) == len(seeing) == 25
        # each sector is filled in its own camera's colour, in camera order
        assert [v["fill"] for v in views] == [camera_maps.camera_colour(v["id"]) for v in seeing]
        assert frame.locator("path.gridmap-camera-marker").count() == 25

        blind = _paths(frame, "gridmap-blind-spot")
        assert len(blind) == expected["blind_count"] > 0
        assert all(b["fill"] == f"url(#{camera_maps.HATCH_ID})" and b["pattern"] and b["lines"] == 1 for b in blind)
        frame.wait_for_function("() => !document.querySelector('.leaflet-zoom-anim')")  # a still picture
        page.screenshot(path=SCREENSHOT, full_page=True)

        # the blind spots are a layer of their own: unticking it removes the hatching, not the sectors
        frame.locator(".leaflet-control-layers-overlays label", has_text="盲区").locator("input").uncheck()
        assert frame.locator("path.gridmap-blind-spot").count() == 0
        assert frame.locator("path.gridmap-camera-view").count() == 25
    finally:
        context.close()
