"""The dispatcher's page, panel, maps and statistics through the Flask test client."""
import datetime as dt
import json
import re

import pytest
import shapely
from pyproj import Geod, Transformer

from conftest import login_client
from gridmap import dispatch
from gridmap.pages import dispatcher as dispatchview

CHENGZHI = "210213013004"
A, B = f"{CHENGZHI}001", f"{CHENGZHI}002"  # two demo grids sharing an edge


@pytest.fixture
def dispatcher(demo_app):
    yield login_client(demo_app, "dispatcher")
    demo_app.config["WTF_CSRF_ENABLED"] = True


def _snap(demo_app):
    from gridmap.web.common import snapshot
    with demo_app.app_context():
        return snapshot()


def _point_inside_a(snap, metres):
    """(lon, lat) ``metres`` from the middle of the A|B shared edge, on a perpendicular into A."""
    to_m = Transformer.from_crs(4326, snap.metric_crs, always_xy=True)
    back = Transformer.from_crs(snap.metric_crs, 4326, always_xy=True)
    grids = snap.grids.set_index("code").to_crs(snap.metric_crs).geometry
    edge = shapely.line_merge(grids[A].intersection(grids[B]))
    edge = max(getattr(edge, "geoms", [edge]), key=lambda g: g.length)
    mid, ahead = edge.interpolate(0.5, normalized=True), edge.interpolate(0.5 + 1 / edge.length, normalized=True)
    dx, dy = ahead.x - mid.x, ahead.y - mid.y
    norm = (dx * dx + dy * dy) ** 0.5
    for sign in (1, -1):
        p = shapely.Point(mid.x - sign * dy / norm * metres, mid.y + sign * dx / norm * metres)
        if grids[A].contains(p):
            return back.transform(p.x, p.y), grids, to_m
    raise AssertionError("neither side of the shared edge lies in A")


def _expected_near(grids, to_m, lon, lat, own):
    p = shapely.Point(*to_m.transform(lon, lat))
    return {code: g.distance(p) for code, g in grids.items() if code != own and g.distance(p) <= 30}


@pytest.mark.parametrize("path", ["/dispatch/", "/dispatch/map", "/dispatch/stats", "/dispatch/stats/map",
                                  "/dispatch/map?incident=1", "/dispatch/incidents/1"])
def test_anonymous_visitors_are_sent_to_the_login_page(demo_client, path):
    r = demo_client.get(path)
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=")


def test_the_panel_answers_an_anonymous_json_caller_with_401(demo_client):
    r = demo_client.get("/dispatch/panel?lon=121.7&lat=39.0", headers={"Accept": "application/json"})
    assert r.status_code == 401 and r.get_json()["error"] == "unauthorized"


@pytest.mark.parametrize("username", ["planner", "worker"])
def test_planners_and_grid_workers_may_not_dispatch(demo_app, username):
    client = login_client(demo_app, username)
    try:
        page = client.get("/dispatch/")
        panel = client.get("/dispatch/panel?lon=121.7&lat=39.0", headers={"Accept": "application/json"})
        incident = client.get("/dispatch/incidents/1", headers={"Accept": "application/json"})
    finally:
        demo_app.config["WTF_CSRF_ENABLED"] = True
    assert page.status_code == 403
    assert panel.status_code == 403 and panel.get_json()["details"]["allowed_roles"] == ["admin", "dispatcher"]
    assert incident.status_code == 403 and incident.get_json()["details"]["allowed_roles"] == ["admin", "dispatcher"]


def test_the_dispatcher_page_loads_only_local_scripts_and_lists_the_catalogue(dispatcher):
    html = dispatcher.get("/dispatch/").get_data(as_text=True)
    assert 'src="/dispatch/map"' in html
    assert '<option value="gas_leak">燃气泄漏</option>' in html
    assert not re.search(r"(src|href)=\"https?://", html)


def test_a_point_10_m_from_a_shared_edge_warns_of_the_other_grid_at_its_distance_in_metres(demo_app, dispatcher):
    snap = _snap(demo_app)
    (lon, lat), grids, to_m = _point_inside_a(snap, 10)
    expected = _expected_near(grids, to_m, lon, lat, A)
    assert B in expected and expected[B] == pytest.approx(10, abs=0.05)

    body = dispatcher.get(f"/dispatch/panel?lon={lon}&lat={lat}", headers={"Accept": "application/json"}).get_json()
    assert body["grid"]["code"] == A
    assert {g["code"]: g["distance_m"] for g in body["near_other_grids"]} == \
        {code: round(d, 1) for code, d in expected.items()}
    assert body["near_other_grids"][0] == {"code": B, "name": snap.grids.set_index("code").loc[B, "name"],
                                           "community_code": CHENGZHI, "distance_m": round(expected[B], 1)}


def test_a_point_100_m_from_the_shared_edge_warns_of_nothing(demo_app):
    snap = _snap(demo_app)
    (lon, lat), grids, to_m = _point_inside_a(snap, 100)
    assert _expected_near(grids, to_m, lon, lat, A) == {}
    assert snap.grids_near(lon, lat, dispatchview.NEAR_GRID_RADIUS_M) == []


def test_the_panel_shows_full_phones_cameras_and_road_distances_for_a_dispatcher(demo_app, dispatcher):
    snap = _snap(demo_app)
    p = snap.grids.set_index("code").geometry[A].representative_point()
    body = dispatcher.get(f"/dispatch/panel?lon={p.x}&lat={p.y}", headers={"Accept": "application/json"}).get_json()
    assert [w["name"] for w in body["workers"]] == [w["name"] for w in snap.workers[A]]
    assert [w["phone"] for w in body["workers"]] == [w["phone"] for w in snap.workers[A]]
    assert all(re.fullmatch(r"1\d{10}", w["phone"]) for w in body["workers"])
    assert body["party_branch"] == snap.branches.get(A)
    assert body["community"]["name"] == "城志社区"
    assert body["cameras"] == [{k: c.get(k) for k in ("id", "name", "distance_m", "bearing")}
                               for c in snap.cameras_seeing(p.x, p.y)]
    police = body["responders"]["police"]
    assert [r["id"] for r in police] == [r["id"] for r in snap.nearest(p.x, p.y, k=3, kind="police")]
    assert body["distance_basis"] == "road"
    assert all(r["road_distance_m"] >= r["distance_m"] - 0.5 and r["eta_s"] > 0 for r in police)


def test_coordinates_in_gcj02_are_converted_before_locating(demo_app, dispatcher):
    from gridmap.geo import crs
    snap = _snap(demo_app)
    p = snap.grids.set_index("code").geometry[A].representative_point()
    gx, gy = crs.wgs84_to_gcj02(p.x, p.y)
    body = dispatcher.get(f"/dispatch/panel?lon={gx}&lat={gy}&crs=gcj02", headers={"Accept": "application/json"}).get_json()
    assert body["grid"]["code"] == A
    assert body["lon"] == pytest.approx(p.x, abs=1e-5) and body["lat"] == pytest.approx(p.y, abs=1e-5)


def test_the_map_uses_the_vendored_leaflet_and_escapes_incident_text(demo_app, dispatcher):
    snap = _snap(demo_app)
    p = snap.grids.set_index("code").geometry[A].representative_point()
    html = dispatcher.get(f"/dispatch/map?lon={p.x}&lat={p.y}").get_data(as_text=True)
    assert "/static/vendor/leaflet/leaflet.js" in html
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"https?://", html)
    assert "gridmap:click" in html


def test_the_statistics_page_shows_the_rate_and_the_heat_cells_count_every_public_incident(tmp_path, demo_frames):
    from conftest import make_app
    from gridmap import demo
    app, _ = make_app(tmp_path)
    demo.build(app.extensions["gridmap.store"], frames=demo_frames)
    client = login_client(app, "dispatcher")
    snap = _snap(app)
    p = snap.grids.set_index("code").geometry[A].representative_point()
    for category in ("noise", "noise", "sanitation"):
        r = client.post("/api/v1/incidents", json={"category": category, "lon": p.x, "lat": p.y})
        assert r.status_code == 201
    first = client.get("/api/v1/incidents").get_json()[-1]
    for action, version in (("accept", 1), ("start", 2), ("resolve", 3)):
        assert client.post(f"/api/v1/incidents/{first['id']}/transition",
                           json={"action": action, "version": version}).status_code == 200
    html = client.get("/dispatch/stats").get_data(as_text=True)
    assert re.search(r'id="s-rate">33\.3 %</strong>1 / 3', html)
    assert '<td>城志社区 <small>210213013004</small></td>' in html
    with app.app_context():
        from gridmap import dispatch
        with app.extensions["gridmap.store"].session() as s:
            heat = dispatch.statistics(s, private=True)["heatmap"]
    cells = dispatch.heat_cells(heat, snap.metric)
    assert cells["count"].tolist() == [3.0]
    assert cells.geometry.iloc[0].contains(shapely.Point(p.x, p.y))
    assert cells.to_crs(snap.metric_crs).area.round(3).tolist() == [10000.0]
    assert client.get("/dispatch/stats/map").status_code == 200
    app.extensions["gridmap.store"].dispose()


# --- the opened incident: duplicates, whistle tasks, whom to send ------------------------------

GEOD = Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def desk(tmp_path_factory, demo_frames):
    """A demo app of this module's own, for tests that report and link (a dispatcher's client, no CSRF).

    Each test reports in its own grid: the grids are far more than 50 m across, so no test's
    reports are another's duplicates.
    """
    from conftest import writable_demo_app
    app = writable_demo_app(tmp_path_factory.mktemp("dispatch-desk"), demo_frames)
    client = login_client(app, "dispatcher")
    yield app, client
    app.extensions["gridmap.store"].dispose()


def _spot(app, code, east_m=0.0):
    """A point inside grid ``code``, moved ``east_m`` metres east on the ellipsoid."""
    p = _snap(app).grids.set_index("code").geometry[code].representative_point()
    lon, lat, _ = GEOD.fwd(p.x, p.y, 90.0, east_m) if east_m else (p.x, p.y, None)
    return lon, lat


def _report(client, category, lon, lat):
    r = client.post("/api/v1/incidents", json={"category": category, "lon": lon, "lat": lat})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["incident"]["id"]


def _opened(client, iid):
    r = client.get(f"/dispatch/incidents/{iid}", headers={"Accept": "application/json"})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def _people(proposal):
    out = [("grid_worker", w) for w in proposal["grid_workers"]]
    out += [(kind, x) for kind, xs in proposal["responders"].items() for x in xs]
    return out + [("volunteer", v) for v in proposal["volunteers"]]


def test_opening_an_incident_suggests_reports_of_its_category_within_50_m_only(desk):
    app, client = desk
    lon, lat = _spot(app, f"{CHENGZHI}003")
    first = _report(client, "noise", lon, lat)
    near = _report(client, "noise", *_spot(app, f"{CHENGZHI}003", 30))
    far = _report(client, "noise", *_spot(app, f"{CHENGZHI}003", 80))
    other = _report(client, "water_leak", *_spot(app, f"{CHENGZHI}003", 5))

    opened = _opened(client, near)
    assert opened["incident"]["id"] == near and opened["incident"]["history"][0]["action"] == "report"
    assert [d["id"] for d in opened["duplicates"]] == [first]
    assert opened["duplicates"][0]["distance_m"] == pytest.approx(30.0, abs=0.1)  # metres on the ellipsoid
    assert "link_duplicate" in opened["incident"]["allowed_actions"]
    assert [d["id"] for d in _opened(client, first)["duplicates"]] == [near]  # far is 80 m away
    assert _opened(client, far)["duplicates"] == [] and _opened(client, other)["duplicates"] == []


def test_linking_an_opened_incident_merges_it_and_its_history_names_the_first_report(desk):
    app, client = desk
    first = _report(client, "corridor_clutter", *_spot(app, f"{CHENGZHI}004"))
    second = _report(client, "corridor_clutter", *_spot(app, f"{CHENGZHI}004", 12))
    version = _opened(client, second)["incident"]["version"]
    r = client.post(f"/api/v1/incidents/{second}/transition",
                    json={"action": "link_duplicate", "version": version, "duplicate_of": first, "note": "同一楼道"})
    assert r.status_code == 200
    opened = _opened(client, second)
    assert (opened["incident"]["status"], opened["incident"]["duplicate_of"]) == ("merged", first)
    last = opened["incident"]["history"][-1]
    assert (last["action"], last["from_status"], last["to_status"], last["actor"]) == \
        ("link_duplicate", "reported", "merged", "dispatcher")
    assert last["note"] == f"duplicate of {first}: 同一楼道"
    assert opened["proposal"] is None  # a closed matter sends nobody
    assert opened["incident"]["allowed_actions"] == []


@pytest.mark.parametrize("target,status,words", [
    ("itself", 400, "cannot be a duplicate of itself"),
    ("other category", 400, "'water_leak' but incident"),
    ("unknown", 404, "does not exist"),
])
def test_a_wrong_link_is_refused_with_a_reason_and_changes_nothing(desk, target, status, words):
    app, client = desk
    code = {"itself": "005", "other category": "006", "unknown": "007"}[target]
    iid = _report(client, "water_leak", *_spot(app, CHENGZHI + code))
    noise = _report(client, "noise", *_spot(app, CHENGZHI + code, 3))
    to = {"itself": iid, "other category": noise, "unknown": 10 ** 6}[target]
    before = _opened(client, iid)["incident"]
    r = client.post(f"/api/v1/incidents/{iid}/transition",
                    json={"action": "link_duplicate", "version": before["version"], "duplicate_of": to})
    assert r.status_code == status and words in r.get_json()["message"] and r.get_json()["fix"]
    after = _opened(client, iid)["incident"]
    assert (after["status"], after["version"], after["duplicate_of"], len(after["history"])) == \
        ("reported", before["version"], None, len(before["history"]))


def test_linking_with_a_stale_version_is_a_conflict_that_names_the_current_one(desk):
    app, client = desk
    first = _report(client, "noise", *_spot(app, f"{CHENGZHI}008"))
    second = _report(client, "noise", *_spot(app, f"{CHENGZHI}008", 10))
    seen = _opened(client, second)["incident"]["version"]
    assert client.post(f"/api/v1/incidents/{second}/transition",
                       json={"action": "accept", "version": seen}).status_code == 200  # someone else, first
    r = client.post(f"/api/v1/incidents/{second}/transition",
                    json={"action": "link_duplicate", "version": seen, "duplicate_of": first})
    assert r.status_code == 409 and r.get_json()["details"]["current_version"] == seen + 1
    assert _opened(client, second)["incident"]["status"] == "accepted"


def test_whistle_tasks_show_their_deadline_and_the_time_the_department_reported_in(desk):
    from gridmap import catalog
    app, client = desk
    iid = _report(client, "corridor_clutter", *_spot(app, f"{CHENGZHI}009"))
    r = client.post(f"/api/v1/incidents/{iid}/whistle", json={"note": "楼道堆满纸箱"})
    assert r.status_code == 201
    [task] = _opened(client, iid)["incident"]["whistles"]
    blown = dt.datetime.fromisoformat(task["blown_at"].rstrip("Z"))
    assert task["department"] == catalog.category("corridor_clutter").department == "消防救援大队"
    assert task["report_by"] == (blown + dt.timedelta(hours=catalog.WHISTLE_REPORT_HOURS)).isoformat() + "Z"
    assert (task["reported_at"], task["overdue"]) == (None, False)
    with app.extensions["gridmap.store"].session() as s:  # a day and a minute later, unreported: overdue
        late = dispatch.incident_panel(s, _snap(app), iid, role="admin",
                                       now=blown + dt.timedelta(hours=24, minutes=1))
    assert late["incident"]["whistles"][0]["overdue"] is True

    assert client.post(f"/api/v1/whistles/{task['id']}/report").status_code == 200
    opened = _opened(client, iid)["incident"]
    reported = opened["whistles"][0]["reported_at"]
    assert reported is not None and task["blown_at"] <= reported < task["report_by"]
    assert opened["whistles"][0]["overdue"] is False
    assert [h["action"] for h in opened["history"]] == ["report", "whistle", "report_in"]
    again = client.post(f"/api/v1/whistles/{task['id']}/report")
    assert again.status_code == 409 and "already" in again.get_json()["message"]


@pytest.fixture(scope="module")
def sos(desk):
    """An SOS from a wearable registered to the first vulnerable demo resident: (incident id, (lon, lat))."""
    return _registered_sos(*desk)


def _registered_sos(app, client):
    from conftest import sos_from_a_vulnerable_resident
    return sos_from_a_vulnerable_resident(app, client, "W-DESK-1")


def _nearest_oracle(frame, lon, lat, k, keep):
    """The k nearest rows of a WGS84 frame passing ``keep``, by geodesic distance: (name, metres)."""
    rows = [r for r in frame.itertuples() if keep(r)]
    d = GEOD.inv([lon] * len(rows), [lat] * len(rows), [r.geometry.x for r in rows], [r.geometry.y for r in rows])[2]
    return sorted(zip(d, [r.name for r in rows]))[:k]


def test_an_sos_proposes_its_grid_worker_at_the_station_and_the_nearest_volunteers_with_full_phones(
        desk, sos, demo_frames):
    from gridmap import catalog
    app, client = desk
    iid, (lon, lat) = sos
    opened = _opened(client, iid)
    inc, proposal = opened["incident"], opened["proposal"]
    assert (inc["category"], inc["priority"], inc["source"]) == ("elderly_help", True, "sos")

    staff = demo_frames["workers"][demo_frames["workers"]["grids"].str.split(";").apply(lambda g: inc["grid_code"] in g)]
    assert len(staff) >= 1
    assert [w["name"] for w in proposal["grid_workers"]] == staff["name"].tolist()
    assert [w["phone"] for w in proposal["grid_workers"]] == staff["phone"].tolist()  # whole, for a dispatcher
    for w, station in zip(proposal["grid_workers"], staff.geometry):
        assert (w["lon"], w["lat"]) == pytest.approx((station.x, station.y), abs=1e-9)
        assert w["distance_m"] == pytest.approx(GEOD.inv(lon, lat, station.x, station.y)[2], abs=0.1)

    skills = set(catalog.category("elderly_help").skills)
    volunteers = demo_frames["volunteers"]
    reach = catalog.MAX_RESPONDER_DISTANCE_M  # farther than its kind's reach, nobody is proposed
    expected = [(d, name) for d, name in _nearest_oracle(volunteers, lon, lat, 3,
                                                          lambda r: r.available and skills & set(r.skills.split(";")))
                if d <= reach["volunteer"]]
    assert [v["name"] for v in proposal["volunteers"]] == [name for _, name in expected]
    # the snapshot measures in a local metric CRS; the ellipsoid agrees to well under a metre here
    assert [v["distance_m"] for v in proposal["volunteers"]] == pytest.approx([d for d, _ in expected], abs=0.5)
    assert all(re.fullmatch(r"1\d{10}", v["phone"]) for v in proposal["volunteers"])
    medical = _nearest_oracle(demo_frames["responders"], lon, lat, 3, lambda r: r.kind == "medical" and r.available)
    assert [r["name"] for r in proposal["responders"]["medical"]] == [n for d, n in medical if d <= reach["medical"]]
    assert all(r["distance_m"] <= reach["medical"] for r in proposal["responders"]["medical"])


def _map_layers(html):
    """From a rendered dispatcher map: proposal lines as {kind: [[lat, lon], [lat, lon]]…} and the badges' aria-labels."""
    lines = [(json.loads(coords), json.loads(opts)) for coords, opts in
             re.findall(r"L\.polyline\(\s*(\[\[.*?\]\]),\s*(\{.*?\})\s*\)", html)]
    lines = [(opts["className"].split()[-1].removeprefix("proposal-line-"), coords) for coords, opts in lines
             if "proposal-line" in opts["className"]]
    icons = [json.loads(f'"{h}"') for h in re.findall(r'L\.divIcon\(\{\s*"html": "((?:[^"\\]|\\.)*)"', html)]
    labels = [re.search(r'aria-label="([^"]*)"', h).group(1) for h in icons]
    return lines, labels


def test_the_map_of_an_sos_draws_a_badge_and_a_line_from_the_incident_to_each_proposed_person(desk, sos):
    app, client = desk
    iid, _ = sos
    opened = _opened(client, iid)
    inc, people = opened["incident"], _people(opened["proposal"])
    html = client.get(f"/dispatch/map?incident={iid}").get_data(as_text=True)
    lines, labels = _map_layers(html)
    assert sorted((kind, [[inc["lat"], inc["lon"]], [p["lat"], p["lon"]]]) for kind, p in people) == sorted(lines)
    names = {"grid_worker": "网格员", "volunteer": "志愿者", "medical": "医疗"}
    assert sorted(labels) == sorted(f"{names[kind]} {p['name']}" for kind, p in people)
    assert {kind for kind, _ in people} == {"grid_worker", "medical", "volunteer"}
    assert html.count('"className": "selected-incident"') == 1
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"https?://", html)
    en = client.get(f"/dispatch/map?incident={iid}&lang=en").get_data(as_text=True)
    assert f"Volunteer {opened['proposal']['volunteers'][0]['name']}" in _map_layers(en)[1]


@pytest.mark.parametrize("query,status,words", [
    ("incident=abc", 400, "事件编号 &#39;abc&#39; 不是整数"),
    ("incident=999999", 404, "事件 999999 不存在"),
    ("incident=99999999999999999999999", 404, "事件 99999999999999999999999 不存在"),  # past int64
    ("incident=-3", 404, "事件 -3 不存在"),
])
def test_a_bad_incident_on_the_map_is_a_clear_error_page_not_a_crash(dispatcher, query, status, words):
    """In the page's language (Chinese by default); the English words stay in the API's message."""
    r = dispatcher.get(f"/dispatch/map?{query}")
    assert r.status_code == status and words in r.get_data(as_text=True)


@pytest.mark.parametrize("iid", ["424242", "99999999999999999999999"])
def test_the_panel_of_an_unknown_incident_answers_json_404(dispatcher, iid):
    r = dispatcher.get(f"/dispatch/incidents/{iid}", headers={"Accept": "application/json"})
    assert r.status_code == 404 and r.get_json()["message"] == f"Incident {iid} does not exist."


def test_the_proposal_map_escapes_names_skips_the_unplaced_and_opens_on_the_nearest_of_each_kind():
    import geopandas as gpd
    from shapely.geometry import box

    from gridmap.maps import dispatch as maps
    grids = gpd.GeoDataFrame({"code": ["210213013004001"], "name": ["第1网格"]},
                             geometry=[box(121.60, 38.90, 121.61, 38.91)], crs=4326)
    evil = '<img src=x onerror=alert(1)>"'
    proposal = {"grid_workers": [{"name": evil, "phone": "13900000001", "lon": 121.601, "lat": 38.901, "distance_m": 120.4}],
                "responders": {"police": [{"name": "民警甲", "phone": "139****0002", "lon": 121.602, "lat": 38.902,
                                           "distance_m": 1534.0},
                                          {"name": "民警乙", "phone": "139****0003", "lon": 121.80, "lat": 38.99,
                                           "distance_m": 19500.0}]},
                "volunteers": [{"name": "无位置", "phone": "", "lon": None, "lat": None, "distance_m": None}]}
    incident = {"id": 7, "lon": 121.605, "lat": 38.905, "category_name": "噪音扰民", "status": "reported"}
    html = maps.dispatch_map(grids, incident=incident, proposal=proposal,
                             kind_labels={"grid_worker": "网格员", "police": "民警"}).get_root().render()
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    lines, labels = _map_layers(html)
    assert [kind for kind, _ in lines] == ["grid_worker", "police", "police"]  # nobody without a position is drawn
    assert labels == ["网格员 &lt;img src=x onerror=alert(1)&gt;&#34;", "民警 民警甲", "民警 民警乙"]
    assert "Distance: 1.53 km" in html and "Distance: 120 m" in html and "Distance: 19.50 km" in html
    # the map opens centred on the incident, out to the nearest of each kind (the grid worker, 0.004° off
    # both ways) with 50 m spare, not on the police 20 km off
    [bounds] = re.findall(r"fitBounds\(\s*(\[\[.*?\]\])", html)
    assert sum(json.loads(bounds), []) == pytest.approx([38.905 - 0.0045, 121.605 - 0.0045, 38.905 + 0.0045, 121.605 + 0.0045])


def test_the_page_carries_the_new_sections_and_their_words(dispatcher):
    html = dispatcher.get("/dispatch/").get_data(as_text=True)
    for section in ('id="i-duplicates-box"', 'id="i-whistles-box"', 'id="i-proposal-box"', 'id="i-link"'):
        assert section in html
    config = json.loads(re.search(r'<script type="application/json" id="dispatch-config">(.*?)</script>', html, re.S).group(1))
    assert config["urls"]["incidentPanel"] == "/dispatch/incidents/0"  # the page puts the id in place of /0
    assert config["urls"]["whistleReport"] == "/api/v1/whistles/0/report"
    assert (config["text"]["reportIn"], config["text"]["history"]["report_in"]) == ("报到", "报到")
    assert config["colours"]["volunteer"] == "#15803d"


# --- the map's words, fit and camera layer ----------------------------------------------------

def _overlays(html):
    """The layer control's overlays of a rendered map: {name: folium variable}."""
    block = re.search(r"overlays\s*:\s*\{(.*?)\}", html, re.S)
    pairs = re.findall(r'("(?:[^"\\]|\\.)*")\s*:\s*(\w+)', block.group(1)) if block else []
    return {json.loads(name): var for name, var in pairs}  # names are JSON strings, \uXXXX-escaped


def _seen_spot(app):
    """A point inside the first demo camera view of 城志社区 that sees anything: (lon, lat, ids seeing it)."""
    from gridmap import coverage
    snap = _snap(app)
    with app.extensions["gridmap.store"].session() as s:
        report = coverage.report_for(s, CHENGZHI, geometries=True)
    for view in report["views"]:
        if view["geometry"] is not None:
            p = shapely.geometry.shape(view["geometry"]).representative_point()
            seeing = [c["id"] for c in snap.cameras_seeing(p.x, p.y)]
            assert view["id"] in seeing  # the snapshot and the report agree on this camera
            return p.x, p.y, seeing, report
    raise AssertionError("no camera of 城志社区 sees anything")


def _camera_map_facts(html):
    overlays = _overlays(html)
    outlined = sorted(int(i) for i in re.findall(r'"className": "gridmap-camera-seeing gridmap-camera-(\d+)"', html))
    return overlays, outlined


@pytest.mark.parametrize("via", ["point", "incident"])
def test_the_map_of_a_spot_has_its_communitys_cameras_off_with_the_views_seeing_it_outlined(desk, via):
    app, client = desk
    lon, lat, seeing, report = _seen_spot(app)
    url = f"/dispatch/map?lon={lon}&lat={lat}" if via == "point" else \
        f"/dispatch/map?incident={_report(client, 'sanitation', lon, lat)}"
    en = client.get(url + "&lang=en").get_data(as_text=True)
    assert set(_overlays(en)) == {"Cameras", "Blind spots"}
    html = client.get(url + "&lang=zh_CN").get_data(as_text=True)
    overlays, outlined = _camera_map_facts(html)
    # only the camera layers are in the control, and both start switched off
    assert set(overlays) == {"摄像头", "盲区"}
    assert not any(f"{var}.addTo(" in html for var in overlays.values())
    # every camera of the community is drawn; those that see the spot are outlined, no other
    assert html.count('"className": "gridmap-camera-view"') == sum(v["geometry"] is not None for v in report["views"])
    with_views = {v["id"] for v in report["views"] if v["geometry"] is not None}
    assert outlined == sorted(set(seeing) & with_views) and outlined
    assert html.count("gridmap-camera-seeing-ring") == len([v for v in report["views"] if v["id"] in seeing])
    assert "bringToFront()" in html  # switched on, the sectors do not cover the incidents and the point


def test_a_neighbour_communitys_camera_that_sees_the_spot_is_drawn_and_outlined(desk, monkeypatch):
    from sqlalchemy import select

    from gridmap import coverage
    from gridmap.index import Snapshot
    from gridmap.store import models as m
    app, client = desk
    lon, lat, seeing, report = _seen_spot(app)
    with app.extensions["gridmap.store"].session() as s:
        other = s.scalars(select(m.Camera.id).where(m.Camera.community_code != CHENGZHI).order_by(m.Camera.id)).first()
        expected = coverage.camera_views_of(s, [other])
    assert other not in {v["id"] for v in report["views"]} and expected[0]["geometry"] is not None
    # as if that camera, across the boundary, saw the spot too
    real = Snapshot.cameras_seeing
    monkeypatch.setattr(Snapshot, "cameras_seeing",
                        lambda self, x, y: real(self, x, y) + [{"id": other, "name": expected[0]["name"]}])
    html = client.get(f"/dispatch/map?lon={lon}&lat={lat}").get_data(as_text=True)
    _, outlined = _camera_map_facts(html)
    assert other in outlined and set(seeing) & {v["id"] for v in report["views"]} <= set(outlined)
    assert html.count('"className": "gridmap-camera-view"') == sum(v["geometry"] is not None for v in report["views"]) + 1


def test_camera_views_of_gives_each_asked_camera_with_its_stored_view_once(demo_app):
    from gridmap import coverage
    with demo_app.extensions["gridmap.store"].session() as s:
        stored = coverage.stored_views(s)
        ids = sorted(stored)[:3]
        got = coverage.camera_views_of(s, ids + ids[:1])
        assert coverage.camera_views_of(s, []) == []
    assert [v["id"] for v in got] == ids
    for v in got:
        assert shapely.geometry.shape(v["geometry"]).equals(stored[v["id"]])


def test_the_map_of_open_incidents_alone_computes_no_camera_layer(dispatcher, monkeypatch):
    from gridmap import coverage
    calls = []
    monkeypatch.setattr(coverage, "report_for", lambda *a, **k: calls.append(a) or {})
    html = dispatcher.get("/dispatch/map").get_data(as_text=True)
    assert calls == [] and _overlays(html) == {} and "gridmap-camera-view" not in html


def test_incident_tooltips_on_the_map_name_the_status_in_the_pages_language(desk):
    app, client = desk
    iid = _report(client, "sanitation", *_spot(app, f"{CHENGZHI}010"))
    for lang, word in (("en", "Status: reported"), ("zh_CN", "状态: 已上报")):
        html = client.get(f"/dispatch/map?lang={lang}").get_data(as_text=True)
        # the tooltip is a JS string in which no "<" survives (maps.base.js_string)
        [tip] = re.findall(rf'"\\u003cstrong>[^"]*#{iid}\\u003c/strong>[^"]*"', html)
        assert word in tip
    opened = client.get(f"/dispatch/map?incident={iid}").get_data(as_text=True)
    assert f"事件 #{iid}\\u003c/strong>\\u003cbr>类别: 环境卫生\\u003cbr>状态: 已上报" in opened
    assert "状态: reported" not in opened


def test_a_tooltip_row_without_a_label_shows_its_value_alone_and_an_empty_value_not_at_all():
    from gridmap.maps.base import popup_html
    html = popup_html("<b>", [("", "出入口<1>"), ("Code", "210213013004001"), ("Note", None), (None, "x")])
    assert str(html) == "<strong>&lt;b&gt;</strong><br>出入口&lt;1&gt;<br>Code: 210213013004001<br>x"


def test_maps_open_already_fitted_without_a_zoom_animation():
    from gridmap.maps.base import base_map
    html = base_map((121.60, 38.90, 121.61, 38.91)).get_root().render()
    [(bounds, options)] = re.findall(r"fitBounds\(\s*(\[\[.*?\]\]),\s*(\{.*?\})\s*\)", html, re.S)
    assert json.loads(bounds) == [[38.90, 121.60], [38.91, 121.61]]
    assert json.loads(options) == {"animate": False, "paddingTopLeft": [8, 8], "paddingBottomRight": [8, 8]}


def test_the_page_and_the_map_name_every_status(dispatcher):
    from gridmap.web.dispatch import _status_labels
    html = dispatcher.get("/dispatch/").get_data(as_text=True)
    config = json.loads(re.search(r'<script type="application/json" id="dispatch-config">(.*?)</script>', html, re.S).group(1))
    assert set(config["text"]["statuses"]) == set(dispatch.STATUSES)
    assert config["text"]["statuses"]["merged"] == "已合并（重复）" and config["text"]["statuses"]["in_progress"] != "in_progress"
    assert '<option value="in_progress">' in html
    with dispatcher.application.test_request_context("/?lang=en"):
        assert set(_status_labels()) == set(dispatch.STATUSES)
