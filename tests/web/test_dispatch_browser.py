"""The dispatcher's day in real (headless) Chromium: find an address, see who answers, report, dispatch, escalate.

Browsers run in Asia/Shanghai (UTC+8 all year: China keeps no summer time), as the dispatchers do,
so a time shown as it is stored (UTC) would be eight hours off.
"""
import datetime as dt
import math
import re

import pytest

from conftest import staff_page

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/gridmap-dispatch.png"


@pytest.fixture(scope="module")
def dispatch_server(tmp_path_factory, demo_frames):
    """A demo app of this module's own (the flow writes incidents), served with CSRF checks on."""
    from conftest import served_demo
    with served_demo(tmp_path_factory.mktemp("dispatch-browser"), demo_frames) as served:
        yield served


def _staffed_address(app):
    """A 城志 address in a grid with workers: (typed text, full address, panel answer)."""
    from gridmap import lookup
    from gridmap.pages import dispatcher as dispatchview
    from gridmap.web.common import snapshot
    with app.app_context():
        snap = snapshot()
        for hit in lookup.geocode(snap, "城志社区", limit=50):
            where = dispatchview.panel(snap, hit["lon"], hit["lat"], role="admin")
            if where["grid"] and where["workers"]:
                typed = hit["address"].split("街道")[-1]
                if lookup.geocode(snap, typed, limit=8)[0]["address"] == hit["address"]:
                    return typed, hit["address"], where
    raise AssertionError("no 城志 address in a staffed grid comes first for its own text")


def _panel(app, lon, lat, mode):
    from gridmap.pages import dispatcher as dispatchview
    from gridmap.web.common import snapshot
    with app.app_context():
        return dispatchview.panel(snapshot(), lon, lat, role="admin", mode=mode)


def test_a_dispatcher_finds_an_address_reports_dispatches_and_escalates(browser, dispatch_server):
    app, base = dispatch_server
    typed, address, where = _staffed_address(app)
    context, page = staff_page(browser, base, "dispatcher", "/dispatch/", timezone_id="Asia/Shanghai", timeout=8000)
    try:
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
        assert "驾车" in page.locator("#w-basis").inner_text()
        # on foot, by keyboard: the panel is measured again over the roads a walker may use
        walk = _panel(app, where["lon"], where["lat"], "walk")["responders"]["police"][0]
        page.focus("#mode")
        page.keyboard.press("ArrowUp")
        page.keyboard.press("ArrowUp")
        page.locator("#w-basis", has_text="步行").wait_for()
        row = page.locator("#w-responders tr[data-kind=police]")
        assert walk["name"] in row.inner_text()
        assert row.locator("td").all_inner_texts()[4] == (f"{walk['road_distance_m'] / 1000:.2f} km"
                                                          if walk["road_distance_m"] >= 1000
                                                          else f"{round(walk['road_distance_m'])} m")
        page.wait_for_function("() => document.getElementById('map').src.includes('lon=')")
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
        assert "步行" in page.locator("#i-basis").inner_text()  # whom to send, by road on foot too
        page.screenshot(path=SCREENSHOT, full_page=True)
        page.reload()
        assert page.locator("#mode").input_value() == "walk"  # the mode is kept for the next visit
    finally:
        context.close()


# --- the opened incident: duplicates, the whistle, whom to send ---------------------------------

GRID_A, GRID_B = "210213013004005", "210213013004006"  # 城志 grids the flow above does not touch


def _login(browser, base, timezone_id="Asia/Shanghai"):
    return staff_page(browser, base, "dispatcher", "/dispatch/", timezone_id=timezone_id, timeout=8000)


def _inside(app, code, east_m=0.0):
    from pyproj import Geod

    from gridmap.web.common import snapshot
    with app.app_context():
        p = snapshot().grids.set_index("code").geometry[code].representative_point()
    lon, lat, _ = Geod(ellps="WGS84").fwd(p.x, p.y, 90.0, east_m)
    return lon, lat


def _report_on_page(page, lon, lat, category, description):
    page.fill("#lon", f"{lon:.7f}")
    page.fill("#lat", f"{lat:.7f}")
    page.locator("#coords button[type=submit]").click()
    page.locator("#where").wait_for()
    page.wait_for_function(f"() => document.getElementById('map').getAttribute('src').includes('lon={lon:.7f}'.slice(0, 12))")
    page.select_option("#category", category)
    page.fill("#description", description)
    page.locator("#report button[type=submit]").click()
    page.locator("#status", has_text="已上报事件").wait_for()
    text = page.locator("#status").inner_text()
    return int(re.search(r"#(\d+)", text).group(1))


def _local(iso, offset_hours=8, seconds=False):
    """A UTC ISO time of the API as zh-CN's Intl clock shows it ``offset_hours`` east of UTC."""
    t = dt.datetime.fromisoformat(iso.removesuffix("Z")) + dt.timedelta(hours=offset_hours)
    return t.strftime("%Y/%m/%d %H:%M:%S" if seconds else "%Y/%m/%d %H:%M")


def _detail(app, iid):
    from gridmap import dispatch
    with app.extensions["gridmap.store"].session() as s:
        return dispatch.incident_detail(s, iid, role="admin")


def _on_the_side(app, call):
    """Change the store behind the page's back, as another dispatcher would."""
    from gridmap import dispatch
    from gridmap.web.common import snapshot
    with app.app_context(), app.extensions["gridmap.store"].transaction() as s:
        return call(dispatch, s, snapshot())


def test_a_dispatcher_links_a_duplicate_blows_the_whistle_and_sees_the_department_report_in(browser, dispatch_server):
    app, base = dispatch_server
    context, page = _login(browser, base)
    try:
        first = _report_on_page(page, *_inside(app, GRID_A), "corridor_clutter", "楼道堆满纸箱")
        page.locator("#i-title", has_text=f"#{first} ").wait_for()
        second = _report_on_page(page, *_inside(app, GRID_A, 12), "corridor_clutter", "三楼楼道纸箱")
        page.locator("#i-title", has_text=f"#{second} ").wait_for()

        # the earlier report is suggested, at its distance, with a button to link to it
        suggestion = page.locator(f"#i-duplicates li[data-id='{first}']")
        suggestion.wait_for()
        assert re.search(r"· 1[12] m ·", suggestion.inner_text())
        assert page.locator("#i-duplicates li").count() == 1
        suggestion.locator(f"button[data-duplicate-of='{first}']").click()
        page.locator("#i-history li[data-action=link_duplicate]").wait_for()
        link = page.locator("#i-history li[data-action=link_duplicate]").inner_text()
        # the audit's English note ("duplicate of N") is said in the page's language
        assert f"与事件 #{first} 重复" in link and "duplicate of" not in link and "已上报 → 已合并（重复）" in link
        assert "已合并（重复）" in page.locator("#i-meta").inner_text()
        page.locator("#i-duplicates button").wait_for(state="detached")  # merged: nothing more to link
        assert page.locator("#i-link").is_hidden() and page.locator(f"#i-duplicates li[data-id='{first}']").count() == 1
        assert (_detail(app, second)["status"], _detail(app, second)["duplicate_of"]) == ("merged", first)

        # the first report: blow the whistle, the department reports in
        page.locator(f"#incidents tr[data-id='{first}']").click()
        page.locator("#i-title", has_text=f"#{first} ").wait_for()
        page.locator("#i-actions [data-action=whistle]").click()
        row = page.locator("#i-whistles tr").first
        row.locator("button[data-task]").wait_for()
        [task] = _detail(app, first)["whistles"]
        cells = row.locator("td").all_inner_texts()
        assert cells[0] == "消防救援大队"
        assert cells[1] == f"{_local(task['blown_at'])} · dispatcher"
        assert cells[2] == _local(task["report_by"]) and cells[3] == "尚未报到"
        assert row.locator("td").nth(2).locator("time").get_attribute("data-utc") == task["report_by"]
        # the list filtered to closed matters no longer holds the incident: reporting in still reloads it,
        # and the dispatcher's filter stays as it was
        page.select_option("#f-status", "closed")
        page.locator(f"#incidents tr[data-id='{first}']").wait_for(state="detached")
        row.locator("button[data-task]").click()
        page.locator("#i-history li[data-action=report_in]").wait_for()
        assert page.locator("#f-status").input_value() == "closed"
        assert page.locator(f"#incidents tr[data-id='{first}']").count() == 0
        page.locator("#i-whistles button[data-task]").wait_for(state="detached")
        reported = _detail(app, first)["whistles"][0]["reported_at"]
        assert reported is not None
        assert page.locator("#i-whistles tr").first.locator("td").nth(3).inner_text() == _local(reported)
        assert "消防救援大队 已报到" in page.locator("#i-status").inner_text()
        reported_in = page.locator("#i-history li[data-action=report_in]").inner_text()
        assert "消防救援大队 已报到" in reported_in and " reported" not in reported_in

        # wrong links are refused with the reason shown, and nothing changes
        page.fill("#i-link-id", str(first))
        page.locator("#i-link button[type=submit]").click()
        page.locator("#i-status.error", has_text="不能标记为其自身的重复事件").wait_for()
        noise = _on_the_side(app, lambda d, s, snap: d.report(s, snap, category="noise", lon=_inside(app, GRID_A, 5)[0],
                                                              lat=_inside(app, GRID_A, 5)[1]).id)
        page.fill("#i-link-id", str(noise))
        page.locator("#i-link button[type=submit]").click()
        page.locator("#i-status.error", has_text="只有同类别的上报才能标记为其重复事件").wait_for()
        assert _detail(app, first)["status"] == "reported"

        # someone else accepts it meanwhile: the link is a conflict, and Reload shows their change
        _on_the_side(app, lambda d, s, snap: d.transition(s, first, "accept", actor=d.Actor("other", "admin"),
                                                          version=_detail(app, first)["version"]))
        page.fill("#i-link-id", str(second))
        page.locator("#i-link button[type=submit]").click()
        page.locator("#i-status.error", has_text="他人已修改此事件").wait_for()
        page.locator("#i-status button", has_text="重新加载").click()
        page.locator("#i-meta", has_text="已受理").wait_for()
        assert _detail(app, first)["status"] == "accepted"
        page.screenshot(path="/tmp/gridmap-dispatch-incident.png", full_page=True)
    finally:
        context.close()


def test_an_sos_shows_its_grid_worker_and_volunteers_on_the_dispatchers_map(browser, dispatch_server):
    from conftest import sos_from_a_vulnerable_resident
    from gridmap import dispatch
    app, base = dispatch_server
    iid, _ = sos_from_a_vulnerable_resident(app, app.test_client(), "W-BROWSER-1", newest=True)
    with app.app_context(), app.extensions["gridmap.store"].session() as s:
        from gridmap.web.common import snapshot
        proposal = dispatch.incident_panel(s, snapshot(), iid, role="admin")["proposal"]
    people = [("网格员", w) for w in proposal["grid_workers"]]
    people += [("医疗", x) for x in proposal["responders"]["medical"]] + [("志愿者", v) for v in proposal["volunteers"]]
    assert proposal["grid_workers"] and proposal["volunteers"]

    context, page = _login(browser, base)
    try:
        page.locator(f"#incidents tr[data-id='{iid}']").click()
        page.wait_for_function(f"() => document.getElementById('map').getAttribute('src').endsWith('incident={iid}')")
        listed = page.locator("#i-proposal li")
        listed.first.wait_for()
        assert listed.count() == len(people)
        worker = proposal["grid_workers"][0]
        assert worker["name"] in listed.first.inner_text() and worker["phone"] in listed.first.inner_text()

        frame = page.frame_locator("#map")
        badges = frame.locator(".proposal-icon [aria-label]")
        badges.first.wait_for()
        labels = badges.evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
        assert sorted(labels) == sorted(f"{kind} {p['name']}" for kind, p in people)
        assert frame.locator("path.proposal-line").count() == len(people)
        assert frame.locator("path.proposal-line-grid_worker").count() == len(proposal["grid_workers"])
        assert frame.locator("path.proposal-line-volunteer").count() == len(proposal["volunteers"])
        farthest = max((p for _, p in people), key=lambda p: p["distance_m"])
        # responders of one station share a spot, one badge over another: point at it as Leaflet hears a hover
        frame.locator(f".proposal-icon:has([aria-label$='{farthest['name']}'])").dispatch_event("mouseover")
        tip = frame.locator(".leaflet-tooltip", has_text=farthest["name"])
        tip.wait_for()
        d = farthest["distance_m"]
        assert (f"{d / 1000:.2f} km" if d >= 1000 else f"{round(d)} m") in tip.inner_text()
        assert farthest["phone"] in tip.inner_text()
        frame.locator(".leaflet-container:not(.leaflet-zoom-anim)").wait_for()  # the fit's zoom has settled
        page.screenshot(path="/tmp/gridmap-dispatch-sos.png", full_page=True)
    finally:
        context.close()


@pytest.mark.parametrize("zone,offset", [("Asia/Shanghai", 8), ("UTC", 0)])
def test_deadlines_history_and_whistle_times_are_shown_in_the_viewers_time_zone(browser, dispatch_server, zone, offset):
    app, base = dispatch_server
    lon, lat = _inside(app, "210213013004007")

    def report_and_whistle(d, s, snap):
        inc = d.report(s, snap, category="corridor_clutter", lon=lon, lat=lat, actor=d.Actor("dispatcher", "dispatcher"))
        d.whistle(s, inc.id, actor=d.Actor("dispatcher", "admin"))
        return inc.id

    iid = _on_the_side(app, report_and_whistle)
    detail = _detail(app, iid)
    context, page = _login(browser, base, timezone_id=zone)
    try:
        assert zone in page.locator("#time-zone").inner_text()
        row = page.locator(f"#incidents tr[data-id='{iid}']")
        deadline = row.locator("td").nth(5).locator("time")
        assert (deadline.get_attribute("data-utc"), deadline.inner_text()) == \
            (detail["deadline_at"], _local(detail["deadline_at"], offset))
        assert deadline.get_attribute("datetime") == detail["deadline_at"]
        row.click()
        page.locator("#i-whistles tr").first.wait_for()

        meta = page.locator("#i-meta time")
        assert (meta.get_attribute("data-utc"), meta.inner_text()) == (detail["deadline_at"],
                                                                      _local(detail["deadline_at"], offset))
        shown = page.locator("#i-history li > time:first-child").evaluate_all(
            "els => els.map(e => [e.dataset.utc, e.textContent])")
        assert shown == [[h["at"], _local(h["at"], offset, seconds=True)] for h in detail["history"]]
        [task] = detail["whistles"]
        # the audit's note names the deadline in UTC ("消防救援大队 to report by …Z"): it reads as a local time too
        assert f"to report by {task['report_by']}" in detail["history"][-1]["note"]
        note = page.locator("#i-history li[data-action=whistle] time").nth(1)
        assert (note.get_attribute("data-utc"), note.inner_text()) == \
            (task["report_by"], _local(task["report_by"], offset, seconds=True))
        assert task["report_by"] not in page.locator("#i-history").inner_text()
        whistled = page.locator("#i-history li[data-action=whistle]").inner_text()
        assert f"{task['department']} 须于 " in whistled and " 前报到" in whistled and "to report by" not in whistled
        times = page.locator("#i-whistles tr").first.locator("time").evaluate_all(
            "els => els.map(e => [e.dataset.utc, e.textContent])")
        assert times == [[task["blown_at"], _local(task["blown_at"], offset)],
                         [task["report_by"], _local(task["report_by"], offset)]]
        assert page.locator("#incident time:not([data-utc])").count() == 0
    finally:
        context.close()


def test_switching_on_the_cameras_outlines_the_views_that_see_the_located_point_under_the_point(browser, dispatch_server):
    from gridmap import coverage
    from gridmap.web.common import snapshot
    app, base = dispatch_server
    with app.app_context(), app.extensions["gridmap.store"].session() as s:
        report = coverage.report_for(s, "210213013004", geometries=True)
        view = next(v for v in report["views"] if v["geometry"] is not None)
        import shapely
        p = shapely.geometry.shape(view["geometry"]).representative_point()
        seeing = {c["id"] for c in snapshot().cameras_seeing(p.x, p.y)}
    drawn = [v for v in report["views"] if v["geometry"] is not None]
    context, page = _login(browser, base)
    try:
        page.fill("#lon", f"{p.x:.7f}")
        page.fill("#lat", f"{p.y:.7f}")
        page.locator("#coords button[type=submit]").click()
        page.wait_for_function("() => document.getElementById('map').getAttribute('src').includes('lon=')")
        frame = page.frame_locator("#map")
        frame.locator("path.located-point").wait_for()
        assert frame.locator("path.gridmap-camera-view").count() == 0  # off until switched on
        frame.locator(".leaflet-control-layers label", has_text="摄像头").locator("input").check()
        frame.locator("path.gridmap-camera-view").first.wait_for()
        assert frame.locator("path.gridmap-camera-view").count() == len(drawn)
        outlined = frame.locator("path.gridmap-camera-seeing").evaluate_all(
            "els => els.map(e => Number([...e.classList].find(c => /^gridmap-camera-\\d+$/.test(c)).split('-').pop()))")
        assert sorted(outlined) == sorted(seeing & {v["id"] for v in drawn}) and view["id"] in outlined
        # the sectors came last, yet the located point is drawn above them and still answers a hover
        order = frame.locator("svg path").evaluate_all("els => els.map(e => e.getAttribute('class') || '')")
        last_view = max(i for i, c in enumerate(order) if "gridmap-camera-" in c)
        assert order.index(next(c for c in order if "located-point" in c)) > last_view
        frame.locator("path.located-point").hover(force=True)
        frame.locator(".leaflet-tooltip", has_text="定位点").wait_for()
        page.screenshot(path="/tmp/gridmap-dispatch-cameras.png", full_page=True)
    finally:
        context.close()


# --- locating elsewhere after picking an address: the incident is stored where it was located ---

def _neighbour_building(app, lon, lat, grid):
    """The building nearest (lon, lat) that lies in another grid: (address, lon, lat, its grid code)."""
    from gridmap import lookup
    from gridmap.web.common import snapshot
    with app.app_context():
        snap = snapshot()
        best = None
        for hit in lookup.geocode(snap, "城志社区", limit=100):
            where = snap.locate(hit["lon"], hit["lat"])
            code = where["grid"]["code"] if where["grid"] else None
            if code is None or code == grid:
                continue
            d = math.hypot((hit["lon"] - lon) * math.cos(math.radians(lat)), hit["lat"] - lat)
            if best is None or d < best[0]:
                best = (d, hit["address"], hit["lon"], hit["lat"], code)
    assert best is not None, "no 城志 building lies outside the picked address's grid"
    return best[1:]


def _click_map_at(page, lon, lat):
    """Click the dispatcher's map iframe, once it shows the located point, where Leaflet draws (lon, lat)."""
    page.wait_for_function("() => document.getElementById('map').src.includes('lon=')")
    frame = page.locator("#map").element_handle().content_frame()
    frame.wait_for_url(re.compile(r"/dispatch/map\?lon="))  # the located point's map, not the one before
    frame.wait_for_load_state()
    frame.wait_for_function("() => window.L && Object.values(window).some(v => v instanceof L.Map)")
    spot, seen = None, []
    while len(seen) < 2 or seen[-1] != seen[-2]:  # the same pixel twice: the map has stopped moving
        page.wait_for_timeout(200)
        spot = frame.evaluate(
            """([lat, lon]) => {
                const map = Object.values(window).find(v => v instanceof L.Map);
                const p = map.latLngToContainerPoint([lat, lon]);
                return [p.x, p.y];
            }""", [lat, lon])
        seen.append(spot)
        assert len(seen) < 50, "the map never stopped moving"
    x, y = spot
    page.locator("#map").scroll_into_view_if_needed()
    box = page.locator("#map").bounding_box()
    assert 0 < x < box["width"] - 2 and 0 < y < box["height"] - 2, "the place to click is off the map"
    page.mouse.click(box["x"] + 1 + x, box["y"] + 1 + y)  # +1: the iframe's border


def test_an_address_picked_then_a_click_elsewhere_stores_the_clicked_place(browser, dispatch_server):
    from gridmap.pages import dispatcher as dispatchview
    from gridmap.web.common import snapshot
    app, base = dispatch_server
    typed, address, where = _staffed_address(app)
    context, page = staff_page(browser, base, "dispatcher", "/dispatch/", timezone_id="Asia/Shanghai", timeout=8000)
    try:
        page.locator("#address").press_sequentially(typed, delay=15)
        page.locator("[role=option]", has_text=address).first.wait_for()
        page.locator("#address").press("ArrowDown")
        page.locator("#address").press("Enter")
        page.locator("#w-grid-code").get_by_text(where["grid"]["code"]).wait_for()
        assert page.locator("#address").input_value() == address
        page.wait_for_function("() => document.getElementById('map').src.includes('lon=')")
        page.frame_locator("#map").locator(".leaflet-interactive").last.wait_for()

        other, lon, lat, grid = _neighbour_building(app, where["lon"], where["lat"], where["grid"]["code"])
        _click_map_at(page, lon, lat)
        page.locator("#w-grid-code").get_by_text(grid).wait_for()
        assert page.locator("#address").input_value() == ""  # the picked address is another place's
        assert address not in page.locator("#where").inner_text()

        page.select_option("#category", "noise")
        page.fill("#description", "广场舞音响太吵")
        page.locator("#report button[type=submit]").click()
        page.locator("#status", has_text="已上报事件").wait_for()
        iid = int(re.search(r"#(\d+)", page.locator("#status").inner_text()).group(1))
        page.locator("#i-title", has_text=f"#{iid} ").wait_for()
        assert page.locator("#description").input_value() == ""  # no second report of the same text
        assert page.locator("#i-description").inner_text() == "广场舞音响太吵"

        saved = page.request.get(f"{base}/api/v1/incidents/{iid}").json()  # read back as the page's API gives it
        assert saved["grid_code"] == grid and saved["address"] != address
        with app.app_context():
            snap = snapshot()
            # the building at the clicked spot (the demo places some of a courtyard's blocks metres
            # apart, so it may be a neighbour of the one aimed at), and one in the clicked grid
            assert saved["address"] == dispatchview.place_address(snap, saved["lon"], saved["lat"]) != ""
            building = snap.addresses.nearest(saved["lon"], saved["lat"], max_m=30)
            assert building["address"] == saved["address"]
            assert snap.locate(building["lon"], building["lat"])["grid"]["code"] == grid
            assert math.dist((lon, lat), (saved["lon"], saved["lat"])) < 1e-4  # where it was clicked (~10 m)
        assert other.split("号")[0] in saved["address"]
        assert page.locator("#i-actions [data-action=escalate]").count() == 1  # at grid level it may go up

        # a department's matter: nobody above it to escalate to, and the community whistles only for its own
        page.select_option("#category", "street_light")
        page.fill("#description", "路灯不亮")
        page.locator("#report button[type=submit]").click()
        page.locator("#status", has_text=f"已上报事件 #{iid + 1}").wait_for()
        page.locator("#i-title", has_text=f"#{iid + 1} ").wait_for()
        assert page.request.get(f"{base}/api/v1/incidents/{iid + 1}").json()["level"] == "department"
        page.locator("#i-actions [data-action=accept]").wait_for()
        assert page.locator("#i-actions [data-action=escalate]").count() == 0
        assert page.locator("#i-actions [data-action=whistle]").count() == 0
    finally:
        context.close()


# --- a row flies the map; the incident's photos -------------------------------------------------

GRID_PHOTO = "210213013004010"  # a 城志 grid no other test here reports in


def _resident_report_with_photo(app, lon, lat, size=(96, 64)):
    """A resident's report with one JPEG, written as the report form writes it: (incident id, photo id)."""
    import io

    from PIL import Image
    from werkzeug.datastructures import FileStorage

    from gridmap import dispatch, photos
    from gridmap.dispatch import georeport
    buf = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buf, "JPEG")
    buf.seek(0)
    with app.app_context(), app.extensions["gridmap.store"].transaction() as s:
        from gridmap.web.common import snapshot
        inc, _token = dispatch.resident_report(s, snapshot(), category=georeport.PUBLIC_CODES[0], lon=lon, lat=lat,
                                               description="路灯不亮", files=[FileStorage(buf, "lamp.jpg", "photos")])
        [photo] = photos.photos_of(s, "incident", inc.id)
        return inc.id, photo["id"]


def _map_centre_px_off(frame, lon, lat):
    return frame.evaluate("""([lat, lon]) => { const m = Object.values(window).find(v => v instanceof L.Map);
        const a = m.latLngToContainerPoint(m.getCenter()), b = m.latLngToContainerPoint([lat, lon]);
        return Math.hypot(a.x - b.x, a.y - b.y); }""", [lat, lon])


def test_an_incident_row_flies_the_map_to_it_and_its_card_shows_the_residents_photo_to_staff_only(browser,
                                                                                                 dispatch_server):
    app, base = dispatch_server
    lon, lat = _inside(app, GRID_PHOTO)
    iid, pid = _resident_report_with_photo(app, lon, lat)
    context, page = _login(browser, base)
    try:
        row = page.locator(f"#incidents tr[data-id='{iid}']")
        row.click()
        page.wait_for_function(f"() => /[?&]incident={iid}(&|$)/.test(document.getElementById('map').src)")
        page.frame_locator("#map").locator("path.selected-incident").wait_for()
        frame = page.frame(url=re.compile(rf"/dispatch/map\?.*incident={iid}\b"))
        assert _map_centre_px_off(frame, lon, lat) < 3  # the map opens centred on the incident

        # the card: a thumbnail that has really loaded, linking to the full size
        thumb = page.locator("#i-photos img")
        thumb.wait_for()
        page.wait_for_function("() => { const i = document.querySelector('#i-photos img'); "
                               "return i.complete && i.naturalWidth > 0; }")
        assert page.evaluate("() => document.querySelector('#i-photos img').naturalWidth") == 96
        assert thumb.get_attribute("alt") == f"事件 #{iid} 的照片 1（打开原图）"
        link = page.locator("#i-photos a")
        assert link.get_attribute("href") == f"/photos/{pid}" and link.get_attribute("target") == "_blank"

        # panned away, Enter on the same row flies the map back (the map already shows the incident)
        frame.evaluate("() => { const m = Object.values(window).find(v => v instanceof L.Map); "
                       "m.panBy([300, 200], {animate: false}); }")
        assert _map_centre_px_off(frame, lon, lat) > 100
        row.focus()
        page.keyboard.press("Enter")
        frame.wait_for_function("""([lat, lon]) => { const m = Object.values(window).find(v => v instanceof L.Map);
            const a = m.latLngToContainerPoint(m.getCenter()), b = m.latLngToContainerPoint([lat, lon]);
            return Math.hypot(a.x - b.x, a.y - b.y) < 3; }""", arg=[lat, lon])
        frame.locator(".gridmap-flown").wait_for()
    finally:
        context.close()

    # the public gets no photo: the sign-in page instead of the image
    public = browser.new_context()
    try:
        r = public.request.get(f"{base}/photos/{pid}", max_redirects=0)
        assert r.status == 302 and "/login" in r.headers["location"]
        assert not r.headers.get("content-type", "").startswith("image/")
    finally:
        public.close()
