"""Plans: validation findings, publish refused with errors, generations, diff, as-of lookups, the plan API and exports."""
import datetime as dt
import re
import zipfile

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import lonlat, metres
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Point, Polygon, box
from sqlalchemy import func, or_, select

from gridmap import accounts, index, plans
from gridmap.errors import Conflict, InvalidInput, NotFound
from gridmap.geo.crs import Metric, metric_for
from gridmap.plans import rules
from gridmap.store import models as m
from gridmap.store.generations import bump_generation, generation
from gridmap.web import params

# Tiny worlds are drawn in metres around a point in Dalian (conftest.CENTRE), then converted to WGS84.
CODE = "210213013099"
LIMITS = plans.Limits(max_households=100, min_households=10, sliver_m2=1.0)


def plan_valid_on(session, community_code, day):
    """The plan valid for a community on ``day`` (published or since retired), by its dates: the oracle."""
    return session.scalars(select(m.GridPlan).where(
        m.GridPlan.community_code == community_code, m.GridPlan.status.in_(("published", "retired")),
        m.GridPlan.valid_from <= day, or_(m.GridPlan.valid_to.is_(None), m.GridPlan.valid_to > day))).first()


def grids(*geoms, codes=None):
    codes = codes or [f"{CODE}{i:03d}" for i in range(1, len(geoms) + 1)]
    return gpd.GeoDataFrame({"code": codes}, geometry=[lonlat(g) for g in geoms], crs=4326)


def buildings(*items):
    """(footprint in metres, households) pairs."""
    return gpd.GeoDataFrame({"address": [f"b{i}" for i in range(1, len(items) + 1)],
                             "households": [h for _, h in items]},
                            geometry=[lonlat(g) for g, _ in items], crs=4326)


def g(n):
    return f"{CODE}{n:03d}"


# The world most validation tests start from: a 300 m × 100 m community in three grids, one
# 20-household building in the middle of each, every grid with a worker and a party branch.
#
#   y=100 +--------+--------+--------+
#         |  001   |  002   |  003   |
#         |  [b1]  |  [b2]  |  [b3]  |
#   y=0   +--------+--------+--------+
#         0       100      200      300
COMMUNITY = box(0, 0, 300, 100)
THREE = (box(0, 0, 100, 100), box(100, 0, 200, 100), box(200, 0, 300, 100))
HOUSES = ((box(40, 40, 60, 60), 20), (box(140, 40, 160, 60), 20), (box(240, 40, 260, 60), 20))
STAFFED = {"workers": {g(i): ["王"] for i in (1, 2, 3)}, "branches": {g(i): "支部" for i in (1, 2, 3)}}


def check(*grid_geoms, houses=HOUSES, community=COMMUNITY, staffed=STAFFED, codes=None):
    return plans.check_plan(lonlat(community), grids(*grid_geoms, codes=codes), buildings(*houses),
                            limits=LIMITS, **staffed)


def kinds(findings):
    return [(f.kind, f.severity, f.grid_codes) for f in findings]


def metric_area(geom_wgs84):
    return metres(geom_wgs84).area


# --- every finding on a plan drawn to have it -------------------------------------------------

def test_three_grids_tiling_the_community_with_staff_and_households_have_no_findings():
    assert check(*THREE) == []


def test_a_strip_no_grid_covers_is_a_gap_located_between_its_neighbours():
    """Grid 002 stops 10 m short of 003::

        +--------+------+ +------+
        |  001   | 002  |g| 003  |     g: 10 m × 100 m = 1,000 m² in no grid
        +--------+------+ +------+
    """
    found = check(THREE[0], box(100, 0, 190, 100), THREE[2])
    assert kinds(found) == [("gap", "error", [g(2), g(3)])]
    assert found[0].value == pytest.approx(1000, rel=1e-3)
    assert metric_area(found[0].geometry) == pytest.approx(1000, rel=1e-3)
    assert found[0].geometry.bounds[0] == pytest.approx(lonlat(Point(190, 0)).x, abs=1e-7)


def test_two_grids_covering_the_same_strip_overlap():
    """Grid 002 reaches 10 m into 003::

        +--------+--------+-+------+
        |  001   |  002   |o| 003  |     o: 1,000 m² in both
        +--------+--------+-+------+
    """
    found = check(THREE[0], box(100, 0, 210, 100), THREE[2])
    assert kinds(found) == [("overlap", "error", [g(2), g(3)])]
    assert found[0].value == pytest.approx(1000, rel=1e-3)
    assert metric_area(found[0].geometry) == pytest.approx(1000, rel=1e-3)


def test_a_grid_reaching_beyond_the_community_has_a_part_outside():
    """Grid 003 runs 20 m past the community's east edge (2,000 m²)."""
    found = check(THREE[0], THREE[1], box(200, 0, 320, 100))
    assert kinds(found) == [("outside", "error", [g(3)])]
    assert found[0].value == pytest.approx(2000, rel=1e-3)


def test_a_grid_in_two_pieces_is_non_contiguous_and_located_at_the_stray_piece():
    """Grid 001 also owns a 10 m square inside 003's area (and so overlaps 003 there)::

        +--------+--------+--------+
        |  001   |  002   | 003 [1]|
        +--------+--------+--------+
    """
    stray = box(280, 80, 290, 90)
    found = check(MultiPolygon([THREE[0], stray]), THREE[1], THREE[2])
    assert kinds(found) == [("overlap", "error", [g(1), g(3)]), ("non_contiguous", "error", [g(1)])]
    piece = found[1]
    assert piece.value == 2 and metric_area(piece.geometry) == pytest.approx(100, rel=1e-3)


def test_a_hole_nobody_covers_is_a_hole_of_its_grid_not_a_second_gap():
    """Grid 002 has a 20 m × 20 m hole in its north-east corner area that no grid fills."""
    holed = Polygon(box(100, 0, 200, 100).exterior.coords, [box(170, 70, 190, 90).exterior.coords])
    found = check(THREE[0], holed, THREE[2])
    assert kinds(found) == [("hole", "error", [g(2)])]
    assert found[0].value == pytest.approx(400, rel=1e-3)


def test_a_hole_filled_by_another_grid_is_an_enclave_warning_only():
    """Grid 004 (a school, 8 households) sits in grid 002's hole::

        +--------+--------+--------+
        |  001   | 002[4] |  003   |
        +--------+--------+--------+
    """
    hole = box(170, 70, 190, 90)
    holed = Polygon(box(100, 0, 200, 100).exterior.coords, [hole.exterior.coords])
    staffed = {"workers": {g(i): ["王"] for i in (1, 2, 3, 4)}, "branches": {g(i): "支部" for i in (1, 2, 3, 4)}}
    found = check(THREE[0], holed, THREE[2], hole, houses=HOUSES + ((box(175, 75, 185, 85), 8),),
                  staffed=staffed)
    assert kinds(found) == [("enclave", "warning", [g(2), g(4)]), ("under_limit", "warning", [g(4)])]
    assert found[0].value == pytest.approx(400, rel=1e-3)


def test_a_grid_without_households_is_empty():
    found = check(*THREE, houses=HOUSES[:2])
    assert kinds(found) == [("empty", "warning", [g(3)])]
    assert found[0].value == 0


def test_a_grid_above_the_household_limit_is_an_error_and_one_below_it_a_warning():
    """Limits 10–100: 001 holds 101 households, 002 holds 9."""
    found = check(*THREE, houses=((box(40, 40, 60, 60), 101), (box(140, 40, 160, 60), 9), HOUSES[2]))
    assert kinds(found) == [("over_limit", "error", [g(1)]), ("under_limit", "warning", [g(2)])]
    assert [f.value for f in found] == [101, 9]
    assert "more than the limit of 100 (setting GRID_MAX_HOUSEHOLDS)" in found[0].message
    assert found[0].params == {"grid": g(1), "households": 101, "limit": 100}
    assert found[1].params == {"grid": g(2), "households": 9, "limit": 10}


def test_a_building_cut_by_a_boundary_is_reported_with_both_shares():
    """b1's footprint x 86..106 lies 70 % in 001 and 30 % in 002::

        +--------+--------+
        |     [##|#]      |
        +--------+--------+
    """
    found = check(*THREE, houses=((box(86, 40, 106, 60), 20), HOUSES[1], HOUSES[2]))
    assert kinds(found) == [("split_building", "warning", [g(1), g(2)])]
    assert found[0].value == pytest.approx(0.3, abs=1e-3)
    assert "001 70%" in found[0].message and "households count in 210213013099001" in found[0].message


def test_a_sliver_below_the_threshold_is_noise_not_a_finding():
    """A 0.5 m² overlap (0.005 m × 100 m) is below GRID_SLIVER_M2 = 1 m²."""
    assert check(THREE[0], box(100, 0, 200.005, 100), THREE[2]) == []


def test_grids_without_worker_or_party_branch_are_warnings():
    found = check(*THREE, staffed={"workers": {g(1): ["王"], g(2): ["李"]},
                                   "branches": {g(1): "支部", g(3): "支部"}})
    assert kinds(found) == [("no_worker", "warning", [g(3)]), ("no_branch", "warning", [g(2)])]


def test_limits_come_from_the_settings_with_their_defaults():
    assert plans.Limits.from_config({"GRID_MAX_HOUSEHOLDS": 300}) == plans.Limits(300, 100, 1.0)
    assert plans.Limits.from_config() == plans.Limits(500, 100, 1.0)


# --- the store: validate, publish, copy --------------------------------------------------------

def community(session, geom=COMMUNITY):
    session.add(m.District(code="210213000000", name="金州区"))
    session.add(m.Street(code="210213013000", district_code="210213000000", name="湾里街道"))
    session.add(m.Community(code=CODE, street_code="210213013000", name="测试社区",
                            geom=MultiPolygon([lonlat(geom)])))
    session.flush()


def add_buildings(session, items):
    out = []
    for i, (geom, hh) in enumerate(items, start=1):
        p = lonlat(geom).representative_point()
        b = m.Building(community_code=CODE, address=f"测试路{i}号", households=hh, geom=lonlat(geom),
                       lon=p.x, lat=p.y)
        session.add(b)
        out.append(b)
    session.flush()
    return out


def staff(session, codes):
    for c in codes:
        w = m.GridWorker(name=f"网格员{c[-3:]}", community_code=CODE)
        session.add(w)
        session.add(m.PartyOrganization(kind="grid_branch", name=f"{c[-3:]}支部", community_code=CODE, grid_code=c))
        session.flush()
        session.execute(m.grid_worker_grid.insert(), [{"worker_id": w.id, "grid_code": c}])


def test_validate_reads_the_plan_buildings_workers_and_branches_from_the_store(store):
    """The gap world of the test above, stored: one gap; 003 has no worker and no branch."""
    with store.transaction() as s:
        community(s)
        add_buildings(s, HOUSES)
        staff(s, [g(1), g(2)])
        plan = plans.create_plan(s, CODE, grids(THREE[0], box(100, 0, 190, 100), THREE[2]))
        pid = plan.id
    with store.session() as s:
        found = plans.validate(s, pid, limits=LIMITS)
    assert kinds(found) == [("gap", "error", [g(2), g(3)]), ("no_worker", "warning", [g(3)]),
                            ("no_branch", "warning", [g(3)])]
    assert found[0].to_dict()["geometry"]["type"] == "Polygon"


def test_a_plan_with_errors_is_not_published_and_nothing_changes(store):
    with store.transaction() as s:
        community(s)
        good = plans.publish(s, plans.create_plan(s, CODE, grids(*THREE)), on=dt.date(2026, 5, 1))
        bad = plans.create_plan(s, CODE, grids(THREE[0], box(100, 0, 210, 100), THREE[2]))
        ids, gen = (good.id, bad.id), generation(s)
    with store.transaction() as s, pytest.raises(Conflict, match="1 validation error") as err:
        plans.publish(s, s.get(m.GridPlan, ids[1]), on=dt.date(2026, 6, 1))
    assert [e["kind"] for e in err.value.details["errors"]] == ["overlap"]
    assert err.value.details["errors"][0]["grid_codes"] == [g(2), g(3)]
    with store.session() as s:
        assert [s.get(m.GridPlan, i).status for i in ids] == ["published", "draft"]
        assert s.get(m.GridPlan, ids[0]).valid_to is None and generation(s) == gen


@pytest.mark.postgis
@pytest.mark.parametrize("backend", ["postgis"])
def test_two_planners_publishing_at_once_leave_exactly_one_published_plan(store):
    """The first publish holds the community's row lock; the second waits for it, then finds a plan
    published that was not when it began, and is refused: it must not retire a plan a moment after
    it went live. (tests/test_races.py races five publishes on both backends.)"""
    import threading
    with store.transaction() as s:
        community(s)
        d1, d2 = (plans.create_plan(s, CODE, grids(*THREE)).id for _ in range(2))
    first = store.session()
    first.begin()
    plans.publish(first, first.get(m.GridPlan, d1), on=dt.date(2026, 6, 1))
    errors = []

    def second():
        try:
            with store.transaction() as s:
                plans.publish(s, s.get(m.GridPlan, d2), on=dt.date(2026, 6, 2))
        except Exception as err:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(err)
    t = threading.Thread(target=second)
    t.start()
    t.join(1.0)
    assert t.is_alive()  # waiting for the first publish's lock
    first.commit()
    first.close()
    t.join(20)
    assert not t.is_alive() and [type(e) for e in errors] == [Conflict]
    assert errors[0].details["published"] == [d1] and "stays a draft" in errors[0].message
    with store.session() as s:
        a, b = s.get(m.GridPlan, d1), s.get(m.GridPlan, d2)
        assert (a.status, a.valid_to, b.status, b.valid_from) == ("published", None, "draft", None)


def test_publish_refuses_a_date_before_the_current_plan_took_effect(store):
    with store.transaction() as s:
        community(s)
        plans.publish(s, plans.create_plan(s, CODE, grids(*THREE)), on=dt.date(2026, 5, 1))
        draft = plans.create_plan(s, CODE, grids(*THREE))
        with pytest.raises(InvalidInput, match="2026-04-30 is before 2026-05-01"):
            plans.publish(s, draft, on=dt.date(2026, 4, 30))


def test_a_copy_is_a_new_draft_with_the_same_grids_and_the_original_is_untouched(store):
    with store.transaction() as s:
        community(s)
        src = plans.publish(s, plans.create_plan(s, CODE, grids(*THREE)), on=dt.date(2026, 5, 1))
        copy = plans.copy_plan(s, src.id)
        src_id, copy_id = src.id, copy.id
    with store.session() as s:
        a, b = s.get(m.GridPlan, src_id), s.get(m.GridPlan, copy_id)
        assert (a.status, b.status, b.valid_from) == ("published", "draft", None)
        assert [(x.code, x.name) for x in a.grids] == [(x.code, x.name) for x in b.grids]
        assert all(x.geom.equals(y.geom) for x, y in zip(a.grids, b.grids))
        with pytest.raises(NotFound, match="Grid plan 999"):
            plans.copy_plan(s, 999)
        with pytest.raises(InvalidInput, match="'x1' is not a positive whole number"):
            params.plan_id("x1")


# --- generations: a building moves; diff and as-of ------------------------------------------

def two_generations(session):
    """Plan A (published 2026-05-01) and plan B (published 2026-05-04); B moves the 001|002 line east::

        A:  +-----------+-----------+        B:  +--------------+--------+
            |    001    |   002     |            |     001      |  002   |
            |  [b1]     | [b2]  [b3]|            |  [b1]   [b2] |  [b3]  |
            +-----------+-----------+            +--------------+--------+
            0          100         200           0             130      200

    b2 (40 households, party member 甲 lives there) moves from 002 to 001; worker 王 serves 001,
    worker 李 serves 002.
    """
    community(session, box(0, 0, 200, 100))
    b1, b2, b3 = add_buildings(session, [(box(40, 40, 60, 60), 30), (box(110, 40, 120, 50), 40),
                                         (box(160, 40, 170, 50), 50)])
    staff(session, [g(1), g(2)])
    member = m.PartyMember(name="甲", building_id=b2.id, geom=lonlat(Point(115, 45)))
    far = m.PartyMember(name="乙", building_id=b3.id, geom=lonlat(Point(165, 45)))
    session.add_all([member, far])
    session.flush()
    a = plans.publish(session, plans.create_plan(session, CODE, grids(box(0, 0, 100, 100), box(100, 0, 200, 100))),
                      on=dt.date(2026, 5, 1))
    b = plans.create_plan(session, CODE, grids(box(0, 0, 130, 100), box(130, 0, 200, 100)))
    plans.publish(session, b, on=dt.date(2026, 5, 4))
    return {"a": a.id, "b": b.id, "b2": b2.id, "member": member.id,
            "workers": dict(session.execute(select(m.GridWorker.name, m.GridWorker.id)).all())}


def test_publishing_retires_the_old_plan_on_the_new_plans_first_day(store):
    with store.transaction() as s:
        w = two_generations(s)
    with store.session() as s:
        a, b = s.get(m.GridPlan, w["a"]), s.get(m.GridPlan, w["b"])
        assert (a.status, a.valid_from, a.valid_to) == ("retired", dt.date(2026, 5, 1), dt.date(2026, 5, 4))
        assert (b.status, b.valid_from, b.valid_to) == ("published", dt.date(2026, 5, 4), None)
        assert plan_valid_on(s, CODE, dt.date(2026, 5, 3)).id == w["a"]
        assert plan_valid_on(s, CODE, dt.date(2026, 5, 4)).id == w["b"]
        assert generation(s) == 2


def test_the_diff_lists_the_moved_building_with_its_households_its_member_and_both_workers(store):
    with store.transaction() as s:
        w = two_generations(s)
    with store.session() as s:
        d = plans.diff(s, w["a"], w["b"], personal=True)
    assert d["buildings"] == [{"id": w["b2"], "address": "测试路2号", "households": 40, "from": g(2), "to": g(1)}]
    assert d["members"] == [{"id": w["member"], "from": g(2), "to": g(1), "name": "甲"}]
    wang, li = w["workers"]["网格员001"], w["workers"]["网格员002"]
    assert d["workers"] == [
        {"id": wang, "grids_from": [g(1)], "grids_to": [g(1)], "households_from": 30, "households_to": 70,
         "buildings_gained": 1, "buildings_lost": 0, "name": "网格员001"},
        {"id": li, "grids_from": [g(2)], "grids_to": [g(2)], "households_from": 90, "households_to": 50,
         "buildings_gained": 0, "buildings_lost": 1, "name": "网格员002"}]
    assert d["summary"] == {"buildings": 1, "households": 40, "members": 1, "workers": 2,
                            "grids_only_in_a": [], "grids_only_in_b": []}
    assert d["areas"] == [{"from": g(2), "to": g(1), "area_m2": pytest.approx(3000, rel=1e-3)}]
    by_kind = {}
    for f in d["geojson"]["features"]:
        by_kind.setdefault(f["properties"]["kind"], []).append(f)
    assert {k: len(v) for k, v in by_kind.items()} == {"area": 1, "building": 1, "member": 1}
    assert metric_area(shapely.geometry.shape(by_kind["area"][0]["geometry"])) == pytest.approx(3000, rel=1e-3)


def test_a_diff_the_other_way_round_is_the_mirror_and_a_plan_against_itself_is_empty(store):
    with store.transaction() as s:
        w = two_generations(s)
    with store.session() as s:
        back = plans.diff(s, w["b"], w["a"])
        same = plans.diff(s, w["a"], w["a"])
    assert [(r["from"], r["to"]) for r in back["buildings"]] == [(g(1), g(2))]
    assert back["members"] == [{"id": w["member"], "from": g(1), "to": g(2)}]  # no names without personal=True
    assert (same["buildings"], same["members"], same["workers"], same["areas"]) == ([], [], [], [])


def test_locate_at_a_day_answers_with_the_plan_valid_that_day(app):
    store = app.extensions["gridmap.store"]
    with store.transaction() as s:
        two_generations(s)
    p = lonlat(Point(115, 45))  # b2
    client = app.test_client()

    def grid_on(at):
        r = client.get(f"/api/v1/locate?lon={p.x}&lat={p.y}" + (f"&at={at}" if at else ""))
        assert r.status_code == 200, r.get_json()
        return r.get_json()

    assert grid_on("2026-05-03")["grid"]["code"] == g(2)
    assert grid_on("2026-05-03")["at"] == "2026-05-03"
    assert grid_on("2026-05-04")["grid"]["code"] == g(1)
    assert grid_on(None)["grid"]["code"] == g(1)
    before = grid_on("2026-04-30")
    assert before["grid"] is None and before["community"]["code"] == CODE


@pytest.mark.parametrize("at", ["2026-5-3", "20260503", "tomorrow", "2026-02-30", ""])
def test_locate_refuses_a_day_not_written_yyyy_mm_dd_and_names_it(sqlite_app, at):
    r = sqlite_app.test_client().get(f"/api/v1/locate?lon=121.6&lat=38.9&at={at}")
    assert r.status_code == 400
    assert f"at={at!r}" in r.get_json()["message"] and "YYYY-MM-DD" in r.get_json()["message"]


def test_as_of_snapshots_are_cached_per_generation_and_day(store):
    with store.transaction() as s:
        two_generations(s)
    with store.session() as s:
        first = index.snapshot_on(s, dt.date(2026, 5, 3))
        assert index.snapshot_on(s, dt.date(2026, 5, 3)) is first
        assert index.snapshot_on(s, dt.date(2026, 5, 4)) is not first
    with store.transaction() as s:
        bump_generation(s)
    with store.session() as s:
        assert index.snapshot_on(s, dt.date(2026, 5, 3)) is not first


# --- the plan API -----------------------------------------------------------------------------

def login(app, role, csrf=False):
    """A client signed in as a new user of ``role``; with ``csrf`` the app checks tokens and the
    client's token is returned too."""
    with app.extensions["gridmap.store"].transaction() as s:
        accounts.create_user(s, f"u-{role}", "long-enough-pw", role)
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    assert client.post("/login", data={"username": f"u-{role}", "password": "long-enough-pw"}).status_code == 302
    app.config["WTF_CSRF_ENABLED"] = csrf
    token = client.get("/api/v1/csrf").get_json()["csrf_token"] if csrf else None
    return client, token


@pytest.fixture
def draft_world(app):
    """A published plan (3 grids, 2026-05-01) and a clean draft of the same grids; the app's limits
    are LIMITS (10–100 households), so the 20-household grids are fine."""
    app.config.update(GRID_MAX_HOUSEHOLDS=LIMITS.max_households, GRID_MIN_HOUSEHOLDS=LIMITS.min_households)
    store = app.extensions["gridmap.store"]
    with store.transaction() as s:
        community(s)
        add_buildings(s, HOUSES)
        staff(s, [g(1), g(2), g(3)])
        old = plans.publish(s, plans.create_plan(s, CODE, grids(*THREE)), on=dt.date(2026, 5, 1))
        draft = plans.create_plan(s, CODE, grids(*THREE), name="新方案")
        return {"old": old.id, "draft": draft.id, "version": draft.version}


def test_the_api_lists_plans_and_shows_one_with_its_grids(app, draft_world):
    c = app.test_client()
    listed = c.get(f"/api/v1/plans?community={CODE}").get_json()
    assert [(p["id"], p["status"], p["grids"]) for p in listed] == \
        [(draft_world["draft"], "draft", 3), (draft_world["old"], "published", 3)]
    one = c.get(f"/api/v1/plans/{draft_world['draft']}").get_json()
    assert (one["name"], one["version"], one["households"]) == ("新方案", draft_world["version"], 60)
    props = [f["properties"] for f in one["grid_features"]["features"]]
    assert [(p["code"], p["households"], p["workers"], p["party_branch"]) for p in props] == \
        [(g(i), 20, f"网格员00{i}", f"00{i}支部") for i in (1, 2, 3)]
    assert props[0]["area_m2"] == pytest.approx(10000, rel=1e-3)


def test_the_validation_endpoint_returns_findings_with_kind_and_geojson(app, draft_world):
    with app.extensions["gridmap.store"].transaction() as s:
        bad = plans.create_plan(s, CODE, grids(THREE[0], box(100, 0, 190, 100), THREE[2])).id
    r = app.test_client().get(f"/api/v1/plans/{bad}/validation")
    found = r.get_json()
    assert r.status_code == 200 and [(f["kind"], f["severity"]) for f in found] == [("gap", "error")]
    assert found[0]["geometry"]["type"] == "Polygon" and found[0]["value"] == pytest.approx(1000, rel=1e-3)
    assert app.test_client().get(f"/api/v1/plans/{draft_world['draft']}/validation").get_json() == []


def test_a_planner_publishes_with_the_version_and_the_csrf_header(app, draft_world):
    client, token = login(app, "planner", csrf=True)
    url = f"/api/v1/plans/{draft_world['draft']}/publish"
    body = {"version": draft_world["version"], "valid_from": "2026-06-01"}
    r = client.post(url, json=body)
    assert r.status_code == 400 and "CSRF" in r.get_json()["message"]
    r = client.post(url, json=body, headers={"X-CSRFToken": token})
    assert r.status_code == 200, r.get_json()
    assert (r.get_json()["status"], r.get_json()["valid_from"]) == ("published", "2026-06-01")
    with app.extensions["gridmap.store"].session() as s:
        assert s.get(m.GridPlan, draft_world["old"]).valid_to == dt.date(2026, 6, 1)


@pytest.mark.parametrize("role,status", [(None, 401), ("dispatcher", 403), ("grid_worker", 403),
                                         ("planner", 200), ("admin", 200)])
def test_only_planners_and_admins_may_publish(app, draft_world, role, status):
    client = login(app, role)[0] if role else app.test_client()
    app.config["WTF_CSRF_ENABLED"] = False
    r = client.post(f"/api/v1/plans/{draft_world['draft']}/publish", json={"version": draft_world["version"]})
    assert r.status_code == status
    if status == 403:
        assert r.get_json()["details"]["allowed_roles"] == ["admin", "planner"]
    with app.extensions["gridmap.store"].session() as s:
        assert s.get(m.GridPlan, draft_world["draft"]).status == ("published" if status == 200 else "draft")


def test_a_stale_version_is_refused_with_409_naming_the_newer_version(app, draft_world):
    with app.extensions["gridmap.store"].transaction() as s:
        s.get(m.GridPlan, draft_world["draft"]).name = "someone else saved first"
    client, _ = login(app, "planner")
    r = client.post(f"/api/v1/plans/{draft_world['draft']}/publish", json={"version": draft_world["version"]})
    assert r.status_code == 409
    assert r.get_json()["details"] == {"version": draft_world["version"] + 1}
    with app.extensions["gridmap.store"].session() as s:
        assert s.get(m.GridPlan, draft_world["draft"]).status == "draft"


def test_publishing_a_plan_with_errors_answers_409_listing_them(app, draft_world):
    with app.extensions["gridmap.store"].transaction() as s:
        bad = plans.create_plan(s, CODE, grids(THREE[0], THREE[1], box(200, 0, 320, 100)))
        bad_id, version = bad.id, bad.version
    client, _ = login(app, "admin")
    r = client.post(f"/api/v1/plans/{bad_id}/publish", json={"version": version})
    assert r.status_code == 409
    errors = r.get_json()["details"]["errors"]
    assert [(e["kind"], e["grid_codes"]) for e in errors] == [("outside", [g(3)])]
    assert errors[0]["geometry"]["type"] == "Polygon"


@pytest.mark.parametrize("body,named", [
    ({"version": "1"}, "version='1'"), ({"version": True}, "version=True"), ({}, "version is missing"),
    ({"version": 2**31}, "version=2147483648 is not between 1 and 2147483647"),
    ({"version": 1, "valid_from": "1 June"}, "valid_from='1 June'"),
    ({"version": 1, "when": "2026-06-01"}, "Unknown field(s) when"),
    ({"version": 1, "accepted_warnings": "no_worker"}, "accepted_warnings='no_worker' is not a list"),
    ({"version": 1, "accepted_warnings": [7]}, "accepted_warnings[0]=7 is not text"), ([1], "not a JSON object"), (None, "not a JSON object"),
])
def test_a_bad_publish_body_is_400_naming_the_value_and_nothing_is_written(app, draft_world, body, named):
    client, _ = login(app, "planner")
    url = f"/api/v1/plans/{draft_world['draft']}/publish"
    r = client.post(url, json=body) if body is not None else client.post(url, data="version=1")
    assert r.status_code == 400 and named in r.get_json()["message"]
    with app.extensions["gridmap.store"].session() as s:
        assert s.get(m.GridPlan, draft_world["draft"]).status == "draft"
        assert s.scalar(select(func.count()).select_from(m.GridPlan).where(m.GridPlan.status == "published")) == 1


def test_bad_plan_ids_and_communities_are_named(app, draft_world):
    c = app.test_client()
    r = c.get("/api/v1/plans/abc")
    assert r.status_code == 400 and "'abc'" in r.get_json()["message"]
    assert c.get("/api/v1/plans/999/validation").status_code == 404
    r = c.get("/api/v1/plans?community=12ab")
    assert r.status_code == 400 and "'12ab'" in r.get_json()["message"]
    assert c.get("/api/v1/plans?community=999999999999").status_code == 404
    assert c.get(f"/api/v1/plans/{draft_world['old']}/diff/0").status_code == 400


def test_the_diff_endpoint_hides_member_names_from_planners(app):
    with app.extensions["gridmap.store"].transaction() as s:
        w = two_generations(s)
    planner, _ = login(app, "planner")
    d = planner.get(f"/api/v1/plans/{w['a']}/diff/{w['b']}").get_json()
    assert d["members"] == [{"id": w["member"], "from": g(2), "to": g(1)}]
    assert d["buildings"][0]["households"] == 40
    admin, _ = login(app, "admin")
    assert admin.get(f"/api/v1/plans/{w['a']}/diff/{w['b']}").get_json()["members"][0]["name"] == "甲"


@pytest.mark.parametrize("serves,named", [(2, True), (1, True), (3, False)])
def test_a_grid_worker_sees_the_names_of_a_diff_only_for_people_moving_from_or_to_its_grids(app, serves, named):
    with app.extensions["gridmap.store"].transaction() as s:
        w = two_generations(s)
        worker = m.GridWorker(name="网格员", phone="13900000009", community_code=CODE)
        s.add(worker)
        s.flush()
        s.execute(m.grid_worker_grid.insert().values(worker_id=worker.id, grid_code=g(serves)))
        accounts.create_user(s, "gw", "long-enough-pw", "grid_worker", worker_id=worker.id)
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    assert client.post("/login", data={"username": "gw", "password": "long-enough-pw"}).status_code == 302
    [member] = client.get(f"/api/v1/plans/{w['a']}/diff/{w['b']}").get_json()["members"]  # moves g(2) → g(1)
    assert (member.get("name") == "甲") is named and ("name" in member) is named


def test_a_planner_copies_a_published_plan_into_a_draft(app, draft_world):
    client, _ = login(app, "planner")
    r = client.post(f"/api/v1/plans/{draft_world['old']}/copy")
    assert r.status_code == 201 and (r.get_json()["status"], r.get_json()["grids"]) == ("draft", 3)
    assert app.test_client().post(f"/api/v1/plans/{draft_world['old']}/copy").status_code == 401


# --- exports and the command line -------------------------------------------------------------

def test_a_plan_exports_as_csv_with_households_workers_and_branch(app, draft_world, tmp_path):
    path = tmp_path / "plan.csv"
    out = app.test_cli_runner().invoke(args=["plan", "export", str(draft_world["draft"]), str(path)])
    assert out.exit_code == 0, out.output
    back = pd.read_csv(path, encoding="utf-8-sig", dtype={"code": str})
    assert list(back.columns) == ["code", "name", "households", "buildings", "workers", "party_branch",
                                  "area_m2", "wkt"]
    assert back[["code", "households", "workers", "party_branch"]].values.tolist() == \
        [[g(i), 20, f"网格员00{i}", f"00{i}支部"] for i in (1, 2, 3)]
    assert shapely.from_wkt(back["wkt"][0]).equals_exact(lonlat(THREE[0]), 1e-9)


@pytest.mark.parametrize("name", ["plan.geojson", "plan.gpkg", "plan.zip"])
def test_a_plan_exports_as_geojson_geopackage_and_zipped_shapefile(app, draft_world, tmp_path, name):
    path = tmp_path / name
    with app.extensions["gridmap.store"].session() as s:
        assert plans.export_plan(s, draft_world["draft"], path) == 3
    back = gpd.read_file(path)
    branch = "branch" if name.endswith(".zip") else "party_branch"  # Shapefile names stop at 10 characters
    assert back[["code", "households", branch]].values.tolist() == [[g(i), 20, f"00{i}支部"] for i in (1, 2, 3)]
    if name.endswith(".zip"):
        assert any(n.endswith(".cpg") for n in zipfile.ZipFile(path).namelist())


def test_an_export_to_an_unknown_format_is_refused_and_writes_nothing(app, draft_world, tmp_path):
    path = tmp_path / "plan.xlsx"
    out = app.test_cli_runner().invoke(args=["plan", "export", str(draft_world["draft"]), str(path)])
    assert out.exit_code == 2 and '".xlsx"' in out.output and not path.exists()


def test_the_command_line_lists_validates_publishes_and_diffs(app, tmp_path):
    with app.extensions["gridmap.store"].transaction() as s:
        w = two_generations(s)
        bad = plans.create_plan(s, CODE, grids(box(0, 0, 100, 100), box(100, 0, 190, 100))).id
        good = plans.create_plan(s, CODE, grids(box(0, 0, 100, 100), box(100, 0, 200, 100))).id
    run = app.test_cli_runner().invoke
    listed = run(args=["plan", "list", "--community", CODE])
    assert listed.exit_code == 0 and [line.split()[2] for line in listed.output.splitlines()[1:]] == \
        ["draft", "draft", "published", "retired"]
    checked = run(args=["plan", "validate", str(bad)])
    assert checked.exit_code == 1 and "gap" in checked.output and "1 error(s)" in checked.output
    refused = run(args=["plan", "publish", str(bad), "--on", "2026-06-01"])
    assert refused.exit_code == 2 and "cannot be published" in refused.output
    bad_day = run(args=["plan", "publish", str(good), "--on", "June"])
    assert bad_day.exit_code == 2 and "--on='June'" in bad_day.output
    # the plan warns (no workers, no branches): publishing needs those read and accepted
    unread = run(args=["plan", "publish", str(good), "--on", "2026-06-01"])
    assert unread.exit_code == 2 and "warning(s) nobody accepted" in unread.output
    assert "warning  under_limit" in unread.output and "--accept-warnings" in unread.output
    done = run(args=["plan", "publish", str(good), "--on", "2026-06-01", "--accept-warnings"])
    assert done.exit_code == 0 and "from 2026-06-01" in done.output
    csv = tmp_path / "diff.csv"
    d = run(args=["plan", "diff", str(w["a"]), str(w["b"]), "--out", str(csv)])
    assert d.exit_code == 0 and "1 buildings (40 households), 1 party members and 2 grid workers" in d.output
    rows = pd.read_csv(csv, encoding="utf-8-sig", dtype=str)
    assert rows[rows["kind"] == "building"][["label", "households", "from", "to"]].values.tolist() == \
        [["测试路2号", "40", g(2), g(1)]]


def test_importing_grids_with_publish_refuses_a_file_with_errors_and_writes_nothing(app, tmp_path):
    """An overlapping legacy file gets no bypass: nothing is written, the message says how to keep a draft."""
    with app.extensions["gridmap.store"].transaction() as s:
        community(s)
    path = tmp_path / "grids.geojson"
    grids(THREE[0], box(100, 0, 210, 100), THREE[2]).to_file(path)
    out = app.test_cli_runner().invoke(args=["import", "grids", str(path), "--publish"])
    assert out.exit_code == 2
    assert f"The grids of {CODE} have 1 validation error(s); it cannot be published." in out.output
    assert f"overlap {g(2)}, {g(3)}: Grids {g(2)} and {g(3)} overlap by 1,000 m²." in out.output
    assert "Import without --publish" in out.output
    with app.extensions["gridmap.store"].session() as s:
        assert s.scalar(select(func.count()).select_from(m.GridPlan)) == 0
    assert app.test_cli_runner().invoke(args=["import", "grids", str(path)]).exit_code == 0


def test_the_demo_plans_validate_without_errors(demo_app):
    with demo_app.extensions["gridmap.store"].session() as s:
        pids = s.scalars(select(m.GridPlan.id).where(m.GridPlan.status == "published")).all()
        found = {pid: plans.validate(s, pid) for pid in pids}
    assert len(pids) == 5
    assert [f for fs in found.values() for f in fs if f.severity == "error"] == []
    # one demo grid (虎山 003, 83 households) is below the default GRID_MIN_HOUSEHOLDS = 100
    assert [(f.kind, f.grid_codes, f.value) for fs in found.values() for f in fs] == \
        [("under_limit", ["210202012001003"], 83)]


def test_findings_through_the_cached_transformers_equal_those_through_proj_look_ups(demo_app, monkeypatch):
    """Validation projects each plan through transformers built once per local CRS from its PROJ
    pipeline; PROJ's own operation search (what GeoDataFrame.to_crs does) must give the same findings,
    geometry included, on the demo plans as they are and with grids moved into overlaps, parts
    outside and gaps."""
    def looked_up(where):
        crs = metric_for(where).crs
        return Metric(crs, Transformer.from_crs(4326, crs, always_xy=True), Transformer.from_crs(crs, 4326, always_xy=True))

    def key(findings):
        return [(f.kind, f.severity, f.grid_codes, f.message, f.value, shapely.to_wkb(f.geometry))
                for f in findings]

    seen = set()
    with demo_app.extensions["gridmap.store"].session() as s:
        for plan in s.scalars(select(m.GridPlan).order_by(m.GridPlan.id)).all():
            community, frame, houses, people = rules.load(s, plan)
            grown = np.asarray(frame.geometry.values, dtype=object).copy()
            grown[0] = shapely.buffer(grown[0], 0.0003)          # over its neighbours and the boundary
            grown[-1] = shapely.buffer(grown[-1], -0.0003)        # leaves a gap
            for grid_frame in (frame, frame.set_geometry(gpd.GeoSeries(grown, index=frame.index, crs=4326))):
                args = (community, grid_frame, houses)
                kw = {"workers": people["workers"], "branches": people["branches"]}
                fast = plans.check_plan(*args, **kw)
                with monkeypatch.context() as mp:
                    mp.setattr(rules, "metric_for", looked_up)
                    slow = plans.check_plan(*args, **kw)
                assert key(fast) == key(slow)
                seen |= {f.kind for f in fast}
            data = rules.plan_data(community, frame, houses, {}, {}, plans.Limits.from_config())
            assert np.array_equal(shapely.get_coordinates(data.grids.geometry.values),
                                  shapely.get_coordinates(frame.to_crs(data.metric.crs).geometry.values))
            assert np.array_equal(shapely.get_coordinates(data.buildings.geometry.values),
                                  shapely.get_coordinates(houses.to_crs(data.metric.crs).geometry.values))
    assert {"gap", "overlap", "outside", "under_limit"} <= seen


# --- publishing with care: errors block, each warning accepted, a date, who moves ------------------

@pytest.fixture
def moving_draft(app):
    """Plan A published on 2026-05-01 (001 | 002 at x=100) and draft B moving the line to x=130, so
    b2 (40 households) goes from 002 (网格员002) to 001 (网格员001); no grid of B lacks a worker."""
    store = app.extensions["gridmap.store"]
    with store.transaction() as s:
        community(s, box(0, 0, 200, 100))
        add_buildings(s, [(box(40, 40, 60, 60), 30), (box(110, 40, 120, 50), 40), (box(160, 40, 170, 50), 50)])
        staff(s, [g(1), g(2)])
        a = plans.publish(s, plans.create_plan(s, CODE, grids(box(0, 0, 100, 100), box(100, 0, 200, 100))),
                          on=dt.date(2026, 5, 1))
        b = plans.create_plan(s, CODE, grids(box(0, 0, 130, 100), box(130, 0, 200, 100)), name="B")
        ids = {"a": a.id, "b": b.id, "version": b.version}
    with store.session() as s:
        ids["warnings"] = sorted(f.key for f in plans.validate(s, ids["b"], limits=plans.Limits.from_config(app.config))
                                 if f.severity == "warning")
    return ids


def test_the_publish_preview_lists_warnings_by_key_the_earliest_day_and_who_moves(app, moving_draft):
    client, _ = login(app, "planner")
    r = client.get(f"/api/v1/plans/{moving_draft['b']}/publish-preview")
    assert r.status_code == 200
    out = r.get_json()
    assert out["errors"] == [] and out["publishable"] is True
    assert sorted(w["key"] for w in out["warnings"]) == moving_draft["warnings"]
    assert all(w["localized"]["message"] and w["severity"] == "warning" for w in out["warnings"])
    assert (out["earliest"], out["replaces"]["id"]) == ("2026-05-01", moving_draft["a"])
    # the oracle: the plan diff's moved buildings, grouped by grid pair, and the staff table's workers
    assert out["moves"] == [{"from": g(2), "to": g(1), "buildings": 1, "households": 40,
                             "from_workers": ["网格员002"], "to_workers": ["网格员001"]}]
    denied = login(app, "dispatcher")[0].get(f"/api/v1/plans/{moving_draft['b']}/publish-preview")
    assert denied.status_code == 403


def test_a_publish_with_a_warning_not_accepted_is_409_listing_it_and_nothing_changes(app, moving_draft):
    assert moving_draft["warnings"], "the world must warn for this test to mean anything"
    client, _ = login(app, "planner")
    url = f"/api/v1/plans/{moving_draft['b']}/publish"
    body = {"version": moving_draft["version"], "valid_from": "2026-06-01"}
    for accepted in ([], moving_draft["warnings"][1:]):
        r = client.post(url, json={**body, "accepted_warnings": accepted})
        assert r.status_code == 409 and r.get_json()["error"] == "warnings_not_accepted"
        pending = sorted(w["key"] for w in r.get_json()["details"]["warnings"])
        assert pending == sorted(set(moving_draft["warnings"]) - set(accepted))
    with app.extensions["gridmap.store"].session() as s:
        assert (plans.get_plan(s, moving_draft["b"]).status, plans.get_plan(s, moving_draft["a"]).status) == \
            ("draft", "published")
    early = client.post(url, json={**body, "valid_from": "2026-04-30", "accepted_warnings": moving_draft["warnings"]})
    assert early.status_code == 400 and "2026-04-30" in early.get_json()["message"]
    ok = client.post(url, json={**body, "accepted_warnings": moving_draft["warnings"]})
    assert ok.status_code == 200 and (ok.get_json()["status"], ok.get_json()["valid_from"]) == ("published", "2026-06-01")
    with app.extensions["gridmap.store"].session() as s:
        old = plans.get_plan(s, moving_draft["a"])
        assert (old.status, old.valid_to) == ("retired", dt.date(2026, 6, 1))


def test_service_errors_and_findings_reach_the_page_in_its_language(app, moving_draft):
    """The same refusal, in Chinese for a Chinese page and in English for an English one; the English
    message, the code and the parameters stay the same for programs."""
    client, _ = login(app, "planner")
    url = f"/api/v1/plans/{moving_draft['b']}/publish"
    zh = client.post(url, json={"version": moving_draft["version"], "accepted_warnings": []}).get_json()
    assert zh["localized"]["message"] == f"方案 {moving_draft['b']} 有 {len(moving_draft['warnings'])} 条警告尚未确认，未发布。"
    assert zh["params"] == {"plan": moving_draft["b"], "n": len(moving_draft["warnings"])}
    assert zh["message"] == f"Plan {moving_draft['b']} has {len(moving_draft['warnings'])} warning(s) nobody accepted; " \
                            "it was not published."
    assert all(re.search(r"[\u4e00-\u9fff]", w["localized"]["message"]) for w in zh["details"]["warnings"])
    client.get("/?lang=en")
    en = client.post(url, json={"version": moving_draft["version"], "accepted_warnings": []}).get_json()
    assert en["localized"]["message"] == en["message"] == zh["message"]
    bad = client.post(url + "?lang=zh_CN", json={"version": "7"}).get_json()
    assert (bad["message"], bad["localized"]["message"]) == ("version='7' is not a whole number.", "version='7' 不是整数。")
