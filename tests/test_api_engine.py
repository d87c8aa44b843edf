"""The engine's API: nearest responders and volunteers in metres, and a grid's members for the roles that need them."""
import re

import numpy as np
import pytest
from pyproj import Geod

from conftest import make_app

CHENGZHI = "210213013004"
GEOD = Geod(ellps="WGS84")


@pytest.fixture
def assigned_app(assigned_demo):
    return assigned_demo[0]


def login(app, username):
    client = app.test_client()
    r = client.post("/login", data={"username": username, "password": "gridmap-demo"})
    assert r.status_code == 302, r.get_data(as_text=True)
    return client


def geodesic_m(lon, lat, frame):
    _, _, d = GEOD.inv(np.full(len(frame), lon), np.full(len(frame), lat), frame.geometry.x, frame.geometry.y)
    return d


@pytest.mark.slow
def test_nearest_police_agree_with_a_geodesic_oracle(demo_client, demo_frames):
    lon, lat = 121.735, 39.058
    body = demo_client.get(f"/api/v1/nearest?lon={lon}&lat={lat}&kind=police&k=3").get_json()
    police = demo_frames["responders"][demo_frames["responders"]["kind"] == "police"]
    d = np.sort(geodesic_m(lon, lat, police))[:3]
    got = [r["distance_m"] for r in body["results"]]
    assert len(got) == min(3, len(police))
    # local metric projection vs the ellipsoid: well under 0.5 % within a city
    assert np.allclose(got, d[:len(got)], rtol=5e-3, atol=0.5)
    assert all(r["kind"] == "police" for r in body["results"])
    assert all(re.fullmatch(r"[\d\-*]+", r["phone"]) and "*" in r["phone"] for r in body["results"])


def test_nearest_volunteers_with_a_skill_within_a_radius(demo_client, demo_frames):
    lon, lat = 121.735, 39.058
    v = demo_frames["volunteers"]
    skill = "维修"
    with_skill = v[v["skills"].str.split(";").map(lambda s: skill in s) & v["available"]]
    d = geodesic_m(lon, lat, with_skill)
    radius = float(np.sort(d)[min(2, len(d) - 1)]) + 1.0  # take about three of them
    body = demo_client.get("/api/v1/nearest", query_string={
        "lon": lon, "lat": lat, "kind": "volunteer", "skill": skill, "available": "true",
        "radius": radius, "k": 50}).get_json()
    assert len(body["results"]) == int((d <= radius).sum())
    assert all(skill in r["skills"] for r in body["results"])
    assert all(r["distance_m"] <= radius * 1.005 for r in body["results"])


@pytest.mark.parametrize("query,words", [
    ("lon=121.7&lat=39.0&kind=wizard", "kind='wizard' is not known"),
    ("lon=121.7&lat=39.0&k=0", "k='0' is not a number between 1 and 50"),
    ("lon=121.7&lat=39.0&radius=-5", "radius='-5'"),
    ("lon=121.7&lat=39.0&available=maybe", "available='maybe'"),
    ("lat=39.0", "lon is missing"),
])
def test_nearest_rejects_bad_queries_by_name(demo_client, query, words):
    r = demo_client.get(f"/api/v1/nearest?{query}")
    assert r.status_code == 400 and words in r.get_json()["message"]


def test_a_dispatcher_sees_responders_phones_whole(assigned_app):
    client = login(assigned_app, "dispatcher")
    body = client.get("/api/v1/nearest?lon=121.735&lat=39.058&kind=police&k=2").get_json()
    assert all(re.fullmatch(r"[\d\-]+", r["phone"]) for r in body["results"])


@pytest.mark.parametrize("who", [None, "planner", "dispatcher"])
def test_grid_members_are_forbidden_to_roles_that_do_not_need_them(assigned_app, who):
    client = login(assigned_app, who) if who else assigned_app.test_client()
    r = client.get(f"/api/v1/grids/{CHENGZHI}001/members")
    assert r.status_code == (401 if who is None else 403)
    assert r.get_json()["details"]["allowed_roles"] == ["admin", "grid_worker"]
    assert "residents" not in r.get_json()


def test_an_admin_sees_a_grids_residents_members_and_contact_links(assigned_app, demo_frames):
    client = login(assigned_app, "admin")
    body = client.get(f"/api/v1/grids/{CHENGZHI}001/members").get_json()
    assert body["grid"]["code"] == f"{CHENGZHI}001"
    assert body["residents"] and body["party_members"]
    linked = [h for link in body["contact_links"] for h in link["households"]]
    assert len(linked) == len(set(map(str, linked)))  # a household has at most one member
    assert all(len(link["households"]) <= assigned_app.config["CONTACT_HOUSEHOLDS_PER_MEMBER"]
               for link in body["contact_links"])


def test_a_grid_worker_sees_only_the_grids_they_serve(assigned_app):
    client = login(assigned_app, "worker")
    store = assigned_app.extensions["gridmap.store"]
    from sqlalchemy import select

    from gridmap.store import models as m
    with store.session() as s:
        worker_id = s.scalar(select(m.User.worker_id).where(m.User.username == "worker"))
        served = set(s.scalars(select(m.grid_worker_grid.c.grid_code)
                               .where(m.grid_worker_grid.c.worker_id == worker_id)))
    mine = sorted(served)[0]
    other = next(f"{CHENGZHI}{i:03d}" for i in range(1, 19) if f"{CHENGZHI}{i:03d}" not in served)
    body = client.get(f"/api/v1/grids/{mine}/members").get_json()
    assert body["grid"]["code"] == mine and "residents" in body
    r = client.get(f"/api/v1/grids/{other}/members")
    assert r.status_code == 403 and mine in r.get_json()["fix"]


def test_members_of_a_malformed_or_unknown_grid_are_named(assigned_app):
    client = login(assigned_app, "admin")
    assert "not 15 digits" in client.get("/api/v1/grids/123/members").get_json()["message"]
    r = client.get("/api/v1/grids/210213013004999/members")
    assert r.status_code == 404 and "210213013004999" in r.get_json()["message"]


def test_geocode_finds_a_demo_address_typed_loosely(demo_client, demo_frames):
    b = demo_frames["buildings"]
    row = b[b["community_code"] == CHENGZHI].iloc[3]
    loose = row["address"].replace("大连市金州区湾里街道", "").replace("号", "號")
    hits = demo_client.get("/api/v1/geocode", query_string={"q": loose}).get_json()
    assert hits[0]["address"] == row["address"] and hits[0]["score"] >= 90
    assert set(hits[0]) >= {"address", "building_id", "lon", "lat", "score"}
    only = demo_client.get("/api/v1/geocode", query_string={"q": loose, "community": "210203010006"}).get_json()
    assert all(h["address"] != row["address"] for h in only)
    assert demo_client.get("/api/v1/geocode", query_string={"q": "x", "community": "12"}).status_code == 400
    assert demo_client.get("/api/v1/geocode", query_string={"q": ""}).status_code == 400


def test_nearest_by_road_adds_road_distances_matching_networkx(demo_app, demo_frames):
    """The oracle: networkx over the demo roads, noded at shared vertices, ends snapped by the test itself."""
    import networkx as nx
    import shapely
    from pyproj import Transformer

    snap = demo_app.extensions["gridmap.snapshots"].get()
    lon, lat = 121.735, 39.058
    body = demo_app.test_client().get(f"/api/v1/nearest?lon={lon}&lat={lat}&kind=police&k=3&by=road").get_json()
    assert body["distance_basis"] == "road" and body["results"]
    to_m = Transformer.from_crs(4326, snap.roads.crs, always_xy=True)
    graph, lines = nx.Graph(), []
    for geom in demo_frames["roads"].geometry:
        for part in getattr(geom, "geoms", [geom]):
            xy = [tuple(round(v, 3) for v in to_m.transform(x, y)) for x, y in part.coords]
            lines.append(shapely.LineString(xy))
            for a, b in zip(xy, xy[1:]):
                graph.add_edge(a, b, weight=float(np.hypot(a[0] - b[0], a[1] - b[1])))

    def attach(x, y, name):
        p = shapely.Point(x, y)
        line = min(lines, key=lambda ln: ln.distance(p))
        q = line.interpolate(line.project(p))
        coords = list(line.coords)
        best = min(range(len(coords) - 1), key=lambda i: shapely.LineString(coords[i:i + 2]).distance(q))
        a, b = coords[best], coords[best + 1]
        graph.add_edge(name, a, weight=p.distance(q) + q.distance(shapely.Point(a)))
        graph.add_edge(name, b, weight=p.distance(q) + q.distance(shapely.Point(b)))

    attach(*to_m.transform(lon, lat), "incident")
    for r in body["results"]:
        attach(*to_m.transform(r["lon"], r["lat"]), f"r{r['id']}")
        expected = nx.shortest_path_length(graph, "incident", f"r{r['id']}", weight="weight")
        assert r["road_distance_m"] == pytest.approx(expected, abs=1.5)
        assert r["road_distance_m"] >= r["distance_m"] - 0.5  # never shorter than the straight line
        # by car: no faster than the fastest demo road (primary, 35 km/h), no slower than walking
        assert r["road_distance_m"] / (35 / 3.6) - 1 <= r["eta_s"] <= r["road_distance_m"] / 1.2 + 1
        graph.remove_node(f"r{r['id']}")


def test_nearest_by_road_without_roads_says_it_is_a_straight_line(tmp_path):
    from gridmap import importer
    app, _ = make_app(tmp_path)
    path = tmp_path / "r.csv"
    path.write_text("name,kind,lon,lat\n所,police,121.612,38.91\n", encoding="utf-8")
    importer.import_file(app.extensions["gridmap.store"], "responders", path)
    body = app.test_client().get("/api/v1/nearest?lon=121.61&lat=38.91&by=road").get_json()
    assert body["distance_basis"] == "straight line"
    assert body["results"][0]["road_distance_m"] is None and body["results"][0]["distance_m"] > 0
    assert app.test_client().get("/api/v1/nearest?lon=121.61&lat=38.91&by=air").status_code == 400
