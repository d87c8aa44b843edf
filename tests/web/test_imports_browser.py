"""Imports from the browser in real (headless) Chromium: upload, see the bad features listed and in red, fix the mapping, import, undo."""
import re

import pytest
from sqlalchemy import func, select

from conftest import DEMO_PASSWORD, make_app, serving, staff_page
from gridmap import accounts
from gridmap.store import models as m
from test_imports_page import buildings_geojson

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RED = "#dc2626"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    app, _ = make_app(tmp_path_factory.mktemp("imports-browser"), "sqlite")
    app.config["WTF_CSRF_ENABLED"] = True
    with app.extensions["gridmap.store"].transaction() as s:
        accounts.create_user(s, "planner", DEMO_PASSWORD, "planner")
    with serving(app) as url:
        yield app, url
    app.extensions["gridmap.store"].dispose()


def count_buildings(app):
    with app.extensions["gridmap.store"].session() as s:
        return s.scalar(select(func.count()).select_from(m.Building))


def test_a_planner_uploads_sees_the_bad_features_in_red_fixes_the_mapping_imports_and_undoes(browser, served):
    app, url = served
    context, page = staff_page(browser, url, "planner", "/admin/imports", timeout=30000)
    try:
        page.set_input_files("#file", files=[{"name": "楼栋.geojson", "mimeType": "application/geo+json",
                                              "buffer": buildings_geojson()}])
        page.select_option("#kind", "buildings")
        page.locator("#upload-form button[type=submit]").click()
        page.wait_for_url(re.compile(r"/admin/imports/[A-Za-z0-9_-]{22}$"))

        # the dry run runs in the background; the page shows its progress, then what it found
        page.locator("#problems").wait_for()
        rows = page.locator("#problems tbody tr")
        assert [rows.nth(i).get_attribute("data-row") for i in range(rows.count())] == ["2", "3"]
        assert "三十" in rows.nth(0).inner_text() and "-5" in rows.nth(1).inner_text()
        assert page.locator("#preview tbody tr").count() == 4
        assert count_buildings(app) == 0
        frame = page.frame_locator("#map")
        frame.locator(f'path[stroke="{RED}"]').first.wait_for()
        assert frame.locator(f'path[stroke="{RED}"]').count() == 2  # the two bad squares, in red
        assert frame.locator("path.leaflet-interactive").count() == 4

        # households come from the hh column: a new dry run finds nothing wrong
        page.select_option("#field-households", "hh")
        page.locator("#dry-run").click()
        page.locator("#summary").wait_for()
        page.wait_for_function("() => !document.getElementById('job') && !document.getElementById('problems')")
        assert re.search(r"\b4\b.*\b4\b", page.locator("#summary").inner_text())
        page.frame_locator("#map").locator("path.leaflet-interactive").first.wait_for()
        assert page.frame_locator("#map").locator(f'path[stroke="{RED}"]').count() == 0
        assert count_buildings(app) == 0

        page.locator("#import").click()
        page.locator("#imported").wait_for()
        assert count_buildings(app) == 4
        assert "4" in page.locator("#imported").inner_text()

        page.goto(f"{url}/admin/imports")
        batch = page.locator("#batches tbody tr")
        assert batch.count() == 1 and batch.first.locator("td").nth(6).inner_text() == "4"  # created
        batch.first.locator("button.undo").click()
        page.locator("#batches tbody tr.undone").wait_for()
        assert count_buildings(app) == 0
        assert page.locator("#batches button.undo").count() == 0
    finally:
        context.close()
