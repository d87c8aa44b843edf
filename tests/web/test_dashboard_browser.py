"""The city dashboard in real (headless) Chromium at desktop and phone size: open it, drill down city → district →
street → community → grid by clicking rows, climb back by the breadcrumbs; the city map's hook colours by the chosen
KPI and drills down on a click of an area."""
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
    # a stand-in for the city map (gridmap.maps.city): records what the page asks it to colour
    context.add_init_script("window.coloured = []; window.GridmapCityMap = {colour: function (level, values, title) "
                            "{ window.coloured.push({level: level, values: values, title: title}); }};")
    page = context.new_page()
    page.set_default_timeout(10000)
    page.goto(f"{base}/login?next=/dashboard")
    page.fill("#username", "admin")
    page.fill("#password", world_.PASSWORD)
    page.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/dashboard$"))
    return context, page


def _row(page, code):
    return page.locator(f'#by-child tr[data-code="{code}"]')


@pytest.mark.parametrize("size", sorted(SIZES))
def test_drill_down_from_the_city_to_a_grid_and_back(browser, server, size):
    _, base = server
    context, page = _signed_in(browser, base, size)
    try:
        day = world_.T0.date().isoformat()
        page.goto(f"{base}/dashboard?from={day}&to={day}&period=day")
        assert page.locator("#k-reported strong").inner_text() == "3"
        assert page.locator("#k-closure-rate").inner_text().startswith("结案率")
        # the map hook coloured the districts by the first KPI (reported)
        coloured = page.evaluate("window.coloured")
        assert coloured[-1]["level"] == "district" and coloured[-1]["values"] == {DISTRICT: 3}
        page.select_option("#map-kpi", "open")
        assert page.evaluate("window.coloured")[-1]["values"] == {DISTRICT: 3}
        for level, code in (("district", DISTRICT), ("street", STREET), ("community", world_.COMMUNITY)):
            _row(page, code).locator("td.num").first.click()  # the row, not its link: the script drills down
            page.wait_for_url(re.compile(rf"level={level}&code={code}"))
            assert page.locator(".crumbs [aria-current=page]").count() == 1
        assert sorted(page.locator("#by-child tbody tr[data-code]").evaluate_all(
            "rows => rows.map(r => r.dataset.code)")) == [world_.G1, world_.G2]
        assert page.locator(f'#by-child tr[data-code="{world_.G1}"] td.num').first.inner_text() == "2"
        # a click on the map's area drills down as a row does
        page.evaluate("document.dispatchEvent(new CustomEvent('gridmap:area', "
                      f"{{detail: {{level: 'grid', code: '{world_.G2}', name: '第2网格'}}}}))")
        page.wait_for_url(re.compile(rf"level=grid&code={world_.G2}"))
        assert page.locator("#k-reported strong").inner_text() == "1"
        assert page.locator(".crumbs li").count() == 5
        # nothing wider than the screen: wide tables scroll inside their box
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        page.locator(".crumbs a", has_text="湾里街道").click()
        page.wait_for_url(re.compile(rf"level=street&code={STREET}"))
        assert page.locator("#k-reported strong").inner_text() == "3"
        assert f"from={day}" in page.url and dt.date.fromisoformat(page.input_value("input[name=from]")) == \
            world_.T0.date()
    finally:
        context.close()
