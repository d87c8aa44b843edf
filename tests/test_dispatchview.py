"""The dispatcher's panel (pages.dispatcher) assembled from its parts, and grids near a point against a brute-force oracle."""
import geopandas as gpd
import numpy as np
import pytest
import shapely
from conftest import at, lonlat
from pyproj import Transformer
from shapely.geometry import box

from gridmap import access, catalog, lookup
from gridmap.index import Snapshot
from gridmap.pages import dispatcher as dispatchview

NEAR = dispatchview.NEAR_GRID_RADIUS_M


def near_other_grids(snap, lon, lat):
    return snap.grids_near(lon, lat, NEAR)


@pytest.fixture(scope="module")
def snap(demo_app):
    from gridmap.web.common import snapshot
    with demo_app.app_context():
        return snapshot()


def _points(snap, n, seed):
    """Random points inside the grids, and points a few centimetres to a metre off grid vertices
    (on and near shared edges, where other grids are close)."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = snap.grids.total_bounds
    pts = np.column_stack([rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)])
    vertices = shapely.get_coordinates(snap.grids.geometry.values)
    near = vertices[rng.choice(len(vertices), n)] + rng.normal(0, 5e-6, size=(n, 2))
    inside = [i for i, (x, y) in enumerate(pts) if snap.grid_at(x, y) >= 0]
    return np.vstack([pts[inside], near])


def _brute_force_near(snap, lon, lat, radius=dispatchview.NEAR_GRID_RADIUS_M):
    """Every grid but the point's own, projected by geopandas, measured by shapely: code → metres."""
    grids = snap.grids.to_crs(snap.metric_crs)
    p = shapely.Point(*Transformer.from_crs(4326, snap.metric_crs, always_xy=True).transform(lon, lat))
    own = snap.grid_at(lon, lat)
    d = grids.distance(p)
    return {grids["code"].iloc[i]: float(d.iloc[i]) for i in range(len(grids)) if i != own and d.iloc[i] <= radius}


def test_grids_near_a_point_are_those_a_brute_force_search_finds(snap):
    checked = 0
    for lon, lat in _points(snap, 60, seed=1):
        expected = _brute_force_near(snap, lon, lat)
        got = near_other_grids(snap, lon, lat)
        assert {g["code"]: g["distance_m"] for g in got} == {c: round(d, 1) for c, d in expected.items()}
        assert [g["distance_m"] for g in got] == sorted(g["distance_m"] for g in got)
        checked += bool(expected)
    assert checked >= 30  # most points off a vertex have a neighbour within 30 m


def test_each_snapshot_measures_against_its_own_grids():
    """
        snapshot 1:  +-----+-----+        snapshot 2: B moved 100 m east, leaving a gap
                     |  A *|  B  |                    +-----+     +-----+
                     +-----+-----+                    |  A *|     |  B  |
                                                      * = 10 m west of A's east edge
    """
    one, two = Snapshot.from_frames(_two_boxes(0)), Snapshot.from_frames(_two_boxes(100))
    lon, lat = at(190, 100)
    assert [(g["code"], g["distance_m"]) for g in near_other_grids(one, lon, lat)] == [(B, 10.0)]
    assert near_other_grids(two, lon, lat) == []
    # the first snapshot still answers from its own grids
    assert [(g["code"], g["distance_m"]) for g in near_other_grids(one, lon, lat)] == [(B, 10.0)]


A, B = "210213013004001", "210213013004002"


def _two_boxes(shift_m):
    """Grids A and B, 200 m squares drawn in metres around 121.6E 38.9N, B ``shift_m`` east of A."""
    return gpd.GeoDataFrame({"code": [A, B], "name": ["A", "B"]},
                            geometry=[lonlat(box(0, 0, 200, 200)), lonlat(box(200 + shift_m, 0, 400 + shift_m, 200))],
                            crs=4326)


def test_a_point_the_metric_crs_cannot_reach_has_no_grid_near_it(snap):
    assert near_other_grids(snap, snap.grids.total_bounds[0] - 90.0, 0.0) == []


@pytest.mark.parametrize("role", ["dispatcher", None])
def test_the_panel_is_locate_cameras_each_kinds_nearest_by_road_and_near_grids(snap, role):
    """What the panel shows equals its parts asked one by one: one road search for all kinds gives
    what a search a kind (lookup.nearest by road, the panel's former way) gives."""
    kinds = list(catalog.RESPONDER_KINDS) + ["volunteer"]
    points = [(lon, lat) for lon, lat in _points(snap, 40, seed=2) if snap.grid_at(lon, lat) >= 0]
    assert len(points) >= 20
    for lon, lat in points:
        everywhere = access.Area(communities=set(snap.communities["code"]))  # a desk covering the whole demo
        got = dispatchview.panel(snap, lon, lat, role=role, area=everywhere)
        alone = {kind: lookup.nearest(snap, lon=lon, lat=lat, kind=kind, k=3, by="road", mode="car", role=role)
                 for kind in kinds}
        expected = lookup.locate(snap, lon, lat, role=role)
        expected["cameras"] = [{k: c.get(k) for k in ("id", "name", "distance_m", "bearing")}
                               for c in snap.cameras_seeing(lon, lat)]
        expected["responders"] = {kind: catalog.within_reach(kind, a["results"]) for kind, a in alone.items()}
        expected["distance_basis"] = "road" if any(a["distance_basis"] == "road" for a in alone.values()) \
            else "straight line"
        expected["mode"] = "car"
        expected["near_other_grids"] = near_other_grids(snap, lon, lat)
        expected["address"] = dispatchview.place_address(snap, lon, lat)
        assert got == expected
        assert got["distance_basis"] == "road"
        assert any(r["road_distance_m"] is not None for v in got["responders"].values() for r in v)


def test_the_statistics_map_opens_where_its_100_m_squares_can_be_read():
    """Counted squares spread 20 km apart: the map opens on a ~3 km window around the busiest square
    (which it shows whole), not on all of them at once where each square would be a pixel."""
    import geopandas as gpd
    from shapely.geometry import box

    from gridmap.maps import dispatch as dispatch_maps
    cells = gpd.GeoDataFrame({"count": [1, 9, 2]}, crs=4326, geometry=[
        box(121.50, 38.85, 121.5012, 38.8509), box(121.60, 38.90, 121.6012, 38.9009),
        box(121.72, 38.95, 121.7212, 38.9509)])
    grids = gpd.GeoDataFrame({"code": ["g"]}, geometry=[box(121.4, 38.8, 121.8, 39.0)], crs=4326)
    minx, miny, maxx, maxy = dispatch_maps.heat_view(grids, cells)
    assert maxx - minx <= dispatch_maps.HEAT_VIEW_DEG + 1e-12 and maxy - miny <= dispatch_maps.HEAT_VIEW_DEG + 1e-12
    busiest = cells.geometry[1]
    assert box(minx, miny, maxx, maxy).contains(busiest)
    # squares close together: all of them, tight
    near = cells.iloc[[1]].copy()
    assert tuple(dispatch_maps.heat_view(grids, near)) == tuple(near.total_bounds)
    assert tuple(dispatch_maps.heat_view(grids, cells.iloc[0:0])) == tuple(grids.total_bounds)
