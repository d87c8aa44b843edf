"""Tests for gridmap.geo.crs: CRS parsing, GCJ-02/BD-09 conversions, metric helpers."""

import math
from pathlib import Path

import geopandas
import numpy as np
import pyproj
import pytest
import shapely
from conftest import geodesic_m

from gridmap.errors import InvalidInput
from gridmap.geo.crs import (
    CrsSpec,
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    local_metric_crs,
    metric_for,
    parse_crs,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

# Project root is parents[2]; the shared data sits beside it at ../shared/data.
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_data = pytest.mark.skipif(
    not (DATA / "dalian").exists(), reason=f"real data folder {DATA} is absent (CI always has it)"
)

# Published test vectors of wandergis/coordtransform (test/app.js, also asserted bit for bit
# by hutool CoordinateUtilTest and coordtransform_rs): input (116.404, 39.915) for each function.
REF_WGS84_TO_GCJ02 = (116.41024449916938, 39.91640428150164)
REF_GCJ02_TO_BD09 = (116.41036949371029, 39.92133699351021)
REF_BD09_TO_GCJ02_CLOSED_FORM = (116.39762729119315, 39.90865673957631)
REF_GCJ02_TO_WGS84_ONE_STEP = (116.39775550083061, 39.91359571849836)

# A grid of points over mainland China and its coast.
LON, LAT = np.meshgrid(np.linspace(74.0, 134.0, 41), np.linspace(18.5, 53.0, 31))


def test_wgs84_to_gcj02_matches_the_published_coordtransform_vector():
    assert wgs84_to_gcj02(116.404, 39.915) == pytest.approx(REF_WGS84_TO_GCJ02, abs=1e-12)


def test_gcj02_to_bd09_matches_the_published_coordtransform_vector():
    assert gcj02_to_bd09(116.404, 39.915) == pytest.approx(REF_GCJ02_TO_BD09, abs=1e-12)


def test_bd09_to_gcj02_is_within_five_centimetres_of_the_published_closed_form():
    lon, lat = bd09_to_gcj02(116.404, 39.915)
    assert geodesic_m(lon, lat, *REF_BD09_TO_GCJ02_CLOSED_FORM) < 0.05


def test_gcj02_to_wgs84_inverts_the_forward_offset_exactly_unlike_the_one_step_formula():
    lon, lat = gcj02_to_wgs84(116.404, 39.915)
    assert wgs84_to_gcj02(lon, lat) == pytest.approx((116.404, 39.915), abs=1e-9)
    # The published one-step inverse is close, but metres off; the iteration improves on it.
    assert 0.01 < geodesic_m(lon, lat, *REF_GCJ02_TO_WGS84_ONE_STEP) < 5


def test_wgs84_to_bd09_composes_the_two_published_steps():
    assert wgs84_to_bd09(116.404, 39.915) == pytest.approx(gcj02_to_bd09(*REF_WGS84_TO_GCJ02), abs=1e-12)


def test_round_trip_through_gcj02_is_under_half_a_metre_across_china():
    back = gcj02_to_wgs84(*wgs84_to_gcj02(LON, LAT))
    assert geodesic_m(LON, LAT, *back).max() < 0.5
    assert geodesic_m(LON, LAT, *back).max() < 0.001  # in fact under a millimetre


def test_round_trip_through_bd09_is_under_half_a_metre_across_china():
    back = bd09_to_wgs84(*wgs84_to_bd09(LON, LAT))
    assert geodesic_m(LON, LAT, *back).max() < 0.5


def test_gcj02_offset_is_hundreds_of_metres_inside_china():
    moved = geodesic_m(LON, LAT, *wgs84_to_gcj02(LON, LAT))
    assert moved.min() > 20 and moved.max() < 1500


def test_outside_china_gcj02_is_wgs84():
    lon = np.array([2.35, -74.0, 139.69, 151.2, 100.0])
    lat = np.array([48.85, 40.7, 35.69, -33.87, 60.0])  # Paris, New York, Tokyo, Sydney, Siberia
    assert np.array_equal(np.stack(wgs84_to_gcj02(lon, lat)), np.stack([lon, lat]))
    assert np.array_equal(np.stack(gcj02_to_wgs84(lon, lat)), np.stack([lon, lat]))


def test_conversions_keep_the_shape_and_return_floats_for_scalars():
    lon, lat = wgs84_to_gcj02(LON, LAT)
    assert lon.shape == LON.shape and lat.shape == LAT.shape
    assert isinstance(gcj02_to_wgs84(116.4, 39.9)[0], float)
    assert isinstance(bd09_to_wgs84(116.4, 39.9)[1], float)


@pytest.mark.parametrize(
    "spec, name",
    [
        (4326, "EPSG:4326"),
        ("4490", "EPSG:4490"),
        ("EPSG:4490", "EPSG:4490"),
        ("epsg:4546", "EPSG:4546"),
        ("wgs84", "EPSG:4326"),
        ("CGCS2000", "EPSG:4490"),
        (pyproj.CRS.from_epsg(4547), "EPSG:4547"),
        ("+proj=longlat +datum=WGS84 +no_defs", "EPSG:4326"),
    ],
)
def test_parse_crs_accepts_epsg_codes_names_and_pyproj_objects(spec, name):
    parsed = parse_crs(spec)
    assert parsed.kind == "epsg"
    assert parsed.name == name


def test_parse_crs_knows_the_cgcs2000_gauss_kruger_zones_are_projected():
    assert parse_crs(4490).is_geographic
    assert not parse_crs(4546).is_geographic
    assert parse_crs(4546).crs.axis_info[0].unit_name == "metre"


@pytest.mark.parametrize("spec, kind", [("gcj02", "gcj02"), ("GCJ-02", "gcj02"), ("bd09", "bd09"), ("BD-09", "bd09")])
def test_parse_crs_accepts_chinese_web_map_datums_on_a_wgs84_base(spec, kind):
    parsed = parse_crs(spec)
    assert parsed == CrsSpec(kind, pyproj.CRS.from_epsg(4326), kind)
    assert parsed.is_geographic


@pytest.mark.parametrize("spec, shown", [("EPSG:99999", "EPSG:99999"), (99999, "EPSG:99999"), ("garbage", "garbage")])
def test_parse_crs_rejects_unknown_values_naming_them_and_the_accepted_forms(spec, shown):
    with pytest.raises(InvalidInput) as caught:
        parse_crs(spec)
    text = str(caught.value)
    assert f'CRS "{shown}" is not known.' in text
    assert "4326 (WGS84) or 4490 (CGCS2000)" in text and "gcj02 / bd09" in text


def test_to_wgs84_reprojects_a_projected_geoseries_with_pyproj():
    series = geopandas.GeoSeries([shapely.Point(500000.0, 4300000.0)], crs=4547)
    out = to_wgs84(series, 4547)
    assert out.crs.to_epsg() == 4326
    expected = pyproj.Transformer.from_crs(4547, 4326, always_xy=True).transform(500000.0, 4300000.0)
    assert (out.x.iloc[0], out.y.iloc[0]) == pytest.approx(expected, abs=1e-9)


def test_to_wgs84_trusts_the_declared_gcj02_over_the_frames_claimed_crs():
    frame = geopandas.GeoDataFrame(
        {"name": ["a"]}, geometry=[shapely.Point(REF_WGS84_TO_GCJ02)], crs=4326
    )
    out = to_wgs84(frame, "gcj02")
    assert isinstance(out, geopandas.GeoDataFrame) and out.crs.to_epsg() == 4326
    assert (out.geometry.x.iloc[0], out.geometry.y.iloc[0]) == pytest.approx((116.404, 39.915), abs=1e-9)
    assert frame.geometry.x.iloc[0] == REF_WGS84_TO_GCJ02[0]  # the input is not modified


def test_local_metric_crs_measures_a_known_square_in_metres():
    crs = local_metric_crs(121.6442, 38.9208)
    assert crs.is_projected and crs.axis_info[0].unit_name == "metre"
    to_m = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
    x, y = to_m.transform(121.6442, 38.9208)
    assert abs(x) < 100 and abs(y) < 100  # centred near the point
    # 0.01 degrees of latitude is about 1,110 m everywhere.
    _, y2 = to_m.transform(121.6442, 38.9308)
    assert y2 - y == pytest.approx(1110.0, rel=0.01)


def test_metric_for_centres_one_frame_on_any_extent_and_measures_true_metres():
    square = shapely.box(121.64, 38.92, 121.65, 38.93)
    by_bounds, by_geometry = metric_for(square.bounds), metric_for(square)
    assert by_bounds is by_geometry is metric_for([square]) is metric_for(geopandas.GeoSeries([square], crs=4326))
    assert metric_for((121.645, 38.925)) is by_bounds  # the centre point names the same frame
    x0, y0 = by_bounds.xy(121.645, 38.925)
    assert abs(x0) < 1 and abs(y0) < 1
    # the frame's distances against the ellipsoid's (pyproj Geod), 1 km apart
    (x1, y1), (x2, y2) = by_bounds.xy(121.64, 38.92), by_bounds.xy(121.65, 38.92)
    assert math.hypot(x2 - x1, y2 - y1) == pytest.approx(geodesic_m(121.64, 38.92, 121.65, 38.92), rel=1e-6)
    back = by_bounds.unproject(by_bounds.project([square]))[0]
    assert shapely.equals_exact(back, square, tolerance=1e-9)


def test_metric_for_a_projected_frame_uses_its_wgs84_bounds_and_refuses_an_empty_extent():
    series = geopandas.GeoSeries([shapely.Point(500000.0, 4300000.0)], crs=4547)
    lon, lat = pyproj.Transformer.from_crs(4547, 4326, always_xy=True).transform(500000.0, 4300000.0)
    assert metric_for(series) is metric_for((lon, lat))
    with pytest.raises(InvalidInput, match="empty"):
        metric_for([])


@needs_data
def test_dalian_gcj02_file_moves_300_to_700_metres_south_west_when_converted():
    frame = geopandas.read_file(DATA / "dalian" / "dalian_districts_cnmaps.geojson")
    out = to_wgs84(frame, "gcj02")
    before = shapely.get_coordinates(frame.geometry.array)
    after = shapely.get_coordinates(out.geometry.array)
    moved = geodesic_m(before[:, 0], before[:, 1], after[:, 0], after[:, 1])
    assert len(moved) > 10_000
    assert moved.min() > 300 and moved.max() < 700
    # In Dalian WGS84 lies west and south of GCJ-02 (measured: 430-530 m).
    assert (after[:, 0] < before[:, 0]).all() and (after[:, 1] < before[:, 1]).all()


@needs_data
def test_dalian_zhongshan_district_contains_zhongshan_square_after_conversion():
    frame = geopandas.read_file(DATA / "dalian" / "dalian_districts_cnmaps.geojson")
    out = to_wgs84(frame, "gcj02")
    zhongshan = out.loc[out["district"] == "中山区"].geometry.iloc[0]
    # Zhongshan Square, Dalian: 38°55'15"N 121°38'39"E (WGS84, as published on Wikipedia).
    assert zhongshan.contains(shapely.Point(121.6442, 38.9208))
    assert not out.loc[out["district"] == "甘井子区"].geometry.iloc[0].contains(shapely.Point(121.6442, 38.9208))
