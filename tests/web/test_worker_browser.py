"""The grid worker's day in real (headless) Chromium at phone size: sign in, land on the workbench, accept and
resolve an incident of my grid with a photo, patrol with the phone's (emulated) positions, check in, and check in again
offline — the check-in waits on the phone and is stored exactly once when the phone is back online."""
import re
import time

import pytest
from sqlalchemy import func, select

import dispatch_world as world_
from conftest import make_app, serving

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GRID = world_.G1  # the grid the world's worker account serves


@pytest.fixture(scope="module")
def worker_server(tmp_path_factory):
    """tests/dispatch_world.py's two grids (a second the demo would take to build), served with CSRF checks on."""
    app, cleanup = make_app(tmp_path_factory.mktemp("worker-browser"), "sqlite")
    world_.build(app.extensions["gridmap.store"])
    app.config["WTF_CSRF_ENABLED"] = True
    with serving(app) as url:
        yield app, url
    app.extensions["gridmap.store"].dispose()
    cleanup()


def _setup(app):
    """A building of the worker's grid, and a new incident reported at it: (building, incident id)."""
    from gridmap import access, dispatch
    from gridmap.dispatch import patrol
    store, snap = app.extensions["gridmap.store"], app.extensions["gridmap.snapshots"].get()
    with store.session() as s:
        building = patrol.served_buildings(s, snap, access.Area(grids=[GRID]))[0]
    with store.transaction() as s:
        iid = dispatch.report(s, snap, category="noise", lon=building["lon"], lat=building["lat"],
                              description="楼道深夜噪音").id
    return building, iid


def _checkins(app):
    from gridmap.store import models as m
    with app.extensions["gridmap.store"].session() as s:
        return s.execute(select(m.Checkin.note, func.count()).group_by(m.Checkin.note)).all()


def _wait_for(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_a_worker_resolves_an_incident_patrols_and_checks_in_online_and_offline(browser, worker_server):
    from gridmap.store import models as m
    app, base = worker_server
    building, iid = _setup(app)
    here = {"longitude": building["lon"], "latitude": building["lat"], "accuracy": 10}
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True,
                                  has_touch=True, geolocation=here, permissions=["geolocation"],
                                  timezone_id="Asia/Shanghai")
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base)
                  or route.request.url.startswith("data:") else route.abort())
    page = context.new_page()
    page.set_default_timeout(10000)
    try:
        page.goto(f"{base}/login")
        page.fill("#username", "worker")
        page.fill("#password", world_.PASSWORD)
        page.locator("button[type=submit]").click()
        page.wait_for_url(re.compile(r"/worker/$"))  # lands on the workbench
        assert page.locator('.page-links a[aria-current="page"]').inner_text() == "工作台"

        card = page.locator(f'.incident[data-id="{iid}"]')
        assert "楼道深夜噪音" in card.inner_text()
        for step in ("accept", "start", "resolve"):  # each step reloads the page with the next one offered
            page.locator(f'.incident[data-id="{iid}"] [data-action="{step}"]').wait_for()
            page.locator("body[data-ready]").wait_for(state="attached")
            if step != "resolve":
                page.locator(f'.incident[data-id="{iid}"] [data-action="{step}"]').click()
        page.locator(f"#note-{iid}").fill("已劝导住户，噪音停止")
        from test_photos import jpeg_with_gps
        page.locator(f"#photos-{iid}").set_input_files([{"name": "fixed.jpg", "mimeType": "image/jpeg",
                                                         "buffer": jpeg_with_gps()}])
        page.locator(f'.incident[data-id="{iid}"] [data-action="resolve"]').click()
        page.locator(f'.incident[data-id="{iid}"]').wait_for(state="detached")  # resolved: out of the inbox
        with app.extensions["gridmap.store"].session() as s:
            inc = s.get(m.Incident, iid)
            note = s.scalar(select(m.IncidentEvent.note).where(m.IncidentEvent.incident_id == iid,
                                                               m.IncidentEvent.action == "resolve"))
            assert (inc.status, note) == ("resolved", "已劝导住户，噪音停止")
            assert s.scalar(select(func.count()).select_from(m.Photo).where(m.Photo.owner_kind == "incident",
                                                                             m.Photo.owner_id == iid)) == 1

        # patrol: start, then walk 12 m north twice; the positions reach the server and the map draws the track
        assert page.locator("#patrol-stop").is_hidden()
        page.locator("#patrol-start").click()
        page.locator("#patrol-stop").wait_for()
        assert page.locator("#patrol-start").is_hidden()  # one of the two at a time
        for step in (1, 2):
            page.wait_for_timeout(1200)
            context.set_geolocation({**here, "latitude": building["lat"] + step * 0.00011})
        page.locator("#patrol-status").filter(has_text=re.compile(r"已发送 [2-9]")).wait_for()
        page.frame_locator("#map").locator("path.patrol-track").first.wait_for(state="attached")  # north: no width

        # a check-in online
        page.locator("#checkin-building").select_option(str(building["id"]))
        page.locator("#checkin-note").fill("在线走访")
        page.locator("#checkin button[type=submit]").click()
        page.locator("#checkin-status").filter(has_text="已发送").wait_for()

        # offline: the check-in waits on the phone, then is sent once when the phone is back online
        context.set_offline(True)
        page.locator("#checkin-note").fill("离线走访")
        page.locator("#checkin button[type=submit]").click()
        page.locator("#checkin-status").filter(has_text="离线").wait_for()
        page.locator("#outbox").filter(has_text="1 条").wait_for()
        assert ("离线走访", 1) not in _checkins(app)
        # the workbench reopens offline from the service worker's cache, its outbox still holding the check-in
        page.reload()
        page.locator("body[data-ready]").wait_for(state="attached")
        page.locator("#outbox").filter(has_text="1 条").wait_for()
        assert page.evaluate("navigator.serviceWorker.controller.scriptURL") == f"{base}/worker/sw.js"
        assert page.evaluate("navigator.onLine") is False
        context.set_offline(False)
        page.locator("#outbox").filter(has_text=re.compile(r"^$")).wait_for()
        assert _wait_for(lambda: sorted(_checkins(app)) == [("在线走访", 1), ("离线走访", 1)])
        page.wait_for_timeout(500)  # a second flush (the timer, another online event) must not store it again
        assert sorted(_checkins(app)) == [("在线走访", 1), ("离线走访", 1)]
        page.screenshot(path="/tmp/gridmap-worker.png", full_page=False)
    finally:
        context.close()
