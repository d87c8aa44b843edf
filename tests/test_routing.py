"""Road-network distances: hand-drawn networks, then real roads against an independent networkx computation."""
import json
import math

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, MultiLineString

from conftest import geodesic_m, shared_data
from conftest import at as lonlat

from gridmap.errors import InvalidInput
from gridmap.routing import EXCLUDED_KINDS, SPEEDS_MPS, RoadGraph, eta_s


def roads(*lines, kinds=None):
    """Roads drawn in metres around CENTRE, as a WGS84 GeoDataFrame (kind "street" unless given)."""
    geoms = []
    for line in lines:
        if isinstance(line[0][0], tuple):  # several parts: a MultiLineString
            geoms.append(MultiLineString([[lonlat(*p) for p in part] for part in line]))
        else:
            geoms.append(LineString([lonlat(*p) for p in line]))
    return gpd.GeoDataFrame({"kind": kinds or ["street"] * len(geoms)}, geometry=geoms, crs=4326)


def read_geojson(path):
    # pyogrio warns about the file's duplicate feature ids; the features themselves are fine
    return gpd.GeoDataFrame.from_features(json.loads(path.read_text(encoding="utf-8")), crs=4326)


def dist(graph, a, b):
    return graph.distance_m(*lonlat(*a), *lonlat(*b))


# -- hand-drawn networks ------------------------------------------------------------------------

def test_a_square_with_a_missing_side_is_walked_the_long_way_round():
    """
        D         C        D–A is missing: from A to D the road goes A → B → C → D = 300 m,
        |         |        although A and D are 100 m apart in a straight line.
        |         |
        A ------- B
    """
    g = RoadGraph.from_lines(roads([(0, 0), (100, 0)], [(100, 0), (100, 100)], [(100, 100), (0, 100)]),
                             min_island_m=0)
    assert dist(g, (0, 0), (0, 100)) == pytest.approx(300.0, rel=1e-6)
    # 5 m west of A and of D: both straight walks to the road are added
    assert dist(g, (-5, 0), (-5, 100)) == pytest.approx(310.0, rel=1e-6)


def test_a_dead_end_is_walked_out_and_back():
    """
                 T            the spur M–T (40 m) ends at T;
                 |            T to E is 40 + 100 m, T to W the same
        W ------ M ------ E
    """
    g = RoadGraph.from_lines(roads([(-100, 0), (0, 0), (100, 0)], [(0, 0), (0, 40)]), min_island_m=0)
    assert dist(g, (0, 40), (100, 0)) == pytest.approx(140.0, rel=1e-6)
    assert dist(g, (0, 40), (-100, 0)) == pytest.approx(140.0, rel=1e-6)
    assert g.n_nodes == 4


def test_two_roads_that_never_meet_are_unreachable():
    """
        A ------ B             C ------ D      (500 m apart, no link)
    """
    g = RoadGraph.from_lines(roads([(0, 0), (400, 0)], [(900, 0), (1300, 0)]))
    assert math.isinf(dist(g, (0, 0), (1300, 0)))
    assert math.isinf(eta_s(dist(g, (0, 0), (1300, 0)), "walk"))
    assert dist(g, (0, 0), (400, 0)) == pytest.approx(400.0, rel=1e-6)


def test_a_point_beside_the_middle_of_a_segment_walks_to_whichever_end_is_nearer_the_target():
    """
        W ----P'----------- E     P is 10 m north of P' (30 m from W along a 100 m road)
              |
              P
    """
    g = RoadGraph.from_lines(roads([(0, 0), (100, 0)]), min_island_m=0)
    assert dist(g, (30, 10), (0, 0)) == pytest.approx(10 + 30, rel=1e-6)
    assert dist(g, (30, 10), (100, 0)) == pytest.approx(10 + 70, rel=1e-6)
    # two points on the same segment go straight along it, through no node
    assert dist(g, (30, 10), (60, -20)) == pytest.approx(10 + 30 + 20, rel=1e-6)
    snap = g.snap(*lonlat(30, 10))
    assert snap["walk_m"] == pytest.approx(10.0, rel=1e-6)
    assert geodesic_m(snap["lon"], snap["lat"], *lonlat(30, 0)) < 0.01


def test_the_far_end_of_the_snap_segment_is_used_when_the_route_goes_that_way():
    """
        A -------------- B        the point sits 20 m from B on the 200 m road A–B;
        |                |        to reach C it goes forward to B and down (20 + 50),
        C                D        not back through A (180 + ... no A–C shortcut shorter)
        C ----- D is absent; A–C is 300 m long through a bend
    """
    g = RoadGraph.from_lines(roads([(0, 0), (200, 0)], [(200, 0), (200, -50), (0, -50)],
                                   [(0, 0), (-100, -25), (0, -50)]), min_island_m=0)
    assert dist(g, (180, 0), (0, -50)) == pytest.approx(20 + 50 + 200, rel=1e-6)
    assert dist(g, (20, 0), (0, -50)) == pytest.approx(20 + 2 * math.hypot(100, 25), rel=1e-6)


def test_tile_cut_pieces_whose_ends_miss_by_under_half_a_metre_are_joined():
    """
        A -------- B  B'-------- C     B and B' are 0.3 m apart (a tile edge): one road
        A -------- B     B''----- C    B and B'' are 3 m apart: two roads
    """
    near = RoadGraph.from_lines(roads([(0, 0), (500, 0)], [(500.3, 0), (1000, 0)]))
    assert dist(near, (0, 0), (1000, 0)) == pytest.approx(999.7, rel=1e-6)
    far = RoadGraph.from_lines(roads([(0, 0), (500, 0)], [(503, 0), (1000, 0)]))
    assert math.isinf(dist(far, (0, 0), (1000, 0)))


def test_a_dangling_end_touching_the_middle_of_another_road_is_a_junction():
    """
        W --------------- E     the spur S–T ends 0.2 m below the road, with no vertex there
                 T
                 |
                 S
    """
    g = RoadGraph.from_lines(roads([(-300, 0), (300, 0)], [(0, -300), (0, -0.2)]))
    # the 0.2 m gap is closed by merging T with the inserted vertex: it costs nothing
    assert dist(g, (0, -300), (300, 0)) == pytest.approx(299.8 + 300, rel=1e-6)


def test_roads_crossing_without_a_shared_vertex_are_a_bridge_unless_asked():
    """
                 N
                 |
        W -------+------- E     the N–S road crosses W–E with no vertex at +: a flyover
                 |
                 S
    """
    frame = roads([(-400, 0), (400, 0)], [(0, -400), (0, 400)])
    assert math.isinf(dist(RoadGraph.from_lines(frame), (-400, 0), (0, 400)))
    noded = RoadGraph.from_lines(frame, node_crossings=True)
    assert dist(noded, (-400, 0), (0, 400)) == pytest.approx(800.0, rel=1e-6)


def test_rail_and_ferry_are_not_walked_unless_their_kinds_are_asked_for():
    """
        A ------ B ====== C      B–C is a railway; A–B and C–D streets
                          |
                          D
    """
    frame = roads([(0, 0), (400, 0)], [(400, 0), (800, 0)], [(800, 0), (800, -400)],
                  kinds=["street", "rail", "street"])
    assert {"rail", "ferry"} <= set(EXCLUDED_KINDS)
    assert math.isinf(dist(RoadGraph.from_lines(frame), (0, 0), (800, -400)))
    with_rail = RoadGraph.from_lines(frame, kinds={"street", "rail"})
    assert dist(with_rail, (0, 0), (800, -400)) == pytest.approx(1200.0, rel=1e-6)


def test_a_tiny_island_does_not_catch_the_snap_of_a_nearby_point():
    """
        A ------------------------------ B     (1 km)
                  x  <- the point, 8 m from the island, 30 m from A–B
                  -- island (20 m)
    """
    frame = roads([(0, 0), (1000, 0)], [(290, -38), (310, -38)])
    g = RoadGraph.from_lines(frame)
    assert dist(g, (300, -30), (1000, 0)) == pytest.approx(30 + 700, rel=1e-6)
    kept = RoadGraph.from_lines(frame, min_island_m=0)
    assert math.isinf(dist(kept, (300, -30), (1000, 0)))


def test_multilinestrings_are_walked_part_by_part():
    g = RoadGraph.from_lines(roads((((0, 0), (300, 0)), ((300, 0), (300, 300)))))
    assert dist(g, (0, 0), (300, 300)) == pytest.approx(600.0, rel=1e-6)


def test_one_to_many_matches_one_to_one():
    g = RoadGraph.from_lines(roads([(0, 0), (100, 0)], [(100, 0), (100, 100)], [(100, 100), (0, 100)]),
                             min_island_m=0)
    targets = [lonlat(0, 100), lonlat(100, 50), lonlat(0, 0)]
    many = g.distances_m(*lonlat(0, 0), targets)
    assert many == pytest.approx([300.0, 150.0, 0.0], rel=1e-6, abs=1e-6)


def test_eta_uses_the_speed_table():
    assert SPEEDS_MPS == {"walk": 1.2, "ebike": 4.0, "car": 8.0}
    assert eta_s(120.0, "walk") == pytest.approx(100.0)
    assert eta_s(np.array([80.0, 160.0]), "car") == pytest.approx([10.0, 20.0])
    with pytest.raises(InvalidInput, match="walk"):
        eta_s(100.0, "horse")


def test_bad_input_is_refused_with_the_fix():
    with pytest.raises(InvalidInput, match="No road line"):
        RoadGraph.from_lines(roads([(0, 0), (100, 0)], kinds=["rail"]))
    g = RoadGraph.from_lines(roads([(0, 0), (100, 0)]), min_island_m=0)
    with pytest.raises(InvalidInput, match="longitude"):
        g.distance_m(200.0, 0.0, *lonlat(0, 0))


# -- real roads against an independent computation ------------------------------------------

def _reference(frame, crs, tol=0.5):
    """The test's own graph: networkx, noded with shapely and networkx, nothing from gridmap.routing.

    Every vertex is a node; vertices within ``tol`` are merged (shapely ``dwithin`` pairs, networkx
    components); a line end within ``tol`` of another line's segment but of none of its vertices is
    inserted into that line. Returns (graph, node xy, segments as (a, b, node_a, node_b)).
    """
    parts = shapely.get_parts(frame.to_crs(crs).geometry.values)
    lines = [np.asarray(shapely.get_coordinates(p)) for p in parts]
    part_geoms = [LineString(c) for c in lines]
    part_tree = shapely.STRtree(part_geoms)
    for i in range(len(lines)):
        for end in (lines[i][0], lines[i][-1]):
            pt = shapely.Point(end)
            for j in part_tree.query(pt, predicate="dwithin", distance=tol):
                if j == i or np.min(np.hypot(*(lines[j] - end).T)) <= tol:
                    continue
                c = lines[j]
                for k in range(len(c) - 1):
                    seg = LineString([c[k], c[k + 1]])
                    if seg.distance(pt) <= tol:
                        p = seg.interpolate(seg.project(pt))
                        lines[j] = np.vstack([c[: k + 1], [[p.x, p.y]], c[k + 1:]])
                        break
    xy = np.vstack(lines)
    owner = np.repeat(np.arange(len(lines)), [len(c) for c in lines])
    points = shapely.points(xy)
    a, b = shapely.STRtree(points).query(points, predicate="dwithin", distance=tol)
    merge = nx.Graph()
    merge.add_nodes_from(range(len(xy)))
    merge.add_edges_from(zip(a.tolist(), b.tolist()))
    node = np.empty(len(xy), dtype=int)
    for label, members in enumerate(nx.connected_components(merge)):
        node[list(members)] = label
    graph = nx.Graph()
    graph.add_nodes_from(np.unique(node).tolist())
    segments = []
    for k in range(len(xy) - 1):
        if owner[k] != owner[k + 1]:
            continue
        u, v = int(node[k]), int(node[k + 1])
        w = float(np.hypot(*(xy[k + 1] - xy[k])))
        segments.append((xy[k], xy[k + 1], u, v))
        if u != v and (not graph.has_edge(u, v) or graph[u][v]["w"] > w):
            graph.add_edge(u, v, w=w)
    return graph, xy, node, segments


def _reference_point_to_point(graph, segments, p, q):
    """Snap both points by brute force over every segment (numpy) and ask networkx."""
    a = np.array([s[0] for s in segments])
    b = np.array([s[1] for s in segments])
    d = b - a
    dd = np.einsum("ij,ij->i", d, d)
    length = np.sqrt(dd)

    def snap(pt):
        t = np.clip(np.einsum("ij,ij->i", pt - a, d) / np.where(dd > 0, dd, 1), 0, 1)
        walk = np.hypot(*(pt - (a + t[:, None] * d)).T)
        k = int(np.argmin(walk))
        _, _, u, v = segments[k]
        return walk[k], k, ((u, t[k] * length[k]), (v, (1 - t[k]) * length[k])), t[k]

    (walk_p, kp, ends_p, tp), (walk_q, kq, ends_q, tq) = snap(p), snap(q)
    best = abs(tp - tq) * length[kp] if kp == kq else math.inf
    for end_p, off_p in ends_p:
        for end_q, off_q in ends_q:
            if nx.has_path(graph, end_p, end_q):
                best = min(best, off_p + nx.dijkstra_path_length(graph, end_p, end_q, weight="w") + off_q)
    return walk_p + best + walk_q


def _compare_with_reference(frame, seed, pairs=40, points=15):
    g = RoadGraph.from_lines(frame, min_island_m=0)
    graph, xy, node, segments = _reference(frame, g.crs)
    to_lonlat = Transformer.from_crs(g.crs, 4326, always_xy=True)
    rng = np.random.default_rng(seed)
    # node to node: a vertex given as lon/lat snaps onto itself, so the distance is the graph's
    # half the pairs within one connected piece (finite), half anywhere (often unreachable in the demo)
    piece = np.empty(node.max() + 1, dtype=int)
    for label, members in enumerate(nx.connected_components(graph)):
        piece[list(members)] = label
    firsts = rng.choice(len(xy), size=pairs)
    seconds = [rng.choice(np.flatnonzero(piece[node] == piece[node[i]])) if k % 2 else rng.integers(len(xy))
               for k, i in enumerate(firsts)]
    vertices = zip(firsts, seconds)
    checked = 0
    for i, j in vertices:
        expected = (nx.dijkstra_path_length(graph, int(node[i]), int(node[j]), weight="w")
                    if nx.has_path(graph, int(node[i]), int(node[j])) else math.inf)
        got = g.distance_m(*to_lonlat.transform(*xy[i]), *to_lonlat.transform(*xy[j]))
        if math.isinf(expected):
            assert math.isinf(got)
        else:
            # a vertex merged into a cluster may sit up to 0.5 m from the cluster's other vertices
            assert got == pytest.approx(expected, rel=1e-6, abs=1e-6)
            checked += 1
    assert checked >= pairs // 2
    # point to point: random points anywhere in the extent, snapped by each side on its own
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    for p, q in rng.uniform(lo, hi, size=(points, 2, 2)):
        expected = _reference_point_to_point(graph, segments, p, q)
        got = g.distance_m(*to_lonlat.transform(*p), *to_lonlat.transform(*q))
        if math.isinf(expected):
            assert math.isinf(got)
        else:
            assert got == pytest.approx(expected, abs=1.0)  # within twice the snapping tolerance
    return g


def test_shanghai_bund_distances_match_an_independent_networkx_computation():
    frame = read_geojson(shared_data("shanghai_bund", "roads.geojson"))
    frame = frame[~frame["kind"].isin(["rail", "ferry"])]
    g = _compare_with_reference(frame, seed=5)
    assert g.n_edges > 5000


def test_bubenec_streets_match_an_independent_networkx_computation():
    frame = gpd.read_file(shared_data("bubenec", "bubenec.gpkg"), layer="streets").to_crs(4326)
    _compare_with_reference(frame, seed=7, pairs=60, points=20)


def test_demo_roads_give_road_distances_no_shorter_than_the_straight_line(demo_frames):
    frame = demo_frames["roads"]
    _compare_with_reference(frame, seed=11, pairs=40, points=10)
    g = RoadGraph.from_lines(frame)
    centres = demo_frames["buildings"].to_crs(g.crs).geometry.centroid.to_crs(4326)
    pts = np.column_stack([centres.x, centres.y])[:40]
    d = g.distances_m(pts[0, 0], pts[0, 1], pts[1:])
    straight = geodesic_m(pts[0, 0], pts[0, 1], pts[1:, 0], pts[1:, 1])
    finite = np.isfinite(d)
    assert finite.sum() >= 10
    # the road is never shorter than the straight line (0.5 % for the frame's scale)
    assert np.all(d[finite] >= straight[finite] * 0.995)
    assert g.nbytes() > 0


# -- one search for many targets, snapping and the search's working arrays ----------------------

def _lattice(n=12, step=100.0, seed=1, gaps=0.1):
    """A jittered n × n street lattice drawn in metres around CENTRE, ``gaps`` of its blocks' sides
    removed, each side its own two-point road (so snapping has many equidistant ends to choose from)."""
    rng = np.random.default_rng(seed)
    xy = np.stack(np.meshgrid(np.arange(n) * step, np.arange(n) * step), axis=-1).reshape(-1, 2)
    xy = xy + rng.normal(0, step * 0.1, size=xy.shape)
    ids = np.arange(n * n).reshape(n, n)
    edges = np.vstack([np.column_stack([ids[:, :-1].ravel(), ids[:, 1:].ravel()]),
                       np.column_stack([ids[:-1, :].ravel(), ids[1:, :].ravel()])])
    edges = edges[rng.random(len(edges)) >= gaps]
    return roads(*[[tuple(xy[a]), tuple(xy[b])] for a, b in edges]), xy


def test_one_search_to_many_targets_equals_each_pair_alone_and_networkx():
    """distances_m from one incident to 40 targets (one search) gives what distance_m gives
    for each pair on its own, and what the test's own networkx graph gives."""
    frame, xy = _lattice()
    g = RoadGraph.from_lines(frame, min_island_m=0)
    graph, _, _, segments = _reference(frame, g.crs)
    rng = np.random.default_rng(3)
    source = rng.uniform(0, 1100, 2)
    targets = rng.uniform(-50, 1150, size=(40, 2))
    many = g.distances_m(*lonlat(*source), [lonlat(*t) for t in targets])
    one_by_one = [g.distance_m(*lonlat(*source), *lonlat(*t)) for t in targets]
    # the reference works in the graph's own metric CRS (centred on the roads, not on CENTRE)
    to_metric = Transformer.from_crs(4326, g.crs, always_xy=True)
    in_graph_crs = [np.array(to_metric.transform(*lonlat(*p))) for p in [source, *targets]]
    expected = [_reference_point_to_point(graph, segments, in_graph_crs[0], t) for t in in_graph_crs[1:]]
    assert np.isfinite(many).sum() >= 30
    assert many.tolist() == pytest.approx(one_by_one, rel=1e-12)
    for got, want in zip(many, expected):
        if math.isinf(want):
            assert math.isinf(got)
        else:
            assert got == pytest.approx(want, abs=1e-6)


def test_answers_do_not_depend_on_the_queries_asked_before():
    """The search keeps its working arrays between queries; each query must find them clean."""
    frame, _ = _lattice(seed=4)
    g = RoadGraph.from_lines(frame, min_island_m=0)
    rng = np.random.default_rng(5)
    queries = [(lonlat(*rng.uniform(0, 1100, 2)), [lonlat(*t) for t in rng.uniform(0, 1100, (15, 2))])
               for _ in range(6)]
    fresh = [RoadGraph.from_lines(frame, min_island_m=0).distances_m(*s, t) for s, t in queries]
    for _ in range(2):
        for (s, t), want in zip(queries, fresh):
            assert g.distances_m(*s, t).tolist() == want.tolist()


def test_threads_querying_one_graph_get_the_answers_of_one_thread():
    from concurrent.futures import ThreadPoolExecutor
    frame, _ = _lattice(seed=6)
    g = RoadGraph.from_lines(frame, min_island_m=0)
    rng = np.random.default_rng(7)
    queries = [(lonlat(*rng.uniform(0, 1100, 2)), [lonlat(*t) for t in rng.uniform(0, 1100, (10, 2))])
               for _ in range(40)]
    alone = [g.distances_m(*s, t).tolist() for s, t in queries]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda q: g.distances_m(*q[0], q[1]).tolist(), queries * 3))
    assert together == alone * 3


def test_snapping_finds_the_nearest_road_near_and_far_from_the_network():
    """The walk to the road equals the distance to the nearest road (shapely, in metres) for
    points on the streets, between them and kilometres away."""
    frame, xy = _lattice(seed=8)
    g = RoadGraph.from_lines(frame, min_island_m=0)
    to_metric = Transformer.from_crs(4326, g.crs, always_xy=True)
    metric = frame.to_crs(g.crs).geometry.values
    rng = np.random.default_rng(9)
    pts = np.vstack([rng.uniform(-100, 1200, (200, 2)), xy[:20],                  # around and at junctions
                     rng.uniform(-5000, 6000, (40, 2))])                           # far off
    for x, y in pts:
        lon, lat = lonlat(x, y)
        snapped = g.snap(lon, lat)
        p = shapely.Point(*to_metric.transform(lon, lat))
        assert snapped["walk_m"] == pytest.approx(float(shapely.distance(metric, p).min()), abs=1e-6)


def test_a_point_equidistant_from_two_roads_snaps_to_the_same_one_every_time():
    """
        y=100  A -------------- B
                      * (50, 50): 50 m from both roads
        y=0    C -------------- D
    """
    g = RoadGraph.from_lines(roads([(0, 100), (100, 100)], [(0, 0), (100, 0)]), min_island_m=0)
    first = g.snap(*lonlat(50, 50))
    assert first["walk_m"] == pytest.approx(50.0, rel=1e-6)
    assert all(g.snap(*lonlat(50, 50)) == first for _ in range(5))


def test_a_point_the_metric_crs_cannot_reach_is_refused():
    g = RoadGraph.from_lines(roads([(0, 0), (100, 0)]), min_island_m=0)
    with pytest.raises(InvalidInput, match="too far from the roads"):
        g.distance_m(31.6, 0.0, *lonlat(0, 0))


def test_the_search_goes_on_until_every_end_of_the_target_road_is_settled():
    """
        V (50,100)           the target T (50,90) lies on U–V, 10 m from V and 90 m from U;
        |  \\                 U is settled first (50 m from S), but the shortest way to T runs
        T   M (25,50)        S → M → V → T = 1 + 111.8 + 10 m, not S → U → T = 1 + 50 + 90 m
        |     \\
        U ----- S            the source (1, -0.5) is 0.5 m south of the road S–U
       (50,0)  (0,0)
    """
    g = RoadGraph.from_lines(roads([(0, 0), (50, 0)], [(50, 0), (50, 100)], [(0, 0), (25, 50), (50, 100)]),
                             min_island_m=0)
    assert dist(g, (1, -0.5), (50, 90)) == pytest.approx(0.5 + 1 + math.hypot(50, 100) + 10, rel=1e-9)


def test_a_long_road_is_found_behind_a_ring_of_short_ones():
    """A 1 km road starts 10 m north of P; 24 one-metre paths south of P point at it from
    19.5–20.5 m. Many short roads are close to P, and their vertices nearer than the long road's:
    the long road must still win (walk 10 m), not a path (walk 19.5 m).

                   ======== y=10, x = 0 … 1000 ========
                  ·    P    ·
                    '  ·  '        (half a ring of radius 20 m)
    """
    ring = []
    for a in np.linspace(np.pi, 2 * np.pi, 24):
        c, s = math.cos(a), math.sin(a)
        ring.append([(19.5 * c, 19.5 * s), (20.5 * c, 20.5 * s)])
    g = RoadGraph.from_lines(roads([(0, 10), (1000, 10)], *ring), min_island_m=0)
    assert g.snap(*lonlat(0, 0))["walk_m"] == pytest.approx(10.0, abs=1e-6)


def test_the_grid_of_cells_finds_the_segment_geos_finds_nearest_even_far_off_and_on_thin_networks():
    """The snapping index (a grid of cells) against GEOS's STRtree: the same nearest distance for
    points inside, around and far outside a dense cluster joined to a 200 km straight road."""
    from gridmap.geo.roads import _Net, _segment_grid
    rng = np.random.default_rng(1)
    x = np.linspace(0, 200_000, 401)
    segs = np.vstack([np.column_stack([x[:-1], np.zeros(400), x[1:], np.zeros(400)]),
                      rng.uniform(0, 5000, (3000, 4))])
    net = _Net.__new__(_Net)
    net.seg_xy = segs
    net.grid, net.grid_frame = _segment_grid(segs)
    assert net.grid_frame[3] * net.grid_frame[4] <= 4 * len(segs) + 64  # no 1 m mesh along the road
    px = np.r_[rng.uniform(-3e5, 5e5, 1500), rng.uniform(0, 5000, 500)]
    py = np.r_[rng.uniform(-3e5, 3e5, 1500), rng.uniform(0, 5000, 500)]
    got = net.nearest_segments(px, py)
    tree = shapely.STRtree(shapely.linestrings(segs.reshape(-1, 2, 2)))
    p = shapely.points(px, py)
    best = shapely.distance(p, tree.geometries[tree.query_nearest(p, all_matches=False)[1]])
    assert np.allclose(shapely.distance(p, tree.geometries[got]), best, rtol=0, atol=1e-7)
