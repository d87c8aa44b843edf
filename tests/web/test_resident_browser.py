"""The resident's page in real (headless) Chromium: type-ahead, map taps, language switch."""
import re

import pytest

pytestmark = pytest.mark.browser

CHENGZHI = "210213013004"
MASKED_MOBILE = r"1\d\d\*{4}\d{4}"
SCREENSHOT = "/tmp/gridmap-resident.png"


def _a_home(demo_client):
    """A 城志 address with a staffed grid: (what to type, its place in the list, address, API answer)."""
    for hit in demo_client.get("/api/v1/addresses?q=城志&limit=50").get_json():
        where = demo_client.get(f"/api/v1/locate?lon={hit['lon']}&lat={hit['lat']}").get_json()
        if where.get("grid") and where["workers"]:
            typed = hit["address"].split("街道")[-1][:-1]  # part of it, as a resident types
            shown = [h["address"] for h in demo_client.get(f"/api/v1/addresses?q={typed}&limit=8").get_json()]
            return typed, shown.index(hit["address"]), hit["address"], where
    raise AssertionError("no 城志 address lies in a staffed grid")


def _grid_point(demo_app, code):
    from gridmap.web.common import snapshot
    with demo_app.app_context():
        grids = snapshot().grids
    p = grids.loc[grids["code"] == code].geometry.iloc[0].representative_point()
    return p.x, p.y


def _tap_map_at(page, lon, lat):
    """Click the map iframe where Leaflet draws (lon, lat)."""
    frame = page.frame_locator("#map")
    frame.locator(".leaflet-container").wait_for()
    x, y = page.frame(url=re.compile(r"/map")).evaluate(
        """([lat, lon]) => {
            const map = Object.values(window).find(v => v instanceof L.Map);
            const p = map.latLngToContainerPoint([lat, lon]);
            return [p.x, p.y];
        }""", [lat, lon])
    page.locator("#map").scroll_into_view_if_needed()
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + 1 + x, box["y"] + 1 + y)  # +1: the iframe's border


def test_a_resident_finds_their_worker_by_address_then_by_a_tap_then_reads_english(
        page, live_server, demo_client, demo_app):
    typed, position, address, where = _a_home(demo_client)
    worker = where["workers"][0]["name"]

    page.set_default_timeout(5000)
    page.goto(live_server + "/")
    page.locator("#address").press_sequentially(typed, delay=20)
    page.locator("[role=option]", has_text=address).first.wait_for()
    for _ in range(position + 1):
        page.locator("#address").press("ArrowDown")
    assert page.locator("[role=option][aria-selected=true]").inner_text().startswith(address)
    page.locator("#address").press("Enter")

    result = page.locator("#result")
    result.get_by_text(worker).wait_for()
    assert page.locator("#r-grid-code").inner_text() == f"网格编码 {where['grid']['code']}"
    assert re.search(MASKED_MOBILE, page.locator("#r-workers").inner_text())
    assert page.locator("#r-workers a[href^='tel:']").count() == 0  # a masked number is not dialable
    assert page.locator("#r-community").inner_text() == "城志社区"
    page.wait_for_function("() => document.getElementById('map').src.includes('grid=')")
    page.frame_locator("#map").locator(".leaflet-interactive").first.wait_for()
    page.screenshot(path=SCREENSHOT, full_page=True)

    other = f"{CHENGZHI}018" if where["grid"]["code"] != f"{CHENGZHI}018" else f"{CHENGZHI}001"
    _tap_map_at(page, *_grid_point(demo_app, other))
    page.locator("#r-grid-code").get_by_text(other).wait_for()
    assert page.locator("#r-address").is_hidden()

    page.get_by_role("link", name="English").click()
    page.get_by_role("heading", name="Find my grid worker").wait_for()
    assert page.get_by_role("button", name="Use my location").is_visible()
    assert page.locator("label[for=address]").inner_text() == "Your address"
    page.locator("#address").fill("no such street 999")
    page.locator("#status").get_by_text("No address matches").wait_for()
