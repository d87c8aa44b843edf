"""A resident on a phone (real headless Chromium): finds their grid worker by a loosely typed address,
reports a problem there with a photo, and follows the report on its status page."""
import contextlib
import io
import re
import sqlite3

import pytest
import shapely
from PIL import Image
from sqlalchemy import select

from conftest import make_app, serving
from gridmap.store import models as m

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TYPED = "城志街１号"  # full-width digit, no district or street office: as a resident types it
CONTACT = ("刘阿姨", "13688889999")
SCREENSHOT = "/tmp/gridmap-resident-report.png"


@contextlib.contextmanager
def _served_copy_of_demo(demo_app, tmp_path):
    """The session's demo copied into a store of this test's own (the report writes), served with CSRF on:
    a copy by SQLite's backup, seconds cheaper than building the demo again."""
    source = demo_app.extensions["gridmap.store"].engine.url.database
    with contextlib.closing(sqlite3.connect(source)) as src, \
            contextlib.closing(sqlite3.connect(tmp_path / "gridmap.db")) as dst:
        src.backup(dst)
    app, _ = make_app(tmp_path, "sqlite", WTF_CSRF_ENABLED=True)
    with serving(app) as url:
        yield app, url
    app.extensions["gridmap.store"].dispose()


def _photo_with_gps():
    img = Image.new("RGB", (120, 90), (40, 120, 200))
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (39.0, 3.0, 37.0), 3: "E", 4: (121.0, 44.0, 9.0)}
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def test_a_resident_finds_their_worker_by_a_loose_address_reports_with_a_photo_and_follows_it(
        page, tmp_path, demo_app):
    with _served_copy_of_demo(demo_app, tmp_path) as (app, url):
        api = app.test_client()
        hit = api.get("/api/v1/addresses", query_string={"q": TYPED, "limit": 8}).get_json()[0]
        where = api.get("/api/v1/locate", query_string={"lon": hit["lon"], "lat": hit["lat"]}).get_json()
        worker = where["workers"][0]

        page.set_default_timeout(8000)
        page.goto(url + "/")
        page.locator("#address").press_sequentially(TYPED, delay=20)
        page.locator("[role=option]", has_text=hit["address"]).first.wait_for()
        page.locator("#address").press("ArrowDown")
        page.locator("#address").press("Enter")
        page.locator("#r-workers").get_by_text(worker["name"]).wait_for()
        assert worker["phone"] in page.locator("#r-workers").inner_text()  # masked, as the public sees it

        page.get_by_role("button", name="在此上报问题").click()
        assert page.locator("#report-spot").inner_text() == f"地点：{hit['address']}，{where['grid']['name']}。"
        page.get_by_label("问题类别").select_option(label="水管漏水")
        page.get_by_label("问题描述").fill("单元门口水管漏水，地面结冰")
        page.locator("#report-photos").set_input_files(
            [{"name": "leak.jpg", "mimeType": "image/jpeg", "buffer": _photo_with_gps()}])
        page.get_by_label("您的姓名").fill(CONTACT[0])
        page.get_by_label("您的电话").fill(CONTACT[1])
        # a phone-size page: nothing wider than the screen, the send button within it
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        box = page.locator("#report-send").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390
        page.get_by_role("button", name="发送报告").click()

        link = page.locator("#report-link")
        link.wait_for()
        assert re.fullmatch(re.escape(url) + r"/reports/[A-Za-z0-9_-]{22}", link.inner_text())
        page.screenshot(path=SCREENSHOT, full_page=True)
        link.click()

        page.get_by_role("heading", name="水管漏水").wait_for()
        assert page.locator("#report-state").inner_text() == "已上报"
        assert where["grid"]["code"] in page.locator("#report-grid").inner_text()
        assert page.locator("#report-workers").inner_text().split() == [worker["name"], worker["phone"]]
        assert page.locator("#report-history li").count() == 1
        centre = where["service_centre"]
        assert page.locator("#report-centre p").all_inner_texts() == [centre["name"], centre["address"],
                                                                   centre["phone"]]
        img = page.get_by_role("img", name="您报告的第 1 张照片")
        img.wait_for()
        assert page.wait_for_function("img => img.complete && img.naturalWidth === 120", arg=img.element_handle())
        text = page.locator("main").inner_text()
        assert CONTACT[0] not in text and CONTACT[1] not in text
        assert page.evaluate("document.documentElement.scrollWidth") <= 390

        # the oracle: the incident lies in the published grid whose polygon holds the building
        with app.extensions["gridmap.store"].session() as s:
            inc = s.scalars(select(m.Incident).where(m.Incident.source == "resident")).one()
            grids = s.execute(select(m.Grid.code, m.Grid.geom).join(m.GridPlan)
                              .where(m.GridPlan.status == "published", m.GridPlan.community_code == inc.community_code))
            holding = [code for code, geom in grids if shapely.contains(geom, shapely.Point(hit["lon"], hit["lat"]))]
        assert holding == [inc.grid_code] == [where["grid"]["code"]]
        assert (inc.category, inc.address, inc.reporter_phone) == ("water_leak", hit["address"], CONTACT[1])
