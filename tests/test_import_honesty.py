"""The import border is honest: geometry nested or sized beyond the limits is refused by row before GEOS sees it,
and the process lives."""
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box
from sqlalchemy import func, select

from gridmap import importer
from gridmap.errors import InvalidInput
from gridmap.geo import bounds
from gridmap.geo.io import read_layer
from gridmap.store import Store
from gridmap.store import models as m

ROOT = Path(__file__).resolve().parents[1]

#  Two communities side by side near 湾里街道, with real Chinese names:
#
#   38.92 +-----------+-----------+
#         |  林茂社区  |  城志社区  |
#   38.90 +-----------+-----------+
#       121.60      121.61      121.62
NAMES = ["林茂社区", "城志社区"]
COMMUNITIES = gpd.GeoDataFrame(
    {"code": ["210213013003", "210213013004"], "name": NAMES, "街道": ["湾里街道", "湾里街道"]},
    geometry=[box(121.60, 38.90, 121.61, 38.92), box(121.61, 38.90, 121.62, 38.92)], crs=4326)


def count(store):
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(m.Community))


def stored_names(store):
    with store.session() as s:
        return s.scalars(select(m.Community.name).order_by(m.Community.code)).all()


# ---- bounded geometry ---------------------------------------------------------------------


def nested_wkt(depth):
    return "GEOMETRYCOLLECTION(" * (depth - 1) + "POINT(121.605 38.91)" + ")" * (depth - 1)


def nested_geojson(depth):
    geometry = ('{"type":"GeometryCollection","geometries":[' * (depth - 1)
                + '{"type":"Point","coordinates":[121.605,38.91]}' + "]}" * (depth - 1))
    return ('{"type":"FeatureCollection","features":[{"type":"Feature","properties":'
            '{"code":"210213013003","name":"林茂社区"},"geometry":' + geometry + "}]}")


def communities_csv(path, wkts):
    rows = [f'2102130130{i + 3:02d},社区{i},"{w}"' for i, w in enumerate(wkts)]
    path.write_text("code,name,wkt\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_wkt_exactly_at_the_depth_limit_reaches_geos_and_one_level_more_does_not():
    assert bounds.wkt_problem(nested_wkt(bounds.MAX_DEPTH), "wkt") is None
    message, fix = bounds.wkt_problem(nested_wkt(bounds.MAX_DEPTH + 1), "wkt")
    assert message == "wkt nests 65 levels deep, more than the limit of 64"
    assert "flat geometry" in fix


def test_wkt_vertices_are_counted_exactly_on_the_text(monkeypatch):
    monkeypatch.setattr(bounds, "MAX_VERTICES", 4)
    four = "MULTIPOLYGON (((0 0, 1 0, 1 1,0 0)))"
    assert bounds.wkt_problem(four, "wkt") is None
    message, _ = bounds.wkt_problem("MULTIPOINT ((0 0), (1 0), ( 1 1),(2 2), (3 3))", "wkt")
    assert message == "wkt has 5 vertices, more than the limit of 4 per feature"


def test_a_csv_row_nested_too_deep_is_a_problem_naming_row_and_limit_and_the_rest_imports(store, tmp_path):
    path = communities_csv(tmp_path / "c.csv", [box(121.60, 38.90, 121.61, 38.92).wkt, nested_wkt(200)])
    with pytest.raises(InvalidInput) as caught:
        importer.import_file(store, "communities", path)
    problem = caught.value.details["problems"][0]
    assert (problem["row"], problem["field"]) == (2, "wkt")
    assert problem["message"] == "wkt nests 200 levels deep, more than the limit of 64"
    assert problem["value"].startswith("GEOMETRYCOLLECTION(") and len(problem["value"]) == 60
    assert count(store) == 0
    summary = importer.import_file(store, "communities", path, skip_invalid=True)
    assert (summary.imported, [p["row"] for p in summary.rejected]) == (1, [2])


def test_a_geojson_file_nested_deeper_than_the_limit_is_refused_before_gdal_reads_it(tmp_path):
    path = tmp_path / "deep.geojson"
    path.write_text(nested_geojson(bounds.MAX_DEPTH + 10), encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"nests its JSON more than 140 levels deep") as caught:
        read_layer(path)
    assert "flat geometry" in caught.value.fix


def test_brackets_inside_geojson_strings_do_not_count_as_nesting(tmp_path):
    path = tmp_path / "names.geojson"
    gpd.GeoDataFrame({"name": ["[[[{{{" * 200 + '\\"[', "]]]]" * 300]},
                     geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs=4326).to_file(path)
    assert read_layer(path).frame["name"].str.len().tolist() == [1203, 1200]


def test_a_geojson_geometry_with_too_many_vertices_is_a_problem_of_its_row(store, tmp_path, monkeypatch):
    monkeypatch.setattr(bounds, "MAX_VERTICES", 5)  # a box has 5 (its ring is closed)
    path = tmp_path / "c.geojson"
    big = box(121.61, 38.90, 121.62, 38.92).segmentize(0.001)
    gpd.GeoDataFrame({"code": ["210213013003", "210213013004"], "name": NAMES},
                     geometry=[box(121.60, 38.90, 121.61, 38.92), big], crs=4326).to_file(path)
    with pytest.raises(InvalidInput) as caught:
        importer.import_file(store, "communities", path)
    problem = caught.value.details["problems"][0]
    assert problem["row"] == 2 and "more than the limit of 5 per feature" in problem["message"]
    assert count(store) == 0


@pytest.mark.parametrize("suffix", [".csv", ".geojson"])
def test_text_files_larger_than_the_limit_are_refused_unread(tmp_path, monkeypatch, suffix):
    monkeypatch.setattr(bounds, "MAX_TEXT_BYTES", 100)
    path = tmp_path / f"big{suffix}"
    if suffix == ".csv":
        communities_csv(path, [box(121.60, 38.90, 121.61, 38.92).wkt] * 5)
    else:
        COMMUNITIES.to_file(path)
    with pytest.raises(InvalidInput, match=r"may be at most 100 bytes") as caught:
        read_layer(path)
    assert "GeoPackage" in caught.value.fix


_IMPORT = [sys.executable, "-m", "gridmap", "import", "communities"]


def _run_gridmap(tmp_path, path):
    """``gridmap import communities PATH`` in a process of its own: a segfault is then a return code."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               GRIDMAP_DATABASE_URL=f"sqlite:///{tmp_path / 'gridmap.db'}", GRIDMAP_INSTANCE_PATH=str(tmp_path),
               GRIDMAP_SECRET_KEY="test", GRIDMAP_MAP_TILES="none")
    done = subprocess.run(_IMPORT + [str(path)], check=False, env=env, capture_output=True, text=True, timeout=300)
    written = Store(env["GRIDMAP_DATABASE_URL"])
    try:
        done.communities = count(written) if done.returncode >= 0 else None
    finally:
        written.dispose()
    return done


@pytest.mark.slow
def test_wkt_nested_100000_deep_is_refused_and_the_process_lives(tmp_path):
    path = communities_csv(tmp_path / "deep.csv", [nested_wkt(100_000)])
    done = _run_gridmap(tmp_path, path)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])  # was -11: GEOS overflowed its stack
    assert "feature 1" in done.stderr and "nests 100,000 levels deep, more than the limit of 64" in done.stderr
    assert "nothing was written" in done.stderr and done.communities == 0


@pytest.mark.slow
def test_geojson_nested_100000_deep_is_refused_and_the_process_lives(tmp_path):
    path = tmp_path / "deep.geojson"
    path.write_text(nested_geojson(100_000), encoding="utf-8")
    done = _run_gridmap(tmp_path, path)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "nests its JSON more than 140 levels deep" in done.stderr and done.communities == 0
