"""Locate, grids, communities and address search over the Dalian demo, checked against geopandas."""
import re

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import box

from gridmap import lookup, plans
from gridmap.web import params
from gridmap.errors import InvalidInput
from gridmap.geo.crs import bd09_to_wgs84, wgs84_to_bd09, wgs84_to_gcj02
from gridmap.index import Snapshot
from gridmap.access import mask_phone
from gridmap.store import models as m

CHENGZHI = "210213013004"
MASKED = re.compile(r"^1\d\d\*{4}\d{4}$")


@pytest.fixture(scope="module")
def grids(demo_app):
    with demo_app.test_client() as c:
        fc = c.get(f"/api/v1/grids?community={CHENGZHI}").get_json()
    return gpd.GeoDataFrame.from_features(fc["features"], crs=4326)


def test_chengzhi_has_18_published_grids_numbered_001_to_018(grids):
    assert sorted(grids["code"]) == [f"{CHENGZHI}{i:03d}" for i in range(1, 19)]


def test_household_counts_per_grid_match_a_geopandas_spatial_join(grids, demo_frames):
    b = demo_frames["buildings"]
    pts = gpd.GeoDataFrame(b[["households"]], geometry=b.geometry.representative_point(), crs=4326)
    joined = gpd.sjoin(pts, grids[["code", "geometry"]], predicate="within")
    expected = joined.groupby("code")["households"].sum().to_dict()
    assert dict(zip(grids["code"], grids["households"])) == {c: expected.get(c, 0) for c in grids["code"]}
    assert grids["households"].sum() > 1000


def test_locate_answers_each_grid_at_its_own_interior_point(demo_client, grids):
    for code, geom in zip(grids["code"], grids.geometry):
        p = geom.representative_point()
        body = demo_client.get(f"/api/v1/locate?lon={p.x}&lat={p.y}").get_json()
        assert body["grid"]["code"] == code
        assert body["community"] == {"code": CHENGZHI, "name": "城志社区"}
        assert body["street"]["name"] == "湾里街道" and body["district"]["code"] == "210213000000"
        assert body["on_shared_edge"] is False


def test_locate_agrees_with_geopandas_sjoin_on_random_points(demo_app, grids):
    snap = demo_app.extensions["gridmap.snapshots"].get()
    rng = np.random.default_rng(7)
    minx, miny, maxx, maxy = grids.total_bounds
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(rng.uniform(minx - 0.002, maxx + 0.002, 2000),
                                                       rng.uniform(miny - 0.002, maxy + 0.002, 2000)), crs=4326)
    oracle = gpd.sjoin(pts, grids[["code", "geometry"]], predicate="within", how="left")["code"]
    ours = [snap.locate(p.x, p.y)["grid"] for p in pts.geometry]
    ours = [g["code"] if g else None for g in ours]
    assert [None if isinstance(o, float) else o for o in oracle] == ours
    assert sum(o is not None for o in ours) > 500  # most points fall inside, some outside


def test_a_point_on_a_shared_edge_goes_to_the_lowest_code(demo_client, grids):
    a, b = _neighbours(grids)
    edge = grids.geometry[a].intersection(grids.geometry[b])
    # a vertex of the shared edge lies exactly on both outlines; a midpoint would not, in floating point
    x, y = map(float, shapely.get_coordinates(edge)[0])
    covering = sorted(grids["code"][grids.geometry.covers(shapely.Point(x, y))])
    assert len(covering) >= 2
    for _ in range(3):  # the same answer every time
        body = demo_client.get(f"/api/v1/locate?lon={x!r}&lat={y!r}").get_json()
        assert body["grid"]["code"] == covering[0]
    assert body["on_shared_edge"] is True and "lowest grid code" in body["edge_rule"]


def _neighbours(grids):
    for i in range(len(grids)):
        for j in range(i + 1, len(grids)):
            shared = grids.geometry[i].intersection(grids.geometry[j])
            if shared.length > 1e-4:
                return i, j
    raise AssertionError("no two grids share an edge")


@pytest.mark.parametrize("datum,forward", [("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)])
def test_locate_accepts_chinese_web_map_coordinates(demo_client, grids, datum, forward):
    p = grids.geometry[3].representative_point()
    x, y = forward(p.x, p.y)
    body = demo_client.get(f"/api/v1/locate?lon={x}&lat={y}&crs={datum}").get_json()
    assert body["grid"]["code"] == grids["code"][3]
    assert abs(body["lon"] - p.x) < 1e-6 and abs(body["lat"] - p.y) < 1e-6


def test_outside_every_community_is_a_404_with_a_reason(demo_client):
    r = demo_client.get("/api/v1/locate?lon=116.39&lat=39.91")
    assert r.status_code == 404
    assert r.get_json()["error"] == "not_found" and "lies in no community" in r.get_json()["message"]


@pytest.mark.parametrize("query,words", [
    ("lon=abc&lat=38.9", "lon='abc' is not a number"),
    ("lat=38.9", "lon is missing"),
    ("lon=38.9&lat=121.6", "look swapped"),
    ("lon=190&lat=38.9", "outside the globe"),
    ("lon=nan&lat=38.9", "not a finite number"),
    ("lon=121.6&lat=38.9&crs=utm", "crs 'utm' is not supported"),
])
def test_bad_coordinates_are_a_400_naming_the_value(demo_client, query, words):
    r = demo_client.get(f"/api/v1/locate?{query}")
    assert r.status_code == 400
    assert words in r.get_json()["message"] and r.get_json()["fix"]


def test_the_public_sees_masked_phones_and_a_dispatcher_sees_them_whole(demo_app, grids):
    p = grids.geometry[0].representative_point()
    public = demo_app.test_client().get(f"/api/v1/locate?lon={p.x}&lat={p.y}").get_json()
    assert public["workers"] and all(MASKED.match(w["phone"]) for w in public["workers"])
    assert public["party_branch"].endswith("党支部")
    client = demo_app.test_client()
    demo_app.config["WTF_CSRF_ENABLED"] = False
    try:
        r = client.post("/login", data={"username": "dispatcher", "password": "gridmap-demo"})
        assert r.status_code == 302
    finally:
        demo_app.config["WTF_CSRF_ENABLED"] = True
    full = client.get(f"/api/v1/locate?lon={p.x}&lat={p.y}").get_json()
    assert [mask_phone(w["phone"]) for w in full["workers"]] == [w["phone"] for w in public["workers"]]
    assert all(re.fullmatch(r"1\d{10}", w["phone"]) for w in full["workers"])


def test_communities_carry_their_real_statistical_codes(demo_client):
    got = {c["code"]: (c["name"], c["street"]["name"], c["district"]["name"])
           for c in demo_client.get("/api/v1/communities").get_json()}
    assert got[CHENGZHI] == ("城志社区", "湾里街道", "金州区")
    assert got["210203010006"][0:2] == ("林茂社区", "八一路街道")
    assert got["210211014014"][0:2] == ("和合居社区", "辛寨子街道")
    assert got["210214001007"][0:2] == ("久寿社区", "丰荣街道")
    assert len(got) == 5


def test_grids_of_an_unknown_or_malformed_community_are_named(demo_client):
    assert "12-digit" in demo_client.get("/api/v1/grids?community=abc").get_json()["message"]
    r = demo_client.get("/api/v1/grids?community=210213013999")
    assert r.status_code == 404 and "210213013999" in r.get_json()["message"]


def test_the_residents_address_search_is_the_fuzzy_one_the_dispatcher_uses(demo_app, demo_frames):
    address = demo_frames["buildings"]["address"].iloc[5]
    client = demo_app.test_client()
    hits = client.get("/api/v1/addresses", query_string={"q": address}).get_json()
    assert hits[0]["address"] == address
    part = address[len("大连市"):len("大连市") + 8]
    hits = client.get("/api/v1/addresses", query_string={"q": part, "limit": 50}).get_json()
    holds = [part in h["address"] for h in hits]
    assert hits and holds[0] and holds == sorted(holds, reverse=True)  # every address holding it ranks first
    # typed as residents type: full-width digits, the district left out — the same building comes first
    # as for the dispatcher's /geocode
    loose = address.translate({ord(d): ord(d) + 0xFEE0 for d in "0123456789"}).replace("大连市", "")
    for path in ("/api/v1/addresses", "/api/v1/geocode"):
        top = client.get(path, query_string={"q": loose}).get_json()[0]
        assert top["address"] == address
    assert client.get("/api/v1/addresses", query_string={"q": "%"}).get_json() == []  # punctuation finds nothing
    assert client.get("/api/v1/addresses", query_string={"q": ""}).get_json() == []
    assert client.get("/api/v1/addresses", query_string={"q": "x", "limit": "0"}).status_code == 400


def test_locating_an_address_gives_its_buildings_grid(demo_app, demo_frames, grids):
    b = demo_frames["buildings"]
    row = b[b["community_code"] == CHENGZHI].iloc[0]
    snap = demo_app.extensions["gridmap.snapshots"].get()
    hit = lookup.resolve_address(snap, row["address"])
    out = {**lookup.locate(snap, hit["lon"], hit["lat"]), "address": hit["address"]}
    expected = grids[grids.contains(row.geometry.representative_point())]["code"].iloc[0]
    assert out["grid"]["code"] == expected and out["address"] == row["address"]


_PUBLISH_TWO_GRIDS = """
import sys
import geopandas as gpd
from shapely.geometry import box
from gridmap import plans
from gridmap.store import Store
store = Store(sys.argv[1])
with store.transaction() as s:
    plans.publish(s, plans.create_plan(s, "210213013004", gpd.GeoDataFrame(
        geometry=[box(121.60, 38.90, 121.61, 38.92), box(121.61, 38.90, 121.62, 38.92)])))
"""


@pytest.mark.slow
def test_a_web_process_sees_a_plan_published_by_another_process_without_restart(tmp_path):
    import subprocess
    import sys

    from conftest import make_app
    app, _ = make_app(tmp_path)
    with app.extensions["gridmap.store"].transaction() as s:
        s.add(m.District(code="210213000000", name="金州区"))
        s.add(m.Street(code="210213013000", district_code="210213000000", name="湾里街道"))
        s.add(m.Community(code=CHENGZHI, street_code="210213013000", name="城志社区",
                          geom=shapely.MultiPolygon([box(121.60, 38.90, 121.62, 38.92)])))
        plans.publish(s, plans.create_plan(s, CHENGZHI, gpd.GeoDataFrame(geometry=[box(121.60, 38.90, 121.62, 38.92)])))
    client = app.test_client()
    assert client.get("/api/v1/locate?lon=121.615&lat=38.91").get_json()["grid"]["code"] == f"{CHENGZHI}001"
    subprocess.run([sys.executable, "-c", _PUBLISH_TWO_GRIDS, app.config["DATABASE_URL"]], check=True, timeout=60)
    # the other process's plan numbered its grids after the first plan's 001, never reusing it
    assert client.get("/api/v1/locate?lon=121.615&lat=38.91").get_json()["grid"]["code"] == f"{CHENGZHI}003"


def test_snapshot_from_frames_finds_grids_and_nearest_in_metres():
    #   +---+---+
    #   | A | B |     A = 001, B = 002; responders r0 at A's centre, r1 200 m east of it
    #   +---+---+
    grids = gpd.GeoDataFrame({"code": ["001", "002"]},
                             geometry=[box(121.60, 38.90, 121.61, 38.91), box(121.61, 38.90, 121.62, 38.91)], crs=4326)
    responders = gpd.GeoDataFrame({"id": [10, 11], "kind": ["police", "medical"]},
                                  geometry=gpd.points_from_xy([121.605, 121.605 + 0.0023], [38.905, 38.905]), crs=4326)
    snap = Snapshot.from_frames(grids, responders=responders)
    assert snap.locate(121.615, 38.905)["grid"]["code"] == "002"
    assert snap.locate(121.63, 38.905)["grid"] is None
    near = snap.nearest(121.605, 38.905, k=2)
    assert [n["id"] for n in near] == [10, 11]
    assert near[1]["distance_m"] == pytest.approx(199.3, abs=1.0)  # 0.0023° of lon at 38.9°N
    assert [n["id"] for n in snap.nearest(121.605, 38.905, kind="medical")] == [11]


def test_parse_point_converts_bd09_back_to_wgs84():
    x, y = wgs84_to_bd09(121.6, 38.9)
    assert params.parse_point(str(x), str(y), "BD-09") == pytest.approx((121.6, 38.9), abs=1e-7)
    with pytest.raises(InvalidInput):
        params.parse_point("121.6", "inf")
    assert bd09_to_wgs84(x, y) == pytest.approx((121.6, 38.9), abs=1e-7)


def test_newly_imported_responders_are_found_without_restart(tmp_path):
    from conftest import make_app

    from gridmap import importer
    app, _ = make_app(tmp_path)
    client = app.test_client()
    assert client.get("/api/v1/nearest?lon=121.61&lat=38.91").get_json()["results"] == []
    path = tmp_path / "r.csv"
    path.write_text("name,kind,phone,lon,lat\n湾里派出所,police,13812341234,121.612,38.91\n", encoding="utf-8")
    importer.import_file(app.extensions["gridmap.store"], "responders", path)
    got = client.get("/api/v1/nearest?lon=121.61&lat=38.91").get_json()["results"]
    assert [r["name"] for r in got] == ["湾里派出所"] and got[0]["phone"] == "138****1234"


def _demo_snapshot(demo_app):
    from gridmap.web.common import snapshot
    with demo_app.app_context():
        return snapshot()


@pytest.mark.parametrize("role", [None, "dispatcher"])
def test_the_nearest_of_every_kind_share_one_road_search_and_match_each_kind_asked_alone(demo_app, role):
    from gridmap import catalog
    snap = _demo_snapshot(demo_app)
    assert snap.roads is not None
    kinds = list(catalog.RESPONDER_KINDS) + ["volunteer"]
    real = snap.roads.routes
    for p in snap.grids.geometry.representative_point().iloc[::7]:
        alone, rounds = {}, []
        for kind in kinds:
            searches = []
            snap.roads.routes = lambda *a, **kw: searches.append(a) or real(*a, **kw)
            try:
                alone[kind] = lookup.nearest(snap, lon=p.x, lat=p.y, kind=kind, k=3, by="road", mode="walk", role=role)
            finally:
                del snap.roads.routes
            rounds.append(len(searches))
        searches = []
        snap.roads.routes = lambda *a, **kw: searches.append(a) or real(*a, **kw)
        try:
            found, basis = lookup.nearest_by_kind(snap, lon=p.x, lat=p.y, kinds=kinds, k=3, by="road", mode="walk",
                                                  role=role)
        finally:
            del snap.roads.routes
        # one search a round for all kinds, as many rounds as the kind that needed most
        assert len(searches) == max(rounds) >= 1
        assert found == {kind: alone[kind]["results"] for kind in kinds}
        assert basis == "road" == next(a["distance_basis"] for a in alone.values() if a["results"])
        items = [r for v in found.values() for r in v]
        assert items and all(r["road_distance_m"] is None or r["road_distance_m"] >= r["distance_m"] - 1.0
                             for r in items)
        # walking: 1.2 m/s off the road, 4.3 km/h on it (ROAD_CLASSES); both figures are rounded (0.1 m, 1 s)
        assert all(r["road_distance_m"] is None
                   or r["road_distance_m"] / 1.2 - 0.55 <= r["eta_s"] <= r["road_distance_m"] / (4.3 / 3.6) + 0.55
                   for r in items)
        assert all(MASKED.match(r["phone"]) for r in items if r.get("phone")) == (role is None)


def test_the_nearest_of_every_kind_without_roads_are_straight_line_answers():
    grids = gpd.GeoDataFrame({"code": ["001"]}, geometry=[box(121.60, 38.90, 121.61, 38.91)], crs=4326)
    responders = gpd.GeoDataFrame({"id": [1, 2, 3], "kind": ["police", "police", "medical"],
                                   "phone": ["13812345678"] * 3},
                                  geometry=gpd.points_from_xy([121.601, 121.605, 121.609], [38.905] * 3), crs=4326)
    snap = Snapshot.from_frames(grids, responders=responders)
    found, basis = lookup.nearest_by_kind(snap, lon=121.6, lat=38.905, kinds=["police", "medical", "fire"], k=1,
                                          by="road")
    assert basis == "straight line"
    assert [r["id"] for r in found["police"]] == [1] and [r["id"] for r in found["medical"]] == [3]
    assert found["fire"] == []
    assert found["police"][0]["road_distance_m"] is None and found["police"][0]["eta_s"] is None
    assert found["police"][0]["phone"] == "138****5678"
    # asked by straight line, nothing about roads is added
    found, basis = lookup.nearest_by_kind(snap, lon=121.6, lat=38.905, kinds=["police"], k=1)
    assert basis == "straight line" and "road_distance_m" not in found["police"][0]
