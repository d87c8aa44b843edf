"""Stored camera views: computed on import, recomputed when buildings change, used by "cameras seeing".

The independent answer is the line-of-sight oracle of test_coverage: a point is seen when it lies in
range and field of view and the segment from the camera to it crosses no footprint's interior.
"""
import datetime as dt

import geopandas as gpd
import numpy as np
import pytest
import shapely
from sqlalchemy import func, select

from gridmap import coverage as cv
from gridmap import importer
from gridmap.geo.crs import local_metric_crs, parse_crs
from gridmap.geo.io import RawLayer
from gridmap.index import Snapshot
from gridmap.coverage.place import _place_views
from gridmap.store.generations import GENERATION_KEY
from gridmap.store import models as m
from test_coverage import _los_seen

# A small block in Dalian, drawn in metres on a local transverse Mercator.
LON0, LAT0 = 121.62, 38.91
CRS = local_metric_crs(LON0, LAT0)
# Camera at the origin looking north-east (45°), 90° wide, 50 m; a 10 m square stands 15–25 m in front.
CAMERA = (0.0, 0.0, 45.0, 90.0, 50.0)
SQUARE = shapely.box(10.0, 10.0, 20.0, 20.0)
WALL = shapely.box(-5.0, 4.0, 5.0, 5.0)  # a later building 4 m north of the camera


def _import(session, kind, frame):
    raw = RawLayer(frame=frame.to_crs(4326), crs=parse_crs(4326), source=f"test:{kind}")
    return importer.import_layer(session, kind, raw)


def _buildings(geoms, first=1):
    return gpd.GeoDataFrame({"address": [f"测试路{first + i}号" for i in range(len(geoms))],
                             "households": 10}, geometry=list(geoms), crs=CRS)


def _cameras(rows):
    return gpd.GeoDataFrame({"name": [f"cam{i}" for i in range(len(rows))],
                             "bearing": [r[2] for r in rows], "fov": [r[3] for r in rows],
                             "range_m": [r[4] for r in rows]},
                            geometry=[shapely.Point(r[0], r[1]) for r in rows], crs=CRS)


def _wgs84(x, y):
    p = gpd.GeoSeries([shapely.Point(x, y)], crs=CRS).to_crs(4326).iloc[0]
    return p.x, p.y


def _snapshot(session):
    return Snapshot.from_store(session)  # no published grid: the cameras are what is under test


def test_importing_cameras_stores_each_view_cut_by_the_buildings(store):
    with store.transaction() as s:
        _import(s, "buildings", _buildings([SQUARE]))
        summary = _import(s, "cameras", _cameras([CAMERA]))
    assert "1 camera views computed" in summary.notes
    with store.session() as s:
        (view,) = cv.stored_views(s).values()
    metric = gpd.GeoSeries([view], crs=4326).to_crs(CRS).iloc[0]
    expected = cv.view_polygon(*CAMERA, obstacles=[SQUARE])
    assert metric.symmetric_difference(expected).area < 1e-3 * expected.area
    # the hidden wedge is really gone: the point behind the square's middle is outside the stored view
    assert not metric.contains(shapely.Point(30.0, 30.0))
    assert metric.contains(shapely.Point(5.0, 20.0))


def test_a_new_building_in_front_of_a_camera_recomputes_its_view_and_no_other(store):
    far = (500.0, 0.0, 0.0, 60.0, 40.0)  # 500 m east: no new building is within its reach
    with store.transaction() as s:
        _import(s, "buildings", _buildings([SQUARE]))
        _import(s, "cameras", _cameras([CAMERA, far]))
    with store.session() as s:
        before = dict(s.execute(select(m.CameraView.camera_id, m.CameraView.computed_at)).all())
        area_before = {i: gpd.GeoSeries([g], crs=4326).to_crs(CRS).iloc[0].area for i, g in cv.stored_views(s).items()}
    with store.transaction() as s:
        summary = _import(s, "buildings", _buildings([WALL], first=2))
    assert "1 camera views computed" in summary.notes
    with store.session() as s:
        after = dict(s.execute(select(m.CameraView.camera_id, m.CameraView.computed_at)).all())
        views = {i: gpd.GeoSeries([g], crs=4326).to_crs(CRS).iloc[0] for i, g in cv.stored_views(s).items()}
    near_id, far_id = sorted(after)
    assert after[far_id] == before[far_id]  # untouched
    expected = cv.view_polygon(*CAMERA, obstacles=[SQUARE, WALL])
    assert views[near_id].symmetric_difference(expected).area < 1e-3 * max(expected.area, 1.0)
    assert views[near_id].area < 0.5 * area_before[near_id]  # the wall hides most of what it saw
    assert views[far_id].area == pytest.approx(area_before[far_id])


def test_a_deleted_camera_takes_its_view_with_it(store):
    with store.transaction() as s:
        _import(s, "cameras", _cameras([CAMERA]))
    with store.transaction() as s:
        s.execute(m.Camera.__table__.delete())
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(m.CameraView)) == 0


def test_a_rejected_import_leaves_no_view_behind(store):
    bad = _cameras([CAMERA, (10.0, 0.0, 0.0, 90.0, 50.0)])
    bad.loc[1, "fov"] = 720  # out of range: the whole file is refused
    with pytest.raises(Exception, match="fov"):
        with store.transaction() as s:
            _import(s, "cameras", bad)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(m.CameraView)) == 0
        assert s.scalar(select(func.count()).select_from(m.Camera)) == 0


def test_cameras_seeing_uses_stored_views_and_agrees_with_line_of_sight(store):
    rng = np.random.default_rng(7)
    cams = [CAMERA, (40.0, -5.0, 330.0, 100.0, 45.0), (-10.0, 30.0, 120.0, 70.0, 40.0),
            (30.0, 40.0, 200.0, 360.0, 25.0)]
    footprints = [SQUARE, shapely.box(30.0, 5.0, 36.0, 14.0), shapely.box(-2.0, 15.0, 4.0, 22.0)]
    with store.transaction() as s:
        _import(s, "buildings", _buildings(footprints))
        _import(s, "cameras", _cameras(cams))
        snap = _snapshot(s)
    pts = rng.uniform(-20.0, 60.0, (1500, 2))
    blocked = shapely.union_all(footprints)
    pts = pts[~shapely.intersects_xy(blocked.buffer(0.05), pts[:, 0], pts[:, 1])]
    oracle = np.column_stack([_los_seen(c, pts, footprints) for c in cams])
    names = {f"cam{i}": i for i in range(len(cams))}
    lonlat = gpd.GeoSeries(gpd.points_from_xy(pts[:, 0], pts[:, 1]), crs=CRS).to_crs(4326)
    views = [cv.view_polygon(*c, obstacles=footprints) for c in cams]
    disagree, hidden_somewhere = 0, 0
    for k, p in enumerate(lonlat):
        got = {names[c["name"]] for c in snap.cameras_seeing(p.x, p.y)}
        want = set(np.flatnonzero(oracle[k]).tolist())
        if got != want:
            # only points within centimetres of a view's edge may differ (rounding of lon/lat)
            near_edge = min(v.exterior.distance(shapely.Point(pts[k])) if not v.is_empty else 1e9
                            for v in (views[i] for i in got ^ want))
            assert near_edge < 0.05, (pts[k], got, want)
            disagree += 1
        in_sector = {i for i, c in enumerate(cams) if _los_seen(c, pts[k:k + 1], [])[0]}
        hidden_somewhere += bool(in_sector - want)
    assert hidden_somewhere > 50  # the buildings really hide points that plain sectors would report
    assert disagree <= 3


def test_the_demo_stores_a_view_for_every_camera(demo_app):
    store = demo_app.extensions["gridmap.store"]
    with store.session() as s:
        n_cameras = s.scalar(select(func.count()).select_from(m.Camera))
        views = cv.stored_views(s)
        snap = Snapshot.from_store(s)
    assert len(views) == n_cameras == 53
    assert all(not v.is_empty and v.is_valid for v in views.values())
    assert sum(v is not None for v in snap._cameras._views) == 53


def test_refresh_views_recomputes_what_it_is_told_and_nothing_else(store):
    with store.transaction() as s:
        _import(s, "buildings", _buildings([SQUARE]))
        _import(s, "cameras", _cameras([CAMERA, (100.0, 0.0, 90.0, 60.0, 30.0)]))
        assert cv.refresh_views(s) == 0  # all current
        ids = sorted(cv.stored_views(s))
        stamps = dict(s.execute(select(m.CameraView.camera_id, m.CameraView.computed_at)).all())
        later = max(stamps.values()) + dt.timedelta(hours=1)
        assert cv.refresh_views(s, camera_ids=[ids[1]], now=later) == 1
        assert sorted(cv.stored_views(s)) == ids
        again = dict(s.execute(select(m.CameraView.camera_id, m.CameraView.computed_at)).all())
        assert again[ids[1]] == later and again[ids[0]] == stamps[ids[0]]  # the other one untouched


def test_camera_views_command_fills_missing_views_and_recomputes_all_on_request(store, app):
    with store.transaction() as s:
        _import(s, "buildings", _buildings([SQUARE]))
        _import(s, "cameras", _cameras([CAMERA, (100.0, 0.0, 90.0, 60.0, 30.0)]))
        s.execute(m.CameraView.__table__.delete())  # as after upgrading a store that predates views
    with store.session() as s:
        generation = s.scalar(select(m.Meta.value).where(m.Meta.key == GENERATION_KEY))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0 and "2 camera views computed" in result.output
    with store.session() as s:
        views = cv.stored_views(s)
        stamps = dict(s.execute(select(m.CameraView.camera_id, m.CameraView.computed_at)).all())
        assert s.scalar(select(m.Meta.value).where(m.Meta.key == GENERATION_KEY)) != generation
    metric = {i: gpd.GeoSeries([g], crs=4326).to_crs(CRS).iloc[0] for i, g in views.items()}
    expected = cv.view_polygon(*CAMERA, obstacles=[SQUARE])
    assert metric[min(metric)].symmetric_difference(expected).area < 1e-3 * expected.area

    assert "0 camera views computed" in runner.invoke(args=["camera-views"]).output
    result = runner.invoke(args=["camera-views", "--all"])
    assert result.exit_code == 0 and "2 camera views computed" in result.output
    with store.session() as s:
        again = dict(s.execute(select(m.CameraView.camera_id, m.CameraView.computed_at)).all())
    assert set(again) == set(stamps) and all(again[i] >= stamps[i] for i in again)


def test_area_per_camera_count_adds_up_to_the_views_with_stored_and_fresh_views(demo_app):
    # sum over k of k × (area seen by exactly k cameras) = the sum of the views' public areas; stored
    # views (a nanometre off after lon/lat) once broke the face split and failed this by 550 m²
    with demo_app.extensions["gridmap.store"].session() as s:
        place = cv.load_place(s, "和合大院")
    public = place.area.difference(shapely.union_all(place.footprints.values))
    results = {}
    for name, views in (("stored", _place_views(place)), ("fresh", cv.view_polygons(place.cameras, place.footprints))):
        r = cv.coverage(place.cameras, place.area, place.footprints, views=views)
        seen = sum(v.intersection(public).area for v in views)
        assert sum(c * a for c, a, _ in r["overlap"]) == pytest.approx(seen, rel=1e-6), name
        results[name] = {c: a for c, a, _ in r["overlap"]}
    assert results["stored"].keys() == results["fresh"].keys()
    for c in results["fresh"]:
        assert results["stored"][c] == pytest.approx(results["fresh"][c], abs=1.0)


def test_two_views_a_nanometre_apart_count_as_two_everywhere():
    base = cv.view_polygon(0.0, 0.0, 0.0, 90.0, 30.0)
    twin = shapely.affinity.translate(base, 1e-9, -1e-9)
    area = shapely.box(-40, -5, 40, 40)
    cams = gpd.GeoDataFrame({"bearing": [0.0, 0.0], "fov": [90.0, 90.0], "range_m": [30.0, 30.0]},
                            geometry=[shapely.Point(0, 0), shapely.Point(1e-9, -1e-9)])
    r = cv.coverage(cams, area, views=gpd.GeoSeries([base, twin]))
    by_count = {c: a for c, a, _ in r["overlap"]}
    assert by_count[2] == pytest.approx(base.area, rel=1e-6)
    assert by_count.get(1, 0.0) < 1e-3


def test_a_courtyard_without_an_outline_is_not_offered_and_is_refused_with_the_fix(app, store):
    from gridmap import accounts
    from gridmap.errors import InvalidInput
    from conftest import login_client
    frame = _buildings([SQUARE])
    frame["courtyard"] = "无边界院"  # the importer files it under a courtyard it creates without an outline
    with store.transaction() as s:
        _import(s, "buildings", frame)
        accounts.create_user(s, "plan", "long-enough-pw", "planner")
    with store.session() as s:
        assert s.scalar(select(m.Courtyard.geom).where(m.Courtyard.name == "无边界院")) is None
        assert "无边界院" not in [y["name"] for y in cv.place_choices(s)["courtyards"]]
        with pytest.raises(InvalidInput, match="has no outline") as err:
            cv.load_place(s, "无边界院")
        assert "boundary" in err.value.fix
    client = login_client(app, "plan", "long-enough-pw")
    for url in ("/planner/coverage", "/planner/coverage/map"):
        r = client.get(url, query_string={"name": "无边界院", "lang": "en"})
        assert r.status_code == 400 and "has no outline" in r.get_data(as_text=True)
    result = app.test_cli_runner().invoke(args=["coverage", "无边界院", "--place"])
    assert result.exit_code == 2 and "has no outline" in result.output and "Traceback" not in result.output


def test_a_camera_surveyed_inside_its_wall_sees_what_its_stored_view_holds(store):
    # 0.4 m inside the square's south wall, facing south: the view looks out from the wall, so it
    # reaches 30 m from the wall — past 30 m from the surveyed point, where a sector test stops
    cam = (15.0, 10.4, 180.0, 60.0, 30.0)
    with store.transaction() as s:
        _import(s, "buildings", _buildings([SQUARE]))
        _import(s, "cameras", _cameras([cam]))
        snap = _snapshot(s)
    view = cv.view_polygon(*cam, obstacles=[SQUARE])
    far = (15.0, -19.85)  # 30.25 m from the surveyed point
    assert view.contains(shapely.Point(far))
    assert [c["name"] for c in snap.cameras_seeing(*_wgs84(*far))] == ["cam0"]
    assert snap.cameras_seeing(*_wgs84(15.0, -20.3)) == []  # beyond the view
    assert snap.cameras_seeing(*_wgs84(15.0, 15.0)) == []  # inside the building behind it


@pytest.mark.postgis
def test_buildings_and_cameras_imported_at_once_still_cut_each_others_views(tmp_path):
    import threading
    import time

    from conftest import make_app
    app, cleanup = make_app(tmp_path, "postgis")
    store = app.extensions["gridmap.store"]
    try:
        done = {}

        def import_cameras():
            try:
                with store.transaction() as s:
                    _import(s, "cameras", _cameras([CAMERA]))
                done["ok"] = True
            except Exception as err:  # surfaced by the assertion below
                done["error"] = err

        with store.transaction() as s:
            _import(s, "buildings", _buildings([WALL]))  # holds the view lock until it commits
            other = threading.Thread(target=import_cameras)
            other.start()
            time.sleep(1.0)
            waiting = other.is_alive()
        other.join(60)
        assert waiting and done == {"ok": True}  # the camera import queued behind the buildings
        with store.session() as s:
            (view,) = cv.stored_views(s).values()
        metric = gpd.GeoSeries([view], crs=4326).to_crs(CRS).iloc[0]
        expected = cv.view_polygon(*CAMERA, obstacles=[WALL])
        assert metric.symmetric_difference(expected).area < 1e-3 * max(expected.area, 1.0)
    finally:
        store.dispose()
        cleanup()
