"""Edits never break the geometry: random sequences of redraws, vertex moves, splits, merges, building
moves and undos keep every grid valid (in lon/lat and in metres) and the tiling intact, and every
refusal is one of the documented errors with nothing written. Plus the validation's own border:
geometry that trips GEOS in a rule is repaired, retried or reported, never raised.

The hand-drawn world is test_editing's (three grids in a 300 m × 100 m community); the demo's five
communities are edited through the planner's endpoint, as the page sends its edits.
"""
import geopandas as gpd
import numpy as np
import pytest
import shapely
import shapely.errors
from conftest import make_app
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon
from test_editing import COMMUNITY_LL, world  # noqa: F401  (world is a fixture)

from gridmap import plans
from gridmap.errors import Conflict, GridmapError
from gridmap.geo.crs import metric_for
from gridmap.plans import editing, rules

# Bounded and derandomized: the same examples on every run, a few seconds per backend.
BOUNDED = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                          HealthCheck.data_too_large])

# --- the edits, drawn as abstract choices and resolved against the plan as it is then ----------------

_JOINS = st.sampled_from(["round", "mitre", "bevel"])
EDIT = st.one_of(
    st.tuples(st.just("redraw"), st.integers(0, 99), st.floats(-12, 15), _JOINS),
    st.tuples(st.just("vertex"), st.integers(0, 99), st.integers(0, 99), st.floats(-10, 10), st.floats(-10, 10)),
    st.tuples(st.just("split"), st.integers(0, 99), st.floats(0, 180), st.floats(-20, 20)),
    st.tuples(st.just("merge"), st.integers(0, 99), st.integers(0, 99)),
    st.tuples(st.just("move"), st.integers(0, 999), st.integers(0, 99)),
    st.tuples(st.just("undo")),
)
EDITS = st.lists(EDIT, min_size=1, max_size=4)


def _request(op, grids, buildings, undo):
    """(kind, body) of the edit ``op`` on ``grids`` (code → WGS84 polygon), or None when it does not apply."""
    codes = sorted(grids)
    if op[0] == "undo":
        return ("set_grids", {"grids": undo["grids"], "names": undo["names"]}) if undo else None
    if op[0] == "move":
        if not buildings:
            return None
        return "move", {"building_ids": [buildings[op[1] % len(buildings)]], "to_grid": codes[op[2] % len(codes)]}
    code = codes[op[1] % len(codes)]
    grid = grids[code]
    frame = metric_for(grid)
    here = frame.project([grid])[0]
    if op[0] == "redraw":
        drawn = shapely.buffer(here, op[2], join_style=op[3])
        if drawn.is_empty:
            return None
        drawn = max(shapely.get_parts(drawn), key=lambda p: p.area)
        return "redraw", {"grid_code": code, "polygon": frame.unproject([Polygon(drawn.exterior)])[0]}
    if op[0] == "vertex":
        ring = np.asarray(here.exterior.coords)[:-1]
        k = op[2] % len(ring)
        ring[k] += (op[3], op[4])
        return "redraw", {"grid_code": code, "polygon": frame.unproject([Polygon(ring)])[0]}
    if op[0] == "split":
        c = here.representative_point()
        a = np.radians(op[2])
        d = np.array([np.cos(a), np.sin(a)])
        o = np.array([c.x, c.y]) + op[3] * np.array([-d[1], d[0]])
        line = shapely.LineString([o - 5000 * d, o + 5000 * d])
        return "split", {"grid_code": code, "line": frame.unproject([line])[0]}
    others = [c for c in codes if c != code and shapely.intersects(shapely.buffer(grid, 1e-7), grids[c])]
    if not others:
        return None
    return "merge", {"codes": [code, others[op[2] % len(others)]]}


# --- what must hold after every edit -------------------------------------------------------------------

def _tiling(grids, community):
    """(overlap, gap, outside) in m² of ``grids`` (WGS84) against ``community``, in the community's frame."""
    frame = metric_for(community)
    geoms = list(frame.project(list(grids)))
    comm = frame.project([community])[0]
    union = shapely.union_all(geoms)
    return (sum(g.area for g in geoms) - union.area, shapely.difference(comm, union).area,
            shapely.difference(union, comm).area)


def assert_sound(grids, community, start, edits):
    """Every grid one valid polygon in lon/lat and in metres; gaps, overlaps and parts outside at most
    ``edits`` times the editor's tolerance more than at ``start``."""
    frame = metric_for(list(grids.values()))
    for code, g in grids.items():
        assert g.geom_type == "Polygon" and g.is_valid, (code, shapely.is_valid_reason(g))
        assert frame.project([g])[0].is_valid, (code, shapely.is_valid_reason(frame.project([g])[0]))
    eps = max(editing.TILING_EPS_M2, editing.TILING_EPS_SHARE * metric_for(community).project([community])[0].area)
    got = _tiling(grids.values(), community)
    for what, now, then in zip(("overlap", "gap", "outside"), got, start):
        assert now <= then + edits * eps + 1e-9, f"{what} grew from {then:.4f} to {now:.4f} m² in {edits} edit(s)"


def _grids_of(store, plan_id):
    with store.session() as s:
        return {g.code: g.geom for g in plans.get_plan(s, plan_id).grids}


def _version(store, plan_id):
    with store.session() as s:
        return plans.get_plan(s, plan_id).version


# --- the hand-drawn world, on both backends --------------------------------------------------------------

@BOUNDED
@given(ops=EDITS)
# Found by a longer run: 002 kept a loose speck of 4e-5 m² along the community's edge, a second part
# the validation reports as an error ("2 separate pieces"), before specks no grid can hold went to none.
@example(ops=[("redraw", 0, 0.0, "round"), ("redraw", 0, 2.0, "round"), ("redraw", 0, 6.0, "round")])
def test_random_edits_of_the_small_community_keep_every_grid_valid_and_the_tiling_exact(store, world, ops):  # noqa: F811
    with store.transaction() as s:
        draft = plans.copy_plan(s, world["published"], name="fuzz")
        s.flush()
        plan_id = draft.id
    start = _tiling(_grids_of(store, plan_id).values(), COMMUNITY_LL)
    undo, done = None, 0
    for op in ops:
        grids, version = _grids_of(store, plan_id), _version(store, plan_id)
        req = _request(op, grids, world["b"], undo)
        if req is None:
            continue
        kind, body = req
        try:
            with store.transaction() as s:
                out = plans.apply_edit(s, plan_id, kind, {"version": version, **body})
        except GridmapError as err:
            assert err.status in (400, 404, 409), err
            assert _grids_of(store, plan_id) == grids and _version(store, plan_id) == version  # nothing written
            continue
        done += 1
        undo = {"grids": {c: (None if g is None else shapely.geometry.shape(g)) for c, g in out["undo"]["grids"].items()},
                "names": out["undo"]["names"]}
        assert not [f for f in out["findings"] if f["kind"] == "unchecked"]
        assert_sound(_grids_of(store, plan_id), COMMUNITY_LL, start, done)
    with store.session() as s:  # what reads a plan after its edits reads it whole
        plans.diff(s, world["published"], plan_id)
        assert len(plans.grid_table(s, plan_id)) == len(_grids_of(store, plan_id))


# --- the demo, through the planner's endpoint ------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_planner(tmp_path_factory, demo_frames):
    """The demo in an app of this module's own, a planner signed in (CSRF off), the published plans by id."""
    from sqlalchemy import select

    from gridmap import demo
    from gridmap.store import models as m
    app, _ = make_app(tmp_path_factory.mktemp("robust"), "sqlite")
    store = app.extensions["gridmap.store"]
    demo.build(store, frames=demo_frames)
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    assert client.post("/login", data={"username": "planner", "password": "gridmap-demo"}).status_code == 302
    with store.session() as s:
        published = {p.id: (p.community_code, s.get(m.Community, p.community_code).geom,
                            sorted(s.scalars(select(m.Building.id).where(
                                m.Building.community_code == p.community_code)).all()))
                     for p in s.scalars(select(m.GridPlan).where(m.GridPlan.status == "published"))}
    yield client, published
    store.dispose()


def _json(body):
    """An edit body as the page sends it: geometries as GeoJSON."""
    out = {}
    for k, v in body.items():
        if isinstance(v, shapely.Geometry):
            v = shapely.geometry.mapping(v)
        elif k == "grids":
            v = {c: (None if g is None else shapely.geometry.mapping(g)) for c, g in v.items()}
        out[k] = v
    return out


@BOUNDED
@given(plan=st.sampled_from([1, 2, 3, 4, 5]), ops=EDITS)
# Found by a longer run of this search; each answered 500 before the editor shaved hairs and kept
# its overlays polygonal. Plan 2 is 210203010006 (grids 001…009), plan 1 is 210202012001 (001…012).
@example(plan=2, ops=[("redraw", 1, 4.5, "bevel"), ("redraw", 1, 14.399999999999997, "bevel")])
@example(plan=2, ops=[("redraw", 5, -4.303199322963353, "bevel"), ("redraw", 8, 14.214120672475492, "bevel")])
@example(plan=1, ops=[("redraw", 9, 4.259616381153407, "bevel"), ("redraw", 1, 18.32861799251532, "mitre"),
                      ("redraw", 4, 4.755639163406908, "round")])
def test_random_edits_of_the_demo_communities_answer_valid_grids_or_a_4xx(demo_planner, plan, ops):
    client, published = demo_planner
    community, boundary, buildings = published[plan]
    r = client.post(f"/api/v1/plans/{plan}/copy")
    assert r.status_code == 201
    plan_id, version = r.get_json()["id"], r.get_json()["version"]
    state = client.get(f"/planner/api/plans/{plan_id}").get_json()
    grids = {g["code"]: shapely.geometry.shape(g["geometry"]) for g in state["grids"]}
    start = _tiling(grids.values(), boundary)
    undo, done = None, 0
    for op in ops:
        req = _request(op, grids, buildings, undo)
        if req is None:
            continue
        kind, body = req
        r = client.post(f"/planner/api/plans/{plan_id}/{kind.replace('_', '-')}",
                        json={"version": version, **_json(body)})
        if r.status_code != 200:
            assert r.status_code in (400, 404, 409), (r.status_code, r.get_json())
            assert client.get(f"/api/v1/plans/{plan_id}").get_json()["version"] == version  # nothing written
            continue
        out = r.get_json()
        done, version = done + 1, out["plan"]["version"]
        grids = {g["code"]: shapely.geometry.shape(g["geometry"]) for g in out["grids"]}
        undo = {"grids": {c: (None if g is None else shapely.geometry.shape(g)) for c, g in out["undo"]["grids"].items()},
                "names": out["undo"]["names"]}
        assert not [f for f in out["findings"] if f["kind"] == "unchecked"]
        assert_sound(grids, boundary, start, done)
    assert client.get(f"/api/v1/plans/{plan}/diff/{plan_id}").status_code == 200


# --- the engine's pieces ---------------------------------------------------------------------------------

def test_a_hair_spike_drawn_into_a_neighbour_is_shaved_off_and_handed_to_it(store, world):  # noqa: F811
    r"""002 restored (set_grids) with a spike 0.1 mm wide and 60 m long reaching into 003 along y=50:
    valid, but in metres such a spike crosses its own edge. The spike goes to 003, which it lies in.

        +--------+--------+--------+
        |  001   |  002 =========  |
        +--------+--------+--------+
    """
    from conftest import lonlat, metres
    spiky = Polygon([(100, 0), (200, 0), (200, 50), (260, 50.00005), (200, 50.0001), (200, 100), (100, 100)])
    with store.transaction() as s:
        plans.set_grids(s, world["draft"], {f"{world_code(2)}": lonlat(spiky)}, world["version"])
    got = {c: metres(g) for c, g in _grids_of(store, world["draft"]).items()}
    assert got[world_code(2)].bounds[2] == pytest.approx(200, abs=1e-3)  # no spike left
    assert got[world_code(2)].area == pytest.approx(10000, rel=1e-6)
    assert got[world_code(3)].area == pytest.approx(10000, rel=1e-6)
    assert_sound(_grids_of(store, world["draft"]), COMMUNITY_LL, (0, 0, 0), 1)


def test_a_grid_that_would_cross_itself_in_metres_is_a_409_naming_the_place_and_nothing_is_written(store, world):  # noqa: F811
    r"""002 restored with a notch from its top edge down to 2e-10° (0.02 mm) above its bottom edge: valid in
    lon/lat, two real halves joined by that neck, but in metres the 100 m bottom edge sags by ~0.16 mm and
    the notch's tip falls through it.

        +--------+---\/---+--------+
        |  001   |   002    |  003   |
        +--------+----------+--------+
    """
    before = _grids_of(store, world["draft"])
    (x0, y0), (x1, y1) = _bottom(before[world_code(2)])
    ring = list(shapely.get_coordinates(before[world_code(2)]))
    tip = ((x0 + x1) / 2, (y0 + y1) / 2 + 2e-10)
    top = sorted(ring, key=lambda p: -p[1])[:2]
    mid_top = ((top[0][0] + top[1][0]) / 2, top[0][1])
    notch = shapely.difference(before[world_code(2)], Polygon([tip, (mid_top[0] - 1e-5, mid_top[1] + 1e-5),
                                                            (mid_top[0] + 1e-5, mid_top[1] + 1e-5)]))
    assert notch.geom_type == "Polygon" and notch.is_valid
    assert not metric_for(COMMUNITY_LL).project([notch])[0].is_valid  # the premise
    with pytest.raises(Conflict) as err:
        with store.transaction() as s:
            plans.set_grids(s, world["draft"], {world_code(2): notch}, world["version"])
    assert f"Grid {world_code(2)} would have a boundary that crosses itself near" in err.value.message
    place = shapely.geometry.shape(err.value.details["geometry"])
    assert place.distance(shapely.Point(tip)) < 1e-6
    assert _grids_of(store, world["draft"]) == before and _version(store, world["draft"]) == world["version"]


def _bottom(poly):
    """The two lowest vertices of ``poly``, west first."""
    low = sorted(shapely.get_coordinates(poly)[:-1].tolist(), key=lambda p: p[1])[:2]
    return sorted(low)


def test_a_geos_error_inside_an_edit_is_a_409_and_nothing_is_written(store, world, monkeypatch):  # noqa: F811
    def boom(*_a, **_k):
        raise shapely.errors.GEOSException("TopologyException: side location conflict at 1 2")
    monkeypatch.setattr(editing, "_check", boom)
    before = _grids_of(store, world["draft"])
    with pytest.raises(Conflict) as err:
        with store.transaction() as s:
            plans.merge(s, world["draft"], world_code(1), world_code(2), world["version"])
    assert err.value.status == 409 and "side location conflict" in err.value.message
    assert _grids_of(store, world["draft"]) == before and _version(store, world["draft"]) == world["version"]


def world_code(n):
    from test_editing import g
    return g(n)


def test_overlay_results_are_polygonal_even_when_snap_rounding_collapses_a_part():
    """An L-shaped grid meets a box along a strip 3e-11° wide (under the 1e-10° grid) and over a square: GEOS
    answers the square and the collapsed strip as a line, a mix the next overlay refuses; the editor's
    overlays answer the square alone."""
    ell = shapely.union(shapely.box(0, 0, 1e-3, 1e-3), shapely.box(0, 1e-3, 2e-3, 2e-3))
    box = shapely.box(1e-3 - 3e-11, 0, 2e-3, 2e-3)
    raw = shapely.intersection(ell, box, grid_size=editing._GRID_DEG)
    assert raw.geom_type == "GeometryCollection"  # the premise
    with pytest.raises(shapely.errors.GEOSException, match="mixed-dimension"):
        shapely.union(raw, shapely.box(0, 0, 1, 1), grid_size=editing._GRID_DEG)
    got = editing._i(ell, box)
    assert got.geom_type == "Polygon" and got.equals(shapely.box(1e-3, 1e-3, 2e-3, 2e-3))
    assert editing._u(got, shapely.box(0, 0, 1, 1)).equals(shapely.box(0, 0, 1, 1))


# --- the validation's border ---------------------------------------------------------------------------

LON0, LAT0, SPAN, HIGH = 121.597, 38.9, 0.006, 0.001  # ~520 m × 110 m in Dalian


def _spiky_plan():
    """A community in two grids; A's edge along latitude LAT0 doubles back to a point 1e-9° (0.1 mm) above it.

    Valid in lon/lat; in metres the 520 m edge sags by ~4 mm, so the point falls outside and A crosses itself.
    """
    west, east, mid = LON0, LON0 + SPAN, LON0 + 0.6 * SPAN
    a = Polygon([(east, LAT0), (west, LAT0), (mid, LAT0 + 1e-9), (mid, LAT0 + HIGH), (east, LAT0 + HIGH)])
    b = shapely.box(west, LAT0, mid, LAT0 + HIGH)
    community = shapely.box(west, LAT0, east, LAT0 + HIGH)
    frame = gpd.GeoDataFrame({"code": ["210213013099001", "210213013099002"]}, geometry=[a, b], crs=4326)
    return community, frame


def test_a_grid_crossing_itself_only_in_metres_is_validated_without_a_geos_error():
    community, grids = _spiky_plan()
    metric = metric_for(grids)
    a = grids.geometry[0]
    assert a.is_valid and not metric.project([a])[0].is_valid  # the premise
    with pytest.raises(shapely.errors.GEOSException):  # what the rules met before: "side location conflict"
        shapely.difference(metric.project([community])[0], shapely.union_all(metric.project(list(grids.geometry))))
    found = plans.check_plan(community, grids, limits=plans.Limits(0, 0, 1.0))
    assert [f.kind for f in found if f.severity == "error"] == []  # a hair's overlap is below the sliver


def test_a_rule_failing_in_geos_is_retried_on_millimetre_coordinates(monkeypatch):
    community, grids = _spiky_plan()
    seen = []

    def fussy(data):
        coords = shapely.get_coordinates(np.asarray(data.grids.geometry.values, dtype=object))
        seen.append(coords)
        if not np.allclose(coords, np.round(coords, 3), rtol=0, atol=1e-9):
            raise shapely.errors.GEOSException("TopologyException: side location conflict at 1 2")
        yield [grids["code"][0]], data.grids.geometry[0], 1, "found on rounded coordinates", "fix"

    monkeypatch.setattr(rules, "RULES", [rules.Rule("gap", "error", fussy, "test")])
    found = plans.check_plan(community, grids)
    assert [(f.kind, f.message) for f in found] == [("gap", "found on rounded coordinates")]
    assert len(seen) == 2


@pytest.mark.parametrize("message, located", [
    ("TopologyException: side location conflict at 10.5 20.25", "point"),
    ("IllegalArgumentException: Overlay input is mixed-dimension", "community"),
])
def test_a_rule_geos_cannot_run_at_all_is_an_unchecked_error_first_not_an_exception(monkeypatch, message, located):
    community, grids = _spiky_plan()

    def broken(data):
        raise shapely.errors.GEOSException(message)
        yield  # a generator, as every rule

    monkeypatch.setattr(rules, "RULES", [rules.RULES[3], rules.Rule("gap", "error", broken, "part of the community in no grid")])
    found = plans.check_plan(community, grids)
    assert found[0].kind == "unchecked" and found[0].severity == "error"
    assert "The gap rule could not be checked" in found[0].message and found[0].params["rule"] == "gap"
    assert message in found[0].message
    assert sorted(found[0].grid_codes) == sorted(grids["code"])
    metric = metric_for(grids)
    if located == "point":  # where GEOS failed, in metres, is shown in lon/lat
        lon, lat = metric.lonlat(10.5, 20.25)
        assert found[0].geometry.equals_exact(shapely.Point(lon, lat), 1e-9)
        assert f"near ({lon:.6f}, {lat:.6f})" in found[0].message
    else:
        assert found[0].geometry.bounds == pytest.approx(community.bounds, abs=1e-7)
