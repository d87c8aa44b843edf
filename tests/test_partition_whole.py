"""Whole buildings: no grid boundary cuts a footprint, the grids still tile exactly, unknown households
are estimated and said to be, and what the data cannot meet is named with its real reason."""
import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import Point, box

from conftest import shared_data
from gridmap.assign import buildings_to_grids
from gridmap.errors import InvalidInput
from gridmap.geo.crs import local_metric_crs
from gridmap.partition import AREA_PER_HOUSEHOLD_M2, partition_community

UTM = "EPSG:32651"


def frame(geoms, households, crs=UTM, **columns):
    return gpd.GeoDataFrame({"households": households, **columns}, geometry=list(geoms), crs=crs)


def assert_whole_and_tiling(buildings, boundary, grids, assignment):
    """The independent check: each footprint's part inside the community lies in its own grid (area
    share ≥ 1 - 1e-9), the grids' union is the community and they do not overlap."""
    poly = np.isin(shapely.get_type_id(buildings.geometry.array), [3, 6])
    fp = shapely.intersection(buildings.geometry.array[poly], boundary)
    own = grids.geometry.array[assignment.to_numpy()[poly]]
    share = shapely.area(shapely.intersection(fp, own)) / shapely.area(fp)
    assert share.min() >= 1 - 1e-9, np.flatnonzero(share < 1 - 1e-9)
    union = shapely.union_all(grids.geometry.array)
    assert abs(union.area - boundary.area) <= 1e-9 * boundary.area
    assert shapely.symmetric_difference(union, boundary).area <= 1e-9 * boundary.area
    assert shapely.area(grids.geometry.array).sum() - union.area <= 1e-9 * boundary.area
    assert grids.attrs["report"]["tiling"]["exact"]


# --- hand-drawn -----------------------------------------------------------------------------------

def test_a_long_shop_across_the_would_be_boundary_stays_whole_in_one_grid():
    """Four houses of 10 households and a long empty shop across the middle, 2 grids::

        +--------------------+
        | W1              E1 |     the midline x = 10 would cut the shop;
        |   ==== shop ====   |     it lies wholly in one grid, the houses split 20 / 20
        | W2              E2 |
        +--------------------+
    """
    boundary = box(0, 0, 20, 10)
    b = frame([box(1, 6, 4, 9), box(1, 1, 4, 4), box(16, 6, 19, 9), box(16, 1, 19, 4), box(5, 4.5, 18, 5.5)],
              [10, 10, 10, 10, 0])
    grids, assignment = partition_community(b, boundary, n_grids=2)
    assert_whole_and_tiling(b, boundary, grids, assignment)
    assert sorted(grids["households"].tolist()) == [20, 20]
    assert assignment.iat[0] == assignment.iat[1] != assignment.iat[2] == assignment.iat[3]
    assert not grids["estimated"].any() and grids.attrs["report"]["households_basis"] == "recorded"


def test_terraced_houses_sharing_walls_are_never_cut_and_overlapping_ones_share_a_grid():
    """A row of 8 terraced houses (shared walls) and two overlapping footprints; 4 grids."""
    row = [box(x, 2, x + 2.5, 8) for x in np.arange(0, 20, 2.5)]
    overlap = [box(2, 10, 8, 14), box(6, 12, 12, 16)]
    boundary = box(-1, 0, 21, 18)
    b = frame(row + overlap, [10] * 8 + [5, 5])
    grids, assignment = partition_community(b, boundary, n_grids=4, seed=1)
    assert_whole_and_tiling(b, boundary, grids, assignment)
    assert assignment.iat[8] == assignment.iat[9]
    assert grids["households"].sum() == 90


def test_a_building_across_the_community_outline_is_clipped_reported_and_whole_inside():
    boundary = box(0, 0, 20, 10)
    b = frame([box(-2, 4, 2, 6), box(5, 1, 8, 4), box(12, 6, 15, 9), box(16, 1, 18, 3)], [10, 10, 10, 10])
    grids, assignment = partition_community(b, boundary, n_grids=2)
    assert_whole_and_tiling(b, boundary, grids, assignment)
    finding = [f for f in grids.attrs["report"]["infeasible"] if f["kind"] == "straddles_boundary"]
    assert len(finding) == 1 and finding[0]["count"] == 1 and finding[0]["buildings"] == ["0"]
    assert finding[0]["area_m2"] == pytest.approx(4.0, rel=1e-2)   # half of the 4 × 2 m building
    assert grids.attrs["report"]["feasible"]



def test_entrance_points_inside_a_footprint_join_it_and_points_in_the_open_keep_their_own_cell():
    """Flats recorded as points: two inside block A (they go with A), one in the open; 2 grids."""
    boundary = box(0, 0, 20, 10)
    geoms = [box(1, 1, 9, 9), Point(3, 3), Point(7, 7), box(11, 1, 14, 9), Point(17, 5)]
    b = frame(geoms, [0, 20, 20, 20, 20])
    grids, assignment = partition_community(b, boundary, n_grids=2)
    assert_whole_and_tiling(b, boundary, grids, assignment)
    assert assignment.iat[1] == assignment.iat[2] == assignment.iat[0]
    points = [1, 2, 4]
    assert shapely.contains(grids.geometry.array[assignment.to_numpy()[points]], b.geometry.array[points]).all()
    assert sorted(grids["households"].tolist()) == [40, 40]


# --- estimates --------------------------------------------------------------------------------------

def test_buildings_without_households_get_a_stated_estimate_flagged_per_grid():
    """Four 10 × 10 m blocks with 9, 9, 18 and 18 floors, no counts: 900 m² / 90 m² = 10, …, 20 households."""
    per = AREA_PER_HOUSEHOLD_M2["residential"]
    b = frame([box(0, 0, 10, 10), box(20, 0, 30, 10), box(0, 20, 10, 30), box(20, 20, 30, 30)],
              [None] * 4, floors=[9, 9, 18, 18])
    grids, assignment = partition_community(b, box(-5, -5, 35, 35), target_households=30)
    report = grids.attrs["report"]
    assert report["households_basis"] == "estimated" and report["estimated_buildings"] == 4
    expected = np.round(np.array([9, 9, 18, 18]) * 100 / per)
    assert grids["households"].sum() == expected.sum() == 60
    assert len(grids) == 2 and grids["estimated"].all()     # 60 / 30: not "1 grid"
    note = [f for f in report["infeasible"] if f["kind"] == "households_estimated"][0]
    assert note["count"] == 4 and "estimated" in note["message"] and report["feasible"]


def test_a_shop_is_estimated_empty_and_missing_floors_take_the_median():
    b = frame([box(0, 0, 10, 10), box(20, 0, 30, 10), box(0, 20, 10, 30)], [None] * 3,
              floors=[9, None, 9], building=["apartments", "retail", "yes"])
    grids, assignment = partition_community(b, box(-5, -5, 35, 35), n_grids=1)
    # apartments 9 × 100 / 85; the shop 0; "yes" is residential with the median 9 floors assumed
    assert grids["households"].iat[0] == round(900 / 85) + 0 + round(900 / 90)
    note = [f for f in grids.attrs["report"]["infeasible"] if f["kind"] == "households_estimated"][0]
    assert note["floors_assumed"] == 9 and note["floors_assumed_for"] == 1


def test_no_households_and_no_footprints_refuse_a_target_but_balance_a_count_by_buildings():
    b = frame([Point(x + 0.5, 0.5) for x in range(6)], [None] * 6)
    with pytest.raises(InvalidInput, match="cannot choose how many grids") as err:
        partition_community(b, box(0, 0, 6, 1), target_households=40)
    assert "--grids" in err.value.fix
    grids, _ = partition_community(b, box(0, 0, 6, 1), n_grids=3)
    assert grids.attrs["report"]["households_basis"] == "building count"
    assert grids["n_buildings"].tolist() == [2, 2, 2]


# --- what the data cannot meet ------------------------------------------------------------------------

def test_a_tolerance_whole_households_forbid_is_named_with_the_least_they_allow():
    """7 one-household buildings in 2 grids: 3.5 each is impossible, 3 / 4 is ±14.3 %."""
    b = frame([box(x + 0.2, 0.2, x + 0.8, 0.8) for x in range(7)], [1] * 7)
    grids, _ = partition_community(b, box(0, 0, 7, 1), n_grids=2, tolerance=0.01)
    report = grids.attrs["report"]
    kinds = [f["kind"] for f in report["infeasible"]]
    assert kinds == ["tolerance_below_whole_numbers"]          # not "unbalanced": shape is not to blame
    f = report["infeasible"][0]
    assert (f["low"], f["high"]) == (3, 4) and f["min_tolerance"] == pytest.approx(0.5 / 3.5)
    assert f["suggest"] == 0.143 and "0.143" in f["message"]
    assert sorted(grids["households"].tolist()) == [3, 4]


def test_the_issue_641_households_in_12_grids_cannot_be_within_one_percent():
    rng = np.random.default_rng(0)
    hh = np.full(120, 5)
    hh[rng.choice(120, 41, replace=False)] += 1          # 641 households
    xs, ys = np.meshgrid(np.arange(12), np.arange(10))
    b = frame([box(x + 0.1, y + 0.1, x + 0.9, y + 0.9) for x, y in zip(xs.ravel(), ys.ravel())], hh)
    grids, _ = partition_community(b, box(0, 0, 12, 10), n_grids=12, tolerance=0.01)
    f = [f for f in grids.attrs["report"]["infeasible"] if f["kind"] == "tolerance_below_whole_numbers"][0]
    assert f["ideal"] == pytest.approx(641 / 12) and (f["low"], f["high"]) == (53, 54)
    assert f["min_tolerance"] == pytest.approx((54 - 641 / 12) / (641 / 12))


def test_more_grids_than_building_sites_is_reported_with_the_count_made():
    b = frame([box(1, 1, 3, 3), box(2, 2, 4, 4), box(6, 1, 8, 3)], [10, 10, 10])   # two overlap: 2 sites
    grids, _ = partition_community(b, box(0, 0, 10, 5), n_grids=3)
    f = grids.attrs["report"]["infeasible"][0]
    assert f["kind"] == "more_grids_than_buildings" and (f["n_cells"], f["made"]) == (2, 2)
    assert len(grids) == 2


# --- real data --------------------------------------------------------------------------------------

def bund():
    b = gpd.GeoDataFrame.from_features(json.loads(shared_data("shanghai_bund", "buildings.geojson").read_text(
        encoding="utf-8"))["features"], crs="EPSG:4326")
    metric = b.to_crs(local_metric_crs(121.5, 31.24))
    floors = np.clip(np.round(b["height"].fillna(9.0).to_numpy(float) / 3.0), 1, None)
    b["households"] = np.round(metric.area.to_numpy() * floors / 90.0).astype(int)
    return b


@pytest.mark.slow
def test_shanghai_bund_footprints_are_whole_in_their_grids_by_gridmaps_own_validation_rule_too():
    b = bund()
    boundary = shapely.convex_hull(shapely.union_all(b.geometry.array))
    grids, assignment = partition_community(b, boundary, n_grids=6)
    assert_whole_and_tiling(b, boundary, grids, assignment)
    assert grids.attrs["report"]["within_tolerance"] and grids.attrs["report"]["all_contiguous"]
    # the rule `plan validate` applies (largest overlap, split when two grids hold ≥ 0.1 %)
    placed = buildings_to_grids(b, grids)
    assert not placed["split"].any()
    assert (placed["grid"].to_numpy() == assignment.to_numpy()).all()


@pytest.mark.slow
def test_helsinki_buildings_without_households_are_estimated_and_never_cut():
    from gridmap.geo.osm import read_buildings
    rows, _, _ = read_buildings(str(shared_data("helsinki", "Helsinki.osm.pbf")))
    b = gpd.GeoDataFrame({"households": None, "floors": rows["floors"]}, geometry=rows["geometry"].values,
                         crs="EPSG:4326")
    boundary = shapely.convex_hull(shapely.union_all(b.geometry.array))
    grids, assignment = partition_community(b, boundary, target_households=1500)
    report = grids.attrs["report"]
    assert report["households_basis"] == "estimated" and report["estimated_buildings"] == len(b)
    assert grids["estimated"].all() and len(grids) > 1
    assert_whole_and_tiling(b, boundary, grids, assignment)
    assert not buildings_to_grids(b, grids)["split"].any()
    assert report["all_contiguous"] and report["within_tolerance"], report["infeasible"]


def test_every_partition_finding_is_in_the_catalogue_and_renders_in_chinese():
    from pathlib import Path

    from babel.messages.pofile import read_po

    from gridmap.partition import INFEASIBLE_KINDS
    from gridmap.partition.report import finding_message
    po = Path(__file__).resolve().parents[1] / "gridmap/translations/zh_Hans_CN/LC_MESSAGES/messages.po"
    with po.open("rb") as fh:
        catalog = read_po(fh)
    zh = {m.id: m.string for m in catalog if m.id}
    missing = [k for k, t in INFEASIBLE_KINDS.items() if not zh.get(t)]
    assert missing == []
    b = frame([box(x + 0.2, 0.2, x + 0.8, 0.8) for x in range(7)], [1] * 7)
    grids, _ = partition_community(b, box(0, 0, 7, 1), n_grids=2, tolerance=0.01)
    finding = grids.attrs["report"]["infeasible"][0]
    assert finding_message(finding) == finding["message"]
    text = finding_message(finding, lambda msgid: zh[msgid])
    assert "户数为整数" in text and "0.143" in text and "3 或 4 户" in text


def test_overlapping_buildings_over_the_limit_together_are_named_as_a_group():
    """Three overlapping 12-household footprints (36) cannot be parted; 3 grids of ideal 30 (±5 %)."""
    group = [box(0, 0, 4, 4), box(2, 2, 6, 6), box(3, 0, 7, 3)]
    others = [box(x, 10, x + 2, 12) for x in range(0, 18, 3)]
    b = frame(group + others, [12, 12, 12] + [9] * 6)
    grids, assignment = partition_community(b, box(-1, -1, 20, 14), n_grids=3)
    assert_whole_and_tiling(b, box(-1, -1, 20, 14), grids, assignment)
    assert len(set(assignment.iloc[:3])) == 1
    f = [f for f in grids.attrs["report"]["infeasible"] if f["kind"] == "site_over_target"]
    assert len(f) == 1 and f[0]["count"] == 3 and f[0]["households"] == 36 and f[0]["buildings"] == "0, 1, 2"
