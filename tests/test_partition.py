"""partition_community: whole buildings, exact tiling, contiguity, balance, barriers, locks, seeds, reports."""
import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, box

from conftest import shared_data
from gridmap.errors import InvalidInput
from gridmap.geo.codes import number_west_east_north_south
from gridmap.geo.crs import local_metric_crs
from gridmap.partition import partition_community


def lattice(width, height, households=10, crs="EPSG:32651"):
    """Buildings at the centres of unit squares: row-major from the south-west corner."""
    xs, ys = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    hh = np.broadcast_to(households, width * height)
    return gpd.GeoDataFrame({"households": np.array(hh)}, geometry=gpd.points_from_xy(xs.ravel(), ys.ravel()),
                            crs=crs)


def picture(assignment, width, height):
    """The grid positions as rows, north at the top (as the ASCII pictures below)."""
    return assignment.to_numpy().reshape(height, width)[::-1].tolist()


def assert_tiles(grids, boundary, tol=1e-9):
    report = grids.attrs["report"]
    assert report["tiling"]["exact"], report["tiling"]
    union = shapely.union_all(grids.geometry.array)
    assert shapely.symmetric_difference(union, boundary).area <= tol * boundary.area
    assert abs(shapely.area(grids.geometry.array).sum() - boundary.area) <= tol * boundary.area


# --- hand-made cases ------------------------------------------------------------------------------

def test_a_4x4_lattice_splits_into_four_exactly_balanced_square_grids():
    """16 buildings of 10 households, 4 grids → the four 2×2 quadrants::

        +---+---+---+---+
        | 0 | 0 | 1 | 1 |        codes read west→east, north→south:
        | 0 | 0 | 1 | 1 |        001 002
        | 2 | 2 | 3 | 3 |        003 004
        | 2 | 2 | 3 | 3 |
        +---+---+---+---+
    """
    boundary = box(0, 0, 4, 4)
    grids, assignment = partition_community(lattice(4, 4), boundary, n_grids=4)
    assert picture(assignment, 4, 4) == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    assert grids["code"].tolist() == ["001", "002", "003", "004"]
    assert grids["households"].tolist() == [40, 40, 40, 40]
    assert grids["n_buildings"].tolist() == [4, 4, 4, 4]
    assert grids["polsby_popper"].round(4).tolist() == [round(np.pi / 4, 4)] * 4
    report = grids.attrs["report"]
    assert report["max_deviation_pct"] == 0.0
    assert report["all_contiguous"] and report["within_tolerance"] and report["feasible"]
    assert report["infeasible"] == []
    assert_tiles(grids, boundary)
    assert list(assignment.index) == list(range(16))


def test_a_building_bigger_than_the_target_is_reported_not_crashed_on():
    """One tower of 100 households among 10-household houses; 4 grids of ideal 62.5."""
    b = lattice(4, 4)
    b.loc[5, "households"] = 100
    grids, assignment = partition_community(b, box(0, 0, 4, 4), n_grids=4)
    report = grids.attrs["report"]
    kinds = [f["kind"] for f in report["infeasible"]]
    assert "building_over_target" in kinds
    finding = report["infeasible"][kinds.index("building_over_target")]
    assert finding["building"] == "5" and finding["households"] == 100
    assert "Raise the target" in finding["message"]
    assert not report["feasible"] and not report["within_tolerance"]
    assert grids["households"].sum() == 250
    assert report["all_contiguous"]


def test_an_island_with_a_few_households_is_named_and_joins_the_nearest_grid():
    """A 4×4 mainland and, 3 units east, a 1×1 island with one 2-household building::

        +---+---+---+---+
        |   |   |   |   |
        |   |   |   |   |        +---+
        |   |   |   |   |        | 2 |   ← island
        +---+---+---+---+        +---+
    """
    mainland, island = box(0, 0, 4, 4), box(7, 1, 8, 2)
    b = lattice(4, 4)
    b = gpd.GeoDataFrame({"households": [*b["households"], 2]},
                         geometry=[*b.geometry, Point(7.5, 1.5)], crs=b.crs)
    grids, assignment = partition_community(b, MultiPolygon([mainland, island]), n_grids=2)
    report = grids.attrs["report"]
    finding = next(f for f in report["infeasible"] if f["kind"] == "part_too_small")
    assert finding["households"] == 2
    assert "several pieces" in finding["message"]
    east = assignment.iat[16]
    assert grids["contiguous"].tolist().count(False) == 1 and not grids["contiguous"].iat[east]
    assert_tiles(grids, MultiPolygon([mainland, island]))
    assert sorted(grids["households"].tolist()) == [80, 82]


def test_locked_grids_are_kept_byte_identical_and_keep_their_buildings():
    """The west column (x < 1, 4 buildings) is an existing grid ``L01``; 3 more grids share the rest::

        +---+---+---+---+
        | L |   |   |   |
        | L |   |   |   |
        | L |   |   |   |
        | L |   |   |   |
        +---+---+---+---+
    """
    locked = gpd.GeoDataFrame({"code": ["210202003001007"]}, geometry=[box(0, 0, 1, 4)], crs="EPSG:32651")
    b = lattice(4, 4)
    grids, assignment = partition_community(b, box(0, 0, 4, 4), n_grids=4, locked=locked,
                                            community_code="210202003001")
    row = grids.index[grids["locked"]].tolist()
    assert len(row) == 1
    kept = grids.iloc[row[0]]
    assert kept["code"] == "210202003001007"
    assert shapely.to_wkb(kept.geometry) == shapely.to_wkb(locked.geometry.iat[0])
    west = b.geometry.x < 1
    assert (assignment[west] == row[0]).all() and not (assignment[~west] == row[0]).any()
    free = grids[~grids["locked"]]
    assert free["households"].tolist() == [40, 40, 40]
    assert sorted(free["code"]) == ["210202003001001", "210202003001002", "210202003001003"]
    assert_tiles(grids, box(0, 0, 4, 4))


def test_a_road_across_the_lattice_is_followed_when_balance_allows():
    """A 6×4 lattice into 2 grids. Without a road the compact cut is vertical (two 3×4 grids);
    with an east-west road at y = 2 no grid crosses it (two 6×2 grids)::

        +---+---+---+---+---+---+        +---+---+---+---+---+---+
        | 0 | 0 | 0 | 1 | 1 | 1 |        | 0 | 0 | 0 | 0 | 0 | 0 |
        | 0 | 0 | 0 | 1 | 1 | 1 |        | 0 | 0 | 0 | 0 | 0 | 0 |
        | 0 | 0 | 0 | 1 | 1 | 1 |     ═══════════ road ═══════════
        | 0 | 0 | 0 | 1 | 1 | 1 |        | 1 | 1 | 1 | 1 | 1 | 1 |
        +---+---+---+---+---+---+        +---+---+---+---+---+---+
    """
    b, boundary = lattice(6, 4), box(0, 0, 6, 4)
    road = gpd.GeoSeries([shapely.LineString([(-1, 2), (7, 2)])], crs=b.crs)
    _, plain = partition_community(b, boundary, n_grids=2)
    assert picture(plain, 6, 4) == [[0, 0, 0, 1, 1, 1]] * 4
    grids, along = partition_community(b, boundary, n_grids=2, barriers=road)
    assert picture(along, 6, 4) == [[0] * 6, [0] * 6, [1] * 6, [1] * 6]
    north = b.geometry.y > 2
    assert along[north].nunique() == 1 and along[~north].nunique() == 1
    assert grids.attrs["report"]["max_deviation_pct"] == 0.0


def test_each_seed_point_lies_in_a_grid_of_its_own():
    """Three service stations in a 6×6 lattice: each ends up in its own grid, all balanced."""
    b = lattice(6, 6)
    stations = gpd.GeoSeries([Point(0.5, 0.5), Point(0.6, 1.5), Point(5.5, 5.5)], crs=b.crs)
    grids, assignment = partition_community(b, box(0, 0, 6, 6), n_grids=3, seeds=stations)
    where = [int(assignment[(b.geometry.distance(p) < 0.5)].iat[0]) for p in stations]
    assert len(set(where)) == 3
    assert grids["households"].tolist() == [120, 120, 120]
    assert grids.attrs["report"]["all_contiguous"]


def scattered(n=120, seed=7):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 100, size=(n, 2))
    return gpd.GeoDataFrame({"households": rng.integers(0, 40, n)}, geometry=gpd.points_from_xy(*xy.T),
                            crs="EPSG:32651")


def test_the_same_seed_gives_the_same_grids_and_another_seed_other_grids():
    b, boundary = scattered(), box(0, 0, 100, 100)
    g1, a1 = partition_community(b, boundary, n_grids=7, seed=3)
    g2, a2 = partition_community(b, boundary, n_grids=7, seed=3)
    assert a1.equals(a2)
    assert g1.geometry.to_wkb().tolist() == g2.geometry.to_wkb().tolist()
    _, a3 = partition_community(b, boundary, n_grids=7, seed=4)
    assert not a1.equals(a3)
    for grids in (g1,):
        report = grids.attrs["report"]
        assert report["within_tolerance"] and report["all_contiguous"], report["infeasible"]
        assert_tiles(grids, boundary)


def test_target_households_chooses_the_count_whose_ideal_is_nearest():
    b = lattice(4, 4)                       # 160 households
    grids, _ = partition_community(b, box(0, 0, 4, 4), target_households=40)
    assert len(grids) == 4
    grids, _ = partition_community(b, box(0, 0, 4, 4), target_households=50)   # 3 → 53.3, 4 → 40
    assert len(grids) == 3
    assert grids.attrs["report"]["target_households"] == 50
    assert grids.attrs["report"]["ideal_households"] == pytest.approx(160 / 3)


@pytest.mark.parametrize("kwargs", [{}, {"n_grids": 2, "target_households": 40}])
def test_exactly_one_of_n_grids_and_target_households_is_required(kwargs):
    with pytest.raises(InvalidInput) as err:
        partition_community(lattice(2, 2), box(0, 0, 2, 2), **kwargs)
    assert "`n_grids`" in str(err.value) and "`target_households`" in str(err.value)


def test_bad_inputs_are_refused_with_what_to_do():
    b = lattice(2, 2)
    with pytest.raises(InvalidInput, match="households"):
        partition_community(b.drop(columns="households"), box(0, 0, 2, 2), n_grids=2)
    with pytest.raises(InvalidInput, match="12 digits"):
        partition_community(b, box(0, 0, 2, 2), n_grids=2, community_code="2102")
    with pytest.raises(InvalidInput, match="Polygon"):
        partition_community(b, shapely.LineString([(0, 0), (1, 1)]), n_grids=2)
    b.loc[0, "households"] = -1
    with pytest.raises(InvalidInput, match="≥ 0"):
        partition_community(b, box(0, 0, 2, 2), n_grids=2)


def test_zero_household_buildings_are_carried_along_without_breaking_balance():
    """Every other building is empty (a shop, a school): the 8 inhabited ones still split 4 + 4."""
    hh = np.tile([10, 0], 8)
    b = lattice(4, 4, households=hh)
    grids, assignment = partition_community(b, box(0, 0, 4, 4), n_grids=2)
    assert grids["households"].tolist() == [40, 40]
    assert (assignment >= 0).all() and grids["n_buildings"].sum() == 16
    assert grids.attrs["report"]["all_contiguous"]


def test_no_households_at_all_balances_by_building_count_and_says_so():
    b = lattice(4, 4, households=0)
    grids, _ = partition_community(b, box(0, 0, 4, 4), n_grids=4)
    assert grids["n_buildings"].tolist() == [4, 4, 4, 4]
    assert "no_households" in [f["kind"] for f in grids.attrs["report"]["infeasible"]]


def test_more_grids_than_buildings_makes_one_grid_per_building_and_says_so():
    grids, assignment = partition_community(lattice(2, 2), box(0, 0, 2, 2), n_grids=6)
    assert len(grids) == 4 and sorted(assignment.tolist()) == [0, 1, 2, 3]
    finding = grids.attrs["report"]["infeasible"][0]
    assert finding["kind"] == "more_grids_than_buildings" and "Ask for fewer grids" in finding["message"]
    assert_tiles(grids, box(0, 0, 2, 2))


def test_community_code_gives_15_digit_codes_west_to_east_north_to_south():
    """Quadrants of a 4×4 lattice are numbered NW, NE, SW, SE; a 6×2 strip's grids west to east."""
    grids, assignment = partition_community(lattice(4, 4), box(0, 0, 4, 4), n_grids=4,
                                            community_code="210202003001")
    assert grids["code"].tolist() == [f"210202003001{s:03d}" for s in range(1, 5)]
    nw, ne, sw, se = assignment.iat[12], assignment.iat[15], assignment.iat[0], assignment.iat[3]
    assert grids["code"].iloc[[nw, ne, sw, se]].str[-3:].tolist() == ["001", "002", "003", "004"]
    grids, assignment = partition_community(lattice(6, 2), box(0, 0, 6, 2), n_grids=3,
                                            community_code="210202003001")
    assert picture(assignment, 6, 2) == [[0, 0, 1, 1, 2, 2]] * 2
    assert grids["code"].tolist() == ["210202003001001", "210202003001002", "210202003001003"]


def test_a_community_without_buildings_is_one_grid_and_says_so():
    empty = gpd.GeoDataFrame({"households": []}, geometry=gpd.GeoSeries([], crs="EPSG:32651"))
    grids, assignment = partition_community(empty, box(0, 0, 4, 4), n_grids=3)
    assert len(grids) == 1 and len(assignment) == 0
    assert [f["kind"] for f in grids.attrs["report"]["infeasible"]] == ["no_buildings"]
    assert_tiles(grids, box(0, 0, 4, 4))


def test_buildings_on_one_spot_share_a_cell_and_a_grid():
    """Two flats behind one entrance point are one site of the tessellation."""
    b = lattice(4, 4)
    b = gpd.GeoDataFrame({"households": [*b["households"], 5]}, geometry=[*b.geometry, Point(0.5, 0.5)], crs=b.crs)
    grids, assignment = partition_community(b, box(0, 0, 4, 4), n_grids=4)
    assert assignment.iat[16] == assignment.iat[0]
    assert grids["households"].sum() == 165


# --- real data ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_providence_blocks_split_into_15_balanced_contiguous_wards_that_tile_the_city():
    blocks = gpd.read_file(shared_data("providence", "blocks.zip"))
    blocks["households"] = blocks["TOTPOP"]
    boundary = shapely.coverage_union_all(blocks.geometry.array)
    grids, assignment = partition_community(blocks, boundary, n_grids=15)
    report = grids.attrs["report"]
    assert report["cells"] == "polygons"
    assert len(grids) == 15 and (assignment >= 0).all()
    assert report["max_deviation_pct"] <= 5.0 and report["within_tolerance"]
    assert report["all_contiguous"] and report["infeasible"] == []
    assert report["tiling"]["exact"]
    assert grids["households"].sum() == 178040
    assert report["mean_polsby_popper"] > 0.4      # GerryChain's tree partition: ≈ 0.22 (bench/partition_bench.py)


def bund():
    # Read as JSON: the tiles repeat OSM ids across tile edges and GDAL warns from a C callback.
    b, roads = (gpd.GeoDataFrame.from_features(json.loads(shared_data("shanghai_bund", name).read_text(
        encoding="utf-8"))["features"], crs="EPSG:4326") for name in ("buildings.geojson", "roads.geojson"))
    # Stand-in households: floor area / 90 m², floors = height / 3 m (3 floors when unknown).
    metric = b.to_crs(local_metric_crs(121.5, 31.24))
    floors = np.clip(np.round(b["height"].fillna(9.0).to_numpy(float) / 3.0), 1, None)
    b["households"] = np.round(metric.area.to_numpy() * floors / 90.0).astype(int)
    return b, roads[roads["kind"].isin(["major_road", "minor_road"])]


@pytest.mark.slow
def test_shanghai_bund_buildings_along_their_roads_tile_the_hull_in_contiguous_grids():
    b, roads = bund()
    boundary = shapely.convex_hull(shapely.union_all(b.geometry.array))
    grids, assignment = partition_community(b, boundary, n_grids=6, barriers=roads, community_code="310101002001")
    report = grids.attrs["report"]
    assert report["cells"] == "voronoi"
    assert len(grids) == 6 and grids["code"].str.len().eq(15).all()
    assert report["all_contiguous"] and report["within_tolerance"]
    assert_tiles(grids, boundary)
    assert grids["n_buildings"].sum() == len(b) and (assignment >= 0).all()
    # Whole buildings: each footprint's representative point lies in the grid it is assigned to.
    inside = shapely.contains(grids.geometry.array[assignment.to_numpy()],
                              shapely.point_on_surface(b.geometry.array))
    assert inside.all()


def test_bubenec_buildings_with_streets_as_barriers():
    path = shared_data("bubenec", "bubenec.gpkg")
    b = gpd.read_file(path, layer="buildings")
    streets = gpd.read_file(path, layer="streets")
    b["households"] = np.round(b.area * 0.41 * 4 / 90).astype(int)   # 3857 area × cos²(50°), 4 floors
    boundary = shapely.convex_hull(shapely.union_all(b.geometry.array)).buffer(20)
    grids, assignment = partition_community(b, boundary, n_grids=5, barriers=streets)
    report = grids.attrs["report"]
    assert report["all_contiguous"] and report["within_tolerance"], report["infeasible"]
    assert_tiles(grids, boundary)
    assert report["min_polsby_popper"] > 0.3
    assert sorted(set(assignment)) == [0, 1, 2, 3, 4]


@pytest.mark.slow
def test_denver_blocks_into_40_grids_name_the_detached_piece_and_balance_the_rest():
    blocks = gpd.read_file(shared_data("denver", "DenverCo_blocks.zip"))
    blocks["households"] = blocks["TOTPOP20"]
    boundary = shapely.coverage_union_all(blocks.geometry.array)
    grids, _ = partition_community(blocks, boundary, n_grids=40)
    report = grids.attrs["report"]
    assert report["max_deviation_pct"] <= 5.0
    assert [f["kind"] for f in report["infeasible"]] == ["part_too_small"]
    assert list(report["contiguous"].values()).count(False) == 1
    assert report["tiling"]["exact"]


def test_the_partition_command_makes_a_draft_of_the_demo_community(tmp_path, demo_frames):
    """城志社区's 3,600 households into 12 grids: a draft that tiles the community and validates."""
    from conftest import make_app

    from gridmap import demo, plans
    from gridmap.store import models as m
    app, _ = make_app(tmp_path)
    store = app.extensions["gridmap.store"]
    demo.build(store, frames=demo_frames)
    out = app.test_cli_runner().invoke(args=["partition", "210213013004", "--grids", "12", "--seed", "3"])
    assert out.exit_code == 0, out.output
    assert "12 grids" in out.output and "tiling exact" in out.output
    plan_id = int(out.output.split("Draft plan ")[1].split()[0])
    with store.session() as s:
        plan = s.get(m.GridPlan, plan_id)
        assert plan.status == "draft" and len(plan.grids) == 12
        # the demo's plan holds 001–018: the draft's grids take numbers never used before, west→east
        assert [g.code for g in plan.grids] == [f"210213013004{i:03d}" for i in range(19, 31)]
        seq = number_west_east_north_south([g.geom for g in plan.grids])
        assert [g.code for g in sorted(plan.grids, key=lambda g: seq[plan.grids.index(g)])] == \
            [f"210213013004{i:03d}" for i in range(19, 31)]
        # the partition's report speaks of the draft's own codes
        _, report = plans.draft_from_partition(s, "210213013004", n_grids=12, seed=3)
        assert set(report["polsby_popper"]) == {f"210213013004{i:03d}" for i in range(19, 31)}
        findings = plans.validate(s, plan_id)
    assert [f for f in findings if f.severity == "error"] == []
    # whole buildings: the partition's own plan has no building cut by a grid boundary
    assert [f for f in findings if f.kind == "split_building"] == []
    # with no household register, a target per grid counts estimated households, and says so
    with store.transaction() as s:
        s.query(m.Building).filter(m.Building.community_code == "210213013004").update({"households": 0})
    out = app.test_cli_runner().invoke(args=["partition", "210213013004", "--households-per-grid", "400"])
    assert out.exit_code == 0, out.output
    assert "ESTIMATED for" in out.output and "households_estimated" in out.output
    n = int(out.output.split(": ")[1].split(" grids")[0])
    assert n > 1
    plan_id = int(out.output.split("Draft plan ")[1].split()[0])
    with store.session() as s:
        assert "estimated households" in s.get(m.GridPlan, plan_id).name
        assert [f for f in plans.validate(s, plan_id) if f.kind == "split_building"] == []
        n_plans = s.query(m.GridPlan).count()
    # more grids than buildings: refused with what fits, nothing written
    out = app.test_cli_runner().invoke(args=["partition", "210213013004", "--grids", "500"])
    assert out.exit_code == 2 and "no draft was made" in out.output and "--grids 95" in out.output
    with store.session() as s:
        assert s.query(m.GridPlan).count() == n_plans
    bad = app.test_cli_runner().invoke(args=["partition", "210213013999", "--grids", "3"])
    assert bad.exit_code == 2 and "210213013999" in bad.output
