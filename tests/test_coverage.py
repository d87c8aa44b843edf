"""Camera views, coverage, placement and cameras-seeing-a-point, checked against independent answers.

The independent answer for anything occluded is a line-of-sight oracle: a point is seen when it
lies within range and field of view and the straight segment from the camera to it does not cross
the interior of any footprint (DE-9IM ``T********`` on the segment and the footprint).
"""
import math

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gridmap import coverage as cv
from gridmap.geo.crs import local_metric_crs


# --- the oracle ----------------------------------------------------------------------------------

def _los_seen(cam, pts, footprints):
    """Boolean per point: seen by ``cam`` = (x, y, bearing, fov, range_m) by direct line of sight."""
    x, y, bearing, fov, r = cam
    dx, dy = pts[:, 0] - x, pts[:, 1] - y
    d = np.hypot(dx, dy)
    off = np.abs((np.degrees(np.arctan2(dx, dy)) - bearing + 180.0) % 360.0 - 180.0)
    ok = (d <= r) & ((off <= fov / 2) | (fov >= 360))
    idx = np.flatnonzero(ok)
    if len(footprints) and idx.size:
        fp = np.asarray(footprints, dtype=object)
        segs = shapely.linestrings(np.stack([np.broadcast_to([x, y], (idx.size, 2)), pts[idx]], axis=1))
        si, fi = shapely.STRtree(fp).query(segs, predicate="intersects")
        blocked = shapely.relate_pattern(segs[si], fp[fi], "T********")
        ok[idx[np.unique(si[blocked])]] = False
    return ok


def _grid_points(geom, step):
    x0, y0, x1, y1 = geom.bounds
    gx, gy = np.meshgrid(np.arange(x0 + step / 2, x1, step), np.arange(y0 + step / 2, y1, step))
    pts = np.column_stack([gx.ravel(), gy.ravel()])
    return pts[shapely.contains_xy(geom, pts[:, 0], pts[:, 1])]


# --- a single view -------------------------------------------------------------------------------

@pytest.mark.parametrize("fov", [30, 90, 135, 360])
def test_a_camera_in_an_open_square_sees_its_whole_sector(fov):
    view = cv.view_polygon(100, 100, 30, fov, 25)
    analytic = math.pi * 25 ** 2 * fov / 360
    assert view.is_valid
    assert abs(view.area - analytic) / analytic < 1e-3


def test_a_minimum_range_removes_the_near_disc():
    view = cv.view_polygon(0, 0, 0, 90, 20, min_range_m=5)
    analytic = math.pi * (20 ** 2 - 5 ** 2) / 4
    assert abs(view.area - analytic) / analytic < 1e-3
    assert not view.contains(shapely.Point(0, 3))
    assert view.contains(shapely.Point(0, 6))


def test_a_square_building_in_front_hides_the_wedge_behind_it():
    """
        y
       20 .  shadow  .        camera at the origin looks north (fov 90, range 20)
        9 . +------+ .        the 4 × 4 block x∈[-2, 2], y∈[5, 9] hides the wedge between
        5 . +------+ .        the rays through (±2, 5) from y = 5 outward
        0       C
    """
    view = cv.view_polygon(0, 0, 0, 90, 20, [shapely.box(-2, 5, 2, 9)])
    half = math.atan(2 / 5)
    shadow = 0.5 * 20 ** 2 * (2 * half) - 0.5 * 4 * 5  # sector of the wedge minus the triangle before the wall
    expected = math.pi * 20 ** 2 / 4 - shadow
    assert abs(view.area - expected) / expected < 1e-3
    assert not view.contains(shapely.Point(0, 15))  # straight behind the block
    assert view.contains(shapely.Point(8, 15))  # 28° off the axis, beside the 21.8° half-wedge


def test_a_camera_facing_a_wall_one_metre_away_sees_only_that_metre():
    view = cv.view_polygon(0, 0, 0, 60, 30, [shapely.box(-50, 1, 50, 5)])
    assert abs(view.area - math.tan(math.radians(30))) < 1e-3  # triangle: base 2 tan 30°, height 1


@pytest.mark.parametrize("x, y", [(5, 10), (5, 9.8), (5, 10.3)])
def test_a_camera_on_its_wall_sees_out_from_the_wall(x, y):
    view = cv.view_polygon(x, y, 0, 90, 10, [shapely.box(0, 0, 10, 10)])
    assert abs(view.area - math.pi * 100 / 4) / (math.pi * 100 / 4) < 0.02


def test_a_camera_deep_inside_a_building_sees_nothing():
    view = cv.view_polygon(5, 5, 0, 90, 30, [shapely.box(0, 0, 10, 10)])
    assert view.is_empty and view.geom_type == "Polygon"


def test_a_bad_range_says_what_to_give():
    with pytest.raises(ValueError, match="range_m was 0"):
        cv.view_polygon(0, 0, 0, 90, 0)


def _lattice(n=8, seed=3):
    rng = np.random.default_rng(seed)
    boxes = []
    for i in range(n):
        for j in range(n):
            x, y = i * 30 + rng.uniform(0, 6), j * 30 + rng.uniform(0, 6)
            boxes.append(shapely.affinity.rotate(shapely.box(x, y, x + rng.uniform(8, 18), y + rng.uniform(8, 18)),
                                                 rng.uniform(0, 40)))
    return boxes


def test_views_among_many_buildings_agree_with_line_of_sight_sampling():
    footprints = _lattice()
    rng = np.random.default_rng(7)
    obs = cv.Obstacles(footprints)
    blocked = shapely.union_all(footprints)
    checked = 0
    while checked < 12:
        x, y = rng.uniform(20, 200, 2)
        if blocked.distance(shapely.Point(x, y)) < 1:
            continue
        cam = (x, y, rng.uniform(0, 360), rng.uniform(40, 120), 40.0)
        view = cv.view_polygon(*cam, obs)
        pts = _grid_points(shapely.Point(x, y).buffer(40), 0.5)
        seen = _los_seen(cam, pts, footprints)
        # points within a few cm of the view's outline are where chords and arcs legitimately differ
        clear = shapely.distance(view.boundary, shapely.points(pts)) > 0.05
        inside = shapely.contains_xy(view, pts[:, 0], pts[:, 1])
        assert (inside[clear] == seen[clear]).mean() > 0.999
        assert abs(view.area - seen.sum() * 0.25) <= 0.01 * max(view.area, 50)
        checked += 1


# --- coverage ------------------------------------------------------------------------------------

def _frame(cams, crs=None):
    return gpd.GeoDataFrame({"bearing": [c[2] for c in cams], "fov": [c[3] for c in cams],
                             "range_m": [c[4] for c in cams]},
                            geometry=[shapely.Point(c[0], c[1]) for c in cams], crs=crs)


def _oracle_percent(cams, public, footprints, step=0.5):
    pts = _grid_points(public, step)
    seen = np.zeros(len(pts), dtype=bool)
    for cam in cams:
        seen |= _los_seen(cam, pts, footprints)
    return 100.0 * seen.mean()


def test_coverage_of_a_block_agrees_with_line_of_sight_sampling():
    footprints = _lattice(5)
    area = shapely.box(-10, -10, 160, 160)
    rng = np.random.default_rng(11)
    blocked = shapely.union_all(footprints)
    cams = []
    while len(cams) < 10:
        x, y = rng.uniform(0, 150, 2)
        if blocked.distance(shapely.Point(x, y)) > 1:
            cams.append((x, y, rng.uniform(0, 360), rng.uniform(60, 120), rng.uniform(20, 50)))
    report = cv.coverage(_frame(cams), area, footprints, min_blind_m2=4)
    public = area.difference(blocked)
    assert abs(report["public_m2"] - public.area) < 1e-6
    assert abs(report["percent"] - _oracle_percent(cams, public, footprints)) < 1.0
    # the overlap classes tile the public space, and the blind class is what nobody sees
    assert abs(sum(a for _, a, _ in report["overlap"]) - public.area) < 1e-3 * public.area
    zero = dict((c, a) for c, a, _ in report["overlap"]).get(0, 0.0)
    assert abs(zero - report["blind_total_m2"]) < 1e-3 * public.area
    assert all(p.area >= 4 for p in report["blind_spots"])
    assert sum(d["view_m2"] for d in report["per_camera"]) >= report["covered_m2"] - 1e-6
    assert sum(d["only_m2"] for d in report["per_camera"]) <= report["covered_m2"] + 1e-6


def test_two_cameras_back_to_back_overlap_only_where_their_sectors_meet():
    cams = [(0, 0, 0, 180, 10), (0, 0, 90, 180, 10)]  # north half and east half of a disc
    report = cv.coverage(_frame(cams), shapely.box(-20, -20, 20, 20), min_blind_m2=0)
    by_count = {c: a for c, a, _ in report["overlap"]}
    quarter = math.pi * 100 / 4
    assert abs(by_count[2] - quarter) / quarter < 2e-3
    assert abs(by_count[1] - 2 * quarter) / quarter < 4e-3
    assert abs(report["per_camera"][0]["only_m2"] - quarter) / quarter < 2e-3


def test_the_25_cameras_of_hehe_courtyard_leave_blind_spots(demo_frames):
    courtyards = demo_frames["courtyards"]
    yard = courtyards[courtyards["name"] == "和合大院"]
    lon, lat = yard.geometry.iloc[0].centroid.coords[0]
    crs = local_metric_crs(lon, lat)
    area = yard.to_crs(crs).geometry.iloc[0]
    cameras = demo_frames["cameras"]
    cams = cameras[cameras["courtyard"] == "和合大院"].to_crs(crs)
    buildings = demo_frames["buildings"].to_crs(crs)
    footprints = buildings.geometry[buildings.intersects(area.buffer(60))].tolist()
    assert len(cams) == 25

    report = cv.coverage(cams, area, footprints)
    print(f"\n和合大院: {len(cams)} cameras, public {report['public_m2']:.0f} m², coverage {report['percent']:.1f} %, "
          f"{len(report['blind_spots'])} blind spots ({report['blind_m2']:.0f} m²), "
          f"cameras per part {[(c, round(a)) for c, a, _ in report['overlap']]}")
    assert 20 < report["percent"] < 99  # "no blind spot" is not what 25 cameras deliver here
    assert report["blind_spots"] and report["blind_spots"][0].area >= report["blind_spots"][-1].area
    public = area.difference(shapely.union_all(footprints))
    oracle = _oracle_percent([(p.x, p.y, b, f, r) for p, b, f, r in
                              zip(cams.geometry, cams["bearing"], cams["fov"], cams["range_m"])],
                             public, footprints, step=1.0)
    assert abs(report["percent"] - oracle) < 1.0


@pytest.mark.parametrize("source", ["shanghai_bund", "bubenec"])
def test_views_among_real_buildings_agree_with_line_of_sight(source):
    from conftest import shared_data
    if source == "shanghai_bund":
        b = gpd.read_file(shared_data("shanghai_bund", "buildings.geojson"))
    else:
        b = gpd.read_file(shared_data("bubenec", "bubenec.gpkg"), layer="buildings")
    b = b.to_crs(4326)
    lon, lat = b.union_all().centroid.coords[0]
    b = b.to_crs(local_metric_crs(lon, lat))
    footprints = [g for g in shapely.get_parts(shapely.make_valid(b.geometry.values)) if g.geom_type == "Polygon"]
    obs = cv.Obstacles(footprints)
    blocked = shapely.union_all(footprints)
    rng = np.random.default_rng(5)
    x0, y0, x1, y1 = blocked.bounds
    checked = 0
    while checked < 5:
        x, y = rng.uniform(x0 + 100, x1 - 100), rng.uniform(y0 + 100, y1 - 100)
        # real cameras hang near buildings: keep sites 1–15 m from a wall
        if not 1 < blocked.distance(shapely.Point(x, y)) < 15:
            continue
        cam = (x, y, rng.uniform(0, 360), 90.0, 50.0)
        view = cv.view_polygon(*cam, obs)
        pts = _grid_points(shapely.Point(x, y).buffer(50), 0.5)
        seen = _los_seen(cam, pts, footprints)
        assert abs(view.area - seen.sum() * 0.25) <= 0.01 * max(view.area, 100)
        checked += 1


# --- cameras seeing a point ----------------------------------------------------------------------

def test_camera_views_index_answers_like_a_brute_force_scan():
    footprints = _lattice(6)
    rng = np.random.default_rng(2)
    blocked = shapely.union_all(footprints)
    cams = []
    while len(cams) < 60:
        x, y = rng.uniform(0, 180, 2)
        if blocked.distance(shapely.Point(x, y)) > 1:
            cams.append((x, y, rng.uniform(0, 360), rng.uniform(40, 360), rng.uniform(15, 45)))
    frame = _frame(cams)
    index = cv.CameraViews.from_cameras(frame, footprints)
    for x, y in rng.uniform(0, 180, (300, 2)):
        got = index.seeing(x, y)
        brute = sorted(i for i, c in enumerate(cams) if _los_seen(c, np.array([[x, y]]), footprints)[0])
        near_edge = any(v.boundary.distance(shapely.Point(x, y)) < 0.05 for v in index.views)
        if not near_edge:
            assert sorted(i for i, _ in got) == brute
        assert [d for _, d in got] == sorted(d for _, d in got)


# --- placement -----------------------------------------------------------------------------------

def _l_yard():
    """
        100 +--+
            |  |  building x∈[10, 100], y∈[10, 100] fills the rest of the square,
            |  |###########
         10 |  +--------------+   so the public space is an L with 10 m arms, 100 m long
          0 +-----------------+
            0  10            100
    """
    return shapely.box(0, 0, 100, 100), [shapely.box(10, 10, 100, 100)]


def test_an_l_shaped_yard_needs_exactly_two_80_degree_cameras():
    # From the corner the L spans bearings 0–90°, wider than one 80° view; from anywhere else the
    # building hides the far end of one arm. Two cameras at the corner, at 40° and 50°, see it all.
    area, building = _l_yard()
    candidates = [(0, 0), (5, 5), (50, 5), (5, 50), (95, 5), (5, 95)]
    result = cv.place_cameras(area, building, candidates, target_percent=99.9, fov=80, range_m=120,
                              bearings=(0, 40, 50, 90, 180, 270))
    assert result["method"] == "ilp"
    assert result["cameras"] == 2 and result["reached"]
    chosen = result["sites"]
    check = cv.coverage(chosen, area, building)
    assert check["percent"] > 99.5


def test_greedy_reaches_the_target_with_no_fewer_cameras_than_the_exact_answer():
    footprints = _lattice(4)
    area = shapely.box(-5, -5, 125, 125)
    candidates = cv.candidate_sites(footprints, area)
    assert len(candidates) > 50
    assert not shapely.intersects(shapely.points(candidates), shapely.union_all(footprints)).any()
    exact = cv.place_cameras(area, footprints, candidates[::3], target_percent=80, fov=90, range_m=40,
                             bearings=(0, 90, 180, 270))
    greedy = cv.place_cameras(area, footprints, candidates[::3], target_percent=80, fov=90, range_m=40,
                              bearings=(0, 90, 180, 270), max_exact=0)
    assert exact["method"] == "ilp" and greedy["method"] == "greedy"
    assert exact["reached"] and greedy["reached"]
    assert exact["cameras"] <= greedy["cameras"]
    assert "1 − 1/e" in greedy["bound"]


def test_existing_cameras_reduce_what_placement_must_add():
    area, building = _l_yard()
    existing = _frame([(0, 0, 40, 80, 120)])
    result = cv.place_cameras(area, building, [(0, 0), (50, 5)], target_percent=99.9, fov=80, range_m=120,
                              bearings=(0, 50, 90), existing=existing)
    assert result["cameras"] == 1 and result["reached"]


def test_candidate_sites_sit_just_outside_corners_and_wall_midpoints():
    sites = cv.candidate_sites([shapely.box(0, 0, 10, 10)])
    expected = {(5, -0.3), (10.3, 5), (5, 10.3), (-0.3, 5)}
    d = 0.3 / math.sqrt(2)
    expected |= {(10 + d, 10 + d), (-d, 10 + d), (-d, -d), (10 + d, -d)}
    assert {tuple(np.round(p, 3)) for p in sites} == {tuple(np.round(p, 3)) for p in expected}


# --- the command ---------------------------------------------------------------------------------

def test_the_coverage_command_reports_a_courtyard_of_the_demo(demo_app):
    result = demo_app.test_cli_runner().invoke(args=["coverage", "和合大院"])
    print(result.output)
    assert result.exit_code == 0, result.output
    assert "25 cameras" in result.output and "coverage" in result.output
    percent = float(result.output.split("coverage ")[1].split(" %")[0])
    assert 20 < percent < 99
    assert "largest blind spot" in result.output and "cameras per part: 0:" in result.output


def test_the_coverage_command_refuses_an_unknown_name_with_exit_2(demo_app):
    result = demo_app.test_cli_runner().invoke(args=["coverage", "没有这个院"])
    assert result.exit_code == 2
    assert 'No courtyard or community is called "没有这个院"' in result.output
