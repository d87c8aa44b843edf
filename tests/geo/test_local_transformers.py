"""Tests for the cached local metric CRS and its pipeline-built transformers (gridmap.geo.crs).

The oracle is GeoPandas' own ``to_crs``, which asks PROJ to find the operations between the two
CRSs: the fast transformers must give bit-identical coordinates, both ways.
"""

import geopandas
import numpy as np
import pyproj
import pytest
import shapely
from pyproj.crs import GeographicCRS, ProjectedCRS
from pyproj.crs.coordinate_operation import TransverseMercatorConversion

from gridmap.geo.crs import local_metric_crs, local_metric_transformers, transform_geometries

# Dalian, Ürümqi, Harbin, Sanya, and two centres off China: west and south of the origin.
CENTRES = [(121.6, 38.9), (87.617, 43.826), (126.535, 45.803), (109.512, 18.252), (-70.25, -33.45), (0.0, 0.0)]


def fresh_local_crs(lon, lat):
    """A local TM CRS built from scratch, base CRS included: what local_metric_crs made before its cache."""
    conversion = TransverseMercatorConversion(latitude_natural_origin=round(lat, 3),
                                              longitude_natural_origin=round(lon, 3),
                                              scale_factor_natural_origin=1.0, false_easting=0.0,
                                              false_northing=0.0)
    return ProjectedCRS(conversion=conversion, geodetic_crs=GeographicCRS(datum="WGS84"),
                        name=f"Local transverse Mercator at {round(lon, 3):.3f}E {round(lat, 3):.3f}N")


def blobs(lon, lat, seed):
    """Forty random polygons within ~5 km of (lon, lat), in WGS84."""
    rng = np.random.default_rng(seed)
    pts = rng.normal([lon, lat], 0.03, (400, 2))
    return geopandas.GeoSeries([shapely.MultiPoint(pts[i:i + 10]).convex_hull for i in range(0, 400, 10)], crs=4326)


@pytest.mark.parametrize("lon, lat", CENTRES)
def test_the_cached_crs_is_the_crs_built_from_scratch(lon, lat):
    fresh = fresh_local_crs(lon, lat)
    got = local_metric_crs(lon, lat)
    assert got.to_wkt() == fresh.to_wkt()
    assert got.to_json() == fresh.to_json()


@pytest.mark.parametrize("lon, lat", CENTRES)
def test_the_transformers_give_exactly_what_to_crs_gives_both_ways(lon, lat):
    crs = local_metric_crs(lon, lat)
    to_metric, to_wgs84 = local_metric_transformers(crs)
    shapes = blobs(lon, lat, seed=int(abs(lon) * 1000))
    want = shapes.to_crs(crs)
    got = transform_geometries(shapes.values, to_metric)
    assert np.array_equal(shapely.get_coordinates(got), shapely.get_coordinates(want.values))
    assert np.array_equal(shapely.get_coordinates(transform_geometries(got, to_wgs84)),
                          shapely.get_coordinates(want.to_crs(4326).values))
    # the centre itself is the CRS's origin
    x, y = to_metric.transform(round(lon, 3), round(lat, 3))
    assert abs(x) < 1e-6 and abs(y) < 1e-6


def test_two_communities_far_apart_get_their_own_crs_and_transformers():
    dalian, urumqi = local_metric_crs(121.6, 38.9), local_metric_crs(87.617, 43.826)
    assert not dalian.equals(urumqi)
    (d_fwd, d_inv), (u_fwd, u_inv) = local_metric_transformers(dalian), local_metric_transformers(urumqi)
    assert d_fwd is not u_fwd and d_inv is not u_inv
    # each is centred on its own community: a point 1 km east of each centre is 1 km east in its own CRS
    for fwd, (lon, lat) in ((d_fwd, (121.6, 38.9)), (u_fwd, (87.617, 43.826))):
        east = pyproj.Geod(ellps="WGS84").fwd(lon, lat, 90, 1000)
        x, y = fwd.transform(east[0], east[1])
        assert x == pytest.approx(1000, abs=0.01) and abs(y) < 1
    # and asked again, each centre gets the same transformers back (one build per community)
    assert local_metric_transformers(local_metric_crs(121.6, 38.9))[0] is d_fwd
    # centres ~100 m apart round to different CRSs: no community borrows another's origin
    assert not local_metric_crs(121.6, 38.9).equals(local_metric_crs(121.601, 38.9))


def test_a_crs_not_made_by_local_metric_crs_takes_the_general_path():
    utm = pyproj.CRS.from_epsg(32651)
    tm_other_scale = ProjectedCRS(conversion=TransverseMercatorConversion(
        latitude_natural_origin=38.9, longitude_natural_origin=121.6, scale_factor_natural_origin=0.9996,
        false_easting=500000.0, false_northing=0.0), geodetic_crs=GeographicCRS(datum="WGS84"))
    shapes = blobs(121.6, 38.9, seed=3)
    for crs in (utm, tm_other_scale):
        to_metric, to_wgs84 = local_metric_transformers(crs)
        want = shapes.to_crs(crs)
        got = transform_geometries(shapes.values, to_metric)
        assert np.array_equal(shapely.get_coordinates(got), shapely.get_coordinates(want.values))
        assert np.array_equal(shapely.get_coordinates(transform_geometries(got, to_wgs84)),
                              shapely.get_coordinates(want.to_crs(4326).values))


def test_transform_geometries_keeps_z_and_missing_geometries_as_to_crs_does():
    crs = local_metric_crs(121.6, 38.9)
    to_metric, _ = local_metric_transformers(crs)
    shapes = geopandas.GeoSeries([shapely.Point(121.61, 38.91, 12.5), None,
                                  shapely.box(121.59, 38.89, 121.6, 38.9), shapely.Point(121.6, 38.9)], crs=4326)
    got = transform_geometries(shapes.values, to_metric)
    want = shapes.to_crs(crs).values
    assert got[1] is None and want[1] is None
    assert [bool(shapely.has_z(g)) for g in got if g is not None] == [True, False, False]
    assert all(shapely.equals_exact(a, b, 0) for a, b in zip(got, want) if a is not None)
    assert shapely.get_coordinates(got[0], include_z=True)[0, 2] == 12.5
    assert len(transform_geometries(np.array([], dtype=object), to_metric)) == 0
