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


def _frame(page):
    page.frame_locator("#map").locator(".leaflet-container").wait_for()
    return page.frame(url=re.compile(r"/map(\?|$)"))


def _map_state(frame):
    return frame.evaluate("() => { const m = Object.values(window).find(v => v instanceof L.Map); "
                          "const c = m.getCenter(); return [c.lat, c.lng, m.getZoom()]; }")


@pytest.mark.parametrize("size", [{"width": 390, "height": 844}, {"width": 1280, "height": 800}], ids=["phone", "desktop"])
def test_the_opening_map_answers_a_tap_on_a_community_keeps_the_answer_between_communities_and_across_languages(
        page, live_server, demo_client, demo_app, size):
    import shapely

    from gridmap.web.common import snapshot
    with demo_app.app_context():
        snap = snapshot()
        grids = snap.grids
    covered = shapely.union_all(list(grids.geometry))
    typed, position, address, where = _a_home(demo_client)

    page.set_viewport_size(size)
    page.set_default_timeout(8000)
    page.goto(live_server + "/")
    frame = _frame(page)
    frame.wait_for_function("() => document.querySelectorAll('.gridmap-label.community[data-shown]').length")
    opening_src = page.locator("#map").get_attribute("src")
    # the map opens on every community: each one's grids lie in view
    view = frame.evaluate("() => { const b = Object.values(window).find(v => v instanceof L.Map).getBounds(); "
                          "return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; }")
    assert shapely.box(*view).contains(covered)

    # a tap between communities, before any answer: said so, and the map stays where it is
    lat0, lon0, zoom0 = _map_state(frame)
    outside = shapely.box(*view).buffer(-0.01).difference(covered.buffer(0.01)).representative_point()
    _tap_map_at(page, outside.x, outside.y)
    page.locator("#status", has_text="不在").wait_for()
    assert page.locator("#result").is_hidden()
    assert page.locator("#map").get_attribute("src") == opening_src

    # at the opening zoom a thumb on 城志社区's dot answers for 城志社区, wherever on the dot it lands
    [dot] = [i for i in frame.evaluate("() => window.gridmapLabels.maps[0].items.map(e => e.item)")
             if i.get("key") == f"community:{CHENGZHI}"]
    off = frame.evaluate("""([lat, lon]) => { const m = Object.values(window).find(v => v instanceof L.Map);
        const p = m.latLngToContainerPoint([lat, lon]).add([6, 3]), q = m.containerPointToLatLng(p);
        return [q.lng, q.lat]; }""", [dot["lat"], dot["lng"]])
    _tap_map_at(page, *off)  # a thumb 7 px off the dot's centre, still on its 9 px radius
    page.locator("#r-community").get_by_text("城志社区").wait_for()
    code = page.locator("#r-grid-code").inner_text()
    assert CHENGZHI in code

    # now a tap beside the community, in no community: the answer stays, and so does the view
    # the community's own map has loaded in the iframe (asked from the page: the frame is navigating)
    page.wait_for_function("""() => { const w = document.getElementById('map').contentWindow;
        return w && w.location.search.includes('grid=') && w.document.readyState === 'complete'
               && w.gridmapLabels && w.gridmapLabels.maps; }""")
    frame = _frame(page)
    own = grids[grids["community_code"] == CHENGZHI]
    minx, miny, maxx, maxy = own.total_bounds
    beside = shapely.Point(maxx + 0.002, (miny + maxy) / 2)
    if covered.buffer(0.0005).contains(beside):
        beside = shapely.Point(minx - 0.002, (miny + maxy) / 2)
    assert not covered.buffer(0.0005).contains(beside)
    frame.evaluate("([lat, lon]) => { Object.values(window).find(v => v instanceof L.Map).setView([lat, lon], "
                   "Object.values(window).find(v => v instanceof L.Map).getZoom(), {animate: false}); }",
                   [beside.y, beside.x])
    src, before = page.locator("#map").get_attribute("src"), _map_state(frame)
    _tap_map_at(page, beside.x, beside.y)
    page.locator("#status", has_text="保留").wait_for()
    assert "error" not in (page.locator("#status").get_attribute("class") or "")  # a note, not an alarm
    assert page.locator("#result").is_visible() and page.locator("#r-grid-code").inner_text() == code
    assert page.locator("#map").get_attribute("src") == src and _map_state(frame) == before

    # an address found, then the page in English: the same answer, the address kept
    page.locator("#address").press_sequentially(typed, delay=20)
    page.locator("[role=option]", has_text=address).first.wait_for()
    for _ in range(position + 1):
        page.locator("#address").press("ArrowDown")
    page.locator("#address").press("Enter")
    page.locator("#r-grid-code").get_by_text(where["grid"]["code"]).wait_for()
    page.wait_for_function("() => new URLSearchParams(location.search).has('lon')")
    page.get_by_role("link", name="English").click()
    page.get_by_role("heading", name="Find my grid worker").wait_for()
    page.locator("#r-grid-code").get_by_text(f"Grid code {where['grid']['code']}").wait_for()
    assert page.locator("#r-address").inner_text() == address
    assert page.locator("#address").input_value() == address
    assert where["workers"][0]["name"] in page.locator("#r-workers").inner_text()


def test_a_resident_who_already_lets_the_page_know_their_position_opens_on_their_grid(browser, live_server, demo_app):
    code = f"{CHENGZHI}009"
    lon, lat = _grid_point(demo_app, code)
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN",
                                  geolocation={"longitude": lon, "latitude": lat}, permissions=["geolocation"])
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(live_server)
                  or route.request.url.startswith("data:") else route.abort())
    try:
        page = context.new_page()
        page.set_default_timeout(8000)
        page.goto(live_server + "/")
        # nothing typed or tapped: the position the browser already grants answers, and the map follows it
        page.locator("#r-grid-code").get_by_text(code).wait_for()
        page.wait_for_function(f"() => document.getElementById('map').src.includes('grid={code}')")
    finally:
        context.close()
