"""Incidents: routing by catalogue and the veto, the lifecycle and its roles, audit, deadlines, the whistle,
duplicates in metres, the service ledger, volunteers by skill, SOS, statistics, the JSON API and api keys.

The world is the two-grid community drawn in ``dispatch_world`` (400 m × 200 m near Dalian).
"""
import datetime as dt
import json

import numpy as np
import pytest
from pyproj import Geod
from sqlalchemy import func, select

from gridmap import access, apikeys, catalog, dispatch
from gridmap.errors import Conflict, Forbidden, InvalidInput, Unauthenticated
from gridmap.store import models as m
from gridmap.web import bodies

import dispatch_world as w
from dispatch_world import COMMUNITY, G1, G2, T0, at, login

GEOD = Geod(ellps="WGS84")
H = dt.timedelta(hours=1)
# where each role works: the world's one community, both its grids (the web layer reads these per account)
HERE = {"dispatcher": access.Area(communities={COMMUNITY}), "grid_worker": access.Area(grids={G1, G2})}
DISPATCHER = dispatch.Actor("dispatcher", "dispatcher", HERE["dispatcher"])
WORKER = dispatch.Actor("worker", "grid_worker", HERE["grid_worker"])


@pytest.fixture
def world(app):
    w.build(app.extensions["gridmap.store"])
    app.config["WTF_CSRF_ENABLED"] = False
    return app


@pytest.fixture
def sqlite_world(sqlite_app):
    w.build(sqlite_app.extensions["gridmap.store"])
    sqlite_app.config["WTF_CSRF_ENABLED"] = False
    return sqlite_app


def snap(app):
    return app.extensions["gridmap.snapshots"].get()


def new(app, category="water_leak", xy=(100, 100), now=T0, **kw):
    """Report an incident at (x, y) metres; returns its id."""
    store = app.extensions["gridmap.store"]
    lon, lat = at(*xy)
    with store.transaction() as s:
        return dispatch.report(s, snap(app), category=category, lon=lon, lat=lat, now=now, actor=WORKER, **kw).id


def act(app, iid, action, actor=DISPATCHER, now=T0 + H, **kw):
    store = app.extensions["gridmap.store"]
    with store.transaction() as s:
        version = s.get(m.Incident, iid).version
        inc = dispatch.transition(s, iid, action, actor=actor, version=version, now=now, **kw)
        return inc.status, inc.level


def row(app, iid):
    with app.extensions["gridmap.store"].session() as s:
        return s.get(m.Incident, iid)


def count(app, model):
    with app.extensions["gridmap.store"].session() as s:
        return s.scalar(select(func.count()).select_from(model))


# --- routing by catalogue ---------------------------------------------------------------------

@pytest.mark.parametrize("code,level,department,vetoed", [
    ("noise", "grid", "", False),
    ("water_leak", "grid", "", False),
    ("fire_hazard", "community", "", False),
    ("illegal_building", "street", "", False),
    ("gas_leak", "department", "燃气公司", False),
    ("street_light", "department", "市政路灯管理处", False),
    # the veto: 占道经营 is a community-level matter, but not on the default work-item list
    ("street_vending", "department", "城市管理综合执法局", True),
])
def test_each_category_is_routed_by_the_catalogue(code, level, department, vetoed):
    assert dispatch.route(code, w.COMMUNITY) == dispatch.Route(level, department, vetoed)


def test_a_community_whose_own_list_takes_street_vending_keeps_it():
    lists = {w.COMMUNITY: catalog.DEFAULT_WORK_ITEMS | {"street_vending"}}
    assert dispatch.route("street_vending", w.COMMUNITY, lists=lists) == dispatch.Route("community", "", False)
    # … and a community whose list drops noise sends noise to the police
    lists = {w.COMMUNITY: catalog.DEFAULT_WORK_ITEMS - {"noise"}}
    assert dispatch.route("noise", w.COMMUNITY, lists=lists) == dispatch.Route("department", "公安分局", True)


def test_a_grid_matter_where_no_grid_is_published_goes_to_the_community():
    assert dispatch.route("noise", w.COMMUNITY, has_grid=False).level == "community"


def test_work_item_lists_load_from_json_and_refuse_unknown_codes(tmp_path):
    good = tmp_path / "items.json"
    good.write_text(json.dumps({w.COMMUNITY: ["noise", "street_vending"]}), encoding="utf-8")
    assert catalog.load_work_items(good) == {w.COMMUNITY: frozenset({"noise", "street_vending"})}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({w.COMMUNITY: ["noise", "ufo_sighting"]}), encoding="utf-8")
    with pytest.raises(InvalidInput, match="ufo_sighting"):
        catalog.load_work_items(bad)


def test_every_category_is_complete_data():
    for c in catalog.INCIDENT_CATEGORIES:
        assert c.level in catalog.LEVELS and c.department and c.zh and c.en
        assert set(c.responders) <= set(catalog.RESPONDER_KINDS)
        assert all(c.deadline_hours(lv) > 0 for lv in catalog.LEVELS)
    assert catalog.category("噪音扰民").code == "noise"
    with pytest.raises(InvalidInput, match=r"'wizardry' is not in the incident catalogue.*noise"):
        catalog.category("wizardry")


# --- reporting and the store round trip (both backends) ---------------------------------------

def test_a_report_is_located_routed_audited_and_stored(world):
    iid = new(world, "street_vending", xy=(300, 100), description="早市摊位占道", reporter_phone="13811112222")
    inc = row(world, iid)
    lon, lat = at(300, 100)
    assert (inc.community_code, inc.grid_code, inc.status) == (w.COMMUNITY, G2, "reported")
    assert (inc.level, inc.department, inc.vetoed) == ("department", "城市管理综合执法局", True)
    assert inc.deadline_at == T0 + dt.timedelta(hours=168)
    assert inc.geom.geom_type == "Point" and (inc.geom.x, inc.geom.y) == (lon, lat)
    assert (inc.lon, inc.lat, inc.version) == (lon, lat, 1)
    with world.extensions["gridmap.store"].session() as s:
        [event] = dispatch.history(s, iid)
    assert (event["action"], event["from_status"], event["to_status"], event["to_level"]) == \
        ("report", None, "reported", "department")
    assert "城市管理综合执法局" in event["note"] and event["actor"] == "worker"


def test_a_report_outside_every_community_is_refused_and_nothing_is_written(world):
    with pytest.raises(InvalidInput, match="lies in no community"):
        new(world, xy=(5000, 5000))
    assert count(world, m.Incident) == 0 and count(world, m.IncidentEvent) == 0


# --- the lifecycle ----------------------------------------------------------------------------

PATHS = {  # how to reach each status from "reported"
    "reported": [], "accepted": ["accept"], "dispatched": ["accept", "dispatch"],
    "in_progress": ["accept", "dispatch", "start"], "resolved": ["accept", "start", "resolve"],
    "merged": "link",
}


def _reach(app, status):
    iid = new(app)
    if PATHS[status] == "link":
        first = new(app, xy=(101, 100))
        act(app, iid, "link_duplicate", duplicate_of=first)
    else:
        for action in PATHS[status]:
            act(app, iid, action)
    assert row(app, iid).status == status
    return iid


@pytest.mark.parametrize("source,action", sorted(dispatch.TRANSITIONS))
def test_every_allowed_transition_moves_the_incident_to_its_target(sqlite_world, source, action):
    iid = _reach(sqlite_world, source)
    extra = {"duplicate_of": new(sqlite_world, xy=(102, 100))} if action == "link_duplicate" else {}
    status, _ = act(sqlite_world, iid, action, **extra)
    assert status == dispatch.TRANSITIONS[(source, action)]


def test_every_forbidden_transition_is_a_conflict_naming_the_state_and_the_allowed_actions(sqlite_world):
    checked = 0
    for status in dispatch.STATUSES:
        iid = _reach(sqlite_world, status)
        for action in dispatch.ACTIONS:
            if (status, action) in dispatch.TRANSITIONS:
                continue
            with pytest.raises(Conflict) as err:
                act(sqlite_world, iid, action, duplicate_of=1) if action == "link_duplicate" else act(sqlite_world, iid, action)
            assert f"is {status}" in err.value.message and repr(action) in err.value.message
            assert err.value.details["allowed_actions"] == dispatch.allowed_actions(status)
            checked += 1
        assert row(sqlite_world, iid).status == status  # unchanged
    assert checked == len(dispatch.STATUSES) * len(dispatch.ACTIONS) - len(dispatch.TRANSITIONS)


@pytest.mark.parametrize("role,action,allowed", [
    ("grid_worker", "accept", True), ("grid_worker", "dispatch", False), ("dispatcher", "dispatch", True),
    ("admin", "dispatch", True), ("planner", "accept", False), (None, "accept", False),
])
def test_roles_decide_who_may_do_what(sqlite_world, role, action, allowed):
    source = "reported" if action == "accept" else "accepted"
    iid = _reach(sqlite_world, source)
    actor = dispatch.Actor("someone", role, HERE.get(role, access.NOWHERE))
    if allowed:
        assert act(sqlite_world, iid, action, actor=actor)[0] == dispatch.TRANSITIONS[(source, action)]
    else:
        refused = (Unauthenticated, "Log in first") if role is None else (Forbidden, f"Role {role!r} may not {action}")
        with pytest.raises(refused[0], match=refused[1]):
            act(sqlite_world, iid, action, actor=actor)


def test_a_stale_version_is_a_conflict_carrying_the_current_version(world):
    iid = new(world)
    act(world, iid, "accept")
    with world.extensions["gridmap.store"].transaction() as s, pytest.raises(Conflict) as err:
        dispatch.transition(s, iid, "dispatch", actor=DISPATCHER, version=1)
    assert err.value.details["current_version"] == 2 and row(world, iid).status == "accepted"


def test_the_history_says_who_did_what_when_from_and_to(world):
    iid = new(world)
    act(world, iid, "accept", actor=WORKER, now=T0 + H)
    act(world, iid, "start", actor=WORKER, now=T0 + 2 * H, note="到场查看")
    act(world, iid, "resolve", actor=WORKER, now=T0 + 3 * H, note="已关阀门并报修")
    with world.extensions["gridmap.store"].session() as s:
        steps = [(e["at"], e["actor"], e["action"], e["from_status"], e["to_status"], e["note"])
                 for e in dispatch.history(s, iid)]
    assert steps == [("2026-05-04T08:00:00Z", "worker", "report", None, "reported", ""),
                     ("2026-05-04T09:00:00Z", "worker", "accept", "reported", "accepted", ""),
                     ("2026-05-04T10:00:00Z", "worker", "start", "accepted", "in_progress", "到场查看"),
                     ("2026-05-04T11:00:00Z", "worker", "resolve", "in_progress", "resolved", "已关阀门并报修")]
    assert row(world, iid).resolved_at == T0 + 3 * H


def test_escalation_climbs_grid_community_street_department_with_each_levels_deadline(sqlite_world):
    iid = new(sqlite_world, "noise")
    seen = []
    for hours in (1, 2, 3):
        status, level = act(sqlite_world, iid, "escalate", actor=WORKER, now=T0 + hours * H)
        inc = row(sqlite_world, iid)
        seen.append((status, level, inc.deadline_at - (T0 + hours * H), inc.department))
    assert seen == [("reported", "community", dt.timedelta(hours=72), ""),
                    ("reported", "street", dt.timedelta(hours=120), ""),
                    ("reported", "department", dt.timedelta(hours=168), "公安分局")]
    with pytest.raises(Conflict, match="no level above"):
        act(sqlite_world, iid, "escalate")


def test_overdue_is_judged_against_the_injected_now(sqlite_world):
    late = new(sqlite_world, "water_leak")  # grid level: 24 h
    done = new(sqlite_world, "water_leak", xy=(300, 100))
    for a in ("accept", "start", "resolve"):
        act(sqlite_world, done, a)
    with sqlite_world.extensions["gridmap.store"].session() as s:
        def overdue_ids(now):
            return [i["id"] for i in dispatch.list_incidents(s, overdue=True, now=now, role="admin")]
        assert overdue_ids(T0 + 23 * H) == []
        assert overdue_ids(T0 + 25 * H) == [late]
        assert [i["id"] for i in dispatch.list_incidents(s, overdue=False, now=T0 + 25 * H, role="admin")] == [done]
        assert dispatch.incident_dict(s.get(m.Incident, late), now=T0 + 25 * H)["overdue"] is True


def test_a_gas_leak_is_due_within_two_hours_at_the_department():
    assert dispatch.deadline("gas_leak", "department", T0) == T0 + 2 * H


# --- the whistle ------------------------------------------------------------------------------

def test_the_community_blows_the_whistle_and_the_department_must_report_by_a_deadline(world):
    iid = new(world, "fire_hazard")  # community level
    with world.extensions["gridmap.store"].transaction() as s:
        task = dispatch.whistle(s, iid, actor=DISPATCHER, note="楼道电动车充电", now=T0 + H)
    with world.extensions["gridmap.store"].session() as s:
        [t] = dispatch.whistles(s, iid, now=T0 + 26 * H)
        assert (t["department"], t["report_by"], t["overdue"]) == ("消防救援大队", "2026-05-05T09:00:00Z", True)
        assert dispatch.whistles(s, iid, now=T0 + 2 * H)[0]["overdue"] is False
        assert dispatch.history(s, iid)[-1]["action"] == "whistle"
    with world.extensions["gridmap.store"].transaction() as s:
        dispatch.report_in(s, task.id, actor=dispatch.Actor("消防", "dispatcher", HERE["dispatcher"]), now=T0 + 3 * H)
    with world.extensions["gridmap.store"].session() as s:
        t = dispatch.whistles(s, iid, now=T0 + 26 * H)[0]
        assert (t["reported_at"], t["overdue"]) == ("2026-05-04T11:00:00Z", False)
    with world.extensions["gridmap.store"].transaction() as s, pytest.raises(Conflict, match="already"):
        dispatch.report_in(s, task.id, actor=DISPATCHER)


def test_only_dispatchers_blow_the_whistle_and_only_for_the_grid_or_community(sqlite_world):
    store = sqlite_world.extensions["gridmap.store"]
    iid = new(sqlite_world, "noise")
    with store.transaction() as s, pytest.raises(Forbidden, match="may not blow the whistle"):
        dispatch.whistle(s, iid, actor=WORKER)
    gas = new(sqlite_world, "gas_leak")
    with store.transaction() as s, pytest.raises(Conflict, match="at level department"):
        dispatch.whistle(s, gas, actor=DISPATCHER)
    assert count(sqlite_world, m.WhistleTask) == 0


# --- duplicates -------------------------------------------------------------------------------

def _geodesic(xy1, xy2):
    return GEOD.inv(*at(*xy1), *at(*xy2))[2]


def test_duplicates_are_the_same_category_within_50_metres_and_24_hours(world):
    first = new(world, "noise", xy=(100, 100), now=T0)
    near_soon = new(world, "noise", xy=(130, 100), now=T0 + 23 * H)        # 30 m, 23 h
    far = new(world, "noise", xy=(170, 100), now=T0 + 2 * H)               # 70 m
    late = new(world, "noise", xy=(110, 100), now=T0 + 25 * H)             # 10 m, 25 h
    other = new(world, "water_leak", xy=(101, 100), now=T0 + H)            # another category
    assert 29.5 < _geodesic((100, 100), (130, 100)) < 30.5 and 69.5 < _geodesic((100, 100), (170, 100)) < 70.5
    with world.extensions["gridmap.store"].session() as s:
        found = dispatch.duplicates(s, first, role="admin")
        assert [d["id"] for d in found] == [near_soon]
        assert found[0]["distance_m"] == pytest.approx(_geodesic((100, 100), (130, 100)), abs=0.1)
        assert [d["id"] for d in dispatch.duplicates(s, late, role="admin")] == [near_soon]  # 20 m, 2 h apart
        assert far not in [d["id"] for d in dispatch.duplicates(s, first, role="admin")] and other
    # linking: the later report is merged into the first; links to a duplicate follow it to the first
    act(world, near_soon, "link_duplicate", duplicate_of=first, note="同一户")
    act(world, late, "link_duplicate", duplicate_of=near_soon)
    assert (row(world, near_soon).status, row(world, near_soon).duplicate_of) == ("merged", first)
    assert row(world, late).duplicate_of == first


def test_the_boundary_of_50_metres_is_measured_on_the_ellipsoid(sqlite_world):
    a = new(sqlite_world, "noise", xy=(100, 100))
    b = new(sqlite_world, "noise", xy=(100, 149.8))
    c = new(sqlite_world, "noise", xy=(100, 49.7))
    d_b, d_c = _geodesic((100, 100), (100, 149.8)), _geodesic((100, 100), (100, 49.7))
    assert d_b < 50 < d_c
    with sqlite_world.extensions["gridmap.store"].session() as s:
        assert [x["id"] for x in dispatch.duplicates(s, a, role="admin")] == [b]
        assert c


def test_an_incident_cannot_be_its_own_duplicate(sqlite_world):
    iid = new(sqlite_world)
    with pytest.raises(InvalidInput, match="duplicate of itself"):
        act(sqlite_world, iid, "link_duplicate", duplicate_of=iid)
    assert row(sqlite_world, iid).status == "reported"


# --- volunteers ------------------------------------------------------------------------------

def test_volunteers_are_matched_by_the_categorys_skills_and_distance(sqlite_world):
    iid = new(sqlite_world, "elderly_help", xy=(100, 100))  # skills 助老, 义诊
    got = dispatch.match_volunteers(snap(sqlite_world), row(sqlite_world, iid))
    assert [(v["name"], v["matched_skills"]) for v in got] == [("张助老", ["助老"]), ("赵义诊", ["义诊"])]
    assert [v["distance_m"] for v in got] == pytest.approx([10.0, 290.0], abs=0.2)
    leak = dispatch.match_volunteers(snap(sqlite_world), row(sqlite_world, new(sqlite_world, "water_leak")))
    assert [v["name"] for v in leak] == ["钱维修"]  # 孙磨刀 stands nearer but has no 维修 and is unavailable


def test_the_service_ledger_adds_lines_and_totals_hours(world):
    store = world.extensions["gridmap.store"]
    with store.session() as s:
        vid = s.scalar(select(m.Volunteer.id).where(m.Volunteer.name == "张助老"))
        rid = s.scalar(select(m.Resident.id))
    iid = new(world, "elderly_help")
    lines = [{"day": "2026-05-03", "skill": "理发", "hours": 1.5, "resident_id": rid, "note": "上门理发"},
             {"day": "2026-05-04", "skill": "助老", "hours": 2, "incident_id": iid}]
    with store.transaction() as s:
        for line in lines:
            dispatch.record_service(s, vid, actor=DISPATCHER, **bodies.parse_service(line))
    with store.session() as s:
        book = dispatch.ledger(s, vid, role="admin")
        assert (book["total_hours"], book["hours_by_skill"]) == (3.5, {"理发": 1.5, "助老": 2.0})
        assert [(x["day"], x["resident_id"], x["incident_id"]) for x in book["services"]] == \
            [("2026-05-03", rid, None), ("2026-05-04", None, iid)]
        assert dispatch.ledger(s, vid, start=dt.date(2026, 5, 4), role="admin")["total_hours"] == 2.0


@pytest.mark.parametrize("line,words", [
    ({"day": "2026-5-3", "skill": "理发", "hours": 1, "resident_id": 1}, "day='2026-5-3'"),
    ({"day": "2026-05-03", "skill": "", "hours": 1, "resident_id": 1}, "skill=''"),
    ({"day": "2026-05-03", "skill": "理发", "hours": 30, "resident_id": 1}, "hours=30"),
    ({"day": "2026-05-03", "skill": "理发", "hours": 1}, "names nobody served"),
    ({"day": "2026-05-03", "skill": "理发", "hours": 1, "resident_id": 1, "tip": 5}, "Unknown field(s) tip in"),
])
def test_bad_ledger_lines_are_refused_by_name(line, words):
    with pytest.raises(InvalidInput) as err:
        bodies.parse_service(line)
    assert words in err.value.message


# --- statistics ------------------------------------------------------------------------------

def test_statistics_on_hand_made_incidents(sqlite_world):
    # five resolved after 1, 2, 3, 4 and 10 hours; two open (one overdue); one merged duplicate
    resolved = []
    for i, hours in enumerate((1, 2, 3, 4, 10)):
        iid = new(sqlite_world, "water_leak", xy=(20 + 40 * i, 20), now=T0 + dt.timedelta(days=i))
        act(sqlite_world, iid, "accept", now=T0 + dt.timedelta(days=i))
        act(sqlite_world, iid, "start", now=T0 + dt.timedelta(days=i))
        act(sqlite_world, iid, "resolve", now=T0 + dt.timedelta(days=i) + hours * H)
        resolved.append(iid)
    old_open = new(sqlite_world, "noise", xy=(300, 150), now=T0)                         # grid, due T0+24h
    new(sqlite_world, "fire_hazard", xy=(300, 50), now=T0 + dt.timedelta(days=8))  # community
    dup = new(sqlite_world, "noise", xy=(301, 150), now=T0 + H)
    act(sqlite_world, dup, "link_duplicate", duplicate_of=old_open)
    with sqlite_world.extensions["gridmap.store"].session() as s:
        st = dispatch.statistics(s, period="week", now=T0 + dt.timedelta(days=9))
        assert (st["total"], st["resolved"], st["open"], st["duplicates"]) == (7, 5, 2, 1)
        assert st["resolution_rate"] == round(5 / 7, 4)
        # median of 1,2,3,4,10 is 3; p90 lies 0.6 of the way from 4 to 10 → 7.6
        assert st["hours_to_resolve"] == {"median": 3.0, "p90": 7.6, "count": 5}
        assert st["open_by_level"] == {"grid": 1, "community": 1, "street": 0, "department": 0}
        assert st["overdue"] == 1
        assert {g["grid"]: (g["total"], g["resolved"]) for g in st["by_grid"]} == {G1: (5, 5), G2: (2, 0)}
        # weeks by their Monday: 4 May (days 0–6: five resolved + old_open), 11 May (new_open)
        assert [(p["period"], p["total"]) for p in st["by_period"]] == [("2026-05-04", 6), ("2026-05-11", 1)]
        assert len(st["heatmap"]) == 7 and all(len(p) == 3 for p in st["heatmap"])
        month = dispatch.statistics(s, period="month", grid=G2, now=T0 + dt.timedelta(days=9))
        assert [(p["period"], p["total"], p["overdue"]) for p in month["by_period"]] == [("2026-05", 2, 1)]
        day = dispatch.statistics(s, start=dt.date(2026, 5, 5), end=dt.date(2026, 5, 6), now=T0)
        assert day["total"] == 2 and [p["period"] for p in day["by_period"]] == ["2026-05-05", "2026-05-06"]
    assert np.percentile([1, 2, 3, 4, 10], 90) == pytest.approx(7.6)


def test_statistics_of_an_empty_store_are_empty_not_an_error(sqlite_world):
    with sqlite_world.extensions["gridmap.store"].session() as s:
        st = dispatch.statistics(s)
    assert (st["total"], st["resolution_rate"], st["hours_to_resolve"]["median"], st["heatmap"]) == (0, None, None, [])


OTHER_COMMUNITIES = ("210213013005", "210213013006")


def _random_incidents(app, n=400, seed=11):
    """``n`` incidents with random statuses, levels, times and places, written straight to the store.

    Three communities, five grid codes and None (a community's incidents without a grid), reports
    over the 40 days from ``T0`` (to microseconds), resolution 0–100 h after the report for resolved
    and merged ones, deadlines (a tenth missing) 2 h to 10 days after it, so that they fall on both
    sides of the tests' now (``T0 + 30 days``). Returns plain dicts of what was stored.
    """
    from shapely.geometry import MultiPolygon, Point, box
    rng = np.random.default_rng(seed)
    grids = (G1, G2, w.COMMUNITY + "003", OTHER_COMMUNITIES[0] + "001", OTHER_COMMUNITIES[1] + "001", None)
    rows = []
    with app.extensions["gridmap.store"].transaction() as s:
        for i, code in enumerate(OTHER_COMMUNITIES):
            s.add(m.Community(code=code, street_code="210213013000", name=f"社区{i}",
                              geom=MultiPolygon([w.lonlat(box(500 + 500 * i, 0, 900 + 500 * i, 200))])))
        s.flush()
        for _ in range(n):
            grid = grids[rng.integers(len(grids))]
            community = grid[:12] if grid else (w.COMMUNITY, *OTHER_COMMUNITIES)[rng.integers(3)]
            status = dispatch.STATUSES[rng.integers(len(dispatch.STATUSES))]
            reported = T0 + dt.timedelta(seconds=int(rng.integers(0, 40 * 86400)),
                                         microseconds=int(rng.integers(10**6)))
            resolved = reported + dt.timedelta(seconds=float(rng.uniform(0, 100 * 3600))) \
                if status in dispatch.CLOSED_STATUSES else None
            deadline = None if rng.random() < 0.1 else reported + dt.timedelta(hours=int(rng.choice([2, 24, 240])))
            lon, lat = at(*rng.uniform(0, 200, 2))
            row = {"category": "noise", "status": status, "level": catalog.LEVELS[rng.integers(len(catalog.LEVELS))],
                   "community_code": community, "grid_code": grid, "reported_at": reported,
                   "updated_at": reported, "resolved_at": resolved, "deadline_at": deadline, "lon": lon, "lat": lat}
            s.add(m.Incident(**row, geom=Point(lon, lat)))
            rows.append(row)
    return rows


def _oracle(rows, *, period, now, community=None, start=None, end=None):
    """The figures statistics() gives (but the heatmap), counted one incident at a time."""
    import statistics as pystats
    rows = [r for r in rows if (community is None or r["community_code"] == community)
            and (start is None or r["reported_at"].date() >= start) and (end is None or r["reported_at"].date() <= end)]
    kept = [r for r in rows if r["status"] != "merged"]

    def label(t):
        if period == "day":
            return t.strftime("%Y-%m-%d")
        if period == "month":
            return t.strftime("%Y-%m")
        return (t.date() - dt.timedelta(days=t.weekday())).isoformat()

    def is_open(r):
        return r["status"] in dispatch.OPEN_STATUSES

    def is_overdue(r):
        return is_open(r) and r["deadline_at"] is not None and r["deadline_at"] < now

    def figures(group):
        total, done = len(group), sum(r["status"] == "resolved" for r in group)
        return {"total": total, "resolved": done, "open": sum(map(is_open, group)),
                "overdue": sum(map(is_overdue, group)), "resolution_rate": round(done / total, 4) if total else None}

    def by(key, name):
        keys = sorted({key(r) for r in kept}, key=lambda k: (k is None, k or ""))
        return [{name: k, **figures([r for r in kept if key(r) == k])} for k in keys]

    hours = [(r["resolved_at"] - r["reported_at"]).total_seconds() / 3600 for r in kept if r["status"] == "resolved"]
    # "inclusive" interpolates between order statistics at (n - 1) q, as numpy.percentile does
    p90 = pystats.quantiles(hours, n=10, method="inclusive")[8] if len(hours) > 1 else (hours or [None])[0]
    return {**figures(kept), "duplicates": sum(r["status"] == "merged" for r in rows),
            "hours_to_resolve": {"median": round(pystats.median(hours), 2) if hours else None,
                                 "p90": None if p90 is None else round(p90, 2), "count": len(hours)},
            "open_by_level": {lv: sum(is_open(r) and r["level"] == lv for r in kept) for lv in catalog.LEVELS},
            "by_community": by(lambda r: r["community_code"], "community"),
            "by_grid": by(lambda r: r["grid_code"], "grid"),
            "by_period": by(lambda r: label(r["reported_at"]), "period")}


@pytest.mark.parametrize("period,community,days", [
    ("day", None, None), ("week", None, None), ("month", None, None),
    ("week", w.COMMUNITY, None), ("day", OTHER_COMMUNITIES[0], (3, 20)),
])
def test_statistics_agree_with_counting_random_incidents_one_by_one(world, period, community, days):
    rows = _random_incidents(world)
    now = T0 + dt.timedelta(days=30)
    start, end = (None, None) if days is None else (T0.date() + dt.timedelta(days=days[0]),
                                                    T0.date() + dt.timedelta(days=days[1]))
    with world.extensions["gridmap.store"].session() as s:
        st = dispatch.statistics(s, period=period, community=community, start=start, end=end, now=now, private=True)
    expected = _oracle(rows, period=period, now=now, community=community, start=start, end=end)
    assert expected["total"] > 20 and expected["by_grid"][-1]["grid"] is None  # the draw covers the cases
    assert {k: st[k] for k in expected if k != "hours_to_resolve"} == \
        {k: v for k, v in expected.items() if k != "hours_to_resolve"}
    assert st["hours_to_resolve"]["count"] == expected["hours_to_resolve"]["count"]
    for q in ("median", "p90"):  # times in and out of the database: equal to the microsecond, so to 0.01 h
        assert st["hours_to_resolve"][q] == pytest.approx(expected["hours_to_resolve"][q], abs=0.0051)
    assert len(st["heatmap"]) == expected["total"]


# --- SOS ---------------------------------------------------------------------------------------

@pytest.fixture
def sos_key(world):
    with world.extensions["gridmap.store"].transaction() as s:
        key, _ = apikeys.create(s, "watch-gateway")
    return key


def _sos(client, key, **body):
    payload = {"device_id": "W-0001", "lon": at(105, 100)[0], "lat": at(105, 100)[1],
               "time": "2026-05-04T16:00:00+08:00", **body}
    return client.post("/api/v1/sos", json=payload, headers={"X-Api-Key": key} if key else {})


def test_an_sos_from_a_registered_wearable_makes_a_priority_incident_with_people_proposed(world, sos_key):
    world.config["WTF_CSRF_ENABLED"] = True  # devices have no session: the endpoint is exempt
    r = _sos(world.test_client(), sos_key)
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    inc = body["incident"]
    assert (inc["category"], inc["priority"], inc["grid_code"], inc["source"]) == ("elderly_help", True, G1, "sos")
    assert inc["reporter_name"] == "孙**" and inc["reporter_phone"] == "138****5678"
    assert "2026-05-04T08:00:00Z" in inc["description"]  # the device's time, in UTC
    assert [x["name"] for x in body["proposal"]["grid_workers"]] == ["王网格"]
    assert [v["name"] for v in body["proposal"]["volunteers"]][:1] == ["张助老"]
    assert body["proposal"]["volunteers"][0]["distance_m"] == pytest.approx(5.0, abs=0.2)
    stored = row(world, inc["id"])
    with world.extensions["gridmap.store"].session() as s:
        assert stored.resident_id == s.scalar(select(m.Resident.id).where(m.Resident.name == "孙奶奶"))
    assert stored.address == "湾里路1号" and stored.deadline_at - stored.reported_at == H


@pytest.mark.parametrize("change,status,words", [
    ({"device_id": "W-9999"}, 404, "'W-9999' is not registered"),
    ({"device_id": "W-0002"}, 403, "'W-0002' is deactivated"),
    ({"lat": "north"}, 400, "lat='north' is not a number"),
    ({"time": "2026-05-04 16:00"}, 400, "time='2026-05-04 16:00' is not an ISO 8601 time with a time zone"),
    ({"device_id": None}, 400, "device_id is missing"),
    ({"device_id": ["W-0001"]}, 400, "device_id=['W-0001'] is not text"),
    ({"time": 1777767300000}, 400, "looks like Unix milliseconds"),
    ({"time": 1e300}, 400, "is outside the years 1970–2099"),
    ({"time": "9999-12-31T23:59:59-14:00"}, 400, "is outside the years 1970–2099"),
])
def test_a_refused_sos_says_why_and_writes_nothing(world, sos_key, change, status, words):
    r = _sos(world.test_client(), sos_key, **change)
    assert r.status_code == status and words in r.get_json()["message"]
    assert count(world, m.Incident) == 0


def test_an_sos_without_a_valid_api_key_is_forbidden(world, sos_key):
    for key in (None, "gm_wrong"):
        r = _sos(world.test_client(), key)
        assert r.status_code == 403 and "api_key" in r.get_json()["message"]
    assert count(world, m.Incident) == 0


# --- the JSON API ------------------------------------------------------------------------------

def test_a_resident_reports_through_the_api_with_a_csrf_token(world):
    world.config["WTF_CSRF_ENABLED"] = True
    client = world.test_client()
    lon, lat = at(300, 100)
    body = {"category": "噪音扰民", "lon": lon, "lat": lat, "description": "深夜装修", "reporter_phone": "13811112222"}
    assert client.post("/api/v1/incidents", json=body).status_code == 400  # no token
    token = client.get("/api/v1/csrf").get_json()["csrf_token"]
    r = client.post("/api/v1/incidents", json=body, headers={"X-CSRFToken": token})
    assert r.status_code == 201
    out = r.get_json()
    assert (out["incident"]["category"], out["incident"]["grid_code"], out["incident"]["level"]) == ("noise", G2, "grid")
    assert out["incident"]["reporter_phone"] == "138****2222"  # the public sees its own number masked
    assert out["proposal"]["responders"]["mediator"][0]["phone"] == "136****0001"
    assert out["possible_duplicates"] == []


@pytest.mark.parametrize("body,words", [
    (None, "not valid JSON at line 1, column 1"),
    ([{}], "not a JSON object"),
    ({"lon": 1, "lat": 2}, "category is missing"),
    ({"category": "noise", "lon": 121.6, "lat": 38.9, "crs": ["wgs84"]}, "crs=['wgs84'] is not text"),
    ({"category": "noise", "lon": 121.6, "lat": 38.9, "crs": 4326}, "crs=4326 is not text"),
    ({"category": "ufo", "lon": 121.6, "lat": 38.9}, "category='ufo' is not in the incident catalogue"),
    ({"category": "noise", "lat": 38.9}, "lon is missing"),
    ({"category": "noise", "lon": 121.6, "lat": 38.9, "description": 5}, "description=5 is not text"),
    ({"category": "noise", "lon": 121.6, "lat": 38.9, "colour": "red"}, "Unknown field(s) colour in"),
])
def test_a_bad_report_is_a_400_naming_the_field_and_writes_nothing(world, body, words):
    r = world.test_client().post("/api/v1/incidents", json=body) if body is not None else \
        world.test_client().post("/api/v1/incidents", data="nope", content_type="application/json")
    assert r.status_code == 400 and words in r.get_json()["message"]
    assert count(world, m.Incident) == 0


def test_staff_list_and_read_incidents_and_see_phones_as_their_role_allows(sqlite_world):
    a = new(sqlite_world, "noise", xy=(100, 100), reporter_phone="13811112222", reporter_name="刘先生")
    b = new(sqlite_world, "street_vending", xy=(300, 100))
    anonymous = sqlite_world.test_client().get("/api/v1/incidents")
    assert anonymous.status_code == 401 and "Log in" in anonymous.get_json()["message"]  # who are you, first
    dispatcher, planner = login(sqlite_world, "dispatcher"), login(sqlite_world, "planner")
    assert [i["id"] for i in dispatcher.get("/api/v1/incidents?level=department").get_json()] == [b]
    assert [i["id"] for i in dispatcher.get(f"/api/v1/incidents?grid={G1}&status=open").get_json()] == [a]
    assert dispatcher.get(f"/api/v1/incidents?community={w.COMMUNITY}&overdue=false").status_code == 200
    full = dispatcher.get(f"/api/v1/incidents/{a}").get_json()
    assert (full["reporter_phone"], full["reporter_name"]) == ("13811112222", "刘先生")
    assert [h["action"] for h in full["history"]] == ["report"] and full["whistles"] == []
    # planners draw grids: incidents are not theirs to read (they see public statistics)
    assert planner.get(f"/api/v1/incidents/{a}").status_code == 403
    # the worker serving G1 reads a (in G1) whole; b lies in G2, which it does not serve: as if there were none
    worker = login(sqlite_world, "worker")
    mine = worker.get(f"/api/v1/incidents/{a}").get_json()
    assert (mine["reporter_phone"], mine["allowed_actions"]) == ("13811112222", ["accept", "escalate"])
    assert [i["id"] for i in worker.get("/api/v1/incidents").get_json()] == [a]
    assert worker.get(f"/api/v1/incidents/{b}").get_json()["message"] == \
        dispatcher.get("/api/v1/incidents/999").get_json()["message"].replace("999", str(b))
    r = dispatcher.get("/api/v1/incidents?level=galaxy")
    assert r.status_code == 400 and "level='galaxy'" in r.get_json()["message"]
    assert dispatcher.get("/api/v1/incidents/999").status_code == 404


def test_transitions_whistles_and_duplicates_through_the_api(sqlite_world):
    a = new(sqlite_world, "fire_hazard", xy=(100, 100))
    b = new(sqlite_world, "fire_hazard", xy=(120, 100))
    client = login(sqlite_world, "dispatcher")
    r = client.post(f"/api/v1/incidents/{a}/transition", json={"action": "accept", "version": 1, "note": "收到"})
    assert r.status_code == 200 and (r.get_json()["status"], r.get_json()["version"]) == ("accepted", 2)
    stale = client.post(f"/api/v1/incidents/{a}/transition", json={"action": "dispatch", "version": 1})
    assert stale.status_code == 409 and stale.get_json()["details"]["current_version"] == 2
    wrong = client.post(f"/api/v1/incidents/{a}/transition", json={"action": "resolve", "version": 2})
    assert wrong.status_code == 409 and wrong.get_json()["details"]["allowed_actions"] == ["dispatch", "escalate", "link_duplicate", "start"]
    bad = client.post(f"/api/v1/incidents/{a}/transition", json={"action": "teleport", "version": 2})
    assert bad.status_code == 400 and "action='teleport'" in bad.get_json()["message"]
    assert client.get(f"/api/v1/incidents/{b}/duplicates").get_json()[0]["id"] == a
    r = client.post(f"/api/v1/incidents/{b}/transition", json={"action": "link_duplicate", "version": 1, "duplicate_of": a})
    assert (r.get_json()["status"], r.get_json()["duplicate_of"]) == ("merged", a)
    r = client.post(f"/api/v1/incidents/{a}/whistle", json={"note": "电动车入户充电"})
    assert r.status_code == 201 and r.get_json()["department"] == "消防救援大队"
    task = r.get_json()["id"]
    assert client.post(f"/api/v1/whistles/{task}/report").get_json()["reported_at"] is not None
    worker = login(sqlite_world, "worker")
    assert worker.post(f"/api/v1/incidents/{a}/whistle", json={}).status_code == 403
    responders = client.get(f"/api/v1/incidents/{a}/responders").get_json()
    assert responders["grid_workers"] == [{"id": 1, "name": "王网格", "phone": "13900000001"}]


def test_the_ledger_through_the_api(sqlite_world):
    client = login(sqlite_world, "worker")
    r = client.post("/api/v1/volunteers/1/services", json={"day": "2026-05-04", "skill": "理发", "hours": 1, "resident_id": 1})
    assert r.status_code == 201 and r.get_json()["total_hours"] == 1.0
    assert client.post("/api/v1/volunteers/99/services",
                       json={"day": "2026-05-04", "skill": "理发", "hours": 1, "resident_id": 1}).status_code == 404
    assert sqlite_world.test_client().get("/api/v1/volunteers/1/services").status_code == 401


def test_stats_through_the_api_keep_sos_points_off_the_public_heatmap(sqlite_world):
    new(sqlite_world, "noise", xy=(300, 100))
    new(sqlite_world, "elderly_help", xy=(100, 100))
    public = sqlite_world.test_client().get(f"/api/v1/stats?community={w.COMMUNITY}&period=month").get_json()
    staff = login(sqlite_world, "dispatcher").get("/api/v1/stats?period=month").get_json()
    # the elderly-help call is not a public category: it counts nowhere for the public, not even in the totals
    assert (public["total"], len(public["heatmap"]), staff["total"], len(staff["heatmap"])) == (1, 1, 2, 2)
    r = sqlite_world.test_client().get("/api/v1/stats?period=year")
    assert r.status_code == 400 and "period='year'" in r.get_json()["message"]


# --- api keys ----------------------------------------------------------------------------------

def test_api_key_create_prints_the_key_once_and_stores_only_its_hash(sqlite_world):
    import hashlib
    result = sqlite_world.test_cli_runner().invoke(args=["api-key", "create", "wechat"])
    assert result.exit_code == 0, result.output
    key = next(line for line in result.output.splitlines() if line.startswith("gm_"))
    with sqlite_world.extensions["gridmap.store"].session() as s:
        stored = s.scalar(select(m.ApiKey).where(m.ApiKey.name == "wechat"))
        assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest() and key not in stored.key_hash
        assert apikeys.check(s, key).name == "wechat"
    again = sqlite_world.test_cli_runner().invoke(args=["api-key", "create", "wechat"])
    assert again.exit_code == 2 and "exists already" in again.output
    assert sqlite_world.test_cli_runner().invoke(args=["api-key", "revoke", "wechat"]).exit_code == 0
    with sqlite_world.extensions["gridmap.store"].session() as s, pytest.raises(Forbidden):
        apikeys.check(s, key)



def test_migration_0004_upgrades_a_store_holding_incidents_of_before(store):
    from alembic import command
    from sqlalchemy import text

    from gridmap.store.db import _alembic_config
    with store.engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0003")
    geom = "ST_GeomFromText('POINT(121.6 38.9)', 4326)" if store.is_postgis else "x'00'"
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO incident (category, status, description, reporter_name, reporter_phone, "
                          f"reported_at, updated_at, version, geom) VALUES ('noise', 'reported', '', '', '', "
                          f"'2026-05-01 08:00:00', '2026-05-01 08:00:00', 1, {geom})"))
    store.upgrade()
    with store.engine.connect() as conn:
        got = conn.execute(text("SELECT level, department, vetoed, priority, source, duplicate_of FROM incident")).one()
    assert tuple(got) == ("grid", "", False, False, "api", None)
