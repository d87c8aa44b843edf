"""OSM access tags per travel mode (issue 11, roads by mode): ``motorcar=no``, ``foot=no``,
``access=private``, ``oneway:bicycle`` … close roads to the modes they name, the most specific tag
winning. Hand-written .osm networks with exact distances per mode, through the reader, the store
(both backends) and the snapshot's graph; the Helsinki extract against pyosmium's own reading."""
import math

import geopandas as gpd
import numpy as np
import osmium
import pytest
from conftest import at, osm_road_graph, road_m, shared_data, write_osm
from shapely.geometry import LineString
from sqlalchemy import select

from gridmap import importer
from gridmap.geo import osm
from gridmap.geo.roads import RoadGraph, access_codes, access_value
from gridmap.store import models as m

A, B, C, D = (0, 0), (100, 0), (100, 100), (0, 100)
NODES = {1: A, 2: B, 3: C, 4: D}


def osm_xml(path, ways):
    """An .osm file of ways over the square's corners: (node ids, {tag: value})."""
    return write_osm(path, NODES, ways)


graph_of, dist = osm_road_graph, road_m


DETOUR = ([1, 4, 3, 2], {"highway": "residential"})  # A → D → C → B: 300 m
CASES = {
    # the A–B shortcut's tags → (walk, e-bike, car) metres from A to B and from B to A
    "motorcar=no": ({"highway": "service", "motorcar": "no"}, (100, 100, 300), (100, 100, 300)),
    "motor_vehicle=no": ({"highway": "service", "motor_vehicle": "no"}, (100, 100, 300), (100, 100, 300)),
    "foot=no": ({"highway": "residential", "foot": "no"}, (300, 100, 100), (300, 100, 100)),
    "access=private": ({"highway": "residential", "access": "private"}, (300, 300, 300), (300, 300, 300)),
    "access=no foot=yes": ({"highway": "service", "access": "no", "foot": "yes"}, (100, 300, 300), (100, 300, 300)),
    "vehicle=no bicycle=yes": ({"highway": "service", "vehicle": "no", "bicycle": "yes"},
                               (100, 100, 300), (100, 100, 300)),
    "access=destination": ({"highway": "residential", "access": "destination"}, (100, 100, 100), (100, 100, 100)),
    "access=no motorcar=yes": ({"highway": "service", "access": "no", "motorcar": "yes"},
                               (300, 300, 100), (300, 300, 100)),
    "oneway:bicycle=no": ({"highway": "residential", "oneway": "yes", "oneway:bicycle": "no"},
                          (100, 100, 100), (100, 100, 300)),
    "oneway:bicycle=yes": ({"highway": "residential", "oneway:bicycle": "yes"}, (100, 100, 100), (100, 300, 100)),
    # the class is a ceiling: an access tag closes a road, it never opens a footway to cars
    "footway motorcar=yes": ({"highway": "footway", "motorcar": "yes"}, (100, 300, 300), (100, 300, 300)),
}


@pytest.mark.parametrize("case", CASES)
def test_each_mode_keeps_out_of_the_roads_its_tags_close(tmp_path, case):
    tags, there, back = CASES[case]
    g = graph_of(osm_xml(tmp_path / "net.osm", [([1, 2], tags), DETOUR]))
    for mode, a_b, b_a in zip(("walk", "ebike", "car"), there, back):
        assert dist(g, A, B, mode) == pytest.approx(a_b, abs=0.05), (mode, "A→B")
        assert dist(g, B, A, mode) == pytest.approx(b_a, abs=0.05), (mode, "B→A")
    # the mode-less graph measures every road, whatever its tags
    assert dist(g, B, A, None) == pytest.approx(100, abs=0.05)


def test_a_road_closed_to_a_mode_with_no_other_way_leaves_it_unreachable(tmp_path):
    g = graph_of(osm_xml(tmp_path / "net.osm", [([1, 2, 3], {"highway": "service", "motorcar": "no"})]))
    assert math.isinf(dist(g, A, C, "car"))
    assert dist(g, A, C, "walk") == pytest.approx(200, abs=0.05)


@pytest.mark.parametrize("tags,code", [
    ({}, ""), ({"motorcar": "no"}, "car"), ({"access": "private"}, "walk,ebike,car"),
    ({"access": "private", "foot": "yes"}, "ebike,car"), ({"access": "destination"}, ""),
    ({"vehicle": "no"}, "ebike,car"), ({"foot": "no", "bicycle": "no"}, "walk,ebike"),
    ({"motor_vehicle": "no", "motorcar": "yes"}, ""), ({"oneway:bicycle": "no"}, "ebike-oneway=no"),
    ({"oneway:bicycle": "-1", "motorcar": "no"}, "car,ebike-oneway=-1"), ({"bicycle": "use_sidepath"}, ""),
    ({"access": "no;private"}, "walk,ebike,car"), ({"access": "NO "}, "walk,ebike,car"),
])
def test_access_tags_become_one_short_code(tags, code):
    assert access_value(tags) == code


def test_a_stored_code_reads_back_as_itself_and_a_tag_as_a_tag():
    frame = gpd.GeoDataFrame({"access": ["car", "walk,ebike", "private", "", None, "ebike-oneway=no"]},
                             geometry=[None] * 6)
    assert access_codes(frame) == ["car", "walk,ebike", "walk,ebike,car", "", "", "ebike-oneway=no"]


def test_the_store_keeps_the_code_and_the_snapshot_routes_by_it(app, tmp_path):
    store = app.extensions["gridmap.store"]
    path = osm_xml(tmp_path / "net.osm", [([1, 2], {"highway": "service", "motorcar": "no", "name": "tunnel"}),
                                          ([2, 3], {"highway": "residential", "oneway": "yes",
                                                    "oneway:bicycle": "no", "name": "contraflow"}),
                                          ([3, 4], {"highway": "residential", "foot": "no", "name": "nofoot"}),
                                          ([4, 1], {"highway": "residential", "name": "plain"})])
    importer.import_file(store, "roads", path, layer="roads")
    with store.session() as s:
        got = dict(s.execute(select(m.Road.name, m.Road.access)).all())
    assert got == {"tunnel": "car", "contraflow": "ebike-oneway=no", "nofoot": "walk", "plain": ""}
    g = app.extensions["gridmap.snapshots"].get().roads
    # cars: not through the tunnel A–B, and not against the one-way C → B: B is out of their reach
    assert math.isinf(dist(g, A, B, "car")) and math.isinf(dist(g, C, B, "car"))
    assert dist(g, B, A, "car") == pytest.approx(300, abs=0.05)      # B → C → D → A
    assert dist(g, A, B, "ebike") == pytest.approx(100, abs=0.05)    # through the tunnel
    assert dist(g, C, B, "ebike") == pytest.approx(100, abs=0.05)    # against the one-way, allowed
    assert dist(g, A, B, "walk") == pytest.approx(100, abs=0.05)
    assert dist(g, D, C, "walk") == pytest.approx(300, abs=0.05)     # D → A → B → C, round the foot=no street
    assert dist(g, D, C, "ebike") == pytest.approx(100, abs=0.05)


# -- Helsinki ----------------------------------------------------------------------------------

def test_no_car_route_in_helsinki_uses_a_way_tagged_motorcar_no():
    path = shared_data("helsinki", "Helsinki.osm.pbf")
    closed = []  # per way tagged motorcar=no (pyosmium's reading): its runs of nodes in the file
    for w in (osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY).with_locations()
              .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
              .with_filter(osmium.filter.KeyFilter("highway"))):
        if w.tags.get("motorcar") == "no":
            pts = [(n.lon, n.lat) for n in w.nodes if n.location.valid()]
            if len(pts) >= 2:
                closed.append(pts)
    assert len(closed) >= 20
    frame, _ = osm.read_roads(str(path))
    g = RoadGraph.from_lines(gpd.GeoDataFrame(frame.rename(columns={"highway": "kind"}), crs=4326))

    def mids(net):
        return {tuple(np.round((xy[:2] + xy[2:]) / 2, 2)) for xy in net.seg_xy}

    car, walk = mids(g._net("car")), mids(g._net("walk"))
    tunnel = set()
    for pts in closed:
        x, y = g.metric.xy(*np.array(pts).T)
        tunnel |= {(round((x[i] + x[i + 1]) / 2, 2), round((y[i] + y[i + 1]) / 2, 2)) for i in range(len(x) - 1)}
    assert not tunnel & car  # no edge of a motorcar=no way is in the car's graph
    assert len(tunnel & walk) >= 0.5 * len(tunnel)  # while walkers use them (the test is not vacuous)
    # and car distances across those ways are what a graph without them gives
    without = RoadGraph.from_lines(gpd.GeoDataFrame(frame[frame["motorcar"] != "no"].rename(
        columns={"highway": "kind"}), crs=4326))
    shorter = 0
    for pts in closed[:20]:
        a, b = pts[0], pts[-1]
        got = g.distance_m(*a, *b, mode="car")
        assert got == pytest.approx(without.distance_m(*a, *b, mode="car"), rel=1e-9)
        shorter += g.distance_m(*a, *b, mode="walk") < got - 1
    assert shorter >= 5  # the ways were shortcuts for someone


def test_file_columns_and_an_exported_code_come_back_the_same(app, tmp_path):
    from gridmap.importer.export import export_file
    store = app.extensions["gridmap.store"]
    line = [LineString([at(*A), at(*B)]), LineString([at(*B), at(*C)]), LineString([at(*C), at(*D)])]
    gpd.GeoDataFrame({"name": ["x", "y", "z"], "highway": ["service", "residential", "residential"],
                      "motorcar": ["no", None, None], "access": [None, "private", None],
                      "foot": [None, "yes", None], "oneway:bicycle": [None, None, "no"]},
                     geometry=line, crs=4326).to_file(tmp_path / "in.geojson")
    importer.import_file(store, "roads", tmp_path / "in.geojson")
    want = {"x": "car", "y": "ebike,car", "z": "ebike-oneway=no"}
    with store.session() as s:
        assert dict(s.execute(select(m.Road.name, m.Road.access)).all()) == want
    export_file(store, "roads", tmp_path / "out.geojson")
    with store.transaction() as s:
        s.execute(m.Road.__table__.delete())
    importer.import_file(store, "roads", tmp_path / "out.geojson")
    with store.session() as s:
        assert sorted(s.execute(select(m.Road.name, m.Road.access)).all()) == sorted(want.items())
