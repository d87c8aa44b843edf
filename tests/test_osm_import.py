"""A real OSM extract through the import border: what the file holds is stored, and the report adds up."""
import re

import geopandas as gpd
import osmium
import shapely
from shapely.geometry import box
from sqlalchemy import select

from gridmap import importer
from gridmap.store import models as m
from conftest import geodesic_m, shared_data

HELSINKI = ("helsinki", "Helsinki.osm.pbf")


def _adds_up(summary):
    """read = kept whole + kept clipped + rejected by the reader, per kind; and the features the reader
    kept (whole + clipped parts) are exactly those imported plus those validation rejected."""
    for count in summary.read:
        assert count.read == count.whole + count.clipped + count.n_rejected, count.to_dict()
    features = sum(c.whole + c.parts for c in summary.read)
    assert features == summary.imported + len(summary.rejected)


def _road_length_in_file(path):
    """Metres of highway in the file, by pyosmium alone: every consecutive pair of nodes both present."""
    nodes, total = {}, 0.0
    for obj in osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY):
        if obj.is_node():
            nodes[obj.id] = (obj.location.lon, obj.location.lat)
        elif "highway" in obj.tags:
            refs = [n.ref for n in obj.nodes]
            for a, b in zip(refs, refs[1:]):
                if a in nodes and b in nodes:
                    total += geodesic_m(*nodes[a], *nodes[b])
    return total


def test_helsinki_roads_are_stored_with_the_files_road_length(store):
    path = shared_data(*HELSINKI)
    summary = importer.import_file(store, "roads", path, layer="roads")
    _adds_up(summary)
    (count,) = summary.read
    assert (count.read, count.whole, count.clipped) == (2650, 2459, 118)
    assert count.rejected.keys() == {"clipped by the extract"}  # 73 ways with one node in the file
    with store.session() as s:
        geoms = s.scalars(select(m.Road.geom)).all()
    assert len(geoms) == summary.imported == count.whole + count.parts
    stored = 0.0
    for g in geoms:
        xy = shapely.get_coordinates(g)
        stored += float(geodesic_m(xy[:-1, 0], xy[:-1, 1], xy[1:, 0], xy[1:, 1]).sum())
    expected = _road_length_in_file(path)
    assert stored >= 0.99 * expected
    assert stored <= expected * (1 + 1e-6)
    assert summary.to_dict()["read"][0]["kept_clipped"] == 118


def test_helsinki_buildings_get_addresses_floors_and_an_honest_count(store):
    path = shared_data(*HELSINKI)
    summary = importer.import_file(store, "buildings", path, layer="buildings", skip_invalid=True)
    _adds_up(summary)
    ways, relations = summary.read
    assert (ways.read, ways.whole, ways.n_rejected) == (433, 385, 48)
    assert (relations.read, relations.whole, relations.n_rejected) == (67, 61, 6)
    assert set(ways.rejected) == set(relations.rejected) == {"clipped by the extract"}
    with store.session() as s:
        rows = s.execute(select(m.Building.address, m.Building.name, m.Building.floors)).all()
    assert len(rows) == summary.imported
    addresses = [r.address for r in rows]
    assert "Kaivokatu 2" in addresses  # Ateneum: addr:street + addr:housenumber with a space
    assert not [a for a in addresses if re.search(r"[a-zäöå]\d", a)]  # no "Kangaskatu12"
    by_id = [a for a in addresses if a.startswith("OSM ")]
    assert len(by_id) <= 0.3 * len(rows)  # most take addr:*, address points or a name
    assert sum(r.floors is not None for r in rows) >= 140  # 144 building ways carry building:levels


def test_the_cli_prints_what_the_file_held(app, runner):
    path = shared_data(*HELSINKI)
    result = runner.invoke(args=["import", "roads", str(path), "--layer", "roads"])
    assert result.exit_code == 0, result.output
    assert ("read 2650 road ways: 2459 kept whole, 118 kept clipped (as 125 parts), 73 rejected "
            "(clipped by the extract: 73, e.g. way ") in result.output
    assert "imported 2584, repaired 0, rejected 0" in result.output


def test_a_chinese_floors_column_gives_floors(store, tmp_path):
    # item 7 of issue 11: a 层数 column was ignored; it is the floors field under its Chinese name
    path = tmp_path / "b.geojson"
    gpd.GeoDataFrame({"地址": ["湾里路1号", "湾里路2号"], "层数": [6, 18]},
                     geometry=[box(121.603, 38.903, 121.6033, 38.9034), box(121.605, 38.903, 121.6053, 38.9034)],
                     crs=4326).to_file(path)
    importer.import_file(store, "buildings", path)
    with store.session() as s:
        assert sorted(s.execute(select(m.Building.address, m.Building.floors)).all()) == [
            ("湾里路1号", 6), ("湾里路2号", 18)]
