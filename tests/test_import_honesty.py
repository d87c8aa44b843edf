"""The import border is honest: a Shapefile's text encoding is chosen and reported, never guessed silently;
geometry nested or sized beyond the limits is refused by row before GEOS sees it, and the process lives."""
import os
import sqlite3
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import geopandas as gpd
import pyogrio
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


def shapefile(tmp_path, encoding, *, cpg=None, name="communities"):
    """COMMUNITIES as a Shapefile whose DBF is in ``encoding``; its .cpg deleted, or rewritten to ``cpg``."""
    path = tmp_path / f"{name}.shp"
    pyogrio.write_dataframe(COMMUNITIES, path, encoding=encoding)
    path.with_suffix(".cpg").unlink()
    if cpg is not None:
        path.with_suffix(".cpg").write_text(cpg)
    return path


def zipped(path, *, extra=()):
    """The Shapefile at ``path`` as a .zip beside it; ``extra`` adds (member name, bytes)."""
    out = path.with_suffix(".zip")
    with zipfile.ZipFile(out, "w") as zf:
        for part in sorted(path.parent.glob(path.stem + ".*")):
            if part.suffix != ".zip":
                zf.write(part, arcname=part.name)
        for member, data in extra:
            zf.writestr(member, data)
    return out


def corrupt_first_name(path, encoding):
    """Overwrite the first byte pair of 林 in the DBF with 0xFF 0xFF, invalid in GBK, GB18030 and UTF-8."""
    dbf = path.with_suffix(".dbf")
    data = bytearray(dbf.read_bytes())
    at = data.index("林".encode(encoding))
    data[at:at + 2] = b"\xff\xff"
    dbf.write_bytes(bytes(data))


def set_language_driver(path, ldid):
    dbf = path.with_suffix(".dbf")
    data = bytearray(dbf.read_bytes())
    data[29] = ldid
    dbf.write_bytes(bytes(data))


# ---- a Shapefile without .cpg -------------------------------------------------------------


@pytest.mark.parametrize("encoding,read_as", [("GBK", "GB18030"), ("UTF-8", "UTF-8")])
def test_a_shapefile_without_cpg_arrives_in_chinese_and_the_report_names_the_encoding(
        store, tmp_path, encoding, read_as):
    summary = importer.import_file(store, "communities", shapefile(tmp_path, encoding))
    assert stored_names(store) == NAMES
    assert summary.notes[0].startswith(f"communities.dbf: text read as {read_as}, detected: it has no .cpg")


def test_column_names_in_gbk_are_decoded_too(tmp_path):
    raw = read_layer(shapefile(tmp_path, "GBK"))
    assert raw.frame["街道"].tolist() == ["湾里街道", "湾里街道"]


def test_the_language_driver_byte_of_the_dbf_header_is_believed_when_it_names_a_code_page(tmp_path):
    path = shapefile(tmp_path, "GBK")
    set_language_driver(path, 0x4D)  # ESRI's "Chinese GBK (PRC)"
    raw = read_layer(path)
    assert raw.frame["name"].tolist() == NAMES
    assert "language driver byte (0x4D)" in raw.notes[0] and "CP936" in raw.notes[0]


def test_utf8_text_wins_over_a_language_driver_byte_naming_gbk_and_the_report_says_why(tmp_path):
    path = shapefile(tmp_path, "UTF-8")
    set_language_driver(path, 0x4D)  # these UTF-8 bytes are "valid GBK" too, as 鏋楄寕绀惧尯
    raw = read_layer(path)
    assert raw.frame["name"].tolist() == NAMES
    assert raw.notes[0].startswith("communities.dbf: text read as UTF-8, detected: it has no .cpg and all its text "
                                   "is valid UTF-8 (its DBF header's language driver byte (0x4D) says cp936")


def test_a_single_byte_code_page_is_known_only_from_the_language_driver_byte(tmp_path):
    # cp1251 bytes are valid GB18030 too (as nonsense): only the header tells them apart
    path = tmp_path / "moscow.shp"
    pyogrio.write_dataframe(gpd.GeoDataFrame({"name": ["Москва"]}, geometry=[box(37, 55, 38, 56)], crs=4326),
                            path, encoding="CP1251")
    path.with_suffix(".cpg").unlink()
    set_language_driver(path, 0xC9)  # ESRI's "Russian Windows"
    raw = read_layer(path)
    assert raw.frame["name"].tolist() == ["Москва"]
    assert "language driver byte (0xC9) says (cp1251; it has no .cpg)" in raw.notes[0]


def test_the_ansi_language_driver_says_nothing_and_detection_decides(tmp_path):
    path = shapefile(tmp_path, "GBK")
    set_language_driver(path, 0x57)  # "current ANSI code page": GDAL would read ISO-8859-1, i.e. mojibake
    raw = read_layer(path)
    assert raw.frame["name"].tolist() == NAMES
    assert "(0x57) names no particular code page" in raw.notes[0]


def test_an_ascii_shapefile_needs_no_encoding_and_says_why(tmp_path):
    path = tmp_path / "plain.shp"
    pyogrio.write_dataframe(COMMUNITIES[["code", "geometry"]], path)
    path.with_suffix(".cpg").unlink()
    assert read_layer(path).notes == [
        "plain.dbf: text read as ASCII, as it has no .cpg and all its text is ASCII, which every encoding reads alike."]


# ---- declared encodings: --encoding and .cpg ----------------------------------------------


def test_an_explicit_encoding_wins_and_is_named(store, tmp_path):
    summary = importer.import_file(store, "communities", shapefile(tmp_path, "GBK"), encoding="GBK")
    assert stored_names(store) == NAMES
    assert summary.notes[0] == ("communities.dbf: text read as GB18030, as --encoding GBK says; "
                                "GB18030 contains GBK and reads it alike.")


@pytest.mark.parametrize("cpg", ["GBK", "936", "CP936", "ANSI 936", "GB18030"])
def test_a_cpg_naming_gbk_in_any_usual_spelling_is_honoured(tmp_path, cpg):
    raw = read_layer(shapefile(tmp_path, "GBK", cpg=cpg))
    assert raw.frame["name"].tolist() == NAMES
    assert f"as its .cpg says: {cpg}" in raw.notes[0]


def test_utf8_text_read_as_declared_gbk_is_flagged_as_also_valid_utf8(tmp_path):
    # UTF-8 bytes of Chinese are often valid GBK too (as mojibake): the file says GBK, so GBK it is,
    # but the report says what else would have read
    raw = read_layer(shapefile(tmp_path, "UTF-8", cpg="GBK"))
    assert raw.frame["name"].tolist() != NAMES
    assert "also valid UTF-8" in raw.notes[0] and "--encoding UTF-8" in raw.notes[0]


def test_text_not_valid_in_the_cpg_encoding_is_refused_with_nothing_written(store, tmp_path):
    path = shapefile(tmp_path, "GBK", cpg="GBK")
    corrupt_first_name(path, "GBK")
    with pytest.raises(InvalidInput) as caught:
        importer.import_file(store, "communities", path)
    err = caught.value
    assert err.message.startswith("communities.dbf: the text in row 1, column 'name' is not valid GBK "
                                  "(as its .cpg says: GBK): b'\\xff\\xff")
    assert "--encoding GBK" in err.fix and ".cpg" in err.fix
    assert count(store) == 0


def test_a_cpg_saying_utf8_over_gbk_bytes_is_refused_and_the_fix_names_gbk(store, tmp_path):
    path = shapefile(tmp_path, "GBK", cpg="UTF-8")
    with pytest.raises(InvalidInput) as caught:
        importer.import_file(store, "communities", path)
    assert "is not valid UTF-8 (as its .cpg says: UTF-8)" in caught.value.message
    assert caught.value.fix == "Its text does decode as GBK: pass --encoding GBK, or correct the .cpg."
    assert count(store) == 0
    importer.import_file(store, "communities", path, encoding="GBK")
    assert stored_names(store) == NAMES


def test_text_valid_in_neither_utf8_nor_gb18030_is_refused_naming_both(store, tmp_path):
    path = shapefile(tmp_path, "GBK")
    corrupt_first_name(path, "GBK")
    with pytest.raises(InvalidInput) as caught:
        importer.import_file(store, "communities", path)
    assert caught.value.message.startswith(
        "communities.dbf: it has no .cpg and its text is neither valid UTF-8 nor GB18030 (the text in row 1, "
        "column 'name': b'\\xff\\xff")
    assert "--encoding GBK" in caught.value.fix and ".cpg" in caught.value.fix
    assert count(store) == 0


def test_an_unknown_encoding_name_in_a_cpg_is_refused(tmp_path):
    with pytest.raises(InvalidInput, match='its .cpg names the encoding "klingon", which is not known'):
        read_layer(shapefile(tmp_path, "GBK", cpg="klingon"))


# ---- zipped Shapefiles --------------------------------------------------------------------


def test_a_zipped_gbk_shapefile_without_cpg_is_detected_and_named_by_zip_and_member(store, tmp_path):
    summary = importer.import_file(store, "communities", zipped(shapefile(tmp_path, "GBK")))
    assert stored_names(store) == NAMES
    assert summary.notes[0].startswith("communities.zip › communities.dbf: text read as GB18030, detected")


def test_a_cpg_inside_a_zip_is_honoured_and_one_outside_its_root_is_not(tmp_path):
    with_cpg = zipped(shapefile(tmp_path, "GBK", cpg="GBK", name="inside"))
    assert "as its .cpg says: GBK" in read_layer(with_cpg).notes[0]
    # a member named ../outside.cpg is outside the archive: ignored, as GDAL ignores it
    escaping = zipped(shapefile(tmp_path, "GBK", name="outside"), extra=[("../outside.cpg", b"BIG5")])
    raw = read_layer(escaping)
    assert raw.frame["name"].tolist() == NAMES and "detected: it has no .cpg" in raw.notes[0]


def test_a_zipped_shapefile_with_invalid_text_is_refused_with_nothing_written(store, tmp_path):
    path = shapefile(tmp_path, "UTF-8", cpg="UTF-8")
    corrupt_first_name(path, "UTF-8")
    with pytest.raises(InvalidInput, match="communities.zip › communities.dbf: the text in row 1"):
        importer.import_file(store, "communities", zipped(path))
    assert count(store) == 0


# ---- the command line ---------------------------------------------------------------------


def test_gridmap_import_prints_the_encoding_it_chose(runner, store, tmp_path):
    out = runner.invoke(args=["import", "communities", str(shapefile(tmp_path, "GBK"))])
    assert out.exit_code == 0, out.output
    assert "communities.dbf: text read as GB18030, detected: it has no .cpg" in out.output
    assert stored_names(store) == NAMES


def test_gridmap_import_refuses_undecodable_text_with_exit_status_2(runner, store, tmp_path):
    path = shapefile(tmp_path, "GBK")
    corrupt_first_name(path, "GBK")
    out = runner.invoke(args=["import", "communities", str(path)])
    assert out.exit_code == 2
    assert "neither valid UTF-8 nor GB18030" in out.output and "--encoding GBK" in out.output
    assert count(store) == 0


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
    message, fix, code, params = bounds.wkt_problem(nested_wkt(bounds.MAX_DEPTH + 1), "wkt")
    assert (message % params, code) == ("wkt nests 65 levels deep, more than the limit of 64", "too_deep")
    assert "flat geometry" in fix


def test_wkt_vertices_are_counted_exactly_on_the_text(monkeypatch):
    monkeypatch.setattr(bounds, "MAX_VERTICES", 4)
    four = "MULTIPOLYGON (((0 0, 1 0, 1 1,0 0)))"
    assert bounds.wkt_problem(four, "wkt") is None
    message, _, code, params = bounds.wkt_problem("MULTIPOINT ((0 0), (1 0), ( 1 1),(2 2), (3 3))", "wkt")
    assert (message % params, code) == ("wkt has 5 vertices, more than the limit of 4 per feature", "too_many_vertices")


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


def test_a_string_of_escaped_quotes_across_chunks_is_scanned_in_linear_time(tmp_path):
    # a scanner that retried at every escaped quote would take hours on these 4 MB
    path = tmp_path / "quotes.geojson"
    path.write_bytes(b'{"type":"FeatureCollection","name":"' + b'\\"' * 2_000_000 + b'","features":[]}')
    with open(path, "rb") as stream:
        bounds.check_json(stream, str(path))


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


def test_geopackage_wkb_nested_or_claiming_100_million_parts_is_a_row_problem_not_a_crash(store, tmp_path):
    """GDAL bounds WKB itself (32 levels; counts checked against the blob): such rows arrive without geometry."""
    path = tmp_path / "c.gpkg"
    pyogrio.write_dataframe(COMMUNITIES, path, layer="c", SPATIAL_INDEX="NO")
    point = struct.pack("<BI2d", 1, 1, 121.605, 38.91)
    deep = b"".join([struct.pack("<BII", 1, 7, 1)] * 1000) + point  # GEOMETRYCOLLECTION × 1000
    claims = struct.pack("<BII", 1, 7, 100_000_000) + point  # says 100 M parts, holds one
    with sqlite3.connect(path) as db:
        for (trigger,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            db.execute(f'DROP TRIGGER "{trigger}"')
        header = db.execute("SELECT substr(geom, 1, 8) FROM c").fetchone()[0][:3] + b"\x01" + bytes(4)  # no envelope
        for fid, wkb in ((1, deep), (2, claims)):
            db.execute("UPDATE c SET geom = ? WHERE fid = ?", (header + wkb, fid))
    with pytest.raises(InvalidInput) as caught:
        importer.import_file(store, "communities", path)
    assert [(p["row"], p["message"]) for p in caught.value.details["problems"]] == [
        (1, "the feature has no geometry"), (2, "the feature has no geometry")]
    assert count(store) == 0
