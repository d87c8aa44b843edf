"""The Dalian demo generator: deterministic, grids that tile exactly, real codes, consistent people."""

import importlib.util
import re
import sys
from pathlib import Path

import geopandas
import numpy as np
import pandas as pd
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal

from gridmap.geo.crs import gcj02_to_wgs84
from gridmap.geo.codes import number_west_east_north_south

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT / "geodata" / "dalian.py"
SHARED_DALIAN = ROOT.parent / "shared" / "data" / "dalian"


def _load_generator():
    # geodata/ is not an installed package; load it by path as gridmap.demo does.
    spec = importlib.util.spec_from_file_location("test_geodata_dalian", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


_dalian = _load_generator()
COLUMNS, build, load_config = _dalian.COLUMNS, _dalian.build, _dalian.load_config
# CGCS2000 3-degree Gauss-Kruger zone CM 123E (121.5-124.5E) holds all five communities: metres, not degrees.
METRIC = "EPSG:4550"
CHENGZHI, HUSHAN = "210213013004", "210202012001"

needs_shared_data = pytest.mark.skipif(
    not SHARED_DALIAN.is_dir(), reason=f"real Dalian data not found at {SHARED_DALIAN} (../shared/data is absent)"
)


@pytest.fixture(scope="module")
def demo():
    return build()


@pytest.fixture(scope="module")
def config():
    return {c["code"]: c for c in load_config()["communities"]}


def _metric(frame):
    return frame.to_crs(METRIC)


# --- determinism ------------------------------------------------------------------------------


def test_the_same_seed_builds_identical_frames(demo):
    again = build(2026)
    assert list(again) == list(demo)
    for name, frame in demo.items():
        if isinstance(frame, geopandas.GeoDataFrame):
            assert_geodataframe_equal(again[name], frame)
            assert again[name].geometry.geom_equals_exact(frame.geometry, tolerance=0).all(), name  # every coordinate
        else:
            pd.testing.assert_frame_equal(again[name], frame)


def test_another_seed_builds_other_grids_for_the_same_real_communities(demo):
    other = build(7)
    pd.testing.assert_frame_equal(other["communities"].drop(columns=["geometry", "service_address"]),
                                  demo["communities"].drop(columns=["geometry", "service_address"]))
    assert not other["grids"].geometry.geom_equals_exact(demo["grids"].geometry, tolerance=0).all()
    assert other["residents"]["name"].tolist()[:50] != demo["residents"]["name"].tolist()[:50]


def test_the_generator_draws_randomness_only_from_numpy():
    source = GENERATOR.read_text(encoding="utf-8")
    assert not re.search(r"^\s*(import|from)\s+(random|time|datetime|uuid)\b", source, re.M)
    assert "default_rng(seed)" in source


# --- the contract with the importer -----------------------------------------------------------


def test_every_frame_has_exactly_the_contract_columns_and_wgs84_geometry(demo):
    assert set(demo) == set(COLUMNS)
    for name, frame in demo.items():
        assert list(frame.columns) == COLUMNS[name], name
        if "geometry" in COLUMNS[name]:
            assert isinstance(frame, geopandas.GeoDataFrame) and frame.crs == "EPSG:4326", name
            assert frame.geometry.is_valid.all(), name
        assert len(frame) > 0, name


def test_geometry_kinds_are_as_agreed(demo):
    kinds = {"communities": "Polygon", "grids": "Polygon", "courtyards": "Polygon", "buildings": "Polygon",
             "roads": "LineString", "party_members": "Point", "workers": "Point", "volunteers": "Point",
             "responders": "Point", "cameras": "Point"}
    for name, kind in kinds.items():
        assert set(demo[name].geom_type) == {kind}, name


# --- communities ------------------------------------------------------------------------------


def test_the_five_communities_carry_their_real_codes_and_names(demo):
    communities = demo["communities"].set_index("code")
    assert communities.loc[CHENGZHI, ["name", "street_code", "street_name", "district_code", "district_name"]].tolist() \
        == ["城志社区", "210213013", "湾里街道", "210213", "金州区"]
    assert set(communities.index) == {"210213013004", "210203010006", "210211014014", "210214001007", HUSHAN}
    for code, row in communities.iterrows():
        assert code[:9] == row.street_code and code[:6] == row.district_code
        assert row.service_centre == f"{row['name']}党群服务中心"
        assert re.fullmatch(r"0411-\d{8}", row.service_phone)


@needs_shared_data
def test_community_codes_and_names_match_the_nbs_2023_tables(demo):
    villages = pd.read_csv(SHARED_DALIAN / "dalian_villages_communities_stats2023.csv", dtype=str).set_index("code")
    streets = pd.read_csv(SHARED_DALIAN / "dalian_streets_stats2023.csv", dtype=str).set_index("code")
    districts = pd.read_csv(SHARED_DALIAN / "dalian_districts_stats2023.csv", dtype=str).set_index("code")
    for row in demo["communities"].itertuples():
        assert villages.loc[row.code, "name"] == f"{row.name}居委会"
        assert streets.loc[row.street_code, "name"] == row.street_name
        assert districts.loc[row.district_code, "name"] == row.district_name


@needs_shared_data
def test_each_community_lies_inside_its_real_district_outline(demo):
    districts = geopandas.read_file(SHARED_DALIAN / "dalian_districts_cnmaps.geojson")
    # The file says EPSG:4326 but holds GCJ-02 (AMap) coordinates: convert them before comparing.
    districts["geometry"] = shapely.transform(
        districts.geometry.values, lambda xy: np.column_stack(gcj02_to_wgs84(xy[:, 0], xy[:, 1]))
    )
    outline = districts.set_index("adcode").geometry
    for row in demo["communities"].itertuples():
        assert outline[row.district_code].contains(row.geometry), row.name


def test_communities_are_small_and_realistic(demo):
    areas_km2 = _metric(demo["communities"]).set_index("code").area / 1e6
    assert areas_km2.between(0.3, 1.0).all(), areas_km2.to_dict()
    households = demo["buildings"].groupby("community_code")["households"].sum()
    assert 2000 <= households[CHENGZHI] <= 4000
    assert households.drop(CHENGZHI).between(800, 2500).all()


def test_households_reach_each_communitys_target_exactly(demo, config):
    households = demo["buildings"].groupby("community_code")["households"].sum()
    assert households.to_dict() == {code: c["households"] for code, c in config.items()}


# --- grids ------------------------------------------------------------------------------------


def test_chengzhi_has_exactly_18_grids_coded_001_to_018(demo):
    grids = demo["grids"][demo["grids"].community_code == CHENGZHI]
    assert grids["code"].tolist() == [f"210213013004{i:03d}" for i in range(1, 19)]
    assert grids["seq"].tolist() == list(range(1, 19))
    assert grids["name"].iloc[0] == "城志社区第1网格" and grids["name"].iloc[-1] == "城志社区第18网格"


def test_grid_codes_are_district_street_community_and_seq(demo):
    grids = demo["grids"]
    expected = grids.community_code.str[:6] + grids.community_code.str[6:9] + grids.community_code.str[9:12] \
        + grids.seq.map("{:03d}".format)
    assert (grids.code == expected).all()
    assert grids.code.str.fullmatch(r"\d{15}").all() and grids.code.is_unique


def test_grid_numbers_agree_with_gridmaps_west_east_north_south_numbering(demo):
    for code, grids in demo["grids"].groupby("community_code"):
        assert grids.seq.tolist() == number_west_east_north_south(grids.geometry).tolist(), code


def test_the_grids_of_a_community_tile_it_exactly(demo):
    grids = _metric(demo["grids"])
    for community in _metric(demo["communities"]).itertuples():
        mine = grids[grids.community_code == community.code].geometry
        union = shapely.union_all(mine.values)
        area = community.geometry.area
        assert abs(union.area - area) / area < 1e-9
        assert shapely.symmetric_difference(union, community.geometry).area / area < 1e-9
        assert abs(mine.area.sum() - area) / area < 1e-9  # no overlap hides behind a gap


def test_no_two_grids_overlap(demo):
    grids = _metric(demo["grids"]).geometry
    left, right = grids.sindex.query(grids, predicate="intersects")
    pairs = left < right
    overlaps = shapely.intersection(grids.values[left[pairs]], grids.values[right[pairs]])
    assert pairs.sum() > 0  # neighbours do touch
    assert shapely.area(overlaps).max() == 0.0


def test_each_grid_is_one_contiguous_polygon(demo):
    assert (demo["grids"].geom_type == "Polygon").all()
    assert demo["grids"].is_valid.all()


# --- buildings and people ---------------------------------------------------------------------


def test_every_building_lies_within_exactly_one_grid_and_one_community(demo):
    buildings = _metric(demo["buildings"])
    for layer in ("grids", "communities"):
        polygons = _metric(demo[layer]).geometry
        hits, _ = polygons.sindex.query(buildings.geometry, predicate="within")
        assert np.bincount(hits, minlength=len(buildings)).tolist() == [1] * len(buildings), layer
    joined = geopandas.sjoin(buildings, _metric(demo["grids"])[["community_code", "geometry"]], predicate="within")
    assert (joined.community_code_left == joined.community_code_right).all()


def test_buildings_do_not_overlap_and_are_slab_sized(demo):
    footprints = _metric(demo["buildings"]).geometry
    left, right = footprints.sindex.query(footprints, predicate="intersects")
    assert (left == right).all()
    assert footprints.area.between(300, 1000).all()


def test_building_addresses_are_unique_real_looking_chinese_addresses(demo):
    buildings = demo["buildings"].merge(demo["communities"][["code", "district_name", "street_name"]],
                                        left_on="community_code", right_on="code")
    assert buildings.address.is_unique
    prefixes = "大连市" + buildings.district_name + buildings.street_name
    assert all(address.startswith(prefix) for address, prefix in zip(buildings.address, prefixes))
    residential = buildings[buildings.households > 0]
    assert residential.address.str.fullmatch(r"大连市.+[区市].+街道.+[路街]\d+号\d+栋").all()


def test_residential_buildings_hold_20_to_120_households_and_a_few_others_none(demo):
    buildings = demo["buildings"]
    residential = buildings[buildings.households > 0]
    assert residential.households.between(20, 120).all()
    others = buildings[buildings.households == 0]
    assert set(demo["communities"].service_centre) <= set(others.name)
    assert len(others) < 0.1 * len(buildings)
    assert (buildings.floors > 0).all()


def test_household_rows_per_building_equal_its_household_count(demo):
    counts = demo["households"].groupby("building_address").size()
    expected = demo["buildings"].set_index("address").households
    assert counts.reindex(expected.index, fill_value=0).to_dict() == expected.to_dict()
    assert not demo["households"].duplicated(["building_address", "unit"]).any()
    assert demo["households"].unit.str.fullmatch(r"\d单元\d{1,2}\d{2}").all()
    assert demo["households"]["size"].between(1, 5).all()


def test_residents_live_in_listed_households_with_plausible_contacts(demo):
    residents = demo["residents"]
    assert 0 < len(residents) < 30_000
    homes = residents.merge(demo["households"], on=["building_address", "unit"], how="left", indicator=True)
    assert (homes._merge == "both").all()
    per_household = residents.groupby(["building_address", "unit"]).size()
    sizes = demo["households"].set_index(["building_address", "unit"])["size"]
    assert (per_household <= sizes.reindex(per_household.index)).all()
    assert residents.phone.str.fullmatch(r"1[358]\d{9}").all() and residents.phone.is_unique
    assert residents.name.str.fullmatch(r"[\u4e00-\u9fff]{2,3}").all()
    assert 0.01 < residents.vulnerable.mean() < 0.06


# --- organisation -----------------------------------------------------------------------------


def test_every_grid_has_a_worker_and_every_worker_one_or_two_grids(demo):
    served = demo["workers"].grids.str.split(";")
    assert served.map(len).between(1, 2).all()
    assert set(demo["grids"].code) == {code for codes in served for code in codes}
    for worker in demo["workers"].itertuples():
        assert all(code[:12] == worker.community_code for code in worker.grids.split(";"))


def test_every_grid_has_exactly_one_grid_branch_under_its_community_committee(demo):
    orgs = demo["party_orgs"]
    assert orgs.key.is_unique
    branches = orgs[orgs.kind == "grid_branch"]
    assert branches.grid_code.value_counts().reindex(demo["grids"].code).eq(1).all()
    committees = orgs[orgs.kind == "committee"].set_index("community_code").key
    assert (branches.parent_key == branches.community_code.map(committees)).all()
    assert (orgs[orgs.kind == "committee"].parent_key == "").all()
    groups = orgs[orgs.kind == "group"]
    assert groups.parent_key.isin(branches.key).all()
    assert groups.building_address.isin(demo["buildings"].address).all()
    assert set(orgs.kind) == {"committee", "grid_branch", "group"}
    assert orgs.loc[orgs.community_code == CHENGZHI, "name"].iloc[0] == "城志社区党委"


def test_party_members_belong_to_real_branches_and_some_live_elsewhere(demo):
    members = demo["party_members"]
    outside = members.building_address == ""
    assert 0.03 <= outside.mean() <= 0.08
    assert members.loc[~outside, "building_address"].isin(demo["buildings"].address).all()
    branch_keys = set(demo["party_orgs"].key[demo["party_orgs"].kind == "grid_branch"])
    assert members.loc[~outside, "org_key"].isin(branch_keys).all()
    assert 0.3 <= members.in_service.mean() <= 0.5
    assert (members.employer[members.in_service] != "").all() and (members.employer[~members.in_service] == "").all()
    communities = shapely.union_all(demo["communities"].geometry.values)
    assert not members.geometry[outside].intersects(communities).any()
    assert members.geometry[~outside].within(communities).all()


def test_volunteers_have_skills_and_live_in_their_community(demo):
    volunteers = demo["volunteers"].merge(demo["communities"][["code", "geometry"]].rename(columns={"geometry": "home"}),
                                          left_on="community_code", right_on="code")
    assert geopandas.GeoSeries(volunteers.geometry).within(geopandas.GeoSeries(volunteers.home)).all()
    assert (volunteers.skills.str.len() > 0).all()
    assert 0.5 < volunteers.available.mean() < 0.95


def test_responders_of_every_kind_are_in_and_around_the_communities(demo):
    responders = demo["responders"]
    kinds = {"police", "auxiliary_police", "mediator", "property_management", "utility", "medical", "legal", "fire"}
    assert set(responders.kind) == kinds
    centres = _metric(demo["communities"]).geometry.centroid
    distance = _metric(responders).geometry.apply(lambda p: centres.distance(p).min())
    assert distance.max() < 4_000


# --- cameras ----------------------------------------------------------------------------------


def test_heheyuan_courtyard_has_exactly_25_cameras_inside_it(demo):
    courtyard = demo["courtyards"].set_index("name").loc["和合大院"]
    assert courtyard.community_code == HUSHAN
    cameras = demo["cameras"][demo["cameras"].courtyard == "和合大院"]
    assert len(cameras) == 25
    assert cameras.within(courtyard.geometry).all()
    assert cameras.channel.is_unique
    assert not cameras.intersects(shapely.union_all(demo["buildings"].geometry.values)).any()


def test_cameras_have_sensible_views_and_other_communities_a_few_at_gates(demo):
    cameras = demo["cameras"]
    assert cameras.bearing.between(0, 360, inclusive="left").all()
    assert cameras.fov.between(40, 110).all() and cameras.range_m.between(15, 60).all()
    others = cameras[cameras.community_code != HUSHAN].groupby("community_code").size()
    assert len(others) == 4 and others.between(2, 12).all()
