"""The grid worker's workbench (issue 12): my grids' incidents and people only, patrols whose positions are
checked, check-ins stored once however often the phone sends them, and the buildings nobody visited this month.

The world is tests/dispatch_world.py's two grids, with buildings drawn in metres::

    y=200 +-----------------+-----------------+
          |  G1 (王网格:      |  G2 (李网格:      |
          |  account worker)|  account worker2)|
          |  b1 (100,100)   |  b2 (300,100)   |
          |  c1..c4 along   |  d1 (350,50)    |
          |  y=50           |                 |
    y=0   +-----------------+-----------------+
          0                200               400
"""
import datetime as dt
import uuid

import pandas as pd
import pytest
from shapely.geometry import Point, box
from sqlalchemy import func, select

import dispatch_world as world_
from conftest import at, lonlat, make_app
from gridmap import accounts, dispatch, photos
from gridmap.dispatch import patrol
from gridmap.pages import worker as worker_page
from gridmap.store import models as m

G1, G2 = world_.G1, world_.G2
EXTRA = {"c1": (30, 50), "c2": (80, 50), "c3": (130, 50), "c4": (180, 50), "d1": (350, 50)}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)])
def world(request, tmp_path_factory):
    app, cleanup = make_app(tmp_path_factory.mktemp(f"worker-{request.param}"), request.param)
    app.config["WTF_CSRF_ENABLED"] = False
    store = world_.build(app.extensions["gridmap.store"])
    with store.transaction() as s:
        for name, (x, y) in EXTRA.items():
            lon, lat = at(x, y)
            b = m.Building(community_code=world_.COMMUNITY, address=f"湾里路{name}号", name=name, households=1,
                           geom=lonlat(Point(x, y)), lon=lon, lat=lat)
            s.add(b)
            s.flush()
            h = m.Household(building_id=b.id, unit="1-1", size=1)
            s.add(h)
            s.flush()
            s.add(m.Resident(household_id=h.id, name=f"住户{name}", phone=f"1381111{len(name)}{x:03d}"))
        second = s.scalar(select(m.GridWorker.id).where(m.GridWorker.name == "李网格"))
        accounts.create_user(s, "worker2", world_.PASSWORD, "grid_worker", worker_id=second)
    clients = {u: world_.login(app, u) for u in ("worker", "worker2", "dispatcher", "admin", "planner")}
    clients[None] = app.test_client()
    snap = app.extensions["gridmap.snapshots"].get()
    with store.session() as s:
        ids = dict(s.execute(select(m.Building.name, m.Building.id)).all())
    yield {"app": app, "store": store, "clients": clients, "snap": snap, "ids": ids, "backend": request.param}
    store.dispose()
    cleanup()


def _report(w, xy, category="noise", now=None):
    lon, lat = at(*xy)
    with w["store"].transaction() as s:
        return dispatch.report(s, w["snap"], category=category, lon=lon, lat=lat, now=now,
                               description=f"at {xy}").id


def _actor(w, username):
    with w["store"].session() as s:
        user = s.scalar(select(m.User).where(m.User.username == username))
        area = accounts.area_of(s, user.id, user.role, user.worker_id)
        return dispatch.Actor(username, user.role, area), user.worker_id


def _key():
    return str(uuid.uuid4())


# --- doors ------------------------------------------------------------------------------------------

def test_the_worker_lands_on_the_workbench_and_its_header_offers_it(world):
    r = world["app"].test_client().post("/login", data={"username": "worker", "password": world_.PASSWORD})
    assert r.headers["Location"] == "/worker/"
    page = world["clients"]["worker"].get("/worker/").get_data(as_text=True)
    assert 'href="/worker/"' in page and G1 in page and G2 not in page


@pytest.mark.parametrize("who, status", [("dispatcher", 403), ("admin", 403), ("planner", 403), (None, 401)])
def test_only_grid_workers_open_the_workbench_and_patrol(world, who, status):
    c = world["clients"][who]
    assert c.get("/worker/", headers={"Accept": "application/json"}).status_code == status
    before = _count(world, m.Patrol)
    for url in ("/worker/api/patrols", "/worker/api/patrols/1/points", "/worker/api/checkins"):
        r = c.post(url, json={"points": []} if url.endswith("points") else {})
        assert r.status_code == status and r.get_json()["error"] in ("forbidden", "unauthorized"), (url, r.get_json())
    assert _count(world, m.Patrol) == before
    # the header of a role that may not open it does not offer it
    if who is not None:
        assert 'href="/worker/"' not in c.get("/").get_data(as_text=True)


def _count(w, model):
    with w["store"].session() as s:
        return s.scalar(select(func.count()).select_from(model))


# --- the inbox ----------------------------------------------------------------------------------

def test_the_inbox_holds_my_grids_open_incidents_overdue_first_then_new(world):
    w = world
    now = dispatch.utcnow()
    late = _report(w, (60, 150), now=now - dt.timedelta(days=30))      # G1, long past its deadline
    fresh = _report(w, (70, 150))                                      # G1, new
    moving = _report(w, (80, 150))                                     # G1, accepted
    theirs = _report(w, (320, 150))                                    # G2
    actor, _ = _actor(w, "worker")
    with w["store"].transaction() as s:
        dispatch.transition(s, moving, "accept", actor=actor, version=1)
    with w["store"].session() as s:
        inbox = worker_page.inbox(s, role=actor.role, area=actor.area, now=now)
    ids = [i["id"] for i in inbox]
    assert theirs not in ids
    # the oracle: every open incident of G1 from the table, ordered by hand
    with w["store"].session() as s:
        rows = s.execute(select(m.Incident.id, m.Incident.status, m.Incident.deadline_at)
                         .where(m.Incident.grid_code == G1, m.Incident.status.in_(dispatch.OPEN_STATUSES))).all()
    expected = sorted(rows, key=lambda r: (not r.deadline_at < now, r.status != "reported", r.deadline_at, -r.id))
    assert ids == [r.id for r in expected]
    assert ids.index(late) < ids.index(fresh) < ids.index(moving)
    page = w["clients"]["worker"].get("/worker/").get_data(as_text=True)
    assert f'data-id="{fresh}"' in page and f'data-id="{theirs}"' not in page
    assert f'data-id="{fresh}"' not in w["clients"]["worker2"].get("/worker/").get_data(as_text=True)


def test_another_workers_incident_answers_as_a_missing_one_and_is_not_moved(world):
    w = world
    mine = _report(w, (90, 160))
    r = w["clients"]["worker2"].post(f"/api/v1/incidents/{mine}/transition", json={"action": "accept", "version": 1})
    assert r.status_code == 404
    with w["store"].session() as s:
        assert s.get(m.Incident, mine).status == "reported"
    ok = w["clients"]["worker"].post(f"/api/v1/incidents/{mine}/transition", json={"action": "accept", "version": 1})
    assert ok.status_code == 200 and ok.get_json()["status"] == "accepted"


def test_escalation_is_offered_only_where_the_rules_allow_it(world):
    w = world
    low, top = _report(w, (95, 170)), _report(w, (96, 170))
    with w["store"].transaction() as s:
        s.get(m.Incident, top).level = "department"  # the last level: nobody above to hand it to
    page = w["clients"]["worker"].get("/worker/").get_data(as_text=True)

    def buttons(iid):
        part = page.split(f'data-id="{iid}"', 1)[1].split("</li>", 1)[0]
        return sorted(set(a.split('"')[0] for a in part.split('data-action="')[1:]))
    # the rules' own answer is the oracle for what the page offers
    for iid, level in ((low, "grid"), (top, "department")):
        assert buttons(iid) == sorted(dispatch.allowed_actions("reported", "grid_worker", level=level, at=(G1, None),
                                                               area=_actor(w, "worker")[0].area))
    assert "escalate" in buttons(low) and "escalate" not in buttons(top)


# --- people of my grids ---------------------------------------------------------------------------

def test_the_worker_sees_the_households_of_its_grids_only_with_phones_whole(world):
    w = world
    mine = w["clients"]["worker"].get("/worker/").get_data(as_text=True)
    theirs = w["clients"]["worker2"].get("/worker/").get_data(as_text=True)
    assert "孙奶奶" in mine and "13812345678" in mine and "住户c1" in mine and "住户d1" not in mine
    assert "孙奶奶" not in theirs and "13812345678" not in theirs and "住户d1" in theirs


# --- check-ins -------------------------------------------------------------------------------------

def test_a_replayed_check_in_is_stored_once_and_answers_the_first(world):
    w = world
    c, key = w["clients"]["worker"], _key()
    body = {"key": key, "building_id": w["ids"]["c2"], "note": "门禁坏了"}
    first = c.post("/worker/api/checkins", json=body)
    again = c.post("/worker/api/checkins", json={**body, "note": "sent again"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["id"] == first.get_json()["id"] and again.get_json()["note"] == "门禁坏了"
    assert again.get_json()["replayed"] is True
    with w["store"].session() as s:
        assert s.scalar(select(func.count()).select_from(m.Checkin).where(m.Checkin.idempotency_key == key)) == 1
    # another worker replaying the key learns nothing of it, and a building outside my grids is not found
    assert w["clients"]["worker2"].post("/worker/api/checkins", json=body).status_code == 404
    outside = c.post("/worker/api/checkins", json={"key": _key(), "building_id": w["ids"]["d1"]})
    assert outside.status_code == 404 and outside.get_json()["details"]["building_id"] == w["ids"]["d1"]


def test_a_check_in_far_from_its_building_or_with_a_bad_key_is_refused_and_writes_nothing(world):
    w = world
    before = _count(w, m.Checkin)
    far = at(30, 190)  # 160 m from c4
    r = w["clients"]["worker"].post("/worker/api/checkins", json={"key": _key(), "building_id": w["ids"]["c4"],
                                                                  "lon": far[0], "lat": far[1], "accuracy": 5})
    assert r.status_code == 400 and r.get_json()["details"]["field"] == "lon"
    r = w["clients"]["worker"].post("/worker/api/checkins", json={"key": "short", "building_id": w["ids"]["c4"]})
    assert r.status_code == 400 and r.get_json()["details"]["field"] == "key"
    assert _count(w, m.Checkin) == before


# --- a shared phone: entries and pages under the account they belong to ----------------------------

def _account(client):
    r = client.get("/worker/")
    page = r.get_data(as_text=True)
    tag = page.split('"account": "', 1)[1].split('"', 1)[0]
    assert r.headers["X-Gridmap-Account"] == tag  # the header the service worker files pages under
    return tag


def test_each_worker_has_its_own_opaque_account_tag_and_anonymous_pages_none(world):
    w = world
    mine, theirs = _account(w["clients"]["worker"]), _account(w["clients"]["worker2"])
    assert len(mine) == 24 and mine != theirs and mine == _account(w["clients"]["worker"])  # stable per account
    assert "worker" not in mine and mine not in w["clients"]["worker2"].get("/worker/").get_data(as_text=True)
    anonymous = w["clients"][None].get("/worker/")
    assert anonymous.status_code in (302, 401) and "X-Gridmap-Account" not in anonymous.headers


def test_an_outbox_entry_typed_under_another_account_is_refused_and_writes_nothing(world):
    w = world
    c, other = w["clients"]["worker"], _account(w["clients"]["worker2"])
    before = (_count(w, m.Checkin), _count(w, m.Incident))
    checkin = {"key": _key(), "building_id": w["ids"]["c3"], "note": "别人的走访", "owner": other}
    lon, lat = at(120, 130)
    report = {"key": _key(), "category": "noise", "lon": lon, "lat": lat, "description": "别人的上报", "owner": other}
    for url, body in (("/worker/api/checkins", checkin), ("/worker/api/reports", report)):
        r = c.post(url, json=body)
        assert r.status_code == 403 and r.get_json()["error"] == "other_account", r.get_json()
    assert (_count(w, m.Checkin), _count(w, m.Incident)) == before
    # the same entries under my own account (or from a client that names none) are stored
    mine = _account(c)
    assert c.post("/worker/api/checkins", json={**checkin, "owner": mine}).status_code == 201
    assert c.post("/worker/api/reports", json={**report, "key": _key(), "owner": None}).status_code == 201
    assert (_count(w, m.Checkin), _count(w, m.Incident)) == (before[0] + 1, before[1] + 1)


def test_signing_out_tells_the_browser_to_clear_the_cached_pages_and_the_outbox(world):
    # an account of its own: signing out ends every session of the account, the module's clients included
    with world["store"].transaction() as s:
        second = s.scalar(select(m.GridWorker.id).where(m.GridWorker.name == "李网格"))
        accounts.create_user(s, "leaving", world_.PASSWORD, "grid_worker", worker_id=second)
    c = world_.login(world["app"], "leaving")
    assert c.get("/worker/").status_code == 200
    r = c.post("/logout")
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert r.headers["Clear-Site-Data"] == '"cache", "storage"'
    assert c.get("/worker/", headers={"Accept": "application/json"}).status_code == 401


# --- patrol ----------------------------------------------------------------------------------------

def test_patrol_positions_are_kept_only_when_plausible(world):
    w = world
    c = w["clients"]["worker"]
    r = c.post("/worker/api/patrols", json={})
    assert r.status_code in (200, 201)
    pid = r.get_json()["id"]
    assert c.post("/worker/api/patrols", json={}).get_json()["id"] == pid  # a second tap: the same patrol
    t = dispatch.utcnow().replace(tzinfo=dt.timezone.utc).timestamp() + 1

    def p(x, y, dt_s, acc=8):
        lon, lat = at(x, y)
        return {"lon": lon, "lat": lat, "accuracy": acc, "time": t + dt_s}
    batch = [p(50, 100, 0), p(60, 100, 10),          # 1 m/s: kept
             p(70, 100, 20, acc=500),                # a fix 500 m wide
             p(450, 100, 30),                        # 250 m off G1, but 390 m in 10 s
             p(70, 100, 10),                         # no later than the last kept one
             p(5000, 5000, 60),                      # kilometres outside my grids
             p(300, 100, 70),                        # in G2, 100 m off G1, 240 m at 4.8 m/s: kept
             p(80, 100, 3600 * 2)]                   # two hours ahead of the clock
    r = c.post(f"/worker/api/patrols/{pid}/points", json={"points": batch})
    assert r.status_code == 200, r.get_json()
    out = r.get_json()
    assert out["accepted"] == 3
    assert out["rejected"] == [{"index": 2, "reason": "accuracy"}, {"index": 3, "reason": "speed"},
                               {"index": 4, "reason": "time"}, {"index": 5, "reason": "outside"},
                               {"index": 7, "reason": "time"}]
    # the distance walked, against the drawing's own metres: 10 m then 240 m
    assert out["patrol"]["distance_m"] == pytest.approx(250, abs=1)
    # a malformed position is a 400 naming it, and nothing of the batch is kept
    bad = c.post(f"/worker/api/patrols/{pid}/points", json={"points": [p(90, 100, 80), {"lon": "x"}]})
    assert bad.status_code == 400 and bad.get_json()["details"]["index"] == 1
    too_many = c.post(f"/worker/api/patrols/{pid}/points", json={"points": [p(90, 100, 80)] * (patrol.MAX_BATCH + 1)})
    assert too_many.status_code == 400
    # another worker cannot add to or stop my patrol
    assert w["clients"]["worker2"].post(f"/worker/api/patrols/{pid}/points", json={"points": []}).status_code == 404
    assert w["clients"]["worker2"].post(f"/worker/api/patrols/{pid}/stop").status_code == 404
    with w["store"].session() as s:
        assert s.scalar(select(func.count()).select_from(m.PatrolPoint).where(m.PatrolPoint.patrol_id == pid)) == 3
    assert c.post(f"/worker/api/patrols/{pid}/stop").status_code == 200
    assert c.post(f"/worker/api/patrols/{pid}/stop").status_code == 409
    assert c.post(f"/worker/api/patrols/{pid}/points", json={"points": [p(90, 100, 90)]}).status_code == 409
    # today's track, as the page's map draws it
    actor, worker_id = _actor(w, "worker")
    with w["store"].session() as s:
        line = [t for t in patrol.track(s, worker_id) if t["id"] == pid][0]["line"]
    assert line == [list(at(50, 100)), list(at(60, 100)), list(at(300, 100))]


def test_a_workbench_report_sent_twice_is_one_incident(world):
    w = world
    c, key = w["clients"]["worker"], _key()
    lon, lat = at(120, 120)
    body = {"key": key, "category": "noise", "lon": lon, "lat": lat, "description": "工地夜间施工"}
    a, b = c.post("/worker/api/reports", json=body), c.post("/worker/api/reports", json=body)
    assert (a.status_code, b.status_code) == (201, 200)
    assert a.get_json()["incident"]["id"] == b.get_json()["incident"]["id"]
    with w["store"].session() as s:
        assert s.scalar(select(func.count()).select_from(m.Incident)
                        .where(m.Incident.description == "工地夜间施工")) == 1


# --- unvisited this month --------------------------------------------------------------------------

def test_unvisited_buildings_match_an_oracle_over_the_check_ins(world):
    w = world
    actor, worker_id = _actor(w, "worker")
    now = dt.datetime(2026, 7, 1, 3, 0)  # 11:00 on 1 July in the community: 30 June 20:00 UTC is still June there
    visits = [("b1", dt.datetime(2026, 6, 30, 16, 30)),   # 00:30 on 1 July local: this month
              ("c1", dt.datetime(2026, 6, 30, 15, 30)),   # 23:30 on 30 June local: last month
              ("c3", dt.datetime(2026, 7, 1, 2, 0)),
              ("c3", dt.datetime(2026, 5, 2, 2, 0)),
              ("d1", dt.datetime(2026, 7, 1, 1, 0))]      # in G2: not the worker's, but visited
    other_id = _actor(w, "worker2")[1]
    with w["store"].transaction() as s:
        s.execute(m.Checkin.__table__.delete())
        for name, when in visits:
            s.add(m.Checkin(idempotency_key=_key(), worker_id=other_id if name == "d1" else worker_id,
                            building_id=w["ids"][name], at=when, recorded_at=when, note=""))
    with w["store"].session() as s:
        got = sorted(b["id"] for b in patrol.unvisited(s, w["snap"], actor.area, now=now))
        buildings = pd.DataFrame(s.execute(select(m.Building.id, m.Building.lon, m.Building.lat)).all(),
                                 columns=["id", "lon", "lat"])
        checkins = pd.DataFrame(s.execute(select(m.Checkin.building_id, m.Checkin.at)).all(),
                                columns=["building_id", "at"])
    # the oracle: G1 drawn by hand, the month in Beijing time by pandas' own time zones
    g1 = lonlat(box(0, 0, 200, 200))
    mine = buildings[[g1.contains(Point(x, y)) for x, y in zip(buildings["lon"], buildings["lat"])]]
    local = pd.to_datetime(checkins["at"]).dt.tz_localize("UTC").dt.tz_convert("Asia/Shanghai")
    this_month = checkins[(local.dt.year == 2026) & (local.dt.month == 7)]
    expected = sorted(set(mine["id"]) - set(this_month["building_id"]))
    assert got == expected
    assert w["ids"]["c1"] in got and w["ids"]["b1"] not in got and w["ids"]["d1"] not in got


# --- resolving with photos -------------------------------------------------------------------------

def _in_progress(w, xy):
    iid = _report(w, xy)
    actor, _ = _actor(w, "worker")
    with w["store"].transaction() as s:
        dispatch.transition(s, iid, "accept", actor=actor, version=1)
        dispatch.transition(s, iid, "start", actor=actor, version=2)
    return iid


def test_a_worker_resolves_with_a_note_and_a_photo_whose_location_is_stripped(world):
    import io

    from PIL import Image

    from test_photos import GPS_IFD, jpeg_with_gps
    w = world
    iid = _in_progress(w, (110, 60))
    raw = jpeg_with_gps()
    assert Image.open(io.BytesIO(raw)).getexif().get_ifd(GPS_IFD)  # the phone's photo says where it was taken
    r = w["clients"]["worker"].post(f"/worker/api/incidents/{iid}/resolve",
                                    data={"version": "3", "note": "已修复", "photos": [(io.BytesIO(raw), "a.jpg")]},
                                    content_type="multipart/form-data")
    assert r.status_code == 200, r.get_json()
    out = r.get_json()
    assert out["status"] == "resolved" and len(out["photos"]) == 1
    pid = out["photos"][0]
    # the dispatcher who covers the community sees it without its location; another grid's worker does not
    photo = w["clients"]["dispatcher"].get(f"/photos/{pid}")
    assert photo.status_code == 200 and Image.open(io.BytesIO(photo.data)).getexif().get_ifd(GPS_IFD) == {}
    assert w["clients"]["worker2"].get(f"/photos/{pid}").status_code == 404
    detail = w["clients"]["dispatcher"].get(f"/api/v1/incidents/{iid}").get_json()
    assert detail["photos"] == [pid] and detail["history"][-1]["note"] == "已修复"


@pytest.mark.parametrize("form, reason", [({"note": "已修复", "photos": [(b"not a photo", "x.jpg")]}, "photo_not_image"),
                                          ({"note": "  "}, None)])
def test_a_refused_resolve_writes_nothing(world, form, reason):
    import io
    w = world
    iid = _in_progress(w, (120, 60))
    data = {"version": "3", **{k: ([(io.BytesIO(b), n) for b, n in v] if k == "photos" else v) for k, v in form.items()}}
    r = w["clients"]["worker"].post(f"/worker/api/incidents/{iid}/resolve", data=data,
                                    content_type="multipart/form-data")
    assert r.status_code == 400
    assert r.get_json()["details"].get("reason") == reason or r.get_json()["details"].get("field") == "note"
    with w["store"].session() as s:
        assert s.get(m.Incident, iid).status == "in_progress"
        assert s.scalar(select(func.count()).select_from(m.Photo).where(m.Photo.owner_id == iid)) == 0


# --- races -------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_one_check_in_sent_from_five_tabs_at_once_is_stored_once_and_each_answer_is_it_or_a_409(world):
    """A phone whose outbox is flushed by several tabs at once: one row; the others answer the first or 409."""
    from conftest import serving
    from test_races import Client, assert_says_what_to_do, at_once
    w = world
    with serving(w["app"]) as base:
        clients = [Client(base, "worker", world_.PASSWORD) for _ in range(5)]
        for _ in range(2):
            body = {"key": _key(), "building_id": w["ids"]["c3"], "note": "五个标签页"}
            answers = at_once(5, lambda k: clients[k].post("/worker/api/checkins", body))
            statuses = sorted(a[0] for a in answers)
            assert statuses.count(201) == 1 and set(statuses) <= {200, 201, 409}, answers
            ids = {a[1]["id"] for a in answers if a[0] in (200, 201)}
            assert len(ids) == 1
            for status, answer in answers:
                if status == 409:
                    assert_says_what_to_do(answer)
            with w["store"].session() as s:
                assert s.scalar(select(func.count()).select_from(m.Checkin)
                                .where(m.Checkin.idempotency_key == body["key"])) == 1
            # the phone's next flush of a 409'd copy answers the stored one
            again = clients[0].post("/worker/api/checkins", body)
            assert again[0] == 200 and again[1]["id"] in ids


def test_the_inbox_shows_a_reports_photos_to_the_worker_of_its_grid_only(world):
    from gridmap import photos

    from test_photos import jpeg_with_gps
    w = world
    iid = _report(w, (140, 40))
    with w["store"].transaction() as s:
        [pid] = photos.save_photos(s, [jpeg_with_gps()], owner_kind="incident", owner_id=iid)
    page = w["clients"]["worker"].get("/worker/").get_data(as_text=True)
    card = page.split(f'data-id="{iid}"', 1)[1].split("</li>", 1)[0]
    assert f'src="/photos/{pid}"' in card
    assert w["clients"]["worker"].get(f"/photos/{pid}").status_code == 200
    assert f"/photos/{pid}" not in w["clients"]["worker2"].get("/worker/").get_data(as_text=True)
    assert w["clients"]["worker2"].get(f"/photos/{pid}").status_code == 404


# --- resolve photos and the resident who reported -------------------------------------------------

def _resident_report(w, xy, description):
    """A resident's report with one photo, accepted and started by the worker: (incident id, token, its photo)."""
    from test_photos import jpeg_with_gps
    lon, lat = at(*xy)
    with w["store"].transaction() as s:
        inc, token = dispatch.resident_report(s, w["snap"], category="street_light", lon=lon, lat=lat,
                                              description=description, files=[("mine.jpg", jpeg_with_gps())])
        iid = inc.id
    actor, _ = _actor(w, "worker")
    with w["store"].transaction() as s:
        dispatch.transition(s, iid, "accept", actor=actor, version=1)
        dispatch.transition(s, iid, "start", actor=actor, version=2)
        sent = [p["id"] for p in photos.photos_of(s, "incident", iid)]
    return iid, token, sent


def _resolve(w, iid, show, n=2):
    import io

    from test_photos import jpeg_with_gps
    data = {"version": "3", "note": "路灯已换", "photos": [(io.BytesIO(jpeg_with_gps()), f"fix{i}.jpg") for i in range(n)]}
    if show is not None:
        data["show_photos"] = show
    return w["clients"]["worker"].post(f"/worker/api/incidents/{iid}/resolve", data=data,
                                       content_type="multipart/form-data")


@pytest.mark.parametrize("show", ["1", "0", None])
def test_the_resident_sees_the_fix_photos_only_when_the_worker_shows_them(world, show):
    w = world
    iid, token, sent = _resident_report(w, (60, 140), f"路灯不亮 {show}")
    other_iid, other_token, _ = _resident_report(w, (70, 140), f"另一盏路灯 {show}")
    page = w["clients"]["worker"].get("/worker/").get_data(as_text=True)
    assert f'id="show-photos-{iid}"' in page  # offered on a resident's report
    r = _resolve(w, iid, show)
    assert r.status_code == 200, r.get_json()
    fixed = r.get_json()["photos"]
    assert len(fixed) == 2 and not set(fixed) & set(sent)
    shown = show == "1"

    public = w["clients"][None]
    status = public.get(f"/reports/{token}").get_data(as_text=True)
    for pid in sent:  # what the resident sent: always theirs to see
        assert f"/reports/{token}/photos/{pid}" in status and public.get(f"/reports/{token}/photos/{pid}").status_code == 200
    for pid in fixed:
        assert (f"/reports/{token}/photos/{pid}" in status) is shown
        assert public.get(f"/reports/{token}/photos/{pid}").status_code == (200 if shown else 404)
        # never through another report's link, nor to the public, nor to another grid's worker
        assert public.get(f"/reports/{other_token}/photos/{pid}").status_code == 404
        assert public.get(f"/photos/{pid}", headers={"Accept": "application/json"}).status_code == 401
        assert w["clients"]["worker2"].get(f"/photos/{pid}").status_code == 404
        # staff who may read the incident see every photo, shown or not
        assert w["clients"]["dispatcher"].get(f"/photos/{pid}").status_code == 200
    assert ("照片" in status) and (('id="fix-photos"' in status) is shown)
    from gridmap.dispatch import residents
    with w["store"].session() as s:
        view = residents.public_status(s, w["snap"], token)
        assert (view["photos"], view["fix_photos"]) == (sent, fixed if shown else [])
        assert residents.public_status(s, w["snap"], other_token)["fix_photos"] == []
    assert w["clients"]["dispatcher"].get(f"/api/v1/incidents/{iid}").get_json()["photos"] == sent + fixed
    assert other_iid != iid


def test_the_show_photos_box_is_offered_only_on_residents_reports_and_a_bad_flag_writes_nothing(world):
    w = world
    staff = _in_progress(w, (130, 140))  # reported through the API, not by a resident: no link to show photos on
    iid, _token, sent = _resident_report(w, (140, 140), "楼道灯坏了")
    page = w["clients"]["worker"].get("/worker/").get_data(as_text=True)
    assert f'id="show-photos-{staff}"' not in page and f'id="show-photos-{iid}"' in page
    r = _resolve(w, iid, "yes")
    assert r.status_code == 400 and r.get_json()["details"]["field"] == "show_photos"
    with w["store"].session() as s:
        assert s.get(m.Incident, iid).status == "in_progress"
        assert [p.id for p in s.scalars(select(m.Photo).where(m.Photo.owner_id == iid))] == sent


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)])
def test_migration_0017_keeps_resolve_photos_of_before_from_the_resident(tmp_path, backend):
    """Before 0017 a resolve's photos were stored like the report's and shown on its status page; after
    it they are staff photos (nobody chose to show them), and the report's own photos stay shown."""
    from alembic import command
    from sqlalchemy import text

    from gridmap.store.db import _alembic_config
    app, cleanup = make_app(tmp_path, backend)
    app.config["WTF_CSRF_ENABLED"] = False
    store = world_.build(app.extensions["gridmap.store"])
    try:
        w = {"store": store, "snap": app.extensions["gridmap.snapshots"].get(), "app": app,
             "clients": {"worker": world_.login(app, "worker")}}
        iid, token, sent = _resident_report(w, (60, 140), "路灯不亮")
        fixed = _resolve(w, iid, "1").get_json()["photos"]  # shown: the migration must still hide them
        with store.engine.begin() as conn:
            command.downgrade(_alembic_config(conn), "0016")
        store.upgrade()
        with store.engine.connect() as conn:
            rows = dict((r.id, (r.stage, bool(r.reporter_sees))) for r in conn.execute(
                text("SELECT id, stage, reporter_sees FROM photo WHERE owner_id = :i"), {"i": iid}))
        assert rows == {**{p: ("report", True) for p in sent}, **{p: ("resolve", False) for p in fixed}}
    finally:
        store.dispose()
        cleanup()
