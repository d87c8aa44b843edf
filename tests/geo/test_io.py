"""Tests for gridmap.geo.io: reading and writing every supported vector format."""

import zipfile
from pathlib import Path

import geopandas
import numpy as np
import osmium
import pyogrio
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon

from gridmap.errors import InvalidInput
from gridmap.geo.io import read_layer, write_layer

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def needs(relative):
    return pytest.mark.skipif(
        not (DATA / relative).exists(), reason=f"real data file {DATA / relative} is absent (CI always has it)"
    )


SQUARE = Polygon([(121.64, 38.92), (121.65, 38.92), (121.65, 38.93), (121.64, 38.93)])


def small_frame(crs=4326):
    return geopandas.GeoDataFrame(
        {"code": ["210202001001", "210202001002"], "name": ["老虎滩社区", "桃源社区"]},
        geometry=[SQUARE, shapely.affinity.translate(SQUARE, 0.01, 0)],
        crs=crs,
    )


# --- GeoJSON, GeoPackage ------------------------------------------------------------


def test_geojson_round_trips_names_and_coordinates_as_wgs84(tmp_path):
    write_layer(small_frame(), tmp_path / "grids.geojson")
    raw = read_layer(tmp_path / "grids.geojson")
    assert raw.crs.name == "EPSG:4326"
    assert raw.frame["name"].tolist() == ["老虎滩社区", "桃源社区"]
    assert raw.frame["code"].tolist() == ["210202001001", "210202001002"]
    assert raw.frame.geometry.iloc[0].equals(SQUARE)
    assert raw.source == str(tmp_path / "grids.geojson")


def test_crs_argument_overrides_what_the_file_claims(tmp_path):
    write_layer(small_frame(), tmp_path / "amap.geojson")
    assert read_layer(tmp_path / "amap.geojson", crs="gcj02").crs.kind == "gcj02"


def test_geopackage_with_two_layers_needs_a_layer_and_lists_them(tmp_path):
    path = tmp_path / "plan.gpkg"
    write_layer(small_frame(), path, layer="grids")
    write_layer(small_frame().iloc[:1], path, layer="communities")
    with pytest.raises(InvalidInput) as caught:
        read_layer(path)
    assert "grids" in str(caught.value) and "communities" in str(caught.value)
    assert "--layer" in str(caught.value)
    assert len(read_layer(path, layer="communities").frame) == 1
    assert len(read_layer(path, layer="grids").frame) == 2


def test_geopackage_unknown_layer_is_named_with_the_choices(tmp_path):
    path = tmp_path / "plan.gpkg"
    write_layer(small_frame(), path, layer="grids")
    with pytest.raises(InvalidInput, match='no layer "roads"; it has grids'):
        read_layer(path, layer="roads")


# --- Shapefile ----------------------------------------------------------------------


def test_shapefile_with_gbk_cpg_is_decoded_without_being_told(tmp_path):
    pyogrio.write_dataframe(small_frame(), tmp_path / "gbk.shp", encoding="GBK")
    assert (tmp_path / "gbk.cpg").read_text().strip().upper() == "GBK"
    raw = read_layer(tmp_path / "gbk.shp")
    assert raw.frame["name"].tolist() == ["老虎滩社区", "桃源社区"]
    assert raw.crs.name == "EPSG:4326"


def test_shapefile_in_gbk_without_cpg_reads_with_encoding_gbk(tmp_path):
    pyogrio.write_dataframe(small_frame(), tmp_path / "gbk.shp", encoding="GBK")
    (tmp_path / "gbk.cpg").unlink()
    raw = read_layer(tmp_path / "gbk.shp", encoding="GBK")
    assert raw.frame["name"].tolist() == ["老虎滩社区", "桃源社区"]


def test_wrong_encoding_raises_and_suggests_gbk(tmp_path):
    pyogrio.write_dataframe(small_frame(), tmp_path / "gbk.shp", encoding="GBK")
    with pytest.raises(InvalidInput, match="--encoding GBK"):
        read_layer(tmp_path / "gbk.shp", encoding="UTF-8")


def test_shapefile_without_prj_raises_and_names_the_fix(tmp_path):
    pyogrio.write_dataframe(small_frame(), tmp_path / "x.shp")
    (tmp_path / "x.prj").unlink()
    with pytest.raises(InvalidInput) as caught:
        read_layer(tmp_path / "x.shp")
    assert str(caught.value) == (
        '"x.shp" has no .prj file, so its coordinate system is unknown. '
        "Pass --crs, e.g. --crs 4490 or --crs EPSG:4547."
    )
    assert read_layer(tmp_path / "x.shp", crs=4490).crs.name == "EPSG:4490"


def test_zipped_shapefile_round_trips_with_a_utf8_cpg(tmp_path):
    path = tmp_path / "grids.zip"
    write_layer(small_frame(), path)
    with zipfile.ZipFile(path) as zf:
        names = sorted(zf.namelist())
        assert names == ["grids.cpg", "grids.dbf", "grids.prj", "grids.shp", "grids.shx"]
        assert zf.read("grids.cpg").decode().strip().upper() in ("UTF-8", "UTF8")
    raw = read_layer(path)
    assert raw.frame["name"].tolist() == ["老虎滩社区", "桃源社区"]
    assert raw.crs.name == "EPSG:4326"


def test_zip_with_a_gbk_shapefile_honours_the_cpg_inside(tmp_path):
    pyogrio.write_dataframe(small_frame(), tmp_path / "gbk.shp", encoding="GBK")
    with zipfile.ZipFile(tmp_path / "gbk.zip", "w") as zf:
        for part in tmp_path.glob("gbk.*"):
            if part.suffix != ".zip":
                zf.write(part, arcname=part.name)
    assert read_layer(tmp_path / "gbk.zip").frame["name"].tolist() == ["老虎滩社区", "桃源社区"]


def test_zip_with_two_shapefiles_needs_a_layer(tmp_path):
    for name in ("a", "b"):
        pyogrio.write_dataframe(small_frame(), tmp_path / f"{name}.shp")
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as zf:
        for part in sorted(tmp_path.glob("[ab].*")):
            zf.write(part, arcname=part.name)
    with pytest.raises(InvalidInput, match="2 layers"):
        read_layer(tmp_path / "two.zip")
    assert len(read_layer(tmp_path / "two.zip", layer="b").frame) == 2


# --- errors -------------------------------------------------------------------------


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InvalidInput, match='"[^"]*nowhere.geojson" does not exist'):
        read_layer(tmp_path / "nowhere.geojson")


def test_unsupported_extension_lists_the_supported_ones(tmp_path):
    (tmp_path / "grids.kml").write_text("<kml/>")
    with pytest.raises(InvalidInput) as caught:
        read_layer(tmp_path / "grids.kml")
    assert '".kml"' in str(caught.value)
    assert ".geojson" in str(caught.value) and ".gpkg" in str(caught.value) and ".csv" in str(caught.value)


def test_unreadable_file_is_named_with_a_fix(tmp_path):
    (tmp_path / "broken.gpkg").write_text("this is not a geopackage")
    with pytest.raises(InvalidInput) as caught:
        read_layer(tmp_path / "broken.gpkg")
    assert "broken.gpkg" in str(caught.value) and "re-export" in str(caught.value)


# --- CSV ----------------------------------------------------------------------------


def test_csv_with_chinese_column_names_becomes_points(tmp_path):
    path = tmp_path / "homes.csv"
    path.write_text("编号,地址,经度,纬度\n0101,人民路1号,121.6442,38.9208\n0102,人民路2号,121.6450,38.9210\n", encoding="utf-8")
    raw = read_layer(path)
    assert raw.crs.name == "EPSG:4326"
    assert raw.frame["编号"].tolist() == ["0101", "0102"]  # identifiers keep leading zeros
    assert raw.frame.geometry.iloc[0].equals(Point(121.6442, 38.9208))
    assert raw.frame.attrs["bad_rows"] == []


def test_csv_with_excel_byte_order_mark_and_lng_column_is_read(tmp_path):
    path = tmp_path / "homes.csv"
    path.write_text("Name,LNG,Lat\nA,121.6,38.9\n", encoding="utf-8-sig")
    assert read_layer(path).frame.geometry.iloc[0].equals(Point(121.6, 38.9))


def test_csv_with_explicit_column_names(tmp_path):
    path = tmp_path / "cams.csv"
    path.write_text("id,e,n\n1,121.6,38.9\n", encoding="utf-8")
    raw = read_layer(path, lon="e", lat="n", crs="bd09")
    assert raw.frame.geometry.iloc[0].equals(Point(121.6, 38.9))
    assert raw.crs.kind == "bd09"


def test_csv_naming_a_missing_column_lists_the_columns(tmp_path):
    path = tmp_path / "cams.csv"
    path.write_text("id,e,n\n1,121.6,38.9\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match='no column "east" for lon; its columns are id, e, n'):
        read_layer(path, lon="east", lat="n")


def test_csv_without_coordinates_says_how_to_name_them(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("name,phone\nA,1\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="--field lon="):
        read_layer(path)


def test_csv_non_numeric_cell_keeps_the_row_without_geometry_and_records_it(tmp_path):
    path = tmp_path / "homes.csv"
    path.write_text("name,lon,lat\nA,121.6,38.9\nB,东经121度,38.9\nC,121.7,\n", encoding="utf-8")
    raw = read_layer(path)
    assert len(raw.frame) == 3
    assert raw.frame.geometry.iloc[0].equals(Point(121.6, 38.9))
    assert raw.frame.geometry.iloc[1] is None and raw.frame.geometry.iloc[2] is None
    assert raw.frame.attrs["bad_rows"] == [(2, "lon", "东经121度"), (3, "lat", "")]


def test_csv_with_a_wkt_column_reads_any_geometry_and_records_unreadable_wkt(tmp_path):
    path = tmp_path / "grids.csv"
    path.write_text(
        'name,wkt\nA,"POLYGON ((0 0, 1 0, 1 1, 0 0))"\nB,"LINESTRING (0 0, 1 1)"\nC,not wkt\n',
        encoding="utf-8",
    )
    raw = read_layer(path)
    assert raw.frame.geometry.iloc[0].geom_type == "Polygon"
    assert raw.frame.geometry.iloc[1].geom_type == "LineString"
    assert raw.frame.geometry.iloc[2] is None
    assert raw.frame.attrs["bad_rows"] == [(3, "wkt", "not wkt")]


def test_csv_in_gbk_read_as_utf8_suggests_encoding_gbk(tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes("名称,lon,lat\n老虎滩,121.6,38.9\n".encode("gbk"))
    with pytest.raises(InvalidInput, match="--encoding GBK"):
        read_layer(path)
    assert read_layer(path, encoding="GBK").frame["名称"].tolist() == ["老虎滩"]


@pytest.mark.slow
def test_csv_of_a_million_rows_reads_every_row_to_its_last_point(tmp_path):
    """How fast is bench/import_bench.py's business; here, that nothing is lost at this size."""
    n = 1_000_000
    rng = np.random.default_rng(7)
    lon = rng.uniform(121.5, 121.7, n).round(6)
    lat = rng.uniform(38.8, 39.0, n).round(6)
    path = tmp_path / "big.csv"
    with path.open("w") as fh:
        fh.write("lon,lat\n")
        np.savetxt(fh, np.column_stack([lon, lat]), fmt="%.6f", delimiter=",")
    raw = read_layer(path)
    assert len(raw.frame) == n
    assert raw.frame.geometry.iloc[0].equals(Point(lon[0], lat[0]))
    assert raw.frame.geometry.iloc[-1].equals(Point(lon[-1], lat[-1]))


def test_points_written_as_csv_get_lon_lat_columns_and_read_back(tmp_path):
    frame = geopandas.GeoDataFrame({"name": ["甲", "乙"]}, geometry=[Point(121.6, 38.9), Point(121.7, 38.8)], crs=4326)
    write_layer(frame, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text(encoding="utf-8-sig").splitlines()[0] == "name,lon,lat"
    back = read_layer(tmp_path / "out.csv")
    assert back.frame.geometry.iloc[1].equals(Point(121.7, 38.8))


def test_polygons_written_as_csv_get_a_wkt_column(tmp_path):
    write_layer(small_frame(), tmp_path / "out.csv")
    assert "wkt" in (tmp_path / "out.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert read_layer(tmp_path / "out.csv").frame.geometry.iloc[0].equals(SQUARE)


def test_write_converts_a_projected_frame_to_wgs84(tmp_path):
    write_layer(small_frame().to_crs(4549), tmp_path / "out.gpkg")
    raw = read_layer(tmp_path / "out.gpkg")
    assert raw.crs.name == "EPSG:4326"
    assert raw.frame.geometry.iloc[0].equals_exact(SQUARE, tolerance=1e-9)


def test_write_rejects_an_unknown_extension(tmp_path):
    with pytest.raises(InvalidInput, match="unsupported extension"):
        write_layer(small_frame(), tmp_path / "out.kml")


# --- OpenStreetMap ------------------------------------------------------------------

OSM_XML = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="hand">
  <node id="1" lat="38.9200" lon="121.6400" version="1"/>
  <node id="2" lat="38.9200" lon="121.6410" version="1"/>
  <node id="3" lat="38.9210" lon="121.6410" version="1"/>
  <node id="4" lat="38.9210" lon="121.6400" version="1"/>
  <node id="5" lat="38.9220" lon="121.6420" version="1"/>
  <node id="6" lat="38.9220" lon="121.6430" version="1"/>
  <node id="7" lat="38.9230" lon="121.6430" version="1"/>
  <node id="8" lat="38.9230" lon="121.6420" version="1"/>
  <node id="9" lat="38.9190" lon="121.6390" version="1"/>
  <node id="10" lat="38.9190" lon="121.6440" version="1"/>
  <way id="100" version="1">
    <nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/>
    <tag k="building" v="residential"/><tag k="name" v="一号楼"/>
    <tag k="addr:street" v="人民路"/><tag k="addr:housenumber" v="1"/><tag k="building:levels" v="6"/>
  </way>
  <way id="101" version="1">
    <nd ref="5"/><nd ref="6"/><nd ref="7"/><nd ref="8"/><nd ref="5"/>
    <tag k="building" v="yes"/>
  </way>
  <way id="200" version="1">
    <nd ref="9"/><nd ref="10"/>
    <tag k="highway" v="residential"/><tag k="name" v="人民路"/>
  </way>
</osm>
"""


@pytest.fixture
def osm_xml(tmp_path):
    path = tmp_path / "town.osm"
    path.write_text(OSM_XML, encoding="utf-8")
    return path


@pytest.fixture
def osm_pbf(tmp_path, osm_xml):
    path = tmp_path / "town.osm.pbf"
    writer = osmium.SimpleWriter(str(path))
    try:
        for obj in osmium.FileProcessor(str(osm_xml)):
            writer.add(obj)
    finally:
        writer.close()
    return path


@pytest.mark.parametrize("which", ["osm_xml", "osm_pbf"])
def test_osm_buildings_become_polygons_with_address_columns(which, request):
    raw = read_layer(request.getfixturevalue(which), layer="buildings")
    frame = raw.frame
    assert raw.crs.name == "EPSG:4326"
    assert frame["osm_id"].tolist() == [100, 101]
    assert frame.geom_type.tolist() == ["Polygon", "Polygon"]
    first = frame.iloc[0]
    assert (first["name"], first["addr:street"], first["addr:housenumber"], first["building:levels"]) == (
        "一号楼", "人民路", "1", "6"
    )
    assert frame.geometry.iloc[0].normalize().equals(
        Polygon([(121.64, 38.92), (121.641, 38.92), (121.641, 38.921), (121.64, 38.921)]).normalize()
    )


@pytest.mark.parametrize("which", ["osm_xml", "osm_pbf"])
def test_osm_roads_become_linestrings(which, request):
    frame = read_layer(request.getfixturevalue(which), layer="roads").frame
    assert frame[["osm_id", "name", "highway"]].values.tolist() == [[200, "人民路", "residential"]]
    assert frame.geometry.iloc[0].equals(LineString([(121.639, 38.919), (121.644, 38.919)]))


def test_osm_without_a_layer_asks_for_buildings_or_roads(osm_xml):
    with pytest.raises(InvalidInput, match="--layer buildings or --layer roads"):
        read_layer(osm_xml)


# --- real data ----------------------------------------------------------------------


@needs("providence/blocks.zip")
def test_providence_blocks_zip_reads_all_3014_blocks_in_nad83():
    raw = read_layer(DATA / "providence" / "blocks.zip")
    assert len(raw.frame) == 3014
    assert raw.crs.name == "EPSG:4269"
    assert int(raw.frame["TOTPOP"].sum()) == 178_040


@needs("bubenec/bubenec.gpkg")
def test_bubenec_geopackage_layers_read_by_name():
    path = DATA / "bubenec" / "bubenec.gpkg"
    with pytest.raises(InvalidInput, match="tessellation, buildings, streets, plots"):
        read_layer(path)
    assert len(read_layer(path, layer="buildings").frame) == 144
    streets = read_layer(path, layer="streets")
    assert len(streets.frame) == 35 and streets.crs.name == "EPSG:3857"


@needs("dalian/dalian_districts_cnmaps.geojson")
def test_dalian_cnmaps_file_is_read_as_gcj02_when_declared():
    raw = read_layer(DATA / "dalian" / "dalian_districts_cnmaps.geojson", crs="gcj02")
    assert raw.crs.kind == "gcj02"
    assert len(raw.frame) == 10
    assert "中山区" in raw.frame["district"].tolist()


def test_geopackage_without_a_crs_raises_and_names_the_fix(tmp_path):
    with pytest.warns(UserWarning, match="'crs' was not provided"):  # making that file is the point
        pyogrio.write_dataframe(small_frame(crs=None), tmp_path / "nocrs.gpkg")
    with pytest.raises(InvalidInput) as caught:
        read_layer(tmp_path / "nocrs.gpkg")
    assert str(caught.value) == (
        '"nocrs.gpkg" does not say which coordinate system it uses. '
        "Pass --crs, e.g. --crs 4490 or --crs EPSG:4547."
    )
