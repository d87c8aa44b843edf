"""Grid numbers and community names on every map, in real (headless) Chromium: shown where they fit, never overlapping."""
import re

import pytest
import shapely

from conftest import staff_page

pytestmark = pytest.mark.browser

SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
#: (who signs in, the page, the path of its map's iframe)
MAPS = [(None, "/", r"/map"), ("planner", "/planner", r"/planner/map"), ("dispatcher", "/dispatch/", r"/dispatch/map"),
        ("worker", "/worker/", r"/worker/map")]

# Every label the map shows now: its text, kind, key, box in the map's pixels and that box's centre as lon/lat.
SHOWN = """() => {
    const map = Object.values(window).find(v => v instanceof L.Map);
    const origin = map.getContainer().getBoundingClientRect();
    return Array.from(document.querySelectorAll(".gridmap-label[data-shown]")).map(s => {
        const r = s.getBoundingClientRect();
        const c = map.containerPointToLatLng([r.left - origin.left + r.width / 2, r.top - origin.top + r.height / 2]);
        return {text: s.textContent, kind: s.classList.contains("community") ? "community" : "grid",
                key: s.getAttribute("data-key"), l: r.left, r: r.right, t: r.top, b: r.bottom,
                visible: getComputedStyle(s.parentNode).display !== "none" && r.width > 0, lon: c.lng, lat: c.lat};
    });
}"""


def _grids(app):
    from gridmap.web.common import snapshot
    with app.app_context():
        return snapshot().grids.set_index("code")


def _open(browser, live_server, who, path, frame_path, size):
    if who is None:
        context = browser.new_context(viewport=SIZES[size], locale="zh-CN")
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(live_server)
                      or route.request.url.startswith("data:") else route.abort())
        page = context.new_page()
        page.set_default_timeout(10000)
        page.goto(live_server + path)
    else:
        context, page = staff_page(browser, live_server, who, path)
        page.set_viewport_size(SIZES[size])
    page.frame_locator("#map").locator(".leaflet-container").wait_for()
    frame = page.frame(url=re.compile(re.escape(live_server) + frame_path + r"(\?|$)"))
    frame.wait_for_function("() => window.gridmapLabels && window.gridmapLabels.maps && window.gridmapLabels.maps.length")
    return context, page, frame


def _view(frame, lat, lon, zoom):
    """Move the map without animation (Leaflet fires moveend at once) and read the labels shown."""
    # a block body: returning the map would have Playwright serialise all of Leaflet's object graph
    frame.evaluate("([lat, lon, z]) => { Object.values(window).find(v => v instanceof L.Map).setView([lat, lon], z, "
                   "{animate: false}); }", [lat, lon, zoom])
    frame.wait_for_timeout(50)
    return frame.evaluate(SHOWN)


def _assert_apart(shown):
    """No two labels shown have intersecting boxes (each the getBoundingClientRect of its text)."""
    assert all(s["visible"] for s in shown)
    for i, a in enumerate(shown):
        for b in shown[i + 1:]:
            assert a["r"] <= b["l"] or b["r"] <= a["l"] or a["b"] <= b["t"] or b["b"] <= a["t"], (a, b)


@pytest.mark.parametrize("size", ["desktop", "phone"])
@pytest.mark.parametrize("who,path,frame_path", MAPS, ids=[m[0] or "resident" for m in MAPS])
def test_grid_numbers_show_where_they_fit_inside_their_grid_and_never_overlap(browser, live_server, demo_app,
                                                                              who, path, frame_path, size):
    grids = _grids(demo_app)
    context, page, frame = _open(browser, live_server, who, path, frame_path, size)
    try:
        drawn = frame.evaluate("() => window.gridmapLabels.maps[0].items.map(e => e.item.key)")
        codes = [k.split(":", 1)[1] for k in drawn if k.startswith("grid:")]
        assert codes and set(codes) <= set(grids.index)
        code = codes[len(codes) // 2]
        inside = grids.loc[code].geometry.representative_point()

        # from a city-wide zoom, where a 300 m grid is a few pixels, to a street: numbers appear as they fit
        seen = {}
        for zoom in (11, 13, 15, 16, 17, 18):
            shown = _view(frame, inside.y, inside.x, zoom)
            _assert_apart(shown)
            seen[zoom] = [s for s in shown if s["kind"] == "grid"]
            for s in seen[zoom]:
                # each number is its grid's last three digits, written inside that grid
                grid = s["key"].split(":", 1)[1]
                assert s["text"] == grid[-3:]
                assert grids.loc[grid].geometry.buffer(1e-6).contains(shapely.Point(s["lon"], s["lat"])), s
        assert seen[11] == []  # absent at a low zoom
        assert f"grid:{code}" in [s["key"] for s in seen[17]]  # present at a high one, for the grid in the middle
    finally:
        context.close()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_residents_overview_names_each_community_once_and_no_two_names_overlap(browser, live_server, demo_app, size):
    from gridmap.web.common import snapshot
    with demo_app.app_context():
        communities = snapshot().communities
    context, page, frame = _open(browser, live_server, None, "/", r"/map", size)
    try:
        shown = frame.evaluate(SHOWN)
        _assert_apart(shown)
        names = sorted(s["text"] for s in shown if s["kind"] == "community")
        assert names and set(names) <= set(communities["name"]) and len(names) == len(set(names))
        # zoomed out further every name still fits the map, so some give way rather than pile up
        z = frame.evaluate("() => Object.values(window).find(v => v instanceof L.Map).getZoom()")
        c = frame.evaluate("() => { const c = Object.values(window).find(v => v instanceof L.Map).getCenter(); "
                           "return [c.lat, c.lng]; }")
        fewer = _view(frame, c[0], c[1], z - 3)
        _assert_apart(fewer)
        assert 1 <= len([s for s in fewer if s["kind"] == "community"]) <= len(names)
    finally:
        context.close()
