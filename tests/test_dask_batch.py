"""Batch work on Dask: `gridmap assign --all` and `gridmap join` give the single-process answers.

The Dask runs use a real LocalCluster of two worker processes (no timing here: bench/dask_bench.py).
"""
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import shapely
from shapely.geometry import box
from sqlalchemy import delete, select

from gridmap import demo
from gridmap.geo.pointindex import points_to_grids
from gridmap.store import models as m

ASSIGNED = (m.BuildingGrid, m.MemberGrid, m.ContactLink, m.EntityGrid)


def _stored(store):
    """Every assignment row, sorted, per table; each plan's summary without its wall time."""
    with store.session() as session:
        rows = {t.__tablename__: sorted(tuple(r) for r in session.execute(select(*t.__table__.c)).all())
                for t in ASSIGNED}
        runs = session.execute(select(m.AssignmentRun.plan_id, m.AssignmentRun.summary)).all()
    rows["assignment_run"] = sorted((plan, json.dumps({k: v for k, v in json.loads(s).items() if k != "seconds"},
                                                      sort_keys=True)) for plan, s in runs)
    return rows


def _clear(store):
    with store.transaction() as session:
        for model in (*ASSIGNED, m.AssignmentRun):
            session.execute(delete(model))


# -- assign --all ------------------------------------------------------------------------------
def test_assign_all_on_dask_stores_the_same_rows_as_the_single_process_path(app, demo_frames):
    store = app.extensions["gridmap.store"]
    demo.build(store, frames=demo_frames)
    runner = app.test_cli_runner()

    one = runner.invoke(args=["assign", "--all", "--workers", "1"])
    assert one.exit_code == 0, one.output
    single = _stored(store)
    _clear(store)
    assert all(not rows for rows in _stored(store).values())

    # two worker processes, two communities a task: three tasks, written as they finish
    two = runner.invoke(args=["assign", "--all", "--workers", "2", "--batch-size", "2"])
    assert two.exit_code == 0, two.output
    on_dask = _stored(store)

    assert {k: len(v) for k, v in single.items()} == {"building_grid": 320, "member_grid": 880,
                                                      "contact_link": 10_980, "entity_grid": 237,
                                                      "assignment_run": 5}
    for table in single:
        assert on_dask[table] == single[table], table
    # the printed tables agree too (after the progress bar, before the seconds line)
    def table(output):
        lines = output.splitlines()
        return lines[next(i for i, line in enumerate(lines) if line.startswith("community")):-1]
    assert table(one.output) == table(two.output) and len(table(one.output)) == 7
    total = next(line for line in two.output.splitlines() if line.startswith("total")).split()
    assert total[1:3] == ["58", "320"] and total[4:6] == ["11900", "880"]


def test_dask_options_without_all_or_with_a_scheduler_and_workers_are_refused(sqlite_app):
    runner = sqlite_app.test_cli_runner()
    out = runner.invoke(args=["assign", "--community", "210213013004", "--workers", "2"])
    assert out.exit_code == 2 and "only apply to --all" in out.output
    out = runner.invoke(args=["assign", "--all", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"])
    assert out.exit_code == 2 and "tcp://127.0.0.1:1" in out.output and "drop --workers" in out.output


# -- join --------------------------------------------------------------------------------------
def _voronoi_grids(n=150):
    rng = np.random.default_rng(5)
    x0, y0, side = 500_000.0, 4_300_000.0, 3000.0
    seeds = shapely.multipoints(rng.uniform((x0, y0), (x0 + side, y0 + side), (n, 2)))
    square = box(x0, y0, x0 + side, y0 + side)
    cells = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=square)), square)
    grids = gpd.GeoDataFrame({"code": [f"2102130130{i:05d}" for i in range(n)]}, geometry=cells, crs=32651)
    return grids.to_crs(4326)


@pytest.fixture
def city(tmp_path):
    """150 grids in WGS84 (a GeoJSON file) and 20,000 points around them, some outside every grid,
    some exactly on grid vertices."""
    grids = _voronoi_grids()
    path = tmp_path / "grids.geojson"
    grids.to_file(path, driver="GeoJSON")
    rng = np.random.default_rng(6)
    x0, y0, x1, y1 = grids.total_bounds
    lon = np.concatenate([rng.uniform(x0 - 0.002, x1 + 0.002, 19_800), shapely.get_coordinates(grids.geometry)[:200, 0]])
    lat = np.concatenate([rng.uniform(y0 - 0.002, y1 + 0.002, 19_800), shapely.get_coordinates(grids.geometry)[:200, 1]])
    points = gpd.GeoDataFrame({"id": np.arange(len(lon)), "name": [f"p{i}" for i in range(len(lon))]},
                              geometry=gpd.points_from_xy(lon, lat), crs=4326)
    # the grids as the command reads them back from the file
    return gpd.read_file(path), path, points


def _codes(column):
    """A read-back grid_code column as a list: str, or None outside (pandas may give NaN for a null)."""
    return [None if pd.isna(v) else v for v in column]


def _expected(points, grids):
    pos = points_to_grids(points, grids)
    codes = grids["code"].to_numpy(dtype=object)
    return [codes[p] if p >= 0 else None for p in pos]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_join_of_a_parquet_file_of_lon_lat_columns_gives_points_to_grids_answers(sqlite_app, city, tmp_path, workers):
    grids, grids_path, points = city
    src = tmp_path / "points.parquet"
    frame = pd.DataFrame({"id": points["id"], "lon": points.geometry.x, "lat": points.geometry.y, "name": points["name"]})
    frame.to_parquet(src, row_group_size=3000)  # seven row groups: seven tasks on Dask
    out = tmp_path / "joined.parquet"
    res = sqlite_app.test_cli_runner().invoke(args=["join", str(src), "--grids", str(grids_path), "--out", str(out),
                                                    "--workers", workers, "--chunk-rows", "2000"])
    assert res.exit_code == 0, res.output
    got = pd.read_parquet(out)
    assert got["id"].tolist() == frame["id"].tolist() and got["name"].tolist() == frame["name"].tolist()
    assert _codes(got["grid_code"]) == _expected(points, grids)
    assert got["grid_code"].isna().sum() > 100
    assert "Joined 20,000 points to 150 grids" in res.output and "Peak resident memory (MB): client" in res.output
    if workers == "2":
        assert "worker tcp://" in res.output


def test_join_of_a_geoparquet_in_a_projected_crs_moves_the_grids_not_the_points(sqlite_app, city, tmp_path):
    grids, grids_path, points = city
    utm = points.to_crs(32651)
    src = tmp_path / "points.geoparquet"
    utm.to_parquet(src)
    out = tmp_path / "joined.parquet"
    res = sqlite_app.test_cli_runner().invoke(args=["join", str(src), "--grids", str(grids_path), "--out", str(out),
                                                    "--workers", "1"])
    assert res.exit_code == 0, res.output
    got = gpd.read_parquet(out)  # still GeoParquet: the geometry column and its CRS pass through
    assert got.crs.to_epsg() == 32651 and got.geometry.equals(utm.geometry)
    assert _codes(got["grid_code"]) == _expected(utm, grids)


def test_join_of_a_csv_of_x_y_with_its_crs_given(sqlite_app, city, tmp_path):
    grids, grids_path, points = city
    utm = points.to_crs(32651)
    src = tmp_path / "points.csv"
    pd.DataFrame({"x": utm.geometry.x, "y": utm.geometry.y, "id": utm["id"]}).to_csv(src, index=False)
    out = tmp_path / "joined.parquet"
    res = sqlite_app.test_cli_runner().invoke(args=["join", str(src), "--grids", str(grids_path), "--out", str(out),
                                                    "--crs", "EPSG:32651", "--workers", "1", "--chunk-rows", "5000"])
    assert res.exit_code == 0, res.output
    # CSV keeps 17 significant digits: the same floats, so the same answers
    back = pd.read_csv(src)
    expected = _expected(gpd.GeoSeries(gpd.points_from_xy(back["x"], back["y"]), crs=32651), grids)
    assert _codes(pd.read_parquet(out)["grid_code"]) == expected


def test_join_of_an_empty_file_writes_an_empty_result(sqlite_app, city, tmp_path):
    _, grids_path, _ = city
    src = tmp_path / "none.parquet"
    pd.DataFrame({"lon": pd.Series([], dtype=float), "lat": pd.Series([], dtype=float)}).to_parquet(src)
    out = tmp_path / "joined.parquet"
    res = sqlite_app.test_cli_runner().invoke(args=["join", str(src), "--grids", str(grids_path), "--out", str(out),
                                                    "--workers", "1"])
    assert res.exit_code == 0, res.output
    got = pd.read_parquet(out)
    assert len(got) == 0 and list(got.columns) == ["lon", "lat", "grid_code"]


@pytest.mark.parametrize("make,args,message,fix", [
    (None, [], "does not exist", "Parquet, GeoParquet or CSV"),
    (lambda p: pd.DataFrame({"a": [1.0], "b": [2.0]}).to_parquet(p), [], "no geometry and no coordinate columns",
     "lon and lat"),
    (lambda p: pd.DataFrame({"x": [1.0], "y": [2.0]}).to_parquet(p), [], "CRS of the points", "--crs"),
    (lambda p: pd.DataFrame({"x": [1.0], "y": [2.0]}).to_parquet(p), ["--crs", "EPSG:99999999"],
     "EPSG:99999999", "EPSG code"),
])
def test_join_refuses_bad_input_with_a_fix_and_writes_nothing(sqlite_app, city, tmp_path, make, args, message, fix):
    _, grids_path, _ = city
    src = tmp_path / "points.parquet"
    if make:
        make(src)
    out = tmp_path / "joined.parquet"
    res = sqlite_app.test_cli_runner().invoke(args=["join", str(src), "--grids", str(grids_path), "--out", str(out),
                                                    "--workers", "1", *args])
    assert res.exit_code == 2
    assert message in res.output and fix in res.output
    assert not out.exists() and not list(tmp_path.glob("joined.parquet.part-*"))


def test_join_reads_parquet_in_bounded_chunks(city, tmp_path):
    """Memory stays bounded: no chunk handed to the lookup is larger than asked for."""
    from gridmap.geo import pointjoin
    _, _, points = city
    src = tmp_path / "points.parquet"
    pd.DataFrame({"lon": points.geometry.x, "lat": points.geometry.y}).to_parquet(src, row_group_size=7000)
    source = pointjoin.open_points(src)
    sizes = [len(c) for c in pointjoin.read_chunks(source, rows=2500)]
    assert sum(sizes) == 20_000 and max(sizes) <= 2500
    assert pq.ParquetFile(src).metadata.num_row_groups == 3


def test_a_non_point_in_a_later_row_group_is_refused_by_its_row_in_the_file(sqlite_app, city, tmp_path):
    _, grids_path, points = city
    geoms = points.geometry.copy()
    geoms.iloc[12_345] = shapely.LineString([(121.6, 38.9), (121.61, 38.91)])
    src = tmp_path / "points.parquet"
    gpd.GeoDataFrame({"id": points["id"]}, geometry=geoms, crs=4326).to_parquet(src, row_group_size=5000)
    out = tmp_path / "joined.parquet"
    for workers in ("1", "2"):
        res = sqlite_app.test_cli_runner().invoke(args=["join", str(src), "--grids", str(grids_path), "--out",
                                                        str(out), "--workers", workers])
        assert res.exit_code == 2, res.output
        assert "LineString at position 12345" in res.output and not out.exists()


def test_a_scheduler_that_does_not_answer_is_named_with_the_fix(sqlite_app, city, tmp_path, monkeypatch):
    from gridmap.cli import batch
    monkeypatch.setattr(batch, "SCHEDULER_TIMEOUT_S", 2)
    _, grids_path, points = city
    src = tmp_path / "points.parquet"
    pd.DataFrame({"lon": points.geometry.x, "lat": points.geometry.y}).to_parquet(src)
    out = tmp_path / "joined.parquet"
    res = sqlite_app.test_cli_runner().invoke(args=["join", str(src), "--grids", str(grids_path), "--out", str(out),
                                                    "--scheduler", "tcp://127.0.0.1:9"])
    assert res.exit_code == 2, res.output
    assert "tcp://127.0.0.1:9 does not answer" in res.output and "dask scheduler" in res.output
    assert not out.exists()


def test_a_chunk_wholly_outside_every_grid_still_writes_text_codes(sqlite_app, city, tmp_path):
    grids, grids_path, points = city
    far = pd.DataFrame({"lon": np.full(3000, 100.0), "lat": np.full(3000, 20.0)})   # first chunk: all outside
    near = pd.DataFrame({"lon": points.geometry.x[:3000], "lat": points.geometry.y[:3000]})
    frame = pd.concat([far, near], ignore_index=True)
    src = tmp_path / "points.parquet"
    frame.to_parquet(src)
    out = tmp_path / "joined.parquet"
    res = sqlite_app.test_cli_runner().invoke(args=["join", str(src), "--grids", str(grids_path), "--out", str(out),
                                                    "--workers", "1", "--chunk-rows", "3000"])
    assert res.exit_code == 0, res.output
    got = pq.read_table(out)
    assert str(got.schema.field("grid_code").type) == "string"
    expected = _expected(gpd.GeoSeries(gpd.points_from_xy(frame["lon"], frame["lat"]), crs=4326), grids)
    assert _codes(got.to_pandas()["grid_code"]) == expected and expected[:3000] == [None] * 3000
