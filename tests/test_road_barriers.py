"""Barrier nodes on roads close them to the modes they block (issue 11, roads by mode): a bollard
keeps cars out, a gate follows its access tags, a fence stops everyone; ``*:conditional`` is not
read. Hand-written .osm networks with exact distances per mode, through the reader, the store
(both backends) and the snapshot; the Helsinki extract's bollards against pyosmium's reading."""
import geopandas as gpd
import osmium
import pytest
from conftest import osm_road_graph, road_m, shared_data, write_osm
from sqlalchemy import select

from gridmap import importer
from gridmap.geo import osm
from gridmap.geo.roads import MODES, ROAD_CLASSES, RoadGraph, access_codes, barrier_closes
from gridmap.store import models as m

#:   D(0,100) ------------ C(100,100)      the square's three sides A–D–C–B (300 m) are a detour
#:   |                      |              round the shortcut A–M–B (100 m), whose middle node M
#:   A(0,0) ---- M ------- B(100,0)        carries the barrier under test
A, M, B, C, D = (0, 0), (50, 0), (100, 0), (100, 100), (0, 100)
NODES = {1: A, 2: B, 3: C, 4: D, 5: M}


def osm_xml(path, ways, node_tags=None):
    """An .osm file over the square: ways as (node ids, {tag: value}), tags of node M."""
    return write_osm(path, NODES, ways, {5: node_tags or {}})


SHORTCUT = ([1, 5, 2], {"highway": "service"})
DETOUR = ([1, 4, 3, 2], {"highway": "residential"})


graph_of, dist = osm_road_graph, road_m


OPEN, SHUT = 100, 300
CASES = {
    # the barrier node's tags → A to B (walk, e-bike, car), metres
    "bollard": ({"barrier": "bollard"}, (OPEN, OPEN, SHUT)),
    "block": ({"barrier": "block"}, (OPEN, OPEN, SHUT)),
    "gate": ({"barrier": "gate"}, (OPEN, OPEN, OPEN)),
    "lift_gate": ({"barrier": "lift_gate"}, (OPEN, OPEN, OPEN)),
    "gate access=private": ({"barrier": "gate", "access": "private"}, (SHUT, SHUT, SHUT)),
    "gate access=private foot=yes": ({"barrier": "gate", "access": "private", "foot": "yes"}, (OPEN, SHUT, SHUT)),
    "gate motor_vehicle=no": ({"barrier": "gate", "motor_vehicle": "no"}, (OPEN, OPEN, SHUT)),
    "gate locked=yes": ({"barrier": "gate", "locked": "yes"}, (SHUT, SHUT, SHUT)),
    "gate locked=yes foot=yes": ({"barrier": "gate", "locked": "yes", "foot": "yes"}, (OPEN, SHUT, SHUT)),
    "bollard bicycle=no": ({"barrier": "bollard", "bicycle": "no"}, (OPEN, SHUT, SHUT)),
    "bollard motor_vehicle=yes": ({"barrier": "bollard", "motor_vehicle": "yes"}, (OPEN, OPEN, OPEN)),
    "kissing_gate": ({"barrier": "kissing_gate"}, (OPEN, SHUT, SHUT)),
    "fence": ({"barrier": "fence"}, (SHUT, SHUT, SHUT)),
    "an unknown barrier": ({"barrier": "spikes"}, (OPEN, SHUT, SHUT)),
    # conditions (a time, a weight) are not evaluated: neither a conditional closing nor opening counts
    "gate access:conditional=no": ({"barrier": "gate", "access:conditional": "no @ (22:00-06:00)"},
                                   (OPEN, OPEN, OPEN)),
    "bollard motor_vehicle:conditional=yes": ({"barrier": "bollard",
                                               "motor_vehicle:conditional": "yes @ (Mo-Fr 07:00-09:00)"},
                                              (OPEN, OPEN, SHUT)),
    "no barrier, a conditional access": ({"access:conditional": "no @ (22:00-06:00)"}, (OPEN, OPEN, OPEN)),
}


@pytest.mark.parametrize("case", CASES)
def test_each_mode_is_kept_from_passing_the_barriers_that_close_it_and_reaches_them_from_both_sides(tmp_path, case):
    tags, there = CASES[case]
    g = graph_of(osm_xml(tmp_path / "net.osm", [SHORTCUT, DETOUR], node_tags=tags))
    for mode, a_b in zip(MODES, there):
        assert dist(g, A, B, mode) == pytest.approx(a_b, abs=0.05), (mode, "A→B")
        assert dist(g, B, A, mode) == pytest.approx(a_b, abs=0.05), (mode, "B→A")
        # up to the barrier from either side, whatever it closes: a responder can get there
        assert dist(g, A, (49, 0), mode) == pytest.approx(49, abs=0.05), (mode, "A→M")
        assert dist(g, B, (51, 0), mode) == pytest.approx(49, abs=0.05), (mode, "B→M")
        # and past it only where it is open
        assert dist(g, B, (49, 0), mode) == pytest.approx(51 if a_b == OPEN else 349, abs=0.05), (mode, "B→M→")
    assert dist(g, A, B, None) == pytest.approx(OPEN, abs=0.05)  # the mode-less graph measures every road


def test_a_barrier_where_two_ways_meet_closes_the_junction_on_every_way(tmp_path):
    """The bollard stands on M, where the shortcut's two halves (two ways) meet."""
    g = graph_of(osm_xml(tmp_path / "net.osm", [([1, 5], {"highway": "service"}), ([5, 2], {"highway": "service"}),
                                                DETOUR], node_tags={"barrier": "bollard"}))
    assert dist(g, A, B, "car") == pytest.approx(SHUT, abs=0.05)
    assert dist(g, A, B, "walk") == pytest.approx(OPEN, abs=0.05)


def test_barrier_codes_name_the_vertex_and_the_modes(tmp_path):
    assert barrier_closes({"barrier": "bollard"}) == ("car",)
    assert barrier_closes({"barrier": "gate", "access": "no", "foot": "yes"}) == ("ebike", "car")
    assert barrier_closes({"highway": "crossing"}) == ()
    frame, _ = osm.read_roads(str(osm_xml(tmp_path / "net.osm", [SHORTCUT, DETOUR], node_tags={"barrier": "bollard"})))
    assert dict(zip(frame["osm_id"], frame["barriers"])) == {10: "barrier@1=car", 11: ""}
    # the code carries them beside the road's own access words, and reads back as itself
    frame["motorcar"] = [None, "no"]
    codes = access_codes(frame)
    assert codes == ["barrier@1=car", "car"]
    assert access_codes(gpd.GeoDataFrame({"access": codes}, geometry=[None, None])) == codes


def test_the_store_keeps_the_barriers_and_the_snapshot_routes_round_them(app, tmp_path):
    store = app.extensions["gridmap.store"]
    path = osm_xml(tmp_path / "net.osm", [([1, 5, 2], {"highway": "service", "name": "short",
                                                       "oneway:bicycle": "no", "motorcar": "no"}),
                                          ([1, 4, 3, 2], {"highway": "residential", "name": "long"})],
                   node_tags={"barrier": "kissing_gate"})
    importer.import_file(store, "roads", path, layer="roads")
    with store.session() as s:
        got = dict(s.execute(select(m.Road.name, m.Road.access)).all())
    assert got == {"short": "car,ebike-oneway=no,barrier@1=ebike+car", "long": ""}
    g = app.extensions["gridmap.snapshots"].get().roads
    assert [dist(g, A, B, mode) for mode in MODES] == pytest.approx([OPEN, SHUT, SHUT], abs=0.05)


# -- Helsinki ----------------------------------------------------------------------------------

def _helsinki_barriers(path):
    """pyosmium's own reading of the extract: every barrier node on a road way, as
    (node tags, its position, the way's tags, the way's nodes before and after it or None at an end)."""
    barriers = {n.id: dict(n.tags) for n in osmium.FileProcessor(path, osmium.osm.NODE)
                .with_filter(osmium.filter.KeyFilter("barrier"))}
    found = []
    for w in (osmium.FileProcessor(path, osmium.osm.NODE | osmium.osm.WAY).with_locations()
              .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
              .with_filter(osmium.filter.KeyFilter("highway"))):
        nodes = list(w.nodes)
        for i, n in enumerate(nodes):
            if n.ref in barriers and n.location.valid():
                around = None
                if 0 < i < len(nodes) - 1 and all(x.location.valid() for x in nodes[i - 1:i + 2]):
                    around = ((nodes[i - 1].lon, nodes[i - 1].lat), (nodes[i + 1].lon, nodes[i + 1].lat))
                found.append((barriers[n.ref], (n.lon, n.lat), dict(w.tags), around))
    return found


def test_helsinki_barriers_are_read_where_they_stand_and_open_gates_change_no_car_route():
    path = str(shared_data("helsinki", "Helsinki.osm.pbf"))
    found = _helsinki_barriers(path)
    vehicle_tags = {"access", "vehicle", "motor_vehicle", "motorcar", "locked"}
    # barriers that plainly keep cars out: a bare bollard or block, a gate marked private or no
    shut = {xy for tags, xy, _, _ in found
            if (tags["barrier"] in ("bollard", "block") and not vehicle_tags & set(tags))
            or (tags["barrier"] == "gate" and tags.get("access") in ("private", "no")
                and not (vehicle_tags - {"access"}) & set(tags))}
    assert len(shut) >= 20  # the check is not vacuous
    frame, _ = osm.read_roads(path)
    read = set()
    for geom, words in zip(frame["geometry"], frame["barriers"]):
        for word in filter(None, words.split(",")):
            index, modes = word.removeprefix("barrier@").split("=")
            read.add(tuple(round(v, 7) for v in geom.coords[int(index)]))
            assert "car" in modes.split("+")
    assert {tuple(round(v, 7) for v in xy) for xy in shut} <= read  # each one, at its own vertex
    assert read <= {tuple(round(v, 7) for v in xy) for _, xy, _, _ in found}  # and nothing else
    # a gate nobody locked, inside a way cars may use, changes no car route
    open_ = [around for tags, _, way, around in found
             if around and tags["barrier"] in ("gate", "lift_gate") and not vehicle_tags & set(tags)
             and ROAD_CLASSES.get(way.get("highway"), (None,) * 3)[2] is not None
             and not vehicle_tags & set(way)]
    assert len(open_) >= 3
    roads = gpd.GeoDataFrame(frame.rename(columns={"highway": "kind"}), crs=4326)
    g = RoadGraph.from_lines(roads)
    without = RoadGraph.from_lines(roads.drop(columns="barriers"))
    for before, after in open_:
        assert g.distance_m(*before, *after, mode="car") == pytest.approx(
            without.distance_m(*before, *after, mode="car"), rel=1e-9)
