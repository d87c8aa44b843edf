"""A resident reports a problem from the resident page: an incident routed to the grid the spot lies in,
photos without their EXIF, a status page that shows the report's progress and nothing private, and
refusals that name the bad value in the page's language and write nothing — on both backends.

The tiny world of tests/dispatch_world.py: two 200 m grids side by side.
"""
import io
import re

import pytest
import shapely
from PIL import Image
from sqlalchemy import func, select
from werkzeug.test import EnvironBuilder

from conftest import make_app
from gridmap.store import models as m

import dispatch_world as w
from dispatch_world import at

GPS_IFD = 0x8825
SPOT = (320, 60)  # in grid 002, 20 m east and 40 m south of building b2
CONTACT = ("王小明", "13911112222")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)])
def world(request, tmp_path_factory):
    """One dispatch world a backend for the module (each test counts what it adds, not what is there)."""
    app, cleanup = make_app(tmp_path_factory.mktemp("reports"), request.param, WTF_CSRF_ENABLED=True,
                            PHOTO_MAX_BYTES=200_000)
    store = w.build(app.extensions["gridmap.store"])
    yield app, store
    store.dispose()
    cleanup()


def staff(app, username):
    """A staff client of the dispatch world, signed in (the form's CSRF check is off for the sign-in only)."""
    app.config["WTF_CSRF_ENABLED"] = False
    try:
        return w.login(app, username)
    finally:
        app.config["WTF_CSRF_ENABLED"] = True


def jpeg_with_gps(size=(64, 48)):
    img = Image.new("RGB", size, (180, 40, 40))
    exif = Image.Exif()
    exif[GPS_IFD] = {1: "N", 2: (38.0, 54.0, 12.5), 3: "E", 4: (121.0, 36.0, 1.0)}
    exif[0x010F] = "PhoneMaker"
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def resident(app):
    """A browser on the resident page: its client and the form's CSRF token."""
    client = app.test_client()
    page = client.get("/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client, token


def post_report(client, csrf, *, xy=SPOT, photos=(), json_answer=True, **fields):
    lon, lat = at(*xy)
    data = {"csrf_token": csrf, "category": "water_leak", "lon": repr(lon), "lat": repr(lat),
            "description": "楼下水管漏水，地面积水", "contact_name": CONTACT[0], "contact_phone": CONTACT[1], **fields}
    data["photos"] = [(io.BytesIO(body), name) for name, body in photos]
    return client.post("/reports", data=data, content_type="multipart/form-data",
                       headers={"Accept": "application/json"} if json_answer else {})


def counts(store):
    with store.session() as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) for t in (m.Incident, m.Photo, m.ResidentReport))


def grid_by_contains(store, lon, lat):
    """The oracle: the published grid whose polygon contains the point, by shapely over the stored rows."""
    with store.session() as s:
        rows = s.execute(select(m.Grid.code, m.Grid.geom).join(m.GridPlan)
                         .where(m.GridPlan.status == "published")).all()
    return [code for code, geom in rows if shapely.contains(geom, shapely.Point(lon, lat))]


def test_a_report_with_a_photo_is_an_incident_in_the_spots_grid_and_its_photo_has_no_exif(world):
    app, store = world
    client, csrf = resident(app)
    r = post_report(client, csrf, photos=[("leak.jpg", jpeg_with_gps())])
    assert r.status_code == 201, r.get_json()
    out = r.get_json()
    lon, lat = at(*SPOT)
    assert grid_by_contains(store, lon, lat) == [w.G2] == [out["grid"]]
    with store.session() as s:
        inc = s.get(m.Incident, out["id"])
        assert (inc.category, inc.status, inc.source, inc.grid_code) == ("water_leak", "reported", "resident", w.G2)
        assert (inc.reporter_name, inc.reporter_phone) == CONTACT  # kept, for the staff who handle it
        [photo] = s.scalars(select(m.Photo).where(m.Photo.owner_id == inc.id)).all()
    assert out["url"] == f"/reports/{out['token']}" and len(out["token"]) >= 22

    served = client.get(f"{out['url']}/photos/{photo.id}")
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    img = Image.open(io.BytesIO(served.data))
    assert img.size == (64, 48) and dict(img.getexif()) == {}
    assert b"PhoneMaker" not in served.data and b"Exif" not in served.data


def test_the_stored_address_is_the_buildings_at_the_spot_never_one_the_form_names(world):
    app, store = world
    client, csrf = resident(app)
    near_b2 = post_report(client, csrf, xy=(310, 95), address="别人家：湾里路1号").get_json()  # 11 m from b2
    on_a_road = post_report(client, csrf, xy=(320, 160), address="湾里路1号").get_json()  # 63 m from b2
    with store.session() as s:
        assert s.get(m.Incident, near_b2["id"]).address == "湾里路2号"
        assert s.get(m.Incident, on_a_road["id"]).address == ""


def test_the_status_page_shows_status_and_history_but_no_contact_no_coordinates_no_staff_note(world):
    app, store = world
    client, csrf = resident(app)
    out = post_report(client, csrf, photos=[("leak.jpg", jpeg_with_gps())]).get_json()
    lon, lat = at(*SPOT)

    page = client.get(out["url"]).get_data(as_text=True)
    assert "水管漏水" in page and "已上报" in page and "已收到报告" in page  # category, status, first step
    assert "第2网格" in page and "李网格" in page and "139****0002" in page  # the grid and its worker, masked
    assert "13900000002" not in page
    assert CONTACT[0] not in page and CONTACT[1] not in page and CONTACT[1][-4:] not in page
    for value in (lon, lat):
        assert f"{value:.4f}"[:-1] not in page  # not even to ~100 m

    desk = staff(app, "dispatcher")
    incident = desk.get(f"/api/v1/incidents/{out['id']}").get_json()
    assert len(incident["photos"]) == 1  # staff see that it has a photo (served at /photos/<id>)
    r = desk.post(f"/api/v1/incidents/{out['id']}/transition",
                   json={"action": "accept", "version": incident["version"], "note": "内部备注：找物业老张"},
                   headers={"X-CSRFToken": desk.get("/api/v1/csrf").get_json()["csrf_token"]})
    assert r.status_code == 200, r.get_json()

    page = client.get(out["url"]).get_data(as_text=True)
    state = re.search(r'id="report-state"[^>]*>([^<]+)<', page).group(1)
    assert state == "已受理"
    steps = re.findall(r'class="history-step">([^<]+)<', page)
    assert steps == ["已收到报告", "已受理"]
    assert "内部备注" not in page and "找物业老张" not in page and "dispatcher" not in page


def test_photos_are_served_to_staff_of_the_incidents_area_only(world):
    app, store = world
    client, csrf = resident(app)
    out = post_report(client, csrf, photos=[("leak.jpg", jpeg_with_gps())]).get_json()
    with store.session() as s:
        pid = s.scalar(select(m.Photo.id).where(m.Photo.owner_id == out["id"]))
    assert staff(app, "dispatcher").get(f"/photos/{pid}").mimetype == "image/jpeg"  # covers the community
    assert staff(app, "worker").get(f"/photos/{pid}").status_code == 404  # serves grid 001, not 002
    assert staff(app, "planner").get(f"/photos/{pid}").status_code == 403
    assert client.get(f"/photos/{pid}").status_code == 302  # the public: to the login page
    # another report's link does not open this photo
    other = post_report(client, csrf).get_json()
    assert client.get(f"{other['url']}/photos/{pid}").status_code == 404


BAD = {
    "SOS category": ({"category": "elderly_help"}, (), 400, "category_not_offered", "elderly_help"),
    "unknown category": ({"category": "ufo"}, (), 400, "category_not_offered", "“ufo”"),
    "too many photos": ({}, [(f"p{i}.jpg", jpeg_with_gps()) for i in range(4)], 400, "too_many_photos", "4"),
    "photo too big": ({}, [("huge.jpg", jpeg_with_gps() + bytes(200_001))], 400, "photo_too_large", "huge.jpg"),
    "not an image": ({}, [("notes.jpg", b"%PDF-1.4 not a photo")], 400, "photo_not_image", "notes.jpg"),
    "description too long": ({"description": "漏" * 4001}, (), 400, "description_too_long", "4001"),
    "no description": ({"description": "  "}, (), 400, "description_missing", "请描述问题"),
    "no spot": ({"lon": "", "lat": ""}, (), 400, "spot_missing", "还没有选择报告的地点"),
    "spot outside": ({"lon": "121.0", "lat": "38.0"}, (), 400, "spot_outside", "不在网格地图覆盖"),
    "phone too long": ({"contact_phone": "1" * 33}, (), 400, "field_too_long", "您的电话"),
}


@pytest.mark.parametrize("fields,photos,status,reason,named", BAD.values(), ids=BAD.keys())
def test_a_bad_report_is_refused_in_chinese_naming_the_value_and_writes_nothing(world, fields, photos, status,
                                                                                   reason, named):
    app, store = world
    client, csrf = resident(app)
    before = counts(store)
    r = post_report(client, csrf, photos=photos, **fields)
    body = r.get_json()
    assert (r.status_code, body["reason"]) == (status, reason)
    assert named in body["message"] and body["fix"]
    assert counts(store) == before


def test_too_large_a_body_csrf_and_a_page_answer(world):
    app, store = world
    client, csrf = resident(app)
    before = counts(store)
    # past MAX_BODY_BYTES + 3 × PHOTO_MAX_BYTES: refused on its Content-Length, before a byte is read
    lon, lat = at(*SPOT)
    builder = EnvironBuilder(path="/reports", method="POST", headers={"Accept": "application/json"},
                             data={"csrf_token": csrf, "category": "noise", "lon": repr(lon), "lat": repr(lat),
                                   "photos": [(io.BytesIO(bytes(1_000_000)), f"p{i}.jpg") for i in range(3)]})
    environ = builder.get_environ()
    try:
        r = client.open(environ)
    finally:
        environ["wsgi.input"].close()  # the test client's spooled body: never read, so never closed by the app
        builder.close()
    assert (r.status_code, r.get_json()["reason"]) == (413, "body_too_large")
    r = post_report(client, "not-the-token")
    assert (r.status_code, r.get_json()["reason"]) == (400, "csrf")
    r = post_report(client, csrf, json_answer=False, category="ufo")  # a browser without script: a page
    assert r.status_code == 400 and "请从列表中选择问题类别" in r.get_data(as_text=True)
    assert counts(store) == before
    r = post_report(client, csrf, json_answer=False)
    assert r.status_code == 303 and re.fullmatch(r"/reports/[A-Za-z0-9_-]{22}", r.headers["Location"])


def test_english_pages_say_it_in_english(world):
    app, _ = world
    client, csrf = resident(app)
    client.get("/?lang=en")
    body = post_report(client, csrf, category="ufo").get_json()
    assert body["message"] == "“ufo” is not a kind of problem residents can report here."
    out = post_report(client, csrf).get_json()
    page = client.get(out["url"]).get_data(as_text=True)
    assert "Leaking water pipe" in page and "Report received" in page


@pytest.mark.parametrize("token", ["A" * 22, "short", "A" * 21 + "!", "A" * 23])
def test_a_wrong_link_opens_nothing(world, token):
    app, _ = world
    client, _ = resident(app)
    r = client.get(f"/reports/{token}")
    assert r.status_code == 404 and "没有与此链接对应的报告" in r.get_data(as_text=True)


def test_reports_from_the_form_and_the_api_count_against_one_limit(tmp_path):
    app, _ = make_app(tmp_path, "sqlite", RATELIMIT_ENABLED=True, WTF_CSRF_ENABLED=False,
                      RATELIMIT_REPORTS="2 per minute")
    store = w.build(app.extensions["gridmap.store"])
    client = app.test_client()
    lon, lat = at(*SPOT)
    assert client.post("/api/v1/incidents", json={"category": "noise", "lon": lon, "lat": lat}).status_code == 201
    assert post_report(client, "").status_code == 201
    r = post_report(client, "")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert counts(store) == (2, 0, 1)
    store.dispose()
