"""Tests for gridmap.geo.validate: every bad feature reported, small faults repaired, WGS84 out."""

import json
from pathlib import Path

import geopandas
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon

from gridmap.geo.crs import parse_crs, wgs84_to_gcj02
from gridmap.geo.io import RawLayer, read_layer
from gridmap.geo.validate import Prepared, Problem, prepare

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
POLYGONS = {"Polygon", "MultiPolygon"}

# A 100 m x 100 m-ish block in Dalian, in WGS84 degrees.
BLOCK = Polygon([(121.640, 38.920), (121.641, 38.920), (121.641, 38.921), (121.640, 38.921)])


def raw_layer(geoms, crs="wgs84", **columns):
    frame = geopandas.GeoDataFrame(columns or None, geometry=list(geoms))
    return RawLayer(frame=frame, crs=parse_crs(crs), source="test")


def test_good_polygons_pass_unchanged_with_their_source_row_numbers():
    raw = raw_layer([BLOCK, shapely.affinity.translate(BLOCK, 0.002, 0)], name=["甲", "乙"])
    out = prepare(raw, allowed_types=POLYGONS)
    assert isinstance(out, Prepared)
    assert out.problems == [] and out.repaired == []
    assert out.frame["_row"].tolist() == [1, 2]
    assert out.frame["name"].tolist() == ["甲", "乙"]
    assert out.frame.crs.to_epsg() == 4326
    assert out.frame.geometry.iloc[0].equals(BLOCK)


def test_every_problem_is_collected_and_only_good_rows_are_kept():
    with np.errstate(invalid="ignore"):  # shapely warns when asked to build a NaN ring
        nan_ring = Polygon([(0, 0), (1, 0), (1, np.nan), (0, 0)])
    raw = raw_layer(
        [BLOCK, None, Polygon(), Point(121.64, 38.92), nan_ring, BLOCK],
        name=["ok", "none", "empty", "point", "nan", "ok2"],
    )
    out = prepare(raw, allowed_types=POLYGONS)
    assert [(p.row, p.feature) for p in out.problems] == [(2, "none"), (3, "empty"), (4, "point"), (5, "nan")]
    assert out.frame["_row"].tolist() == [1, 6]
    assert out.problems[0].message == "the feature has no geometry"
    assert "non-finite coordinate (1.0, nan)" in out.problems[3].message


def test_polygon_layer_receiving_a_point_names_what_it_found_and_expects():
    out = prepare(raw_layer([Point(121.64, 38.92)], code=["A-1"]), allowed_types=POLYGONS)
    (problem,) = out.problems
    assert problem == Problem(
        row=1,
        feature="A-1",
        field="geometry",
        value="Point",
        message="the geometry is a %(found)s, but this layer expects %(expected)s",
        fix="give %(expected)s features, or load this file into the layer meant for %(found)s features",
        code="wrong_geometry_type",
        params={"found": "Point", "expected": "MultiPolygon or Polygon"},
    )
    assert problem.message == "the geometry is a Point, but this layer expects MultiPolygon or Polygon"
    assert problem.fix == "give MultiPolygon or Polygon features, or load this file into the layer meant for Point features"
    assert problem.to_dict()["value"] == "Point"


def test_label_prefers_code_then_name_then_address():
    raw = raw_layer([None, None], code=[None, "C2"], name=["N1", "N2"], address=["A1", "A2"])
    out = prepare(raw, allowed_types=POLYGONS)
    assert [p.feature for p in out.problems] == ["N1", "C2"]


def test_out_of_range_latitude_is_reported_with_the_value():
    out = prepare(raw_layer([Point(121.6, 95.0)]), allowed_types={"Point"})
    (problem,) = out.problems
    assert "out of range (got lon=121.6, lat=95)" in problem.message
    assert problem.value == "lon=121.6, lat=95"


def test_swapped_lon_lat_in_a_csv_is_recognised_and_the_fix_given(tmp_path):
    path = tmp_path / "homes.csv"
    path.write_text("name,lon,lat\n正常,116.4,39.9\n颠倒,39.9,116.4\n", encoding="utf-8")
    out = prepare(read_layer(path), allowed_types={"Point"})
    (problem,) = out.problems
    assert (problem.row, problem.feature) == (2, "颠倒")
    assert problem.message == "longitude and latitude look swapped (got lon=39.9, lat=116.4)"
    assert problem.fix == "swap the columns or pass --field lon=... --field lat=..."
    assert out.frame["_row"].tolist() == [1]


def test_metre_values_in_a_lon_lat_file_suggest_passing_the_projected_crs():
    out = prepare(raw_layer([Point(642593.95, 4310997.2)]), allowed_types={"Point"})
    (problem,) = out.problems
    assert "look like metres" in problem.message and "--crs" in problem.fix


def test_csv_cell_that_is_not_a_number_is_reported_by_column_and_value(tmp_path):
    path = tmp_path / "homes.csv"
    path.write_text("name,lon,lat\nA,121.6,38.9\nB,东经121度,38.9\nC,121.7,\n", encoding="utf-8")
    out = prepare(read_layer(path), allowed_types={"Point"})
    assert [(p.row, p.field, p.value) for p in out.problems] == [(2, "lon", "东经121度"), (3, "lat", "")]
    assert out.problems[0].message == 'lon is "东经121度", which is not a number'
    assert "121.6445" in out.problems[0].fix
    assert out.problems[1].message == "lat is empty"
    assert out.frame["_row"].tolist() == [1]


def test_projected_source_is_converted_and_checked_after_transformation():
    # CGCS2000 / 3-degree Gauss-Kruger CM 120E: the first point is Zhongshan Square, Dalian.
    raw = raw_layer([Point(642593.951, 4310997.198), Point(5.0e9, 4.0e9)], crs=4549)
    out = prepare(raw, allowed_types={"Point"})
    assert out.frame["_row"].tolist() == [1]
    assert out.frame.geometry.iloc[0].x == pytest.approx(121.6442, abs=1e-6)
    assert out.frame.geometry.iloc[0].y == pytest.approx(38.9208, abs=1e-6)
    (problem,) = out.problems
    assert problem.row == 2 and "outside the area where EPSG:4549 is defined" in problem.message


def test_gcj02_source_is_shifted_to_wgs84():
    gcj = Point(*wgs84_to_gcj02(121.6442, 38.9208))
    out = prepare(raw_layer([gcj], crs="gcj02"), allowed_types={"Point"})
    assert (out.frame.geometry.iloc[0].x, out.frame.geometry.iloc[0].y) == pytest.approx((121.6442, 38.9208), abs=1e-9)


def test_three_dimensional_geometry_is_flattened_silently():
    cube_top = Polygon([(x, y, 30.0) for x, y in BLOCK.exterior.coords])
    out = prepare(raw_layer([cube_top]), allowed_types=POLYGONS)
    assert out.problems == []
    assert not out.frame.geometry.iloc[0].has_z
    assert out.frame.geometry.iloc[0].equals(BLOCK)


def test_bow_tie_polygon_is_rejected_because_repair_would_change_its_area():
    #   (0,1) *   * (1,1)      drawn 0,0 -> 1,1 -> 1,0 -> 0,1 -> 0,0:
    #          \ /             the two lobes cancel, so the outline declares ~0 m²,
    #           X              while make_valid would invent two triangles.
    #          / \
    #   (0,0) *   * (1,0)
    x0, y0, d = 121.640, 38.920, 0.001
    bow_tie = Polygon([(x0, y0), (x0 + d, y0 + d), (x0 + d, y0), (x0, y0 + d)])
    out = prepare(raw_layer([bow_tie], code=["G-7"]), allowed_types=POLYGONS)
    assert len(out.frame) == 0 and out.repaired == []
    (problem,) = out.problems
    assert problem.feature == "G-7"
    assert problem.message.startswith("invalid polygon (self-intersection); repairing it would change its area by 100 %")
    assert "limit 1 %" in problem.message
    assert "fix the outline in a GIS" in problem.fix


def test_tiny_self_touching_sliver_is_repaired_and_reported_as_repaired():
    # A 100 m block whose outline wanders out along a 1 cm-wide spike and back,
    # crossing itself: a typical digitising slip that make_valid fixes harmlessly.
    x0, y0, d = 121.640, 38.920, 0.001
    eps = 1e-7
    outline = [
        (x0, y0), (x0 + d, y0), (x0 + d, y0 + d / 2),
        (x0 + 1.2 * d, y0 + d / 2 + eps), (x0 + 1.2 * d, y0 + d / 2 - eps),  # the crossing spike
        (x0 + d, y0 + d / 2 + 2 * eps), (x0 + d, y0 + d), (x0, y0 + d),
    ]
    sliver = Polygon(outline)
    assert not sliver.is_valid
    out = prepare(raw_layer([BLOCK, sliver]), allowed_types=POLYGONS)
    assert out.problems == []
    assert out.repaired == [2]
    fixed = out.frame.geometry.iloc[1]
    assert fixed.is_valid and fixed.geom_type in POLYGONS
    assert fixed.area == pytest.approx(BLOCK.area, rel=0.01)


def test_overlapping_multipolygon_parts_beyond_the_limit_are_rejected():
    half_shifted = shapely.affinity.translate(BLOCK, 0.0005, 0)
    overlapping = MultiPolygon([BLOCK, half_shifted])
    out = prepare(raw_layer([overlapping]), allowed_types=POLYGONS)
    (problem,) = out.problems
    # Declared area 2 blocks, repaired 1.5 blocks: |1.5 - 2| / max(1.5, 2) = 25 %.
    assert "change its area by 25 %" in problem.message


def test_max_area_change_is_the_callers_choice():
    half_shifted = shapely.affinity.translate(BLOCK, 0.0005, 0)
    out = prepare(raw_layer([MultiPolygon([BLOCK, half_shifted])]), allowed_types=POLYGONS, max_area_change=0.5)
    assert out.problems == [] and out.repaired == [1]
    assert out.frame.geometry.iloc[0].area == pytest.approx(1.5 * BLOCK.area, rel=1e-6)


def test_lines_are_accepted_by_a_line_layer_and_rejected_by_a_point_layer():
    road = LineString([(121.64, 38.92), (121.65, 38.92)])
    assert prepare(raw_layer([road]), allowed_types={"LineString"}).problems == []
    assert prepare(raw_layer([road]), allowed_types={"Point"}).problems[0].value == "LineString"


def test_problem_to_dict_is_json_ready():
    problem = Problem(3, "A", "lon", np.float64(1.5), "m", "f")
    assert problem.to_dict() == {"row": 3, "feature": "A", "field": "lon", "value": 1.5, "message": "m", "fix": "f",
                                 "code": "problem", "params": {}, "template": "m", "fix_template": "f"}
    said = Problem(3, "A", "lon", "x", "%(column)s is %(n)s", "fill in %(column)s", code="c",
                   params={"column": "lon", "n": np.int64(2)}).to_dict()
    assert (said["message"], said["fix"], said["template"], said["params"]) == (
        "lon is 2", "fill in lon", "%(column)s is %(n)s", {"column": "lon", "n": 2})
    assert json.dumps(said)
    assert Problem(1, None, "geometry", Point(0, 0), "m", "f").to_dict()["value"] == "POINT (0 0)"


@pytest.mark.slow
def test_a_million_points_validate_with_exactly_the_two_bad_ones_named():
    n = 1_000_000
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(121.5, 121.7, n), rng.uniform(38.8, 39.0, n)
    lon[10], lat[10] = 38.9, 121.6  # swapped
    lon[500_000] = 200.0  # out of range
    frame = geopandas.GeoDataFrame(geometry=geopandas.points_from_xy(lon, lat))
    raw = RawLayer(frame=frame, crs=parse_crs(4326), source="big")
    out = prepare(raw, allowed_types={"Point"})
    assert len(out.frame) == n - 2
    assert [p.row for p in out.problems] == [11, 500_001]
    assert "look swapped" in out.problems[0].message


@pytest.mark.skipif(not (DATA / "providence").exists(), reason=f"real data folder {DATA} is absent (CI always has it)")
def test_providence_blocks_all_validate_and_come_out_in_wgs84():
    out = prepare(read_layer(DATA / "providence" / "blocks.zip"), allowed_types=POLYGONS)
    assert len(out.frame) == 3014 and out.problems == []
    assert out.frame.crs.to_epsg() == 4326
    minx, miny, maxx, maxy = out.frame.total_bounds
    assert -71.48 < minx < maxx < -71.37 and 41.77 < miny < maxy < 41.87


@pytest.mark.skipif(not (DATA / "dalian").exists(), reason=f"real data folder {DATA} is absent (CI always has it)")
def test_dalian_districts_declared_gcj02_validate_and_shift_to_wgs84():
    raw = read_layer(DATA / "dalian" / "dalian_districts_cnmaps.geojson", crs="gcj02")
    out = prepare(raw, allowed_types=POLYGONS, label_columns=("adcode", "district"))
    assert out.problems == [] and len(out.frame) == 10
    zhongshan = out.frame.loc[out.frame["district"] == "中山区"].geometry.iloc[0]
    assert zhongshan.contains(Point(121.6442, 38.9208))  # Zhongshan Square, WGS84


def test_csv_wkt_that_cannot_be_read_is_reported_with_an_example(tmp_path):
    path = tmp_path / "grids.csv"
    path.write_text('code,wkt\nG1,"POINT (121.6 38.9)"\nG2,POINT(121.6)\n', encoding="utf-8")
    out = prepare(read_layer(path), allowed_types={"Point"})
    (problem,) = out.problems
    assert (problem.row, problem.feature, problem.field) == (2, "G2", "wkt")
    assert problem.message == 'wkt is not readable WKT: "POINT(121.6)"'
    assert "POINT (121.6445 38.9209)" in problem.fix
