"""Roads by travel mode and by=road ranked by road distance (issue 11, items 2 and 3).

Hand-drawn networks with exact distances for one-way streets and the classes a mode may not use;
the Helsinki extract against an independent networkx graph per mode; the API's first by=road
answer against brute force over every candidate, on both backends.
"""
import itertools
import math
import random

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
from conftest import at, make_app, shared_data
from shapely.geometry import LineString, box
from sqlalchemy import select

from gridmap import importer, lookup
from gridmap.errors import InvalidInput
from gridmap.geo.roads import (
    MODES,
    ONEWAY_MODES,
    ROAD_CLASSES,
    RoadGraph,
    oneway_value,
    road_layer,
)
from gridmap.index import Snapshot
from gridmap.store import models as m


def drawn(*roads):
    """Roads drawn in metres around conftest's CENTRE: (points, kind, oneway[, junction])."""
    rows = [{"kind": r[1], "oneway": r[2], "junction": r[3] if len(r) > 3 else None,
             "geometry": LineString([at(*p) for p in r[0]])} for r in roads]
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)


def d(graph, a, b, mode):
    return graph.distance_m(*at(*a), *at(*b), mode=mode)


A, B, C, D = (0, 0), (100, 0), (100, 100), (0, 100)


def square(ab):
    """
        D ---------- C       a square of residential streets, A–B one-way east (drawn as ``ab``
        |  ·      ·  |       says), a footway A–C and a cycleway B–D across it (crossing without
        |     ··     |       a shared vertex: not joined)
        A ---->----- B
    """
    return drawn(ab, ([B, C], "residential", ""), ([C, D], "residential", ""), ([D, A], "residential", ""),
                 ([A, C], "footway", ""), ([B, D], "cycleway", ""))


ONEWAY_EAST = [([A, B], "residential", "yes"), ([B, A], "residential", "-1"), ([A, B], "residential", "true"),
               ([A, B], "residential", "1"), ([A, B], "residential", "", "roundabout")]


@pytest.mark.parametrize("ab", ONEWAY_EAST, ids=["yes", "-1 drawn west", "true", "1", "roundabout"])
def test_vehicles_keep_to_one_way_streets_and_walkers_to_their_paths(ab):
    g = RoadGraph.from_lines(square(ab), min_island_m=0)
    diag = math.hypot(100, 100)
    # walkers: both ways along everything, across the footway and the cycleway
    assert d(g, A, B, "walk") == pytest.approx(100, rel=1e-9)
    assert d(g, B, A, "walk") == pytest.approx(100, rel=1e-9)
    assert d(g, A, C, "walk") == pytest.approx(diag, rel=1e-9)
    # the car: no footway, no cycleway, B → A the long way round
    assert d(g, A, B, "car") == pytest.approx(100, rel=1e-9)
    assert d(g, B, A, "car") == pytest.approx(300, rel=1e-9)
    assert d(g, A, C, "car") == pytest.approx(200, rel=1e-9)
    # the e-bike: the cycleway but not the footway, one-way like a car
    assert d(g, B, A, "ebike") == pytest.approx(diag + 100, rel=1e-9)
    assert d(g, A, C, "ebike") == pytest.approx(200, rel=1e-9)
    # two points on the one-way street itself: 40 m with it, round the square against it
    assert d(g, (30, 0), (70, 0), "car") == pytest.approx(40, rel=1e-9)
    assert d(g, (70, 0), (30, 0), "car") == pytest.approx(30 + 300 + 30, rel=1e-9)
    assert d(g, (70, 0), (30, 0), "walk") == pytest.approx(40, rel=1e-9)
    # the mode-less graph of old: every road both ways
    assert d(g, B, A, None) == pytest.approx(100, rel=1e-9)
    # inbound (to the point) is outbound reversed
    ll = [at(*A)]
    assert g.distances_m(*at(*B), ll, mode="car", inbound=True)[0] == pytest.approx(100, rel=1e-9)
    assert g.distances_m(*at(*B), ll, mode="car", inbound=False)[0] == pytest.approx(300, rel=1e-9)


def test_travel_times_follow_the_classes_speeds_and_walk_off_the_road():
    g = RoadGraph.from_lines(square(ONEWAY_EAST[0]), min_island_m=0)
    dist, time = g.routes(*at(*A), [at(100, 10)], mode="car", inbound=False)
    # 100 m east then 10 m north on residential streets (20 km/h), no walk
    assert dist[0] == pytest.approx(110, rel=1e-9)
    assert time[0] == pytest.approx(110 / (ROAD_CLASSES["residential"][2] / 3.6), rel=1e-9)
    # 5 m off the road at each end is walked at 1.2 m/s
    dist, time = g.routes(*at(-5, 0), [at(105, 10)], mode="car", inbound=False)
    assert dist[0] == pytest.approx(120, rel=1e-9)
    assert time[0] == pytest.approx(10 / 1.2 + 110 / (20 / 3.6), rel=1e-9)
    steps = RoadGraph.from_lines(drawn(([A, B], "steps", "")), min_island_m=0)
    assert steps.routes(*at(*A), [at(*B)], mode="walk")[1][0] == pytest.approx(100 / (2.0 / 3.6), rel=1e-9)


def test_motorways_are_one_way_without_a_tag_and_closed_to_walkers():
    g = RoadGraph.from_lines(drawn(([A, B], "motorway", ""), ([B, C, D, A], "residential", "")), min_island_m=0)
    assert d(g, A, B, "car") == pytest.approx(100, rel=1e-9)
    assert d(g, B, A, "car") == pytest.approx(300, rel=1e-9)
    assert d(g, A, B, "walk") == pytest.approx(300, rel=1e-9)
    explicit = RoadGraph.from_lines(drawn(([A, B], "motorway", "no"), ([B, C, D, A], "residential", "")),
                                    min_island_m=0)
    assert d(explicit, B, A, "car") == pytest.approx(100, rel=1e-9)


def test_a_mode_with_no_road_it_may_use_finds_nothing_reachable_and_an_unknown_mode_is_refused():
    g = RoadGraph.from_lines(drawn(([A, B], "footway", "")), min_island_m=0)
    assert math.isinf(d(g, A, B, "car"))
    assert d(g, A, B, "walk") == pytest.approx(100)
    with pytest.raises(InvalidInput, match="mode"):
        d(g, A, B, "horse")


@pytest.mark.parametrize("tags,expected", [(("yes", None), "yes"), (("True", None), "yes"), (("1", None), "yes"),
                                           (("-1", None), "-1"), (("reverse", None), "-1"), (("no", None), "no"),
                                           ((None, "roundabout"), "yes"), (("no", "roundabout"), "no"),
                                           ((None, None), ""), ((float("nan"), None), ""),
                                           (("reversible", None), "no")])
def test_oneway_tags_are_stored_in_four_words(tags, expected):
    assert oneway_value(*tags) == expected


# -- the importer keeps what the graph needs ----------------------------------------------------

def test_road_imports_keep_the_class_and_the_one_way_from_osm_tags_and_file_columns(app, tmp_path):
    store = app.extensions["gridmap.store"]
    nodes = [(1, 121.601, 38.901), (2, 121.602, 38.901), (3, 121.603, 38.901), (4, 121.604, 38.901)]
    osm = tmp_path / "roads.osm"
    osm.write_text(
        "<?xml version='1.0' encoding='UTF-8'?>\n<osm version='0.6'>\n"
        + "".join(f"<node id='{i}' version='1' lon='{x}' lat='{y}'/>\n" for i, x, y in nodes)
        + "<way id='11' version='1'><nd ref='1'/><nd ref='2'/><tag k='highway' v='primary'/>"
          "<tag k='oneway' v='-1'/><tag k='name' v='A'/><tag k='bridge' v='yes'/></way>\n"
          "<way id='12' version='1'><nd ref='2'/><nd ref='3'/><tag k='highway' v='tertiary'/>"
          "<tag k='junction' v='roundabout'/><tag k='name' v='B'/><tag k='layer' v='-2'/>"
          "<tag k='tunnel' v='yes'/></way>\n"
          "<way id='13' version='1'><nd ref='3'/><nd ref='4'/><tag k='highway' v='footway'/>"
          "<tag k='name' v='C'/></way>\n</osm>\n", encoding="utf-8")
    importer.import_file(store, "roads", osm, layer="roads")
    csv = tmp_path / "roads.geojson"
    gpd.GeoDataFrame({"name": ["D", "E"], "highway": ["residential", "service"], "oneway": ["true", "no"],
                      "tunnel": ["yes", None]},
                     geometry=[LineString([(121.605, 38.9), (121.606, 38.9)]),
                               LineString([(121.606, 38.9), (121.607, 38.9)])], crs=4326).to_file(csv)
    importer.import_file(store, "roads", csv)
    with store.session() as s:
        got = {r.name: (r.kind, r.oneway, r.layer)
               for r in s.execute(select(m.Road.name, m.Road.kind, m.Road.oneway, m.Road.layer))}
    assert got == {"A": ("primary", "-1", 1), "B": ("tertiary", "yes", -2), "C": ("footway", "", 0),
                   "D": ("residential", "yes", -1), "E": ("service", "no", 0)}


# -- Helsinki against networkx ------------------------------------------------------------------

def _helsinki_ways():
    """The extract's highway ways as the test reads them with pyosmium: node ids, lon/lat, tags."""
    osmium = pytest.importorskip("osmium")
    path = shared_data("helsinki", "Helsinki.osm.pbf")
    ways = []
    for w in (osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY).with_locations()
              .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
              .with_filter(osmium.filter.KeyFilter("highway"))):
        nodes = [(n.ref, n.lon, n.lat) for n in w.nodes if n.location.valid()]
        if len(nodes) < 2 or len(nodes) < len(w.nodes):
            continue  # what the road graph is given below: whole ways only
        ways.append((nodes, w.tags.get("highway"), w.tags.get("oneway"), w.tags.get("junction"),
                     road_layer(w.tags.get("layer"), w.tags.get("tunnel"), w.tags.get("bridge"))))
    return ways


def _nx_graph(ways, mode, geod):
    """The mode's graph as networkx sees it: OSM nodes joined by their ids only, geodesic lengths."""
    g = nx.DiGraph()
    for nodes, highway, oneway, junction, _ in ways:
        kmh = ROAD_CLASSES.get(highway, (4.3, None, None))[MODES.index(mode)]
        if kmh is None or highway in ("rail", "ferry"):
            continue
        tag = oneway_value(oneway, junction)
        one = mode in ONEWAY_MODES and (tag in ("yes", "-1") or (tag == "" and highway == "motorway"))
        seq = nodes[::-1] if one and tag == "-1" else nodes
        for (a, ax, ay), (b, bx, by) in itertools.pairwise(seq):
            if a == b:
                continue
            length = geod.inv(ax, ay, bx, by)[2]
            time = length / (kmh / 3.6)
            for u, v in [(a, b)] + ([] if one else [(b, a)]):
                # a street drawn twice: the shorter, of two as long the faster
                if not g.has_edge(u, v) or (g[u][v]["weight"], g[u][v]["time"]) > (length, time):
                    g.add_edge(u, v, weight=length, time=time)
    return g


@pytest.fixture(scope="module")
def helsinki():
    ways = _helsinki_ways()
    frame = gpd.GeoDataFrame(
        {"kind": [w[1] for w in ways], "oneway": [w[2] for w in ways], "junction": [w[3] for w in ways],
         "layer": [w[4] for w in ways]},
        geometry=[LineString([(x, y) for _, x, y in w[0]]) for w in ways], crs=4326)
    return ways, RoadGraph.from_lines(frame)


@pytest.mark.parametrize("mode", MODES)
def test_helsinki_road_distances_agree_with_networkx_per_mode(helsinki, mode):
    from pyproj import Geod
    ways, graph = helsinki
    g = _nx_graph(ways, mode, Geod(ellps="WGS84"))
    where = {n: (x, y) for nodes, *_ in ways for n, x, y in nodes}
    # the network proper: points on dropped islands snap elsewhere, by design
    main = max(nx.weakly_connected_components(g), key=len)
    rng = random.Random(11)
    nodes = sorted(main)
    agree = total = time_agree = 0
    for source in rng.sample(nodes, 40):
        targets = rng.sample(nodes, 15)
        lengths, paths = nx.single_source_dijkstra(g, source, weight="weight")
        ours, secs = graph.routes(*where[source], [where[t] for t in targets], mode=mode, inbound=False)
        for t, got, sec in zip(targets, ours.tolist(), secs.tolist()):
            total += 1
            want = lengths.get(t, math.inf)
            if math.isinf(want) or math.isinf(got):
                ok = math.isinf(want) and math.isinf(got)
                agree += ok
                time_agree += ok
                continue
            agree += abs(got - want) <= 0.01 * max(want, 1.0)
            path = paths[t]
            want_s = sum(g[a][b]["time"] for a, b in itertools.pairwise(path))
            time_agree += abs(sec - want_s) <= 0.01 * max(want_s, 1.0)
    print(f"{mode}: {agree}/{total} road distances within 1 % of networkx, {time_agree}/{total} times")
    assert agree >= 0.99 * total
    assert time_agree >= 0.99 * total


# -- by=road ranks by road, exactly -------------------------------------------------------------

def _river_world():
    """
        0 m: a long road west–east; 12 police across a river 30–60 m north of it, reached by a
        bridge 1 km east; one police 200 m along the road; two on a separate island road.
    """
    roads = drawn(([(-200, 0), (1000, 0)], "residential", ""), ([(1000, 0), (1000, 50)], "residential", ""),
                  ([(-200, 50), (1000, 50)], "residential", ""), ([(0, 3000), (800, 3000)], "residential", ""))
    pts = [(x, 50) for x in range(-100, 20, 10)] + [(200, 0), (10, 3000), (20, 3000)]
    responders = gpd.GeoDataFrame({"id": list(range(1, len(pts) + 1)), "kind": ["police"] * len(pts),
                                   "name": [f"p{i}" for i in range(len(pts))]},
                                  geometry=gpd.points_from_xy(*zip(*[at(*p) for p in pts])), crs=4326)
    grids = gpd.GeoDataFrame({"code": ["001"]}, geometry=[box(*at(-500, -500), *at(1500, 3500))], crs=4326)
    snap = Snapshot.from_frames(grids, responders=responders)
    snap.roads = RoadGraph.from_lines(roads)
    return snap, len(pts)


def test_by_road_widens_the_straight_line_pool_until_the_order_is_proven():
    snap, n = _river_world()
    lon, lat = at(0, 0)
    out = lookup.nearest(snap, lon=lon, lat=lat, kind="police", k=3, by="road", mode="car")
    assert out["distance_basis"] == "road" and out["mode"] == "car" and out["exact"] is True
    first = out["results"][0]
    # 13 police are nearer in a straight line; by road the one 200 m along the road is nearest
    assert first["id"] == 13 and first["road_distance_m"] == pytest.approx(200, abs=0.1)
    assert first["reachable"] is True
    roads = [r["road_distance_m"] for r in out["results"]]
    assert roads == sorted(roads)
    # the whole lot, k = all: the island's two come last, flagged
    every = lookup.nearest(snap, lon=lon, lat=lat, kind="police", k=n, by="road", mode="walk")["results"]
    assert [r["id"] for r in every[-2:]] == [14, 15]
    assert all(r["reachable"] is False and r["road_distance_m"] is None and r["eta_s"] is None for r in every[-2:])
    assert all(r["reachable"] for r in every[:-2])
    # by straight line nothing about roads is said
    line = lookup.nearest(snap, lon=lon, lat=lat, kind="police", k=3)
    assert line["distance_basis"] == "straight line" and "road_distance_m" not in line["results"][0]


def _brute_force(snap, lon, lat, kind, mode):
    everyone = snap.nearest(lon, lat, k=10_000, kind=kind)
    road = snap.roads.distances_m(lon, lat, [(r["lon"], r["lat"]) for r in everyone], mode=mode)
    return everyone, road


@pytest.fixture(params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)])
def demo_world(request, tmp_path_factory, demo_frames):
    from gridmap import demo
    app, cleanup = make_app(tmp_path_factory.mktemp("roadrank"), request.param)
    demo.build(app.extensions["gridmap.store"], frames=demo_frames)
    yield app
    app.extensions["gridmap.store"].dispose()
    cleanup()


def test_the_first_by_road_answer_is_the_road_nearest_on_both_backends(demo_world):
    snap = demo_world.extensions["gridmap.snapshots"].get()
    client = demo_world.test_client()
    rng = np.random.default_rng(7)
    minx, miny, maxx, maxy = snap.grids.total_bounds
    changed = checked = 0
    for i in range(30):
        lon, lat = float(rng.uniform(minx, maxx)), float(rng.uniform(miny, maxy))
        mode = MODES[i % 3]
        body = client.get("/api/v1/nearest", query_string={"lon": lon, "lat": lat, "kind": "police", "k": 3,
                                                           "by": "road", "mode": mode}).get_json()
        assert body["distance_basis"] == "road" and body["mode"] == mode and body["exact"] is True
        everyone, road = _brute_force(snap, lon, lat, "police", mode)
        best = np.sort(road[np.isfinite(road)])[:3]
        got = [r["road_distance_m"] for r in body["results"]]
        assert got == pytest.approx(best.tolist(), abs=0.06)  # the answer's 0.1 m rounding
        checked += 1
        changed += body["results"][0]["id"] != everyone[0]["id"]
    print(f"by=road put another first than the straight line in {changed} of {checked} queries")
    assert client.get("/api/v1/nearest?lon=121.7&lat=39&by=road&mode=horse").status_code == 400


def test_a_street_does_not_meet_the_tunnel_beneath_it_unless_they_share_a_vertex():
    """
        W ---------- E         a street at ground level; 0.3 m below its end E a tunnel (layer -1)
                     |         runs north–south, drawn without a shared vertex. A second street
        S ...........T         reaches the tunnel's south end T at T's very position.
    """
    street = ([(-100, 0), (0, 0)], "residential", "")
    tunnel = ([(0.3, 50), (0.3, -100)], "service", "")
    rows = drawn(street, tunnel, ([(-100, -100), (0.3, -100)], "residential", ""),
                 ([(-100, 0), (-100, -100)], "residential", ""))
    rows["layer"] = [0, -1, 0, 0]
    g = RoadGraph.from_lines(rows, min_island_m=0)
    # from the street's end into the tunnel: round by W, S and T, not a drop through the ceiling
    assert d(g, (0, 0), (0.3, 20), "car") == pytest.approx(100 + 100 + 100.3 + 120, rel=1e-6)
    flat = RoadGraph.from_lines(rows.assign(layer=0), min_island_m=0)
    # drawn on one level, the end is a T-junction 0.3 m off the line (snap_m 0.5): joined there
    assert d(flat, (0, 0), (0.3, 20), "car") == pytest.approx(20, abs=0.31)
    assert road_layer("-2", "yes") == -2 and road_layer(None, "yes") == -1 and road_layer(None, None, "yes") == 1
    assert road_layer(None, "building_passage") == 0 and road_layer("x") == 0
