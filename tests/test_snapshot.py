"""Snapshot: grids by code, nearest responders in metres with filters, radius queries, cameras seeing a point."""
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import box

from gridmap.errors import InvalidInput
from conftest import geodesic_m

from gridmap.index import EDGE_RULE, Snapshot

LON0, LAT0 = 121.60, 38.90
KINDS = ("police", "medical", "mediator")
SKILLS = ("急救", "驾驶", "维修", "外语")


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def grids():
    """Four grids in a 2 × 2 block, given out of code order::

        38.92 +------+------+
              | 003  | 004  |
        38.91 +------+------+
              | 001  | 002  |
        38.90 +------+------+
           121.60 121.61 121.62
    """
    cells = {"004": box(121.61, 38.91, 121.62, 38.92), "002": box(121.61, 38.90, 121.62, 38.91),
             "003": box(121.60, 38.91, 121.61, 38.92), "001": box(121.60, 38.90, 121.61, 38.91)}
    return gpd.GeoDataFrame({"code": list(cells), "name": [f"网格{c}" for c in cells],
                             "community_code": "210213013004"}, geometry=list(cells.values()), crs=4326)


@pytest.fixture(scope="module")
def communities():
    return gpd.GeoDataFrame({"code": ["210213013004"], "name": ["城志社区"], "street_code": ["210213013"],
                             "street_name": ["湾里街道"], "district_code": ["210213"], "district_name": ["金州区"],
                             "service_centre": ["城志社区服务中心"], "service_address": ["湾里路1号"],
                             "service_phone": ["0411-87654321"]},
                            geometry=[box(121.60, 38.90, 121.62, 38.92)], crs=4326)


@pytest.fixture(scope="module")
def people():
    """2,000 responders scattered over ~4 × 4 km, plus three far-off interpreters (外语, the rare skill)."""
    rng = np.random.default_rng(17)
    n = 2000
    skills = [";".join(s for s in SKILLS[:3] if rng.random() < 0.3) for _ in range(n)]
    frame = gpd.GeoDataFrame({
        "id": np.arange(1000, 1000 + n), "name": [f"R{i}" for i in range(n)],
        "kind": rng.choice(KINDS, n), "skills": skills, "available": rng.random(n) < 0.7,
        "phone": [f"139{i:08d}" for i in range(n)]},
        geometry=gpd.points_from_xy(rng.uniform(121.59, 121.63, n), rng.uniform(38.89, 38.93, n)), crs=4326)
    far = gpd.GeoDataFrame({"id": [1, 2, 3], "name": ["翻译甲", "翻译乙", "翻译丙"], "kind": ["police"] * 3,
                            "skills": [["外语"], ["外语", "驾驶"], ["外语"]], "available": [True, True, False],
                            "phone": ["13800000001", "13800000002", "13800000003"]},
                           geometry=gpd.points_from_xy([121.70, 121.50, 121.60], [38.95, 38.85, 39.00]), crs=4326)
    far["skills"] = far["skills"].map(";".join)
    return gpd.GeoDataFrame(pd.concat([frame, far], ignore_index=True), crs=4326)


@pytest.fixture(scope="module")
def cameras():
    rng = np.random.default_rng(5)
    n = 400
    return gpd.GeoDataFrame({"id": np.arange(n), "name": [f"C{i}" for i in range(n)],
                             "bearing": rng.uniform(0, 360, n), "fov": rng.choice([60.0, 90.0, 120.0, 360.0], n),
                             "range_m": rng.uniform(20, 150, n)},
                            geometry=gpd.points_from_xy(rng.uniform(121.600, 121.606, n),
                                                        rng.uniform(38.900, 38.905, n)), crs=4326)


@pytest.fixture(scope="module")
def snap(grids, communities, people, cameras):
    return Snapshot.from_frames(grids, responders=people, cameras=cameras, communities=communities)


def metric_oracle(snap, frame, lon, lat):
    """Brute force: every row's distance in the snapshot's metric CRS."""
    to_m = Transformer.from_crs(4326, snap.metric_crs, always_xy=True)
    x, y = to_m.transform(shapely.get_x(frame.geometry.values), shapely.get_y(frame.geometry.values))
    px, py = to_m.transform(lon, lat)
    return np.hypot(np.asarray(x) - px, np.asarray(y) - py)


def query_points(n, seed):
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(121.59, 121.63, n), rng.uniform(38.89, 38.93, n)])


# -- locate ---------------------------------------------------------------------------------------
def test_grids_are_kept_sorted_by_code_whatever_order_they_came_in(snap):
    assert snap.grids["code"].tolist() == ["001", "002", "003", "004"]
    assert list(snap.grids.columns[:3]) == ["code", "name", "community_code"]


def test_locate_names_grid_community_street_district_and_service_centre(snap):
    where = snap.locate(121.615, 38.915)
    assert where["grid"] == {"code": "004", "name": "网格004"}
    assert where["community"] == {"code": "210213013004", "name": "城志社区"}
    assert where["street"] == {"code": "210213013", "name": "湾里街道"}
    assert where["district"] == {"code": "210213", "name": "金州区"}
    assert where["service_centre"]["phone"] == "0411-87654321"
    assert where["on_shared_edge"] is False and where["lon"] == 121.615 and where["lat"] == 38.915


def test_the_centre_of_the_block_belongs_to_the_lowest_of_its_four_grids(snap):
    where = snap.locate(121.61, 38.91)
    assert where["grid"]["code"] == "001" and where["on_shared_edge"] is True
    assert geopandas_covering(snap.grids, 121.61, 38.91) == ["001", "002", "003", "004"]
    assert snap.locate(121.615, 38.91)["grid"]["code"] == "002"  # edge of 002 and 004
    assert "lowest grid code" in EDGE_RULE


def test_outside_every_grid_locate_says_none(snap):
    where = snap.locate(121.70, 38.95)
    assert where["grid"] is None and where["community"] is None and where["on_shared_edge"] is False
    assert snap.grid_at(121.70, 38.95) == -1 and snap.grid_at(121.605, 38.905) == 0


def test_without_community_polygons_the_grid_names_its_community(grids):
    where = Snapshot.from_frames(grids).locate(121.605, 38.905)
    assert where["community"] == {"code": "210213013004", "name": None}


# -- nearest and within ---------------------------------------------------------------------------
@pytest.mark.parametrize("filters", [{}, {"kind": "medical"}, {"skill": "维修"}, {"available": False},
                                     {"kind": "police", "skill": "急救", "available": True}])
def test_nearest_equals_a_brute_force_metric_oracle(snap, people, filters):
    keep = np.ones(len(people), bool)
    if "kind" in filters:
        keep &= people["kind"].to_numpy() == filters["kind"]
    if "skill" in filters:
        keep &= people["skills"].map(lambda s: filters["skill"] in s.split(";")).to_numpy()
    if "available" in filters:
        keep &= people["available"].to_numpy() == filters["available"]
    for lon, lat in query_points(25, seed=len(filters)):
        d = metric_oracle(snap, people, lon, lat)
        expected = people["id"].to_numpy()[keep][np.argsort(d[keep], kind="stable")[:7]].tolist()
        got = snap.nearest(lon, lat, k=7, **filters)
        assert [g["id"] for g in got] == expected
        assert [g["distance_m"] for g in got] == pytest.approx(np.sort(d[keep])[:7], abs=0.051)


def test_distances_are_metres_within_half_a_percent_of_the_ellipsoids(snap):
    for g in snap.nearest(121.61, 38.91, k=20):
        assert g["distance_m"] == pytest.approx(geodesic_m(121.61, 38.91, g["lon"], g["lat"]), rel=5e-3, abs=0.1)


def test_a_filter_that_leaves_three_far_candidates_returns_exactly_those_three(snap):
    got = snap.nearest(121.61, 38.91, k=5, skill="外语")
    assert [g["id"] for g in got] == [1, 3, 2]  # ~9.0 km north-east, 10.0 km north, ~11.6 km south-west
    assert [round(g["distance_m"] / 1000, 1) for g in got] == [9.0, 10.0, 11.6]  # on the ellipsoid: ≈ 8,966 m, 10,045 m, 11,626 m
    assert got[1]["name"] == "翻译丙" and got[0]["skills"] == ["外语"] and sorted(got[2]["skills"]) == ["外语", "驾驶"]
    assert [g["id"] for g in snap.nearest(121.61, 38.91, k=5, skill="外语", available=True)] == [1, 2]
    assert snap.nearest(121.61, 38.91, k=5, skill="外语", radius_m=1000) == []


def test_nearest_results_carry_the_raw_record(snap, people):
    first = snap.nearest(121.605, 38.905, k=1)[0]
    row = people[people["id"] == first["id"]].iloc[0]
    assert set(first) == {"id", "name", "kind", "skills", "available", "phone", "lon", "lat", "distance_m"}
    assert first["phone"] == row["phone"] and first["kind"] == row["kind"]
    assert first["available"] is bool(row["available"]) and isinstance(first["id"], int)
    assert sorted(first["skills"]) == sorted(s for s in row["skills"].split(";") if s)
    assert first["distance_m"] == round(first["distance_m"], 1)


def test_radius_limits_nearest_and_within_returns_everyone_inside_it(snap, people):
    lon, lat = 121.612, 38.908
    d = metric_oracle(snap, people, lon, lat)
    inside = np.flatnonzero(d <= 300)
    got = snap.within(lon, lat, 300)
    assert [g["id"] for g in got] == people["id"].to_numpy()[inside[np.argsort(d[inside])]].tolist()
    assert len(got) > 10 and all(g["distance_m"] <= 300 for g in got)
    near = snap.nearest(lon, lat, k=1000, radius_m=300)
    assert [g["id"] for g in near] == [g["id"] for g in got]
    police = snap.within(lon, lat, 300, kind="police", available=True)
    assert [g["id"] for g in police] == [g["id"] for g in got if g["kind"] == "police" and g["available"]]


def test_unknown_kinds_or_skills_find_nobody_and_a_bad_k_is_refused(snap):
    assert snap.nearest(121.61, 38.91, kind="astronaut") == []
    assert snap.nearest(121.61, 38.91, skill="飞行") == []
    with pytest.raises(InvalidInput, match="k=0"):
        snap.nearest(121.61, 38.91, k=0)
    with pytest.raises(InvalidInput, match="radius_m"):
        snap.within(121.61, 38.91, -5)


def test_volunteers_join_as_their_own_kind(grids, people):
    volunteers = gpd.GeoDataFrame({"id": [7], "name": ["志愿者"], "skills": [["急救"]]},
                                  geometry=[shapely.Point(121.6051, 38.9051)], crs=4326)
    snap = Snapshot.from_frames(grids, responders=people.iloc[:10], volunteers=volunteers)
    got = snap.nearest(121.605, 38.905, k=1, kind="volunteer")
    assert got[0]["id"] == 7 and got[0]["skills"] == ["急救"] and got[0]["available"] is True
    assert got[0]["distance_m"] == pytest.approx(14.0, abs=0.5)


def test_a_snapshot_without_responders_or_cameras_answers_empty(grids):
    snap = Snapshot.from_frames(grids)
    assert snap.nearest(121.605, 38.905) == [] and snap.within(121.605, 38.905, 100) == []
    assert snap.cameras_seeing(121.605, 38.905) == []


# -- cameras ----------------------------------------------------------------------------------------
def sector(x, y, bearing, fov, range_m):
    if fov >= 360:
        return shapely.Point(x, y).buffer(range_m, quad_segs=256)
    angles = np.radians(np.linspace(bearing - fov / 2, bearing + fov / 2, 2048))
    arc = np.column_stack([x + range_m * np.sin(angles), y + range_m * np.cos(angles)])
    return shapely.Polygon(np.vstack([[x, y], arc]))


def test_cameras_seeing_a_point_equal_a_shapely_sector_oracle(snap, cameras):
    to_m = Transformer.from_crs(4326, snap.metric_crs, always_xy=True)
    cx, cy = to_m.transform(shapely.get_x(cameras.geometry.values), shapely.get_y(cameras.geometry.values))
    sectors = [sector(x, y, b, f, r) for x, y, b, f, r in
               zip(cx, cy, cameras["bearing"], cameras["fov"], cameras["range_m"])]
    rng = np.random.default_rng(8)
    checked = seen = 0
    for lon, lat in np.column_stack([rng.uniform(121.600, 121.606, 150), rng.uniform(38.900, 38.905, 150)]):
        px, py = to_m.transform(lon, lat)
        p = shapely.Point(px, py)
        if min(s.exterior.distance(p) for s in sectors) < 0.05:
            continue  # too close to a sector's outline for a polygon oracle to be exact
        expected = sorted(i for i, s in enumerate(sectors) if s.contains(p))
        got = snap.cameras_seeing(lon, lat)
        assert sorted(c["id"] for c in got) == expected
        assert [c["distance_m"] for c in got] == sorted(c["distance_m"] for c in got)
        checked += 1
        seen += len(expected)
    assert checked > 100 and seen > 100


def test_a_camera_sees_along_its_bearing_but_not_behind_it(grids):
    cam = gpd.GeoDataFrame({"id": ["cam-1"], "name": ["东门"], "bearing": [90.0], "fov": [60.0], "range_m": [50.0]},
                           geometry=[shapely.Point(121.605, 38.905)], crs=4326)
    snap = Snapshot.from_frames(grids, cameras=cam)
    east = 121.605 + 40 / (111_320 * math.cos(math.radians(38.905)))
    west = 121.605 - 40 / (111_320 * math.cos(math.radians(38.905)))
    far_east = 121.605 + 60 / (111_320 * math.cos(math.radians(38.905)))
    assert [c["id"] for c in snap.cameras_seeing(east, 38.905)] == ["cam-1"]
    assert snap.cameras_seeing(east, 38.905)[0]["distance_m"] == pytest.approx(40.0, abs=0.2)
    assert snap.cameras_seeing(west, 38.905) == [] and snap.cameras_seeing(far_east, 38.905) == []
    assert [c["name"] for c in snap.cameras_seeing(121.605, 38.905)] == ["东门"]  # at the camera itself


def test_cameras_without_bearing_are_refused_with_a_fix(grids):
    cam = gpd.GeoDataFrame({"fov": [60.0], "range_m": [50.0]}, geometry=[shapely.Point(121.605, 38.905)], crs=4326)
    with pytest.raises(InvalidInput, match="bearing") as err:
        Snapshot.from_frames(grids, cameras=cam)
    assert "clockwise from north" in err.value.fix


# -- the dispatcher's click, memory, the store ---------------------------------------------------
def test_locate_full_adds_the_nearest_responders_and_the_cameras_seeing_the_point(snap):
    lon, lat = 121.603, 38.9025
    full = snap.locate_full(lon, lat)
    assert {"grid", "community", "street", "district", "on_shared_edge", "nearest", "cameras"} <= set(full)
    assert full["grid"]["code"] == "001"
    assert [n["id"] for n in full["nearest"]] == [n["id"] for n in snap.nearest(lon, lat, k=5)]
    assert full["cameras"] == snap.cameras_seeing(lon, lat) and len(full["cameras"]) > 0
    assert len(snap.locate_full(lon, lat, k=2)["nearest"]) == 2


def test_nbytes_counts_the_arrays_without_per_entity_objects(snap):
    total = snap.nbytes()
    assert 100_000 < total < 20_000_000
    assert not hasattr(snap, "responders") and not hasattr(snap, "cameras")


def test_the_store_snapshot_holds_responders_volunteers_and_cameras(demo_app, demo_frames):
    snap = demo_app.extensions["gridmap.snapshots"].get()
    volunteers, responders, cameras = (demo_frames[k] for k in ("volunteers", "responders", "cameras"))
    lon, lat = cameras.geometry.iloc[0].x, cameras.geometry.iloc[0].y
    everyone = snap.nearest(lon, lat, k=len(volunteers) + len(responders) + 5)
    assert len(everyone) == len(volunteers) + len(responders)
    assert sum(e["kind"] == "volunteer" for e in everyone) == len(volunteers)
    assert any(c["name"] == cameras["name"].iloc[0] for c in snap.cameras_seeing(lon, lat))
    assert snap.generation >= 1 and snap.grids["code"].is_monotonic_increasing


def test_nearest_each_equals_nearest_asked_one_kind_at_a_time(snap, people):
    rng = np.random.default_rng(11)
    kinds = sorted(set(people["kind"])) + ["no-such-kind"]
    for lon, lat in zip(rng.uniform(121.58, 121.63, 20), rng.uniform(38.89, 38.92, 20)):
        each = snap.nearest_each(lon, lat, kinds, k=3)
        assert list(each) == kinds
        for kind in kinds:
            assert each[kind] == snap.nearest(lon, lat, k=3, kind=kind)
    assert each["no-such-kind"] == []
    with pytest.raises(InvalidInput, match="k=0"):
        snap.nearest_each(121.6, 38.9, kinds, k=0)


def geopandas_covering(grids, lon, lat):
    """Codes of the grids whose closure holds the point, by GeoPandas (the oracle), sorted."""
    return sorted(grids.loc[grids.geometry.covers(shapely.Point(lon, lat)), "code"])
