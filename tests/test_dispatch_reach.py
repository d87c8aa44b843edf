"""Whom a dispatcher is offered: nobody beyond their kind's reach; no escalation above the last level;
the address of a located spot is the building's there."""
import dispatch_world as w
import pytest
from conftest import at, lonlat
from dispatch_world import COMMUNITY, T0
from shapely.geometry import Point

from gridmap import access, catalog, dispatch
from gridmap.errors import Conflict
from gridmap.pages import dispatcher as dispatchview
from gridmap.store import models as m
from gridmap.store.generations import bump_generation

DISPATCHER = dispatch.Actor("dispatcher", "dispatcher", access.Area(communities={COMMUNITY}))
REACH = catalog.MAX_RESPONDER_DISTANCE_M["auxiliary_police"]


@pytest.fixture
def world(app):
    store = w.build(app.extensions["gridmap.store"])
    with store.transaction() as s:
        # two auxiliary police east of building b1 at (100, 100): one just inside their reach, one just beyond
        for name, east in (("近辅警", REACH - 200), ("远辅警", REACH + 200)):
            s.add(m.Responder(name=name, kind="auxiliary_police", phone="13600000009",
                              geom=lonlat(Point(100 + east, 100))))
        bump_generation(s)
    return app


def _snap(app):
    return app.extensions["gridmap.snapshots"].get()


def _report(app, category, xy=(100, 100)):
    with app.extensions["gridmap.store"].transaction() as s:
        return dispatch.report(s, _snap(app), category=category, lon=at(*xy)[0], lat=at(*xy)[1], now=T0,
                               actor=DISPATCHER)


def test_every_responder_kind_has_a_reach_and_the_filter_keeps_order():
    assert set(catalog.MAX_RESPONDER_DISTANCE_M) == set(catalog.RESPONDER_KINDS) | {"volunteer"}
    assert catalog.MAX_RESPONDER_DISTANCE_M["auxiliary_police"] == 5_000
    found = [{"distance_m": 10.0}, {"distance_m": 5_000.0}, {"distance_m": 5_000.1}, {"distance_m": None}]
    assert catalog.within_reach("auxiliary_police", found) == found[:2]
    assert catalog.within_reach("no_such_kind", found) == found


def test_a_responder_beyond_their_kinds_reach_is_neither_proposed_nor_shown_on_the_panel(world):
    inc = _report(world, "street_vending")  # names auxiliary police
    proposal = dispatch.propose(_snap(world), inc, role="dispatcher", area=DISPATCHER.area)
    assert [r["name"] for r in proposal["responders"]["auxiliary_police"]] == ["近辅警"]
    assert proposal["responders"]["auxiliary_police"][0]["distance_m"] == pytest.approx(REACH - 200, abs=5)
    panel = dispatchview.panel(_snap(world), *at(100, 100), role="dispatcher", area=DISPATCHER.area)
    assert [r["name"] for r in panel["responders"]["auxiliary_police"]] == ["近辅警"]
    assert [r["name"] for r in panel["responders"]["mediator"]] == ["调解员老周"]  # 71 m away: well within


def test_the_panel_names_the_building_at_the_spot_and_none_on_open_ground(world):
    snap = _snap(world)
    assert dispatchview.panel(snap, *at(110, 100))["address"] == "湾里路1号"  # 10 m from b1's point
    assert dispatchview.panel(snap, *at(295, 105))["address"] == "湾里路2号"
    assert dispatchview.panel(snap, *at(200, 160))["address"] == ""  # 72 m from either building


def test_at_department_level_escalate_is_not_offered_and_refused_with_advice_that_works(world):
    inc = _report(world, "street_vending")  # not on the default work-item list: straight to the department
    assert inc.level == "department"
    with world.extensions["gridmap.store"].session() as s:
        shown = dispatch.incident_detail(s, inc.id, role="dispatcher", area=DISPATCHER.area)
    assert "escalate" not in shown["allowed_actions"] and "accept" in shown["allowed_actions"]
    assert shown["may_whistle"] is False
    grid = _report(world, "water_leak")
    with world.extensions["gridmap.store"].session() as s:
        assert dispatch.incident_detail(s, grid.id, role="dispatcher", area=DISPATCHER.area)["may_whistle"] is True
        assert dispatch.incident_detail(s, grid.id, role="grid_worker",
                                        area=access.Area(grids={grid.grid_code}))["may_whistle"] is False
    assert dispatch.allowed_actions("reported", level="street") == ["accept", "escalate", "link_duplicate"]
    assert dispatch.allowed_actions("reported", level="department") == ["accept", "link_duplicate"]
    with world.extensions["gridmap.store"].transaction() as s, pytest.raises(Conflict) as err:
        dispatch.transition(s, inc.id, "escalate", actor=DISPATCHER, version=inc.version, now=T0)
    assert "no level above" in err.value.message and "whistle" not in err.value.fix
    with world.extensions["gridmap.store"].transaction() as s, pytest.raises(Conflict):
        dispatch.whistle(s, inc.id, actor=DISPATCHER, now=T0)  # a department is whistled to, it does not whistle
    assert dispatch.may_whistle("accepted", "community") and not dispatch.may_whistle("accepted", "department")
    assert not dispatch.may_whistle("resolved", "grid")
