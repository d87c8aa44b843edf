"""The dispatcher's page, panel, maps and statistics through the Flask test client."""
import re

import pytest
import shapely
from pyproj import Transformer

from gridmap import dispatchview

CHENGZHI = "210213013004"
A, B = f"{CHENGZHI}001", f"{CHENGZHI}002"  # two demo grids sharing an edge


def _client(app, username):
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    assert client.post("/login", data={"username": username, "password": "gridmap-demo"}).status_code == 302
    return client


@pytest.fixture
def dispatcher(demo_app):
    yield _client(demo_app, "dispatcher")
    demo_app.config["WTF_CSRF_ENABLED"] = True


def _snap(demo_app):
    from gridmap.web import snapshot
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


@pytest.mark.parametrize("path", ["/dispatch/", "/dispatch/map", "/dispatch/stats", "/dispatch/stats/map"])
def test_anonymous_visitors_are_sent_to_the_login_page(demo_client, path):
    r = demo_client.get(path)
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=")


def test_the_panel_answers_an_anonymous_json_caller_with_401(demo_client):
    r = demo_client.get("/dispatch/panel?lon=121.7&lat=39.0", headers={"Accept": "application/json"})
    assert r.status_code == 401 and r.get_json()["error"] == "unauthorized"


@pytest.mark.parametrize("username", ["planner", "worker"])
def test_planners_and_grid_workers_may_not_dispatch(demo_app, username):
    client = _client(demo_app, username)
    try:
        page = client.get("/dispatch/")
        panel = client.get("/dispatch/panel?lon=121.7&lat=39.0", headers={"Accept": "application/json"})
    finally:
        demo_app.config["WTF_CSRF_ENABLED"] = True
    assert page.status_code == 403
    assert panel.status_code == 403 and panel.get_json()["details"]["allowed_roles"] == ["dispatcher", "admin"]


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
    assert dispatchview.near_other_grids(snap, lon, lat) == []


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
    client = _client(app, "dispatcher")
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
    cells = dispatchview.heat_cells(heat, snap.metric_crs)
    assert cells["count"].tolist() == [3.0]
    assert cells.geometry.iloc[0].contains(shapely.Point(p.x, p.y))
    assert cells.to_crs(snap.metric_crs).area.round(3).tolist() == [10000.0]
    assert client.get("/dispatch/stats/map").status_code == 200
    app.extensions["gridmap.store"].dispose()
