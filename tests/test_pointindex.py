"""PolygonIndex and points_to_grids: identical to geopandas.sjoin inside, the lowest position on edges."""
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from gridmap.errors import InvalidInput
from gridmap.geo.pointindex import PolygonIndex, points_to_grids

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared(*parts):
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the real data lives in ../shared/data beside the project)")
    return path


# -- oracles ------------------------------------------------------------------------------------
def sjoin_within(xy, grids):
    """geopandas.sjoin(predicate="within"): the grid position per point, -1 where none (lowest if several)."""
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=grids.crs)
    joined = gpd.sjoin(pts, grids[[grids.geometry.name]].reset_index(drop=True), predicate="within", how="left")
    return joined["index_right"].fillna(-1).astype(int).groupby(level=0).min().to_numpy()


def geos_closure(xy, geoms):
    """The lowest position whose closure contains each point, by GEOS' exact predicates; -1 outside."""
    tree = shapely.STRtree(np.asarray(geoms, dtype=object))
    p, g = tree.query(shapely.points(xy), predicate="intersects")
    out = np.full(len(xy), np.iinfo(np.int64).max)
    np.minimum.at(out, p, g)
    out[out == np.iinfo(np.int64).max] = -1
    return out


def voronoi(n, side, seed, origin=(0.0, 0.0)):
    rng = np.random.default_rng(seed)
    x0, y0 = origin
    seeds = shapely.points(rng.uniform((x0, y0), (x0 + side, y0 + side), (n, 2)))
    square = box(x0, y0, x0 + side, y0 + side)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=square))
    return shapely.intersection(cells, square)


# -- hand-drawn cases -------------------------------------------------------------------------
@pytest.fixture
def three_by_three():
    """Nine unit squares numbered by position::

        3 +---+---+---+
          | 6 | 7 | 8 |
        2 +---+---+---+
          | 3 | 4 | 5 |
        1 +---+---+---+
          | 0 | 1 | 2 |
        0 +---+---+---+
          0   1   2   3
    """
    return gpd.GeoDataFrame({"code": [f"00{i}" for i in range(9)]},
                            geometry=[box(i % 3, i // 3, i % 3 + 1, i // 3 + 1) for i in range(9)], crs=3857)


def test_each_square_of_the_3x3_grid_owns_its_centre(three_by_three):
    centres = np.array([[i % 3 + 0.5, i // 3 + 0.5] for i in range(9)])
    assert points_to_grids(centres, three_by_three).tolist() == list(range(9))


@pytest.mark.parametrize("point,expected", [
    ((1.0, 0.5), 0),    # edge between 0 and 1
    ((1.5, 1.0), 1),    # edge between 1 and 4
    ((2.0, 2.5), 7),    # edge between 7 and 8
    ((1.0, 1.0), 0),    # vertex of 0, 1, 3, 4
    ((2.0, 2.0), 4),    # vertex of 4, 5, 7, 8
    ((0.0, 0.5), 0),    # outer boundary of 0 alone
    ((3.0, 3.0), 8),    # outer corner of 8
    ((3.0, 1.5), 5),    # outer boundary of 5
    ((1.5, 3.0), 7),    # outer boundary of 7
])
def test_a_point_on_an_edge_or_vertex_goes_to_the_lowest_position_covering_it(three_by_three, point, expected):
    index = PolygonIndex(three_by_three.geometry.values)
    assert points_to_grids(np.array([point]), three_by_three).tolist() == [expected]
    assert index.lookup_one(*point) == expected
    assert index.lookup(np.array([point[0]]), np.array([point[1]])).tolist() == [expected]


def test_covering_lists_every_square_meeting_at_a_vertex(three_by_three):
    index = PolygonIndex(three_by_three.geometry.values)
    assert index.covering(1.0, 1.0) == [0, 1, 3, 4]
    assert index.covering(1.5, 1.0) == [1, 4]
    assert index.covering(0.5, 0.5) == [0]
    assert index.covering(-0.5, 0.5) == []


def test_reversing_the_priority_order_gives_shared_vertices_to_the_new_lowest(three_by_three):
    reversed_grids = three_by_three.iloc[::-1].reset_index(drop=True)  # position 0 is now square 8
    got = points_to_grids(np.array([[1.0, 1.0], [2.0, 2.0], [0.5, 0.5]]), reversed_grids)
    assert got.tolist() == [8 - 4, 8 - 8, 8 - 0]


@pytest.mark.parametrize("point", [(-0.5, 0.5), (3.0000001, 1.0), (1.5, -1e-9), (1e12, 1e12), (np.nan, 1.0),
                                   (1.0, np.inf)])
def test_points_outside_every_square_or_not_finite_get_minus_one(three_by_three, point):
    index = PolygonIndex(three_by_three.geometry.values)
    assert points_to_grids(np.array([point]), three_by_three).tolist() == [-1]
    assert index.lookup_one(*point) == -1


def test_the_3x3_grid_agrees_with_sjoin_on_random_points_and_with_geos_on_the_lattice(three_by_three):
    rng = np.random.default_rng(3)
    xy = rng.uniform(-0.5, 3.5, (5000, 2))
    assert (points_to_grids(xy, three_by_three) == sjoin_within(xy, three_by_three)).all()
    # every lattice point and half-lattice point lies on an edge or vertex (or outside)
    lattice = np.array([[i / 2, j / 2] for i in range(-1, 8) for j in range(-1, 8)])
    assert (points_to_grids(lattice, three_by_three) == geos_closure(lattice, three_by_three.geometry)).all()


def test_cells_aligned_with_the_polygon_edges_still_give_exact_answers(three_by_three):
    # a cell size of 1/4 puts raster lines exactly on every square's edges
    index = PolygonIndex(three_by_three.geometry.values, cell_size=0.25)
    rng = np.random.default_rng(5)
    xy = np.concatenate([rng.integers(-2, 14, (3000, 2)) / 4, rng.uniform(-0.5, 3.5, (3000, 2))])
    assert (index.lookup(xy[:, 0], xy[:, 1]) == geos_closure(xy, three_by_three.geometry)).all()
    assert [index.lookup_one(x, y) for x, y in xy] == index.lookup(xy[:, 0], xy[:, 1]).tolist()


@pytest.fixture
def holed():
    """A square with a square hole, and a small square filling the hole::

        4 +-------------+
          |  0          |
        3 |   +-----+   |
          |   |  1  |   |      position 0: the ring (0..4 minus 1..3)
        1 |   +-----+   |      position 1: the filler 1..3
          |             |
        0 +-------------+
          0   1     3   4
    """
    ring = Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], holes=[[(1, 1), (3, 1), (3, 3), (1, 3)]])
    return gpd.GeoDataFrame(geometry=[ring, box(1, 1, 3, 3)], crs=3857)


def test_a_point_in_a_hole_belongs_to_the_polygon_filling_it(holed):
    pts = np.array([[2.0, 2.0], [0.5, 0.5], [3.5, 2.0]])
    assert points_to_grids(pts, holed).tolist() == [1, 0, 0]


def test_a_point_in_an_empty_hole_is_outside(holed):
    only_ring = holed.iloc[[0]].reset_index(drop=True)
    assert points_to_grids(np.array([[2.0, 2.0], [1.0, 2.0], [0.5, 2.0]]), only_ring).tolist() == [-1, 0, 0]


def test_the_rim_of_a_hole_goes_to_the_lowest_of_ring_and_filler(holed):
    rim = np.array([[1.0, 2.0], [3.0, 3.0], [2.0, 1.0]])
    assert points_to_grids(rim, holed).tolist() == [0, 0, 0]
    assert points_to_grids(rim, holed.iloc[::-1].reset_index(drop=True)).tolist() == [0, 0, 0]
    rng = np.random.default_rng(1)
    xy = rng.uniform(-1, 5, (4000, 2))
    assert (points_to_grids(xy, holed) == sjoin_within(xy, holed)).all()


def test_a_multipolygon_grid_answers_for_all_its_parts():
    #   +--+        +--+
    #   |0 |  +--+  |0 |     grid 0 is two squares, grid 1 the square between them
    #   +--+  |1 |  +--+
    #         +--+
    grids = gpd.GeoDataFrame(geometry=[MultiPolygon([box(0, 1, 1, 2), box(4, 1, 5, 2)]), box(2, 0, 3, 1.5)],
                             crs=3857)
    pts = np.array([[0.5, 1.5], [4.5, 1.5], [2.5, 1.0], [1.5, 1.0], [5.0, 2.0]])
    assert points_to_grids(pts, grids).tolist() == [0, 0, 1, -1, 0]
    rng = np.random.default_rng(2)
    xy = rng.uniform(-1, 6, (3000, 2))
    assert (points_to_grids(xy, grids) == sjoin_within(xy, grids)).all()


def test_overlapping_polygons_give_the_lowest_position_containing_the_point():
    grids = gpd.GeoDataFrame(geometry=[box(0, 0, 2, 2), box(1, 1, 3, 3), box(0.5, 0.5, 2.5, 2.5)], crs=3857)
    index = PolygonIndex(grids.geometry.values)
    assert index.lookup_one(1.5, 1.5) == 0 and index.lookup_one(2.2, 2.2) == 1 and index.lookup_one(2.7, 0.7) == -1
    assert index.lookup_one(2.7, 1.0) == 1  # on the bottom edge of 1 only
    assert index.covering(1.5, 1.5) == [0, 1, 2]
    rng = np.random.default_rng(4)
    xy = rng.uniform(-0.5, 3.5, (4000, 2))
    assert (index.lookup(xy[:, 0], xy[:, 1]) == sjoin_within(xy, grids)).all()


def test_an_empty_grids_frame_puts_every_point_outside():
    empty = gpd.GeoDataFrame(geometry=[], crs=4326)
    assert points_to_grids(np.array([[121.6, 38.9], [0.0, 0.0]]), empty).tolist() == [-1, -1]
    assert PolygonIndex([]).lookup_one(1.0, 1.0) == -1
    assert PolygonIndex([None, Polygon()]).lookup(np.array([0.0]), np.array([0.0])).tolist() == [-1]


def test_no_points_give_an_empty_answer(three_by_three):
    assert points_to_grids(np.zeros((0, 2)), three_by_three).tolist() == []
    assert points_to_grids(gpd.GeoSeries([], crs=3857), three_by_three).tolist() == []


def test_a_geodataframe_a_geoseries_and_an_array_of_points_give_the_same_answer(three_by_three):
    xy = np.array([[0.5, 0.5], [2.5, 2.5], [1.0, 1.0], [5.0, 5.0]])
    frame = gpd.GeoDataFrame({"n": range(4)}, geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=3857)
    expected = [0, 8, 0, -1]
    assert points_to_grids(xy, three_by_three).tolist() == expected
    assert points_to_grids(frame, three_by_three).tolist() == expected
    assert points_to_grids(frame.geometry, three_by_three).tolist() == expected
    assert points_to_grids(xy.tolist(), three_by_three).tolist() == expected
    assert points_to_grids(xy, three_by_three).dtype == np.int64


def test_points_in_another_crs_are_converted_to_the_grids_crs():
    grids = gpd.GeoDataFrame(geometry=[box(121.60, 38.90, 121.61, 38.91), box(121.61, 38.90, 121.62, 38.91)],
                             crs=4326)
    lonlat = gpd.GeoSeries(gpd.points_from_xy([121.605, 121.615, 121.63], [38.905, 38.905, 38.905]), crs=4326)
    assert points_to_grids(lonlat.to_crs(32651), grids).tolist() == [0, 1, -1]


def test_non_point_geometries_and_bad_arrays_are_refused_with_a_fix(three_by_three):
    with pytest.raises(InvalidInput, match="not a point") as err:
        points_to_grids(three_by_three, three_by_three)
    assert "representative_point" in err.value.fix
    with pytest.raises(InvalidInput, match=r"shape \(3,\)"):
        points_to_grids(np.array([1.0, 2.0, 3.0]), three_by_three)
    with pytest.raises(InvalidInput, match="LineString, not a polygon"):
        PolygonIndex([box(0, 0, 1, 1), shapely.LineString([(0, 0), (1, 1)])])


def test_a_non_point_deep_in_a_large_frame_is_refused_by_its_own_position(three_by_three):
    # points are read in chunks of 65,536: the message still counts from the frame's first row
    geoms = np.array(shapely.points(np.full((70_000, 2), 0.5)), dtype=object)
    geoms[68_000] = shapely.LineString([(0, 0), (1, 1)])
    with pytest.raises(InvalidInput, match="LineString at position 68000"):
        points_to_grids(gpd.GeoSeries(geoms, crs=3857), three_by_three)


# -- random and real tilings ------------------------------------------------------------------
@pytest.mark.parametrize("crs,origin,side", [(32651, (500_000.0, 4_300_000.0), 3000.0),
                                             (4326, (121.58, 38.88), 0.04)])
def test_random_points_over_a_voronoi_tiling_agree_with_sjoin_in_metres_and_in_degrees(crs, origin, side):
    grids = gpd.GeoDataFrame(geometry=voronoi(400, side, seed=11, origin=origin), crs=crs)
    rng = np.random.default_rng(12)
    lo, hi = np.array(origin) - side * 0.02, np.array(origin) + side * 1.02
    xy = rng.uniform(lo, hi, (40_000, 2))
    got = points_to_grids(xy, grids)
    assert (got == sjoin_within(xy, grids)).all()
    assert (got >= 0).mean() > 0.9 and (got == -1).any()


def test_voronoi_vertices_and_edge_points_get_the_lowest_position_geos_says_covers_them():
    cells = voronoi(300, 1000.0, seed=21)
    xy = shapely.get_coordinates(cells)                                # exact shared vertices
    a, b = xy[:-1], xy[1:]
    mids = (a + b) / 2                                                 # on, or within an ulp of, an edge
    nudged = mids + np.random.default_rng(1).normal(0, 1e-10, mids.shape)
    pts = np.concatenate([xy, mids, nudged])
    index = PolygonIndex(cells)
    got = index.lookup(pts[:, 0], pts[:, 1])
    assert (got == geos_closure(pts, cells)).all()
    shared_vertices = [i for i in range(len(xy)) if len(index.covering(*xy[i])) > 1]
    assert len(shared_vertices) > 500
    assert [index.lookup_one(x, y) for x, y in pts[:2000]] == got[:2000].tolist()


def test_the_scalar_path_agrees_with_the_vectorised_one():
    cells = voronoi(200, 1.0, seed=8)
    index = PolygonIndex(cells)
    xy = np.random.default_rng(9).uniform(-0.05, 1.05, (5000, 2))
    assert [index.lookup_one(x, y) for x, y in xy] == index.lookup(xy[:, 0], xy[:, 1]).tolist()
    assert [index.covering(x, y)[:1] for x, y in xy[:500]] == [[v] if v >= 0 else []
                                                              for v in index.lookup(xy[:500, 0], xy[:500, 1])]


def test_a_memory_cap_coarsens_the_raster_without_changing_answers():
    cells = voronoi(300, 1.0, seed=4)
    fine, coarse = PolygonIndex(cells), PolygonIndex(cells, max_table_bytes=4096)
    assert coarse.stats["rows"] * coarse.stats["cols"] * 4 <= 4096 < fine.stats["rows"] * fine.stats["cols"] * 4
    xy = np.random.default_rng(6).uniform(-0.1, 1.1, (20_000, 2))
    assert (coarse.lookup(xy[:, 0], xy[:, 1]) == fine.lookup(xy[:, 0], xy[:, 1])).all()
    assert coarse.nbytes > 0


def test_providence_block_points_fall_in_the_same_ward_as_sjoin_says():
    blocks = gpd.read_file(shared("providence", "blocks.zip"))
    wards = gpd.read_file(shared("providence", "districts.zip"))
    assert blocks.crs == wards.crs and len(wards) == 15
    pts = blocks.geometry.representative_point()
    xy = shapely.get_coordinates(pts.values)
    got = points_to_grids(pts, wards)
    assert (got == sjoin_within(xy, wards)).all()
    assert (got >= 0).all() and len(got) == 3014
    # and every block lands in the ward its census record names
    assert (wards["id"].to_numpy()[got] == blocks["WARD"].to_numpy()).all()


def test_shanghai_bund_building_centroids_agree_with_sjoin_over_a_voronoi_partition():
    buildings = gpd.read_file(shared("shanghai_bund", "buildings.geojson"))
    minx, miny, maxx, maxy = buildings.total_bounds
    side = max(maxx - minx, maxy - miny)
    grids = gpd.GeoDataFrame(geometry=voronoi(60, side, seed=5, origin=(minx, miny)), crs=buildings.crs)
    pts = gpd.GeoSeries(shapely.centroid(buildings.geometry.values), crs=buildings.crs)  # lon/lat, as stored
    xy = shapely.get_coordinates(pts.values)
    got = points_to_grids(pts, grids)
    assert len(xy) > 1000
    assert (got == sjoin_within(xy, grids)).all()
    assert (got >= 0).all()  # the partition covers the buildings' extent


@pytest.mark.slow
def test_denver_blocks_as_grids_agree_with_sjoin_in_a_feet_crs():
    blocks = gpd.read_file(shared("denver", "DenverCo_blocks.zip"))
    rng = np.random.default_rng(2)
    minx, miny, maxx, maxy = blocks.total_bounds
    xy = rng.uniform((minx, miny), (maxx, maxy), (100_000, 2))
    assert (points_to_grids(xy, blocks) == sjoin_within(xy, blocks)).all()
    corners = shapely.get_coordinates(blocks.geometry.values[:2000])
    assert (points_to_grids(corners, blocks) == geos_closure(corners, blocks.geometry.values)).all()


def test_missing_and_empty_points_are_outside(three_by_three):
    pts = gpd.GeoSeries([shapely.Point(0.5, 0.5), None, shapely.Point(), shapely.Point(2.5, 0.5)], crs=3857)
    assert points_to_grids(pts, three_by_three).tolist() == [0, -1, -1, 2]
    assert points_to_grids(pts.iloc[:2], three_by_three).tolist() == [0, -1]


# -- points in any CRS: the grids' vertices move, the points stay ------------------------------
@pytest.fixture(params=["one thread", "helper threads"])
def threading_mode(request, monkeypatch):
    """Both paths of points_to_grids: small inputs run on the caller's thread, large ones on helpers."""
    from gridmap.geo import pointindex
    if request.param == "helper threads":
        monkeypatch.setattr(pointindex, "_THREADED_FROM", 0)
        monkeypatch.setattr(pointindex, "_CHUNK", 1000)  # many chunks read by the helpers
        monkeypatch.setattr(pointindex.os, "cpu_count", lambda: 4)
    return request.param


def dalian_voronoi(n=300):
    """A Voronoi tiling over 4 × 4 km of Dalian in WGS84 (made in UTM 51N, as the bench city is)."""
    cells = gpd.GeoSeries(voronoi(n, 4000.0, seed=31, origin=(500_000.0, 4_300_000.0)), crs=32651)
    return gpd.GeoDataFrame({"code": [f"{i:03d}" for i in range(n)]}, geometry=cells.to_crs(4326).values, crs=4326)


def sjoin_frame(points, grids):
    """sjoin of a points frame against ``grids`` (same CRS): the position per point, -1 where none."""
    frame = gpd.GeoDataFrame(geometry=points.geometry.values, crs=points.crs)
    joined = gpd.sjoin(frame, grids[[grids.geometry.name]].reset_index(drop=True), predicate="within", how="left")
    return joined["index_right"].fillna(-1).astype(int).groupby(level=0).min().to_numpy()


@pytest.mark.parametrize("points_crs", [4326, 32651, 3857])
def test_points_in_any_crs_agree_with_sjoin_against_the_grids_moved_into_the_points_crs(points_crs,
                                                                                        threading_mode):
    grids = dalian_voronoi()
    rng = np.random.default_rng(32)
    x0, y0, x1, y1 = grids.total_bounds
    lon = rng.uniform(x0 - 0.001, x1 + 0.001, 30_000)   # some outside every grid
    lat = rng.uniform(y0 - 0.001, y1 + 0.001, 30_000)
    points = gpd.GeoDataFrame({"n": range(len(lon))}, geometry=gpd.points_from_xy(lon, lat), crs=4326)
    points = points.to_crs(points_crs)
    got = points_to_grids(points, grids)
    expected = sjoin_frame(points, grids.to_crs(points_crs))
    assert (got == expected).all()
    assert (got == -1).sum() > 100 and (got >= 0).mean() > 0.9
    assert (points_to_grids(points.geometry, grids) == got).all()


@pytest.mark.parametrize("points_crs", [4326, 32651])
def test_points_on_moved_vertices_and_edges_get_the_lowest_grid_covering_them(points_crs, threading_mode):
    grids = dalian_voronoi(120)
    moved = np.asarray(grids.to_crs(points_crs).geometry.values)
    xy = shapely.get_coordinates(moved)                     # every vertex, shared by up to three grids
    mids = (xy[:-1] + xy[1:]) / 2                           # on, or within an ulp of, an edge
    pts = np.concatenate([xy, mids])
    points = gpd.GeoSeries(gpd.points_from_xy(pts[:, 0], pts[:, 1]), crs=points_crs)
    got = points_to_grids(points, grids)
    assert (got == geos_closure(pts, moved)).all()
    # sjoin's "within" leaves a point on a boundary out: everywhere it answers, the answers are equal
    theirs = sjoin_frame(points, grids.to_crs(points_crs))
    assert (got[theirs >= 0] == theirs[theirs >= 0]).all()
    assert (got[:len(xy)] >= 0).all()  # the square's outline too: a vertex on one grid's rim belongs to it


def test_points_outside_every_grid_and_empty_input_in_another_crs(threading_mode):
    grids = dalian_voronoi(50)
    far = gpd.GeoSeries(gpd.points_from_xy([500_000.0, 520_000.0], [4_290_000.0, 4_330_000.0]), crs=32651)
    assert points_to_grids(far, grids).tolist() == [-1, -1]
    assert points_to_grids(gpd.GeoSeries([], crs=32651), grids).tolist() == []
    assert points_to_grids(gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=3857)), grids).dtype == np.int64


def test_a_non_point_read_by_a_helper_thread_is_refused_by_its_own_position(threading_mode):
    grids = dalian_voronoi(50)
    geoms = np.array(shapely.points(np.full((5_000, 2), (121.6, 38.9))), dtype=object)
    geoms[4_321] = shapely.LineString([(0, 0), (1, 1)])
    with pytest.raises(InvalidInput, match="LineString at position 4321"):
        points_to_grids(gpd.GeoSeries(geoms, crs=4326), grids)
