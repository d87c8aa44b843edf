"""The OSM reader keeps what an extract holds: runs of clipped ways, multipolygons, addresses, floors — all counted."""
import osmium
import pytest
import shapely
from shapely.geometry import Polygon

from gridmap.geo import osm
from gridmap.geo.io import read_layer
from conftest import geodesic_m, shared_data

# Nodes 1-9 on a line of latitude 38.92; a way may name nodes the file lacks (900+), as an extract's do.
_NODES = {i: (121.640 + 0.001 * i, 38.920) for i in range(1, 10)}
_NODES.update({20: (121.650, 38.930), 21: (121.660, 38.930), 22: (121.660, 38.940), 23: (121.650, 38.940),
               24: (121.653, 38.933), 25: (121.657, 38.933), 26: (121.657, 38.937), 27: (121.653, 38.937),
               30: (121.670, 38.930), 31: (121.671, 38.930), 32: (121.671, 38.931), 33: (121.670, 38.931),
               40: (121.680, 38.930), 41: (121.681, 38.930), 42: (121.681, 38.931), 43: (121.680, 38.931),
               44: (121.6805, 38.9305)})


def _way(way_id, refs, **tags):
    return (f"<way id='{way_id}' version='1'>" + "".join(f"<nd ref='{r}'/>" for r in refs)
            + "".join(f"<tag k='{k.replace('__', ':')}' v='{v}'/>" for k, v in tags.items()) + "</way>\n")


def _osm(tmp_path, body, nodes=_NODES, extra_nodes=""):
    path = tmp_path / "edge.osm"
    path.write_text("<?xml version='1.0' encoding='UTF-8'?>\n<osm version='0.6'>\n"
                    + "".join(f"<node id='{i}' version='1' lon='{x}' lat='{y}'/>\n" for i, (x, y) in nodes.items())
                    + extra_nodes + body + "</osm>\n", encoding="utf-8")
    return path


def _adds_up(count):
    assert count.read == count.whole + count.clipped + count.n_rejected


def test_a_way_with_a_gap_in_the_middle_becomes_two_features(tmp_path):
    path = _osm(tmp_path, _way(1, [1, 2, 3, 901, 4, 5], highway="residential", name="Kangaskatu"))
    raw = read_layer(path, layer="roads")
    (count,) = raw.counts
    assert (count.read, count.whole, count.clipped, count.parts, count.n_rejected) == (1, 0, 1, 2, 0)
    _adds_up(count)
    assert raw.frame["osm_part"].tolist() == [1, 2]
    assert [list(g.coords) for g in raw.frame.geometry] == [[_NODES[1], _NODES[2], _NODES[3]], [_NODES[4], _NODES[5]]]
    assert set(raw.frame["name"]) == {"Kangaskatu"}


def test_a_way_leaving_the_file_at_both_ends_keeps_its_middle(tmp_path):
    path = _osm(tmp_path, _way(2, [901, 902, 6, 7, 8, 903], highway="primary"))
    frame = read_layer(path, layer="roads").frame
    assert [list(g.coords) for g in frame.geometry] == [[_NODES[6], _NODES[7], _NODES[8]]]


def test_ways_with_fewer_than_two_points_in_the_file_are_rejected_with_the_reason(tmp_path):
    body = (_way(3, [901, 9, 902], highway="service") + _way(4, [1, 1], highway="footway")
            + _way(5, [1, 2], highway="footway"))
    raw = read_layer(_osm(tmp_path, body), layer="roads")
    (count,) = raw.counts
    assert (count.read, count.whole, count.clipped, count.n_rejected) == (3, 1, 0, 2)
    _adds_up(count)
    assert count.rejected == {"clipped by the extract": ["way 3 (1 of its 3 nodes in the file)"],
                              "fewer than two distinct points": ["way 4"]}
    assert raw.frame["osm_id"].tolist() == [5] and raw.frame["osm_part"].tolist() == [0]


def test_a_multipolygon_building_keeps_its_hole(tmp_path):
    body = (_way(10, [20, 21, 22]) + _way(11, [22, 23, 20]) + _way(12, [24, 25, 26, 27, 24])
            + "<relation id='50' version='1'><member type='way' ref='10' role='outer'/>"
              "<member type='way' ref='11' role='outer'/><member type='way' ref='12' role='inner'/>"
              "<tag k='type' v='multipolygon'/><tag k='building' v='yes'/>"
              "<tag k='addr:street' v='Kangaskatu'/><tag k='addr:housenumber' v='12'/></relation>\n")
    raw = read_layer(_osm(tmp_path, body), layer="buildings")
    ways, relations = raw.counts
    assert (ways.read, relations.read, relations.whole) == (0, 1, 1)
    row = raw.frame.iloc[0]
    assert (row["osm_type"], row["osm_id"], row["osm_address"]) == ("relation", 50, "Kangaskatu 12")
    outer = [_NODES[i] for i in (20, 21, 22, 23)]
    inner = [_NODES[i] for i in (24, 25, 26, 27)]
    assert row.geometry.geom_type == "Polygon" and len(row.geometry.interiors) == 1
    assert row.geometry.normalize().equals(Polygon(outer, [inner]).normalize())


def test_buildings_cut_by_the_extract_are_rejected_not_drawn_partial(tmp_path):
    body = (_way(13, [30, 31, 32, 904, 30], building="yes")  # a corner outside the file
            + _way(14, [20, 21, 905]) + _way(15, [905, 23, 20])
            + "<relation id='51' version='1'><member type='way' ref='14' role='outer'/>"
              "<member type='way' ref='15' role='outer'/><member type='way' ref='906' role='inner'/>"
              "<tag k='type' v='multipolygon'/><tag k='building' v='yes'/></relation>\n"
            + _way(16, [40, 41, 42], building="yes")  # not closed
            + _way(17, [40, 41, 42, 43, 40], building="yes"))
    raw = read_layer(_osm(tmp_path, body), layer="buildings")
    ways, relations = raw.counts
    for count in raw.counts:
        _adds_up(count)
    assert (ways.read, ways.whole, ways.n_rejected) == (3, 1, 2)
    assert ways.rejected == {"clipped by the extract": ["way 13 (1 of its 5 nodes outside the file)"],
                             "not closed, so it has no area": ["way 16"]}
    assert relations.rejected == {
        "clipped by the extract": ["relation 51 (1 member ways outside the file, 2 cut)"]}
    assert raw.frame["osm_id"].tolist() == [17]
    assert sum(c.features for c in raw.counts) == len(raw.frame)


@pytest.mark.parametrize("tags,address", [
    ({"addr__street": "Kangaskatu", "addr__housenumber": "12"}, "Kangaskatu 12"),
    ({"addr__street": "城志街", "addr__housenumber": "1"}, "城志街1号"),
    ({"addr__street": "湾里路", "addr__housenumber": "12号"}, "湾里路12号"),
    ({"addr__street": "湾里路", "addr__housenumber": "4-7"}, "湾里路4-7号"),
    ({"addr__place": "Suomenlinna", "addr__housenumber": "C 83"}, "Suomenlinna C 83"),
    ({"addr__full": "大连市金州区湾里路3号", "addr__street": "湾里路", "addr__housenumber": "9"}, "大连市金州区湾里路3号"),
    ({"name": "Ateneum", "addr__street": "Kaivokatu"}, "Ateneum"),
    ({}, ""),
])
def test_addresses_are_written_the_way_the_locale_writes_them(tmp_path, tags, address):
    raw = read_layer(_osm(tmp_path, _way(17, [40, 41, 42, 43, 40], building="yes", **tags)), layer="buildings")
    assert raw.frame["osm_address"].tolist() == [address]


def test_a_building_without_addr_takes_the_address_points_inside_it(tmp_path):
    points = ("<node id='60' version='1' lon='121.6802' lat='38.9302'><tag k='addr:street' v='Kangaskatu'/>"
              "<tag k='addr:housenumber' v='14'/></node>\n"
              "<node id='61' version='1' lon='121.6808' lat='38.9308'><tag k='addr:street' v='Kangaskatu'/>"
              "<tag k='addr:housenumber' v='12'/></node>\n"
              "<node id='62' version='1' lon='121.6900' lat='38.9400'><tag k='addr:street' v='Muukatu'/>"
              "<tag k='addr:housenumber' v='1'/></node>\n")
    body = _way(17, [40, 41, 42, 43, 40], building="yes") + _way(18, [30, 31, 32, 33, 30], building="yes")
    raw = read_layer(_osm(tmp_path, body, extra_nodes=points), layer="buildings")
    assert raw.frame.set_index("osm_id")["osm_address"].to_dict() == {17: "Kangaskatu 12, 14", 18: ""}
    assert "1 buildings without addr:* of their own took the address points on or in them" in raw.notes


def test_building_levels_become_whole_floors(tmp_path):
    body = (_way(17, [40, 41, 42, 43, 40], building="yes", building__levels="6")
            + _way(18, [30, 31, 32, 33, 30], building="yes", building__levels="2.5")
            + _way(19, [20, 21, 22, 23, 20], building="yes", building__levels="3-4"))
    raw = read_layer(_osm(tmp_path, body), layer="buildings")
    floors = raw.frame.set_index("osm_id")["floors"]
    assert floors[17] == 6 and floors[18] == 3 and floors.isna()[19]
    assert any("building:levels that is not a number of floors (e.g. '3-4')" in n for n in raw.notes)


# --- the real extract and extracts cut from it --------------------------------------------


def _independent_road_length(path):
    """Metres of highway the file holds, by pyosmium alone: consecutive pairs of nodes both present."""
    nodes = {}
    total, ways, clipped = 0.0, 0, 0
    for obj in osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY):
        if obj.is_node():
            nodes[obj.id] = (obj.location.lon, obj.location.lat)
        elif "highway" in obj.tags:
            ways += 1
            refs = [n.ref for n in obj.nodes]
            clipped += any(r not in nodes for r in refs)
            pairs = [(nodes[a], nodes[b]) for a, b in zip(refs, refs[1:]) if a in nodes and b in nodes]
            if pairs:
                (x1, y1), (x2, y2) = zip(*[p[0] for p in pairs]), zip(*[p[1] for p in pairs])
                total += float(geodesic_m(x1, y1, x2, y2).sum())
    return total, ways, clipped


def _line_length(geoms):
    total = 0.0
    for g in geoms:
        xy = shapely.get_coordinates(g)
        total += float(geodesic_m(xy[:-1, 0], xy[:-1, 1], xy[1:, 0], xy[1:, 1]).sum())
    return total


def test_helsinki_roads_keep_the_files_road_length():
    path = shared_data("helsinki", "Helsinki.osm.pbf")
    expected, ways, clipped = _independent_road_length(path)
    raw = read_layer(path, layer="roads")
    (count,) = raw.counts
    _adds_up(count)
    assert count.read == ways == 2650
    # every way the file cuts is either kept in parts or holds fewer than two of its nodes
    assert count.clipped + len(count.rejected.get("clipped by the extract", [])) == clipped == 191
    assert count.features == len(raw.frame)
    kept = _line_length(raw.frame.geometry)
    assert 0.99 * expected <= kept <= expected * (1 + 1e-9)


def _cut(source, target, bbox):
    """Write the nodes inside ``bbox`` and every way touching them, with all their node refs."""
    west, south, east, north = bbox
    inside = set()
    writer = osmium.SimpleWriter(str(target))
    try:
        for obj in osmium.FileProcessor(str(source), osmium.osm.NODE | osmium.osm.WAY):
            if obj.is_node():
                if west <= obj.location.lon <= east and south <= obj.location.lat <= north:
                    inside.add(obj.id)
                    writer.add_node(obj)
            elif any(n.ref in inside for n in obj.nodes):
                writer.add_way(obj)
    finally:
        writer.close()
    return inside


def test_an_extract_cut_from_helsinki_keeps_ways_that_leave_it_at_both_ends(tmp_path):
    source = shared_data("helsinki", "Helsinki.osm.pbf")
    target = tmp_path / "centre.osm.pbf"
    inside = _cut(source, target, (24.935, 60.163, 24.950, 60.171))
    both_ends = {}
    for way in osmium.FileProcessor(str(target), osmium.osm.WAY):
        refs = [n.ref for n in way.nodes]
        if "highway" in way.tags and refs[0] not in inside and refs[-1] not in inside:
            both_ends[way.id] = sum(a in inside and b in inside for a, b in zip(refs, refs[1:]))
    leaving = {w for w, pairs in both_ends.items() if pairs}
    assert len(leaving) >= 5  # the cut must make the case it tests (9 ways with this box)
    raw = read_layer(target, layer="roads")
    (count,) = raw.counts
    _adds_up(count)
    assert leaving <= set(raw.frame["osm_id"])
    expected, _, _ = _independent_road_length(target)
    assert _line_length(raw.frame.geometry) == pytest.approx(expected, rel=1e-9)
    assert count.clipped >= len(leaving)


def test_many_address_points_join_within_the_registers_address_length():
    many = [(f"Katu{i:03d} {n}", f"Katu{i:03d}", str(n)) for i in range(40) for n in (1, 3)]
    text = osm._join_addresses(many)
    assert len(text) <= osm.ADDRESS_LIMIT and text.startswith("Katu000 1, 3; Katu001 1, 3") and text.endswith(" …")
    assert osm._join_addresses([("Aleksanterinkatu 15 B", "Aleksanterinkatu", "15 B"),
                                ("Aleksanterinkatu 15", "Aleksanterinkatu", "15"),
                                ("湾里路1号", "湾里路", "1")]) == "Aleksanterinkatu 15, 15 B; 湾里路1号"
