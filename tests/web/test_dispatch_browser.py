"""The dispatcher's day in real (headless) Chromium: find an address, see who answers, report, dispatch, escalate."""
import re

import pytest

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/gridmap-dispatch.png"


@pytest.fixture(scope="module")
def dispatch_server(tmp_path_factory, demo_frames):
    """A demo app of this module's own (the flow writes incidents), served with CSRF checks on."""
    from conftest import serving, writable_demo_app
    app = writable_demo_app(tmp_path_factory.mktemp("dispatch-browser"), demo_frames)
    with serving(app) as url:
        yield app, url
    app.extensions["gridmap.store"].dispose()


def _staffed_address(app):
    """A 城志 address in a grid with workers: (typed text, full address, panel answer)."""
    from gridmap import dispatchview, lookup
    from gridmap.web import snapshot
    with app.app_context():
        snap = snapshot()
        for hit in lookup.geocode(snap, "城志社区", limit=50):
            where = dispatchview.panel(snap, hit["lon"], hit["lat"], role="dispatcher")
            if where["grid"] and where["workers"]:
                typed = hit["address"].split("街道")[-1]
                if lookup.geocode(snap, typed, limit=8)[0]["address"] == hit["address"]:
                    return typed, hit["address"], where
    raise AssertionError("no 城志 address in a staffed grid comes first for its own text")


def test_a_dispatcher_finds_an_address_reports_dispatches_and_escalates(browser, dispatch_server):
    app, base = dispatch_server
    typed, address, where = _staffed_address(app)
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("http://127.0.0.1")
                  or route.request.url.startswith("data:") else route.abort())
    page = context.new_page()
    page.set_default_timeout(8000)
    try:
        page.goto(base + "/login?next=/dispatch/")
        page.fill("#username", "dispatcher")
        page.fill("#password", "gridmap-demo")
        page.locator("button[type=submit]").click()
        page.wait_for_url(re.compile(r"/dispatch/$"))

        page.locator("#address").press_sequentially(typed, delay=15)
        page.locator("[role=option]", has_text=address).first.wait_for()
        assert re.search(r"\d+\.\d", page.locator("[role=option]").first.locator("small").inner_text())
        page.locator("#address").press("ArrowDown")
        page.locator("#address").press("Enter")

        page.locator("#w-grid-code").get_by_text(where["grid"]["code"]).wait_for()
        assert page.locator("#w-path").inner_text() == " › ".join(
            [where["district"]["name"], where["street"]["name"], where["community"]["name"], where["grid"]["name"]])
        worker = where["workers"][0]
        workers = page.locator("#w-workers").inner_text()
        assert worker["name"] in workers and worker["phone"] in workers  # the full number, not 138****
        assert page.locator(f"#w-workers a[href='tel:{worker['phone']}']").count() == 1
        police = where["responders"]["police"][0]
        row = page.locator("#w-responders tr[data-kind=police]")
        assert police["name"] in row.inner_text()
        cells = row.locator("td").all_inner_texts()
        assert cells[3] == (f"{police['distance_m'] / 1000:.2f} km" if police["distance_m"] >= 1000
                            else f"{round(police['distance_m'])} m")
        assert cells[4] != "—" and cells[5].endswith("min")
        page.wait_for_function("document.getElementById('map').src.includes('lon=')")
        page.frame_locator("#map").locator(".leaflet-interactive").last.wait_for()  # the located point

        page.select_option("#category", "noise")
        page.fill("#description", "楼上深夜装修")
        page.locator("#report button[type=submit]").click()
        page.locator("#status", has_text="已上报").or_(page.locator("#status", has_text="reported")).wait_for()
        page.locator("#i-actions [data-action=accept]").click()
        page.locator("#i-actions [data-action=dispatch]").wait_for()
        page.locator("#i-candidates input").first.wait_for()
        page.locator("#i-candidates input").first.check()
        chosen = page.locator("#i-candidates input").first.get_attribute("value")
        page.locator("#i-actions [data-action=dispatch]").click()
        page.locator("#i-actions [data-action=escalate]").wait_for()
        page.locator("#i-history li[data-action=dispatch]").wait_for()
        page.locator("#i-actions [data-action=escalate]").click()
        page.locator("#i-history li[data-action=escalate]").wait_for()

        history = page.locator("#i-history li").all_inner_texts()
        actions = page.locator("#i-history li").evaluate_all("els => els.map(e => e.dataset.action)")
        assert actions == ["report", "accept", "dispatch", "escalate"]
        assert all(" · dispatcher · " in h for h in history)
        assert chosen in history[2]
        assert "(网格 → 社区)" in history[3]  # names for people; the codes stay in data-action
        assert "社区" in page.locator("#i-meta").inner_text() and "community" not in page.locator("#i-meta").inner_text()
        assert "已派遣" in history[2] and "已上报" in history[3]
        page.screenshot(path=SCREENSHOT, full_page=True)
    finally:
        context.close()
