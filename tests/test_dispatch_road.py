"""Whom to send, ranked by road for the dispatcher's travel mode (issue 11): the road-nearest first,
checked against networkx shortest paths over the same hand-drawn roads per mode; reach by road;
the basis said; the mode validated at the border."""
import dispatch_world as w
import networkx as nx
import pytest
from conftest import at, lonlat
from dispatch_world import COMMUNITY, T0
from shapely.geometry import LineString, Point

from gridmap import access, dispatch
from gridmap.geo.roads import MODES, ONEWAY_MODES, ROAD_CLASSES
from gridmap.pages import dispatcher as dispatchview
from gridmap.store import models as m
from gridmap.store.generations import bump_generation

DISPATCHER = dispatch.Actor("dispatcher", "dispatcher", access.Area(communities={COMMUNITY}))
INCIDENT = (100, 100)  # building b1 of dispatch_world, on the main street

#: (points in metres, kind, oneway). The incident I is at (100, 100) on the main street::
#:
#:      A (100,160) ===== residential ===================== (700,160)
#:      |  footway                                               | one-way south
#:   ---I (100,100) --------- B (400,100) ------- main ---- (700,100) ---- (1600,100)
#:      |  cycleway                                                             |
#:      C (100,-150) ============== residential ============================ (1600,-150)
#:
#: In a straight line A (60 m) < C (250 m) < B (300 m). On foot A, C, B; by e-bike (no footway)
#: C 250, B 300, A 1,260; by car (no footway, no cycleway) B 300, A 1,260 and C 3,250 m, beyond a
#: property manager's 2 km reach by road although 250 m away in a straight line.
ROADS = [
    ([(-200, 100), (100, 100), (400, 100), (700, 100), (1600, 100)], "residential", ""),
    ([(100, 100), (100, 160)], "footway", ""),
    ([(100, 160), (700, 160)], "residential", ""),
    ([(700, 160), (700, 100)], "residential", "yes"),
    ([(100, 100), (100, -150)], "cycleway", ""),
    ([(100, -150), (1600, -150), (1600, 100)], "residential", ""),
]
MANAGERS = {"物业A": (100, 160), "物业B": (400, 100), "物业C": (100, -150)}


def _oracle(mode, roads=ROADS):
    """Metres each manager travels to the incident by ``mode``: networkx over the same segments,
    the classes the mode may use, one-way streets for vehicles."""
    g = nx.DiGraph()
    for points, kind, oneway in roads:
        if ROAD_CLASSES[kind][MODES.index(mode)] is None:
            continue
        for a, b in zip(points[:-1], points[1:]):
            length = Point(a).distance(Point(b))
            g.add_edge(a, b, weight=length)
            if not (oneway == "yes" and mode in ONEWAY_MODES):
                g.add_edge(b, a, weight=length)
    out = {}
    for name, xy in MANAGERS.items():
        try:
            out[name] = nx.shortest_path_length(g, xy, INCIDENT, weight="weight")
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            out[name] = float("inf")
    return out


def _add_roads(store, roads=ROADS):
    with store.transaction() as s:
        for i, (points, kind, oneway) in enumerate(roads):
            s.add(m.Road(name=f"路{i}", kind=kind, oneway=oneway, geom=lonlat(LineString(points))))
        bump_generation(s)


@pytest.fixture
def world(app):
    store = w.build(app.extensions["gridmap.store"])
    with store.transaction() as s:
        for name, xy in MANAGERS.items():
            s.add(m.Responder(name=name, kind="property_management", phone="13600000007", geom=lonlat(Point(*xy))))
        bump_generation(s)
    return app


def _snap(app):
    return app.extensions["gridmap.snapshots"].get()


def _report(app, category="corridor_clutter"):  # names property management (2 km reach) and fire
    with app.extensions["gridmap.store"].transaction() as s:
        return dispatch.report(s, _snap(app), category=category, lon=at(*INCIDENT)[0], lat=at(*INCIDENT)[1],
                               now=T0, actor=DISPATCHER)


@pytest.mark.parametrize("mode", MODES)
def test_propose_ranks_by_road_for_the_mode_as_networkx_does_and_caps_reach_by_road(world, mode):
    _add_roads(world.extensions["gridmap.store"])
    inc = _report(world)
    got = dispatch.propose(_snap(world), inc, role="dispatcher", area=DISPATCHER.area, mode=mode)
    oracle = _oracle(mode)
    expected = [n for n in sorted(oracle, key=oracle.get) if oracle[n] <= 2_000]
    assert [r["name"] for r in got["responders"]["property_management"]] == expected
    for r in got["responders"]["property_management"]:
        assert r["road_distance_m"] == pytest.approx(oracle[r["name"]], rel=2e-3, abs=0.5)
        assert r["reachable"] is True and r["eta_s"] > 0
    assert (got["mode"], got["distance_basis"], got["exact"]) == (mode, "road", True)
    # volunteers by the same road search: those on the main street, as far by road as in a line
    assert [v["name"] for v in got["volunteers"]] == ["张助老", "钱维修", "赵义诊"]
    assert [v["road_distance_m"] for v in got["volunteers"]] == pytest.approx([10, 20, 290], abs=0.5)
    straight = [n for n in sorted(MANAGERS, key=lambda n: Point(MANAGERS[n]).distance(Point(INCIDENT)))]
    if mode != "walk":  # the point of it: the straight line would have sent someone else first
        assert expected[0] != straight[0]
    # the panel of the same spot ranks and caps alike
    panel = dispatchview.panel(_snap(world), *at(*INCIDENT), role="dispatcher", area=DISPATCHER.area, mode=mode)
    assert [r["name"] for r in panel["responders"]["property_management"]] == expected
    assert (panel["mode"], panel["distance_basis"]) == (mode, "road")


def test_car_proposal_in_numbers():
    car = _oracle("car")
    assert car == pytest.approx({"物业A": 1260, "物业B": 300, "物业C": 3250})
    assert _oracle("ebike") == pytest.approx({"物业A": 1260, "物业B": 300, "物业C": 250})


def test_without_roads_the_proposal_says_its_distances_are_straight_lines(world):
    inc = _report(world)
    got = dispatch.propose(_snap(world), inc, role="dispatcher", area=DISPATCHER.area, mode="ebike")
    assert [r["name"] for r in got["responders"]["property_management"]] == ["物业A", "物业C", "物业B"]
    assert (got["distance_basis"], got["exact"]) == ("straight line", None)
    assert all(r["road_distance_m"] is None and r["reachable"] is None
               for r in got["responders"]["property_management"] + got["volunteers"])


def test_the_api_and_the_dispatch_page_take_the_mode_and_refuse_an_unknown_one_naming_the_allowed(world):
    _add_roads(world.extensions["gridmap.store"])
    inc = _report(world)
    world.config["WTF_CSRF_ENABLED"] = False  # a login form posted by the test, not a browser
    client = w.login(world, "dispatcher")
    r = client.get(f"/api/v1/incidents/{inc.id}/responders?mode=ebike")
    assert r.status_code == 200
    body = r.get_json()
    assert (body["mode"], body["distance_basis"]) == ("ebike", "road")
    assert [p["name"] for p in body["responders"]["property_management"]] == ["物业C", "物业B", "物业A"]
    opened = client.get(f"/dispatch/incidents/{inc.id}?mode=car").get_json()
    assert [p["name"] for p in opened["proposal"]["responders"]["property_management"]] == ["物业B", "物业A"]
    lon, lat = at(*INCIDENT)
    for url in (f"/api/v1/incidents/{inc.id}/responders?mode=boat", f"/dispatch/incidents/{inc.id}?mode=boat",
                f"/dispatch/panel?lon={lon}&lat={lat}&mode=boat", f"/dispatch/map?incident={inc.id}&mode=boat",
                f"/api/v1/nearest?lon={lon}&lat={lat}&by=road&mode=boat"):
        r = client.get(url)
        assert r.status_code == 400, url
        text = r.get_data(as_text=True)
        assert "boat" in text and all(mode in text for mode in MODES), (url, text)
