"""The import border: every format and CRS lands the same data; every bad input is named and writes nothing."""
import zipfile

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon, box
from sqlalchemy import func, select

from gridmap import importer
from gridmap.errors import InvalidInput
from conftest import geodesic_m

from gridmap.geo.crs import wgs84_to_bd09, wgs84_to_gcj02
from gridmap.store import models as m

from conftest import shared_data

#  The tiny community used throughout: a 2 km × 2 km square near 湾里街道.
#
#   38.92 +-----------+
#         |  b2    b3 |
#         |           |
#         |  b1       |
#   38.90 +-----------+
#       121.60      121.62
COMMUNITY = box(121.60, 38.90, 121.62, 38.92)
BUILDINGS = gpd.GeoDataFrame(
    {"address": ["湾里路1号", "湾里路2号", "湾里路3号"], "households": [30, 45, 0], "name": ["", "", "学校"]},
    geometry=[box(121.603, 38.903, 121.6033, 38.9034), box(121.603, 38.915, 121.6033, 38.9154),
              box(121.615, 38.915, 121.6153, 38.9154)], crs=4326)


def count(store, model):
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def write_community(tmp_path):
    path = tmp_path / "community.geojson"
    gpd.GeoDataFrame({"code": ["210213013004"], "name": ["城志社区"], "street_name": ["湾里街道"],
                      "district_name": ["金州区"]}, geometry=[COMMUNITY], crs=4326).to_file(path)
    return path


@pytest.fixture
def community(store, tmp_path):
    importer.import_file(store, "communities", write_community(tmp_path))


def assert_buildings_as_given(store, tol_m=0.05):
    with store.session() as s:
        rows = s.execute(select(m.Building.address, m.Building.households, m.Building.community_code,
                                m.Building.lon, m.Building.lat).order_by(m.Building.address)).all()
    assert [(r.address, r.households, r.community_code) for r in rows] == [
        ("湾里路1号", 30, "210213013004"), ("湾里路2号", 45, "210213013004"), ("湾里路3号", 0, "210213013004")]
    expected = shapely.point_on_surface(BUILDINGS.geometry.values)
    d = geodesic_m(np.array([r.lon for r in rows]), np.array([r.lat for r in rows]),
                    shapely.get_x(expected), shapely.get_y(expected))
    assert d.max() < tol_m


# ---- formats ------------------------------------------------------------------------------

def test_communities_create_their_street_and_district(store, community):
    with store.session() as s:
        c = s.get(m.Community, "210213013004")
        assert (c.name, c.street_code, c.street.name, c.street.district.code, c.street.district.name) == \
            ("城志社区", "210213013000", "湾里街道", "210213000000", "金州区")
        assert c.geom.equals(shapely.MultiPolygon([COMMUNITY]))


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".shp", ".zip"])
def test_buildings_import_from_every_vector_format_alike(store, community, tmp_path, suffix):
    path = tmp_path / f"buildings{suffix}"
    if suffix == ".zip":
        BUILDINGS.to_file(tmp_path / "buildings.shp", encoding="UTF-8")
        with zipfile.ZipFile(path, "w") as z:
            for part in tmp_path.glob("buildings.*"):
                if part.suffix != ".zip":
                    z.write(part, part.name)
    else:
        BUILDINGS.to_file(path)
    summary = importer.import_file(store, "buildings", path)
    assert (summary.imported, len(summary.rejected)) == (3, 0)
    assert_buildings_as_given(store)


def test_buildings_from_csv_points_with_chinese_headers(store, community, tmp_path):
    pts = shapely.point_on_surface(BUILDINGS.geometry.values)
    path = tmp_path / "b.csv"
    pd.DataFrame({"地址": BUILDINGS["address"], "户数": BUILDINGS["households"],
                  "经度": shapely.get_x(pts), "纬度": shapely.get_y(pts)}).to_csv(path, index=False)
    summary = importer.import_file(store, "buildings", path)
    assert summary.imported == 3
    assert_buildings_as_given(store)


def test_a_gbk_shapefile_keeps_its_chinese_names(store, community, tmp_path):
    BUILDINGS.to_file(tmp_path / "gbk.shp", encoding="GBK")
    (tmp_path / "gbk.cpg").unlink(missing_ok=True)  # many Chinese GIS exports carry no .cpg
    importer.import_file(store, "buildings", tmp_path / "gbk.shp", encoding="GBK")
    assert_buildings_as_given(store)


@pytest.mark.parametrize("datum,forward", [("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)])
def test_chinese_web_map_coordinates_are_converted_at_the_border(store, community, tmp_path, datum, forward):
    shifted = BUILDINGS.copy()
    shifted["geometry"] = shapely.transform(BUILDINGS.geometry.values,
                                            lambda xy: np.column_stack(forward(xy[:, 0], xy[:, 1])))
    path = tmp_path / f"{datum}.geojson"
    shifted.to_file(path)
    importer.import_file(store, "buildings", path, crs=datum)
    assert_buildings_as_given(store, tol_m=0.5)


def test_a_projected_cgcs2000_gauss_kruger_file_is_converted(store, community, tmp_path):
    path = tmp_path / "gk.gpkg"
    BUILDINGS.to_crs(4549).to_file(path)  # CGCS2000 3-degree Gauss-Krüger CM 120E
    importer.import_file(store, "buildings", path)
    assert_buildings_as_given(store)


def test_an_osm_file_gives_buildings_and_roads(store, community, tmp_path):
    osm = tmp_path / "tiny.osm"
    nodes = [(1, 121.603, 38.903), (2, 121.6034, 38.903), (3, 121.6034, 38.9034), (4, 121.603, 38.9034),
             (5, 121.601, 38.901), (6, 121.619, 38.901)]
    osm.write_text(
        "<?xml version='1.0' encoding='UTF-8'?>\n<osm version='0.6'>\n"
        + "".join(f"<node id='{i}' version='1' lon='{x}' lat='{y}'/>\n" for i, x, y in nodes)
        + "<way id='10' version='1'><nd ref='1'/><nd ref='2'/><nd ref='3'/><nd ref='4'/><nd ref='1'/>"
          "<tag k='building' v='yes'/><tag k='addr:street' v='湾里路'/><tag k='addr:housenumber' v='1号'/></way>\n"
          "<way id='11' version='1'><nd ref='5'/><nd ref='6'/><tag k='highway' v='residential'/>"
          "<tag k='name' v='湾里路'/></way>\n</osm>\n", encoding="utf-8")
    importer.import_file(store, "buildings", osm, layer="buildings")
    importer.import_file(store, "roads", osm, layer="roads")
    with store.session() as s:
        assert s.scalars(select(m.Building.address)).all() == ["湾里路1号"]
        road = s.execute(select(m.Road.name, m.Road.kind)).one()
    assert tuple(road) == ("湾里路", "residential")


def test_field_mapping_takes_households_from_any_column(store, community, tmp_path):
    path = tmp_path / "b.geojson"
    BUILDINGS.rename(columns={"households": "TOTPOP20", "address": "GEOID"}).to_file(path)
    importer.import_file(store, "buildings", path, fields={"households": "TOTPOP20", "address": "GEOID"})
    assert_buildings_as_given(store)


def test_a_field_mapped_from_another_column_replaces_the_column_of_its_name(store, community, tmp_path):
    path = tmp_path / "b.geojson"
    frame = BUILDINGS.rename(columns={"households": "hh"})
    frame["households"] = ["unknown", "三十", "?"]  # a column of that name, not the one to use
    frame.to_file(path)
    importer.import_file(store, "buildings", path, fields={"households": "hh"})
    assert_buildings_as_given(store)


def test_a_column_mapped_to_one_field_is_not_taken_again_for_the_field_of_its_name(store, community, tmp_path):
    path = tmp_path / "b.geojson"
    BUILDINGS.rename(columns={"address": "NAME"}).drop(columns=["name"]).to_file(path)
    importer.import_file(store, "buildings", path, fields={"address": "NAME"})
    assert_buildings_as_given(store)


def test_grids_become_a_plan_numbered_west_to_east_then_north_to_south(store, community, tmp_path):
    cells = [box(121.60 + 0.01 * i, 38.91 - 0.01 * j, 121.61 + 0.01 * i, 38.92 - 0.01 * j)
             for j in range(2) for i in range(2)]
    path = tmp_path / "grids.geojson"
    gpd.GeoDataFrame(geometry=list(reversed(cells)), crs=4326).to_file(path)
    summary = importer.import_file(store, "grids", path, publish=True)
    assert summary.imported == 4
    with store.session() as s:
        plan = s.scalar(select(m.GridPlan))
        assert plan.status == "published" and plan.community_code == "210213013004"
        got = {g.code: g.geom.bounds[:2] for g in plan.grids}
    assert got == {"210213013004001": (121.60, 38.91), "210213013004002": (121.61, 38.91),
                   "210213013004003": (121.60, 38.90), "210213013004004": (121.61, 38.90)}


def test_workers_from_a_csv_without_coordinates(store, tmp_path):
    path = tmp_path / "workers.csv"
    path.write_text("name,phone,grids\n王芳,13812341234,210213013004001;210213013004002\n", encoding="utf-8")
    importer.import_file(store, "workers", path)
    with store.session() as s:
        assert s.scalar(select(m.GridWorker.name)) == "王芳"
        assert sorted(c for _, c in s.execute(select(m.grid_worker_grid)).all()) == \
            ["210213013004001", "210213013004002"]


def test_export_then_import_round_trips(store, community, tmp_path):
    importer.import_file(store, "buildings", _write(BUILDINGS, tmp_path / "b.geojson"))
    importer.export_file(store, "buildings", tmp_path / "out.gpkg")
    back = gpd.read_file(tmp_path / "out.gpkg")
    assert sorted(back["address"]) == sorted(BUILDINGS["address"])
    assert back.crs.to_epsg() == 4326
    assert back.sort_values("address").geometry.reset_index(drop=True).geom_equals_exact(
        BUILDINGS.sort_values("address").geometry.reset_index(drop=True), tolerance=1e-9).all()


def _write(frame, path):
    frame.to_file(path)
    return path


# ---- bad input: named, explained, nothing written -------------------------------------------

def rejected(store, community_path=None, **kwargs):
    with pytest.raises(InvalidInput) as err:
        importer.import_file(store, **kwargs)
    assert count(store, m.Building) == 0
    return err.value


@pytest.mark.parametrize("case,expect", [
    ("nan", "lon is empty"), ("inf", "inf"), ("swapped", "swapped"), ("out_of_range", "range"), ("not_a_number", '"abc"'),
    ("empty_address", "address is empty"), ("negative_households", "households -5 "),
])
def test_bad_rows_in_a_csv_are_named_and_nothing_is_written(store, community, tmp_path, case, expect):
    rows = [["湾里路1号", 30, 121.603, 38.903], ["湾里路2号", 45, 121.604, 38.915], ["湾里路3号", 0, 121.615, 38.915]]
    bad = {"nan": ["湾里路9号", 1, "nan", 38.9], "inf": ["湾里路9号", 1, "inf", 38.9], "swapped": ["湾里路9号", 1, 38.91, 121.61],
           "out_of_range": ["湾里路9号", 1, 200.0, 38.9], "not_a_number": ["湾里路9号", 1, "abc", 38.9],
           "empty_address": ["", 1, 121.61, 38.91], "negative_households": ["湾里路9号", -5, 121.61, 38.91]}[case]
    path = tmp_path / "b.csv"
    pd.DataFrame(rows + [bad], columns=["address", "households", "lon", "lat"]).to_csv(path, index=False)
    err = rejected(store, kind="buildings", path=path)
    assert "feature 4" in err.message and expect in err.message
    assert err.details["rejected"] == 1 and err.details["problems"][0]["row"] == 4
    assert "nothing was written" in err.message and "--skip-invalid" in err.fix


def test_text_longer_than_its_column_is_refused_naming_it_and_nothing_is_written(store, community, tmp_path):
    # PostgreSQL used to stop in the middle of COPY with a driver error; SQLite kept it silently
    path = tmp_path / "b.csv"
    pd.DataFrame([["湾里路1号", 30, 121.603, 38.903], ["湾" * 300, 1, 121.61, 38.91]],
                 columns=["address", "households", "lon", "lat"]).to_csv(path, index=False)
    err = rejected(store, kind="buildings", path=path)
    assert "1 value(s) of address" in err.message and "256 characters" in err.message and "(300 characters)" in err.message
    assert err.details == {"table": "building", "column": "address", "limit": 256, "count": 1}
    assert "at most 256" in err.fix


def test_skip_invalid_imports_the_rest_and_reports_the_rejected(store, community, tmp_path):
    path = tmp_path / "b.csv"
    pd.DataFrame([["湾里路1号", 30, 121.603, 38.903], ["湾里路9号", 1, 38.91, 121.61]],
                 columns=["address", "households", "lon", "lat"]).to_csv(path, index=False)
    summary = importer.import_file(store, "buildings", path, skip_invalid=True)
    assert (summary.imported, len(summary.rejected), summary.rejected[0]["row"]) == (1, 1, 2)
    assert count(store, m.Building) == 1


def test_a_bow_tie_polygon_is_rejected_but_a_tiny_defect_is_repaired(store, community, tmp_path):
    bow_tie = Polygon([(121.601, 38.901), (121.603, 38.903), (121.603, 38.901), (121.601, 38.903)])
    # a square with a spike back along one edge: invalid, repair removes almost nothing
    spiky = Polygon([(121.605, 38.905), (121.606, 38.905), (121.606, 38.906), (121.6055, 38.906),
                     (121.6055, 38.9062), (121.6055, 38.906), (121.605, 38.906)])
    assert not bow_tie.is_valid and not spiky.is_valid
    path = _write(gpd.GeoDataFrame({"address": ["坏1号", "刺2号"], "households": [1, 2]},
                                   geometry=[bow_tie, spiky], crs=4326), tmp_path / "b.geojson")
    err = rejected(store, kind="buildings", path=path)
    assert [p["row"] for p in err.details["problems"]] == [1]
    summary = importer.import_file(store, "buildings", path, skip_invalid=True)
    assert summary.imported == 1 and summary.repaired == [2]
    with store.session() as s:
        assert s.scalar(select(m.Building.geom)).is_valid


def test_a_point_where_polygons_are_expected_is_rejected(store, tmp_path):
    path = _write(gpd.GeoDataFrame({"code": ["210213013004"], "name": ["城志社区"]},
                                   geometry=[Point(121.61, 38.91)], crs=4326), tmp_path / "c.geojson")
    with pytest.raises(InvalidInput, match="Point"):
        importer.import_file(store, "communities", path)
    assert count(store, m.Community) == 0


def test_a_missing_required_column_names_the_columns_there_are(store, community, tmp_path):
    path = _write(BUILDINGS.drop(columns=["address"]), tmp_path / "b.geojson")
    err = rejected(store, kind="buildings", path=path)
    assert "'address'" in err.message and "households" in err.fix and "--field address=" in err.fix


def test_a_shapefile_without_prj_asks_for_the_crs(store, community, tmp_path):
    BUILDINGS.to_file(tmp_path / "noprj.shp")
    (tmp_path / "noprj.prj").unlink()
    err = rejected(store, kind="buildings", path=tmp_path / "noprj.shp")
    assert ".prj" in err.message and "--crs" in err.fix


def test_an_unknown_crs_is_named(store, community, tmp_path):
    path = _write(BUILDINGS, tmp_path / "b.geojson")
    err = rejected(store, kind="buildings", path=path, crs="EPSG:99999")
    assert "99999" in err.message


def test_an_unknown_responder_kind_lists_the_known_ones(store, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("name,kind,lon,lat\n派出所,police,121.61,38.91\n神秘组织,wizard,121.61,38.91\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as err:
        importer.import_file(store, "responders", path)
    assert '"wizard"' in err.value.message and "mediator" in err.value.message
    assert count(store, m.Responder) == 0


def test_a_party_member_at_an_unknown_address_is_refused(store, community, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("name,building_address,lon,lat\n李明,无此路99号,121.61,38.91\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="无此路99号"):
        importer.import_file(store, "party-members", path)
    assert count(store, m.PartyMember) == 0


def test_an_unknown_kind_and_a_bad_field_mapping_are_named(store, tmp_path):
    path = _write(BUILDINGS, tmp_path / "b.geojson")
    with pytest.raises(InvalidInput, match="'houses'"):
        importer.import_file(store, "houses", path)
    with pytest.raises(InvalidInput, match="NOPE"):
        importer.import_file(store, "buildings", path, fields={"households": "NOPE"})
    with pytest.raises(InvalidInput, match="name=COLUMN"):
        importer.parse_field_map(["households"])


def test_a_failing_grid_file_leaves_no_plan_behind(store, community, tmp_path):
    two_parts = shapely.MultiPolygon([box(121.60, 38.90, 121.605, 38.905), box(121.61, 38.91, 121.615, 38.915)])
    path = _write(gpd.GeoDataFrame(geometry=[box(121.60, 38.90, 121.61, 38.92), two_parts], crs=4326),
                  tmp_path / "g.geojson")
    with pytest.raises(InvalidInput, match="2 separate parts"):
        importer.import_file(store, "grids", path)
    assert count(store, m.GridPlan) == 0 and count(store, m.Grid) == 0


# ---- the CLI ---------------------------------------------------------------------------------

def test_cli_import_prints_a_summary_and_errors_without_a_traceback(app, tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDMAP_LANG", "en")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["import", "communities", str(write_community(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "imported 1, repaired 0, rejected 0" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("address,households,lon,lat\n湾里路1号,3,38.91,121.61\n", encoding="utf-8")
    result = runner.invoke(args=["import", "buildings", str(bad)])
    assert result.exit_code == 2
    assert "swapped" in result.output and "Traceback" not in result.output


def test_cli_import_speaks_the_users_language_problems_included(app, tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDMAP_LANG", "zh")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["import", "communities", str(write_community(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "导入 1 个，修复 0 个，拒绝 0 个" in result.output and "imported" not in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("address,households,lon,lat\n湾里路1号,3,38.91,121.61\n湾里路2号,三,121.61,38.91\n",
                   encoding="utf-8")
    result = runner.invoke(args=["import", "buildings", str(bad)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "错误：" in result.output and "2 个要素中有 2 个无法作为 buildings 导入" in result.output
    assert "第 1 个要素（湾里路1号）：经纬度似乎颠倒了（得到 lon=38.91, lat=121.61）" in result.output
    assert '第 2 个要素（湾里路2号）：households 的值 "三" 不是 0 到' in result.output
    assert "swapped" not in result.output and "解决办法：" in result.output
    listed = runner.invoke(args=["import", "list"])
    assert listed.output.split()[:4] == ["编号", "类型", "来源", "方式"] and "communities" in listed.output
    monkeypatch.setenv("GRIDMAP_LANG", "en")
    assert runner.invoke(args=["import", "list"]).output.split()[:4] == ["id", "kind", "source", "mode"]


def test_real_providence_blocks_import_with_field_mapping(sqlite_app, tmp_path):
    path = shared_data("providence", "blocks.zip")
    store = sqlite_app.extensions["gridmap.store"]
    summary = importer.import_file(store, "buildings", path, fields={"households": "TOTPOP", "address": "GEOID10"})
    assert (summary.imported, summary.rejected) == (3014, [])
    with store.session() as s:
        assert s.scalar(select(func.sum(m.Building.households))) == 178040  # every block's people arrive
        lon, lat = s.execute(select(func.avg(m.Building.lon), func.avg(m.Building.lat))).one()
    assert -71.5 < lon < -71.35 and 41.75 < lat < 41.9  # Providence, RI in WGS84, not NAD83 feet


def test_gcj02_on_features_outside_china_is_a_warning_naming_how_many(runner, store, tmp_path):
    """GCJ-02 is the identity outside China: --crs gcj02 there changes nothing, and the import says so."""
    helsinki = [LineString([(24.94, 60.17), (24.95, 60.171)]), LineString([(24.96, 60.18), (24.97, 60.18)])]
    dalian = LineString([(121.603, 38.903), (121.61, 38.905)])
    path = tmp_path / "roads.geojson"
    gpd.GeoDataFrame({"name": ["Mannerheimintie", "Kaivokatu", "湾里路"]},
                     geometry=helsinki + [dalian], crs=4326).to_file(path)
    result = runner.invoke(args=["import", "roads", str(path), "--crs", "gcj02"])
    assert result.exit_code == 0, result.output
    assert "warning: 2 of 3 features lie outside China, where GCJ-02 does not apply" in result.output
    assert "--crs 4326" in result.output
    with store.session() as s:
        geoms = dict(s.execute(select(m.Road.name, m.Road.geom)).all())
    # outside China the coordinates are as given; the one in China moved by the GCJ-02 offset
    assert shapely.equals_exact(geoms["Kaivokatu"], helsinki[1], tolerance=1e-12)
    assert geodesic_m(121.603, 38.903, *geoms["湾里路"].coords[0]) > 100

    inside = tmp_path / "inside.geojson"
    gpd.GeoDataFrame({"name": ["湾里路"]}, geometry=[dalian], crs=4326).to_file(inside)
    quiet = runner.invoke(args=["import", "roads", str(inside), "--crs", "gcj02"])
    assert quiet.exit_code == 0 and "warning" not in quiet.output
    plain = runner.invoke(args=["import", "roads", str(path)])
    assert plain.exit_code == 0 and "warning" not in plain.output


def test_datum_warnings_count_features_wholly_outside_and_only_for_chinese_datums():
    from gridmap.geo.crs import datum_warnings
    geoms = [Point(24.9, 60.2), LineString([(24.9, 60.2), (121.6, 38.9)]), Point(121.6, 38.9), None]
    (bd,) = datum_warnings(geoms, "bd09")
    assert bd.startswith("warning: 1 of 3 features lie outside China") and "BD-09 step" in bd
    assert datum_warnings(geoms, 4326) == [] and datum_warnings(geoms[2:], "gcj02") == []
