"""Editing a draft plan: redraw, move buildings, split, merge, undo/redo — the tiling stays exact.

Tiny worlds are drawn in metres around a point in Dalian and stored in WGS84, like the plans' tests.
Every edit's result is checked against the community: the grids' union covers it to 1e-6 of
its area (measured in metres) and no two grids overlap.
"""
import geopandas as gpd
import numpy as np
import pytest
import shapely
from conftest import lonlat, metres
from test_plans import add_buildings
from shapely.geometry import LineString, MultiPolygon, Polygon, box

from gridmap import plans
from gridmap.errors import Conflict, InvalidInput
from gridmap.store import models as m
from gridmap.web import bodies

CODE = "210213013099"

# The world: a 300 m × 100 m community in three grids; 002 holds two buildings.
#
#   y=100 +--------+------------------+--------+
#         |  001   |      002         |  003   |
#         |  [b1]  |  [b2]     [b4]   |  [b3]  |      b1, b2, b3: 20 households; b4: 10
#   y=0   +--------+------------------+--------+
#         0       100 120 140  170 190 200 240 260 300
THREE = (box(0, 0, 100, 100), box(100, 0, 200, 100), box(200, 0, 300, 100))
HOUSES = ((box(40, 40, 60, 60), 20), (box(120, 40, 140, 60), 20), (box(240, 40, 260, 60), 20),
          (box(170, 40, 190, 60), 10))


# The community is the union of the three grids as stored: straight lines in metres are not
# quite straight in lon/lat, so a separately converted rectangle would differ by millimetres.
COMMUNITY_LL = shapely.union_all([lonlat(x) for x in THREE])


def g(n):
    return f"{CODE}{n:03d}"


@pytest.fixture
def world(store):
    """The world above as a published plan and a draft copy; returns ids, the draft's version and building ids."""
    with store.transaction() as s:
        s.add(m.District(code="210213000000", name="金州区"))
        s.add(m.Street(code="210213013000", district_code="210213000000", name="湾里街道"))
        s.add(m.Community(code=CODE, street_code="210213013000", name="测试社区",
                          geom=MultiPolygon([COMMUNITY_LL])))
        s.flush()
        ids = [b.id for b in add_buildings(s, HOUSES)]
        frame = gpd.GeoDataFrame({"code": [g(1), g(2), g(3)]}, geometry=[lonlat(x) for x in THREE], crs=4326)
        published = plans.publish(s, plans.create_plan(s, CODE, frame))
        draft = plans.copy_plan(s, published.id, name="草稿")
        s.flush()
        return {"published": published.id, "draft": draft.id, "version": draft.version, "b": ids}


def shapes(store, plan_id):
    """code → grid polygon in local metres."""
    with store.session() as s:
        return {gr.code: metres(gr.geom) for gr in plans.get_plan(s, plan_id).grids}


def assert_exact_tiling(store, plan_id):
    geoms = list(shapes(store, plan_id).values())
    union = shapely.union_all(geoms)
    community = metres(COMMUNITY_LL)
    assert abs(union.area - community.area) <= 1e-6 * community.area
    assert shapely.symmetric_difference(union, community).area <= 1e-6 * community.area
    assert abs(sum(x.area for x in geoms) - union.area) <= 1e-6 * community.area  # no overlaps
    assert all(x.geom_type == "Polygon" for x in geoms)


def edit(store, fn, *args, **kw):
    with store.transaction() as s:
        return fn(s, *args, **kw)


def by_code(state):
    return {r["code"]: r for r in state["grids"]}


# --- redraw -------------------------------------------------------------------------------------

def test_a_grid_redrawn_wider_takes_strips_from_both_neighbours_and_the_tiling_stays_exact(store, world):
    r"""002 redrawn from x=80 to x=220 (drawn past the community's top and bottom):

        +------+--------------+------+
        | 001  |     002      | 003  |
        +------+--------------+------+
        0     80             220    300
    """
    state = edit(store, plans.redraw, world["draft"], g(2), lonlat(box(80, -20, 220, 120)), world["version"])
    got = shapes(store, world["draft"])
    assert got[g(1)].area == pytest.approx(8000, rel=1e-6)
    assert got[g(2)].area == pytest.approx(14000, rel=1e-6)
    assert got[g(3)].area == pytest.approx(8000, rel=1e-6)
    assert_exact_tiling(store, world["draft"])
    assert state["plan"]["version"] == world["version"] + 1
    assert state["touched"] == [g(1), g(2), g(3)]
    assert by_code(state)[g(2)]["area_m2"] == pytest.approx(14000, rel=1e-4)


def test_what_a_redrawn_grid_gives_up_goes_to_the_neighbour_sharing_the_longest_boundary(store, world):
    r"""002 shrinks to x=110..160: the west strip (touching only 001) goes to 001, the east strip to 003.

        +--------+--+-------+----------+--------+
        |  001 ← |  |  002  |      → 003        |
        +--------+--+-------+----------+--------+
        0       100 110    160        200      300
    """
    state = edit(store, plans.redraw, world["draft"], g(2), lonlat(box(110, 0, 160, 100)), world["version"])
    got = shapes(store, world["draft"])
    assert [round(got[g(i)].area) for i in (1, 2, 3)] == [11000, 5000, 14000]
    assert_exact_tiling(store, world["draft"])
    # b2 (120..140) stays in 002, b4 (170..190) is now in 003: households follow the shapes
    assert [by_code(state)[g(i)]["households"] for i in (1, 2, 3)] == [20, 20, 30]


def test_an_area_given_up_that_touches_no_neighbour_is_a_conflict_and_nothing_is_written(store, world):
    r"""002 redrawn with a notch at the bottom edge: the notch borders only 002 and the community edge.

        +--------+--------------+--------+
        |  001   |     002      |  003   |
        |        |    +--+      |        |
        +--------+----+..+------+--------+
                     140 160          (the notch: 140..160 × 0..10)
    """
    notch = Polygon([(100, 0), (140, 0), (140, 10), (160, 10), (160, 0), (200, 0), (200, 100), (100, 100)])
    before = shapes(store, world["draft"])
    with pytest.raises(Conflict) as err:
        edit(store, plans.redraw, world["draft"], g(2), lonlat(notch), world["version"])
    assert "200 m²" in err.value.message and "touch no other grid" in err.value.message
    located = metres(shapely.geometry.shape(err.value.details["geometry"]))
    assert located.area == pytest.approx(200, rel=1e-6)
    assert shapes(store, world["draft"]) == before
    with store.session() as s:
        assert plans.get_plan(s, world["draft"]).version == world["version"]


def test_a_redraw_cutting_a_neighbour_in_two_is_a_conflict(store, world):
    """A drawn band across 001 (x=0..150, y=40..60) would leave 001 in a northern and a southern piece."""
    with pytest.raises(Conflict, match=r"Grid 210213013099001 would be cut into 2 pieces"):
        edit(store, plans.redraw, world["draft"], g(2), lonlat(Polygon(
            [(-10, 40), (100, 40), (100, 0), (200, 0), (200, 100), (100, 100), (100, 60), (-10, 60)])),
            world["version"])


# --- move buildings -----------------------------------------------------------------------------

def test_a_moved_building_takes_its_cell_and_its_households_to_the_neighbour(store, world):
    r"""b4 (x=170..190) moves from 002 to 003. Its cell in 002's tessellation by its buildings runs from
    x=155 (halfway to b2 at 130) to 002's edge at x=200; it joins 003:

        +--------+-------+----------------+
        |  001   |  002  |      003       |
        +--------+-------+----------------+
        0       100     155              300
    """
    b4 = world["b"][3]
    state = edit(store, plans.move_buildings, world["draft"], [b4], g(3), world["version"])
    got = shapes(store, world["draft"])
    # the cell is built in an affine stretch of lon/lat, not the metric CRS: millimetres apart
    assert got[g(2)].area == pytest.approx(5500, rel=1e-5)
    assert got[g(3)].area == pytest.approx(14500, rel=1e-5)
    assert_exact_tiling(store, world["draft"])
    assert [by_code(state)[g(i)]["households"] for i in (1, 2, 3)] == [20, 20, 30]
    assert not [f for f in state["findings"] if f["kind"] == "split_building"]


def test_a_building_not_bordering_the_target_grid_cannot_move_there(store, world):
    """b2's cell in 002 ends at x=155, where b4's begins: b4 lies between it and 003."""
    with pytest.raises(Conflict, match="do not border grid 210213013099003") as err:
        edit(store, plans.move_buildings, world["draft"], [world["b"][1]], g(3), world["version"])
    assert metres(shapely.geometry.shape(err.value.details["geometry"])).area == pytest.approx(5500, rel=1e-5)


def test_moving_every_building_of_a_grid_away_would_empty_it_and_is_refused(store, world):
    """b3 is 003's only building: its cell is all of 003."""
    with pytest.raises(Conflict, match="leave grid 210213013099003 empty"):
        edit(store, plans.move_buildings, world["draft"], [world["b"][2]], g(2), world["version"])


def test_both_buildings_of_a_grid_can_move_one_by_one_until_the_last(store, world):
    """b2 (cell 100..155 of 002) joins 001; 002 keeps b4 and 155..200."""
    state = edit(store, plans.move_buildings, world["draft"], [world["b"][1]], g(1), world["version"])
    got = shapes(store, world["draft"])
    assert got[g(1)].area == pytest.approx(15500, rel=1e-5)
    assert_exact_tiling(store, world["draft"])
    assert [by_code(state)[g(i)]["households"] for i in (1, 2, 3)] == [40, 10, 20]


# --- split and merge ----------------------------------------------------------------------------

def test_a_line_splits_a_grid_in_two_the_bigger_side_keeps_the_code_the_other_gets_the_next_number(store, world):
    """The line x=150 cuts 002 into 100..150 (b2, 20 households) and 150..200 (b4, 10): 004 is new."""
    state = edit(store, plans.split, world["draft"], g(2), lonlat(LineString([(150, -5), (150, 105)])),
                 world["version"])
    got = shapes(store, world["draft"])
    assert sorted(got) == [g(1), g(2), g(3), g(4)]
    assert got[g(2)].area == pytest.approx(5000, rel=1e-6) and got[g(2)].bounds[2] == pytest.approx(150, abs=1e-6)
    assert got[g(4)].area == pytest.approx(5000, rel=1e-6)
    assert_exact_tiling(store, world["draft"])
    assert (by_code(state)[g(2)]["households"], by_code(state)[g(4)]["households"]) == (20, 10)
    assert by_code(state)[g(4)]["name"] == "测试社区第4网格"
    assert state["undo"]["grids"][g(4)] is None  # undo removes the new grid


def test_a_line_through_a_building_puts_the_building_wholly_on_its_bigger_side(store, world):
    """x=125 cuts b2 (120..140) 5 m : 15 m, so b2 goes east with its 20 households."""
    state = edit(store, plans.split, world["draft"], g(2), lonlat(LineString([(125, -5), (125, 105)])),
                 world["version"])
    assert_exact_tiling(store, world["draft"])
    assert not [f for f in state["findings"] if f["kind"] == "split_building"]
    east = by_code(state)[g(2)]  # 30 households east, so the east side keeps 002
    assert (east["households"], by_code(state)[g(4)]["households"]) == (30, 0)
    assert east["area_m2"] == pytest.approx(7500 + 5 * 20, rel=1e-4)


def test_a_line_that_does_not_cross_the_grid_is_refused(store, world):
    with pytest.raises(Conflict, match="into 1 piece"):
        edit(store, plans.split, world["draft"], g(2), lonlat(LineString([(150, 20), (150, 80)])),
             world["version"])


def test_split_numbers_skip_codes_a_worker_is_listed_under(store, world):
    """004 was an older draft's, and a worker is listed under it: it must not come back; 005 it is."""
    with store.transaction() as s:
        other = plans.copy_plan(s, world["published"])
        other.grids.append(m.Grid(code=g(4), name="旧", geom=lonlat(box(0, 0, 1, 1))))
        worker = m.GridWorker(name="老王", community_code=CODE)
        s.add(worker)
        s.flush()
        s.execute(m.grid_worker_grid.insert().values(worker_id=worker.id, grid_code=g(4)))
    state = edit(store, plans.split, world["draft"], g(2), lonlat(LineString([(150, -5), (150, 105)])),
                 world["version"])
    assert g(5) in by_code(state) and g(4) not in by_code(state)


def test_a_code_only_a_discarded_draft_held_is_free_again(store, world):
    """Trial drafts do not use the community's 999 numbers up: nobody was ever told of their 004."""
    with store.transaction() as s:
        other = plans.copy_plan(s, world["published"])
        other.grids.append(m.Grid(code=g(4), name="试", geom=lonlat(box(0, 0, 1, 1))))
    state = edit(store, plans.split, world["draft"], g(2), lonlat(LineString([(150, -5), (150, 105)])),
                 world["version"])
    assert g(4) in by_code(state)


def test_two_neighbours_merge_into_the_first_code(store, world):
    state = edit(store, plans.merge, world["draft"], g(1), g(2), world["version"])
    got = shapes(store, world["draft"])
    assert sorted(got) == [g(1), g(3)]
    assert got[g(1)].area == pytest.approx(20000, rel=1e-6) and got[g(1)].geom_type == "Polygon"
    assert by_code(state)[g(1)]["households"] == 50
    assert_exact_tiling(store, world["draft"])


def test_grids_that_do_not_touch_are_not_merged(store, world):
    with pytest.raises(Conflict, match="do not share a boundary"):
        edit(store, plans.merge, world["draft"], g(1), g(3), world["version"])
    assert sorted(shapes(store, world["draft"])) == [g(1), g(2), g(3)]


# --- versions, status, undo ---------------------------------------------------------------------

def test_an_edit_on_a_stale_version_is_a_conflict_naming_the_newer_version_and_writes_nothing(store, world):
    edit(store, plans.merge, world["draft"], g(1), g(2), world["version"])
    before = shapes(store, world["draft"])
    with pytest.raises(Conflict) as err:
        edit(store, plans.redraw, world["draft"], g(3), lonlat(box(150, 0, 300, 100)), world["version"])
    assert err.value.status == 409
    assert err.value.details == {"version": world["version"] + 1}
    assert shapes(store, world["draft"]) == before


def test_a_published_plan_is_never_edited_in_place(store, world):
    with store.session() as s:
        version = plans.get_plan(s, world["published"]).version
    with pytest.raises(Conflict, match="never edited in place"):
        edit(store, plans.merge, world["published"], g(1), g(2), version)


def test_undo_and_redo_replay_the_touched_grids_through_set_grids(store, world):
    original = shapes(store, world["draft"])
    split = edit(store, plans.split, world["draft"], g(2), lonlat(LineString([(150, -5), (150, 105)])),
                 world["version"])
    after_split = shapes(store, world["draft"])
    undo = {c: (shapely.geometry.shape(x) if x else None) for c, x in split["undo"]["grids"].items()}
    back = edit(store, plans.set_grids, world["draft"], undo, split["plan"]["version"],
                names=split["undo"]["names"])
    assert shapes(store, world["draft"]) == original  # bit for bit: the polygons travel as they were
    assert back["plan"]["version"] == world["version"] + 2
    redo = {c: (shapely.geometry.shape(x) if x else None) for c, x in split["redo"]["grids"].items()}
    again = edit(store, plans.set_grids, world["draft"], redo, back["plan"]["version"],
                 names=split["redo"]["names"])
    assert shapes(store, world["draft"]) == after_split
    assert by_code(again)[g(4)]["name"] == "测试社区第4网格"


def test_set_grids_refuses_polygons_that_would_overlap_a_neighbour(store, world):
    with pytest.raises(Conflict, match="overlaps grow by 1,?000"):
        edit(store, plans.set_grids, world["draft"], {g(2): lonlat(box(100, 0, 210, 100))}, world["version"])


def test_the_metrics_give_households_area_compactness_and_deviation_per_grid(store, world):
    with store.session() as s:
        state = plans.plan_state(s, world["draft"])
    rows = by_code(state)
    # 70 households in 3 grids: mean 23.3; 001 has 20 → −14.3 %
    assert rows[g(1)]["deviation"] == pytest.approx(20 / (70 / 3) - 1, abs=1e-4)
    assert rows[g(2)]["households"] == 30
    # a 100 m square: 4π·10000 / 400² = π/4
    assert rows[g(1)]["polsby_popper"] == pytest.approx(np.pi / 4, abs=1e-3)
    assert rows[g(1)]["area_m2"] == pytest.approx(10000, rel=1e-4)
    assert [(b["grid"], b["households"]) for b in state["buildings"]] == [(g(1), 20), (g(2), 20), (g(3), 20),
                                                                          (g(2), 10)]


@pytest.mark.parametrize("kind, body, named", [
    ("redraw", {"version": 1, "grid_code": "x", "polygon": {}}, "grid_code='x'"),
    ("redraw", {"version": 1, "grid_code": g(1), "polygon": {"type": "Point", "coordinates": [1, 2]}}, "'Point'"),
    ("redraw", {"version": 0, "grid_code": g(1), "polygon": {}}, "version=0"),
    ("split", {"version": 1, "grid_code": g(1), "line": {"type": "LineString", "coordinates": [[1, 2], [500, 3]]}},
     "(500.0, 3.0)"),
    ("move", {"version": 1, "building_ids": [], "to_grid": g(1)}, "building_ids=[]"),
    ("merge", {"version": 1, "codes": [g(1)]}, "codes="),
    ("merge", {"version": 1, "codes": [g(1), g(2)], "extra": 1}, "Unknown field(s) extra in"),
])
def test_bad_edit_bodies_are_refused_naming_the_value(kind, body, named):
    with pytest.raises(InvalidInput) as err:
        bodies.parse_edit(kind, body)
    assert named in err.value.message
