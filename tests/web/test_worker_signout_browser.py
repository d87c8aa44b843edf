"""A phone handed from one grid worker to another, in real (headless) Chromium: signing out on the workbench
leaves neither cached pages nor queued entries behind, and a second worker signing in on the same phone never
sends, sees or opens offline what the first one typed or was shown."""
import re

import pytest
from sqlalchemy import select

import dispatch_world as world_
from conftest import make_app, serving

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: What only the first worker (王网格, grid G1) may see: a resident of G1 and her phone, the worker's
#: own name and grid; the second (李网格) serves G2.
FIRST_ONLY = ("孙奶奶", "13812345678", "王网格", "第1网格")

_STORAGE = """async () => {
  const names = await caches.keys(), out = {caches: {}, outbox: [], registrations: 0};
  for (const n of names) out.caches[n] = (await (await caches.open(n)).keys()).map(r => new URL(r.url).pathname);
  const dbs = indexedDB.databases ? await indexedDB.databases() : [];
  if (dbs.some(d => d.name === "gridmap-worker")) {
    out.outbox = await new Promise((resolve, reject) => {
      const open = indexedDB.open("gridmap-worker", 1);
      open.onupgradeneeded = () => open.result.createObjectStore("outbox", {keyPath: "key"});
      open.onsuccess = () => {
        const get = open.result.transaction("outbox").objectStore("outbox").getAll();
        get.onsuccess = () => { resolve(get.result.map(i => ({owner: i.owner, note: i.body.note || ""}))); open.result.close(); };
        get.onerror = () => reject(get.error);
      };
      open.onerror = () => reject(open.error);
    });
  }
  if (navigator.serviceWorker) out.registrations = (await navigator.serviceWorker.getRegistrations()).length;
  return out;
}"""


@pytest.fixture(scope="module")
def phone_server(tmp_path_factory):
    app, cleanup = make_app(tmp_path_factory.mktemp("worker-signout"), "sqlite")
    store = world_.build(app.extensions["gridmap.store"])
    from gridmap import accounts
    from gridmap.store import models as m
    with store.transaction() as s:
        second = s.scalar(select(m.GridWorker.id).where(m.GridWorker.name == "李网格"))
        accounts.create_user(s, "worker2", world_.PASSWORD, "grid_worker", worker_id=second)
    app.config["WTF_CSRF_ENABLED"] = True
    with serving(app) as url:
        yield app, url
    store.dispose()
    cleanup()


def _building(app, grid):
    from gridmap import access
    from gridmap.dispatch import patrol
    store, snap = app.extensions["gridmap.store"], app.extensions["gridmap.snapshots"].get()
    with store.session() as s:
        return patrol.served_buildings(s, snap, access.Area(grids=[grid]))[0]


def _checkins(app):
    from gridmap.store import models as m
    with app.extensions["gridmap.store"].session() as s:
        return s.execute(select(m.Checkin.note, m.GridWorker.name).join(m.GridWorker)).all()


def _phone(browser, base, building):
    here = {"longitude": building["lon"], "latitude": building["lat"], "accuracy": 10}
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True,
                                  has_touch=True, geolocation=here, permissions=["geolocation"],
                                  timezone_id="Asia/Shanghai")
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base)
                  or route.request.url.startswith("data:") else route.abort())
    return context


def _sign_in(page, base, username):
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", world_.PASSWORD)
    page.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/worker/$"))
    page.locator("body[data-ready]").wait_for(state="attached")
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    page.reload()  # now through the service worker: the page is cached for offline use
    page.locator("body[data-ready]").wait_for(state="attached")
    return page.evaluate("JSON.parse(document.getElementById('gridmap-config').textContent).account")


def _check_in_offline(page, context, building, note):
    context.set_offline(True)
    page.locator("#checkin-building").select_option(str(building["id"]))
    page.locator("#checkin-note").fill(note)
    page.locator("#checkin button[type=submit]").click()
    page.locator("#outbox").filter(has_text="1 条").wait_for()


def _open_offline(page, url):
    """The text the phone shows for ``url`` offline: a cached page, or the browser's own error page."""
    try:
        page.goto(url)
    except Exception as err:  # noqa: BLE001 - Playwright's net::ERR_INTERNET_DISCONNECTED
        assert "ERR_INTERNET_DISCONNECTED" in str(err) or "ERR_FAILED" in str(err), err
    for _ in range(50):  # the browser's error page may still be on its way in
        try:
            return page.content()
        except Exception:  # noqa: BLE001 - "the page is navigating"
            page.wait_for_timeout(100)
    return page.content()


def test_signing_out_on_the_workbench_leaves_no_page_or_entry_of_the_worker_on_the_phone(browser, phone_server):
    app, base = phone_server
    building = _building(app, world_.G1)
    context = _phone(browser, base, building)
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        account = _sign_in(page, base, "worker")
        kept = page.evaluate(_STORAGE)
        assert kept["caches"][f"gridmap-pages-v2-{account}"][:1] == ["/worker/"]  # cached under its account
        assert all(s in page.content() for s in ("孙奶奶", "第1网格"))  # the page does hold personal data

        # an entry the server cannot take yet (it answers 503): still waiting when the worker signs out
        context.route("**/worker/api/checkins", lambda route: route.fulfill(status=503, body="{}"))
        _check_in_offline(page, context, building, "甲的离线走访")
        context.set_offline(False)
        page.wait_for_timeout(500)
        assert page.evaluate(_STORAGE)["outbox"] == [{"owner": account, "note": "甲的离线走访"}]
        asked = []
        page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
        page.get_by_role("button", name="退出").click()
        page.wait_for_url(f"{base}/")
        assert asked == ["此手机上还有 1 条记录尚未发送。退出登录会把它们从此手机上删除。仍要退出吗？"]

        left = page.evaluate(_STORAGE)
        assert not [n for n in left["caches"] if n.startswith("gridmap-pages")], left
        assert left["outbox"] == [] and left["registrations"] == 0, left
        # offline, the workbench's address opens nothing of the worker's
        context.set_offline(True)
        shown = _open_offline(page, f"{base}/worker/")
        assert not [s for s in (*FIRST_ONLY, "甲的离线走访") if s in shown]
        assert ("甲的离线走访", "王网格") not in _checkins(app)
    finally:
        context.close()


def test_cancelling_the_question_keeps_the_worker_signed_in_with_the_entry(browser, phone_server):
    app, base = phone_server
    building = _building(app, world_.G1)
    context = _phone(browser, base, building)
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        account = _sign_in(page, base, "worker")
        context.route("**/worker/api/checkins", lambda route: route.fulfill(status=503, body="{}"))
        _check_in_offline(page, context, building, "先别删")
        context.set_offline(False)
        page.once("dialog", lambda d: d.dismiss())
        page.get_by_role("button", name="退出").click()
        page.wait_for_timeout(800)
        assert page.url == f"{base}/worker/"
        assert page.evaluate(_STORAGE)["outbox"] == [{"owner": account, "note": "先别删"}]
    finally:
        context.close()


def test_a_second_worker_on_the_same_phone_never_sends_sees_or_opens_the_firsts(browser, phone_server):
    app, base = phone_server
    first_building = _building(app, world_.G1)
    context = _phone(browser, base, first_building)
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        first = _sign_in(page, base, "worker")
        _check_in_offline(page, context, first_building, "甲留在手机上的走访")
        # the first worker's session ends without the workbench's sign-out (it expired, or an admin ended it):
        # nothing on the phone was told
        context.clear_cookies()
        page.close()
        context.set_offline(False)

        page = context.new_page()
        page.set_default_timeout(15000)
        sent = []
        page.on("request", lambda r: sent.append(r.post_data or "") if r.method == "POST" and "/worker/api/" in r.url
                else None)
        second = _sign_in(page, base, "worker2")
        assert second != first
        page.wait_for_timeout(1500)  # the page's flush has run (at load, and after the reload)
        assert not [b for b in sent if "甲留在手机上的走访" in b or first in b]
        assert page.locator("#outbox").inner_text() == ""  # the first one's entry is not counted as mine
        assert not [s for s in FIRST_ONLY if s in page.content()] and "第2网格" in page.content()
        stored = page.evaluate(_STORAGE)
        assert stored["outbox"] == [{"owner": first, "note": "甲留在手机上的走访"}]  # kept for its own account
        assert [n for n in stored["caches"] if n.startswith("gridmap-pages")] == [f"gridmap-pages-v2-{second}"]

        # offline, the phone opens the second worker's workbench, and nothing of the first one's
        context.set_offline(True)
        shown = _open_offline(page, f"{base}/worker/")
        assert "第2网格" in shown and not [s for s in FIRST_ONLY if s in shown]
        assert ("甲留在手机上的走访", "李网格") not in _checkins(app)

        # the first worker signs in again on the phone: the entry goes, under the first worker's account
        context.set_offline(False)
        context.clear_cookies()
        _sign_in(page, base, "worker")
        page.locator("#outbox").filter(has_text=re.compile(r"^$")).wait_for()
        assert ("甲留在手机上的走访", "王网格") in _checkins(app)
        assert ("甲留在手机上的走访", "李网格") not in _checkins(app)
    finally:
        context.close()
