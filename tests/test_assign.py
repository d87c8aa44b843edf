"""Assignment jobs: buildings, party members, contact households and entities → grids, stored per plan."""
import json

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import Point, box
from sqlalchemy import func, select

from gridmap import assign, demo, plans
from gridmap.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from gridmap.geo.crs import local_metric_crs
from gridmap.store import models as m

# Tiny worlds are drawn in metres around a point in Dalian, then converted to WGS84 lon/lat.
CENTRE = (121.6, 38.9)
_LOCAL = local_metric_crs(*CENTRE)
_TO_LONLAT = Transformer.from_crs(_LOCAL, 4326, always_xy=True)
GEOD = Geod(ellps="WGS84")


def lonlat(geom):
    """A geometry drawn in local metres, in WGS84."""
    return shapely.transform(geom, lambda xy: np.column_stack(_TO_LONLAT.transform(xy[:, 0], xy[:, 1])))


def frame(geoms, **columns):
    return gpd.GeoDataFrame(columns, geometry=[lonlat(g) for g in geoms], crs=4326)


def two_grids(branches=(1, 2)):
    """Grids A and B, 100 m squares side by side::

        y=100 +--------+--------+
              |   A    |   B    |
              |        |        |
        y=0   +--------+--------+
              x=0     100      200
    """
    return frame([box(0, 0, 100, 100), box(100, 0, 200, 100)], code=["A", "B"],
                 community_code=["C", "C"], branch_id=pd.array(list(branches), dtype="Int64"))


# --- buildings → grids ---------------------------------------------------------------------

def test_a_building_straddling_two_grids_70_30_goes_to_the_70_percent_grid_and_is_flagged_with_both_shares():
    """::

        +--------+--------+
        |      [##|#]     |   footprint x 86..106: 14 m in A, 6 m in B
        |      [##|#]     |
        +--------+--------+
    """
    out = assign.buildings_to_grids(frame([box(86, 40, 106, 60)]), two_grids())
    row = out.iloc[0]
    assert row["grid_code"] == "A"
    assert row["share"] == pytest.approx(0.70, abs=1e-3)
    assert bool(row["split"]) is True
    assert row["shares"] == pytest.approx({"A": 0.70, "B": 0.30}, abs=1e-3)


def test_a_footprint_touching_a_neighbour_by_a_sliver_is_not_split():
    """A footprint 1 cm into A (0.05 % of it) and the rest in B is B's, unsplit: below 0.1 % is noise."""
    out = assign.buildings_to_grids(frame([box(99.99, 40, 119.99, 60)]), two_grids())
    assert out.iloc[0]["grid_code"] == "B"
    assert not out.iloc[0]["split"]
    assert out.iloc[0]["shares"] == {}
    assert out.iloc[0]["share"] == pytest.approx(0.9995, abs=1e-4)


def test_point_buildings_use_the_point_index_and_buildings_outside_every_grid_get_minus_one():
    out = assign.buildings_to_grids(frame([Point(150, 50), box(300, 0, 320, 20), box(10, 10, 30, 30)]),
                                    two_grids())
    assert out["grid_code"].tolist() == ["B", None, "A"]
    assert out["grid"].tolist() == [1, -1, 0]
    assert out["share"].tolist() == pytest.approx([1.0, 0.0, 1.0])


# --- party members → branches ----------------------------------------------------------------

def test_a_member_living_outside_the_community_goes_to_the_nearest_branch_with_the_distance_in_metres():
    """The member lives 50 m east of B::

        +--------+--------+
        |   A    |   B    |    *  member at (250, 50)
        +--------+--------+
    """
    home = Point(250, 50)
    out = assign.members_to_grids(frame([home], community_code=["C"]), two_grids())
    row = out.iloc[0]
    assert (row["grid_code"], row["branch_id"], bool(row["outside"])) == ("B", 2, True)
    # independently: the geodesic from the home to the nearest point of B's east edge
    (lon1, lat1), (lon2, lat2) = lonlat(home).coords[0], lonlat(Point(200, 50)).coords[0]
    _, _, expected = GEOD.inv(lon1, lat1, lon2, lat2)
    assert expected == pytest.approx(50.0, abs=0.05)
    assert row["distance_m"] == pytest.approx(expected, rel=1e-3)


def test_a_member_outside_goes_to_the_nearest_grid_that_has_a_branch():
    out = assign.members_to_grids(frame([Point(250, 50)]), two_grids(branches=(1, None)))
    row = out.iloc[0]
    assert (row["grid_code"], row["branch_id"]) == ("A", 1)
    assert row["distance_m"] == pytest.approx(150.0, rel=1e-3)


def test_a_member_is_enrolled_where_their_building_is_even_if_their_point_is_elsewhere():
    members = frame([Point(150, 50), Point(50, 50)], building_grid=[0, -1])
    out = assign.members_to_grids(members, two_grids())
    assert out["grid_code"].tolist() == ["A", "A"]
    assert out["distance_m"].tolist() == [0.0, 0.0]
    assert not out["outside"].any()


# --- contact households ----------------------------------------------------------------------

def _greedy_nearest_first(members, households, capacity):
    """The baseline: repeatedly link the closest remaining (member, household) pair."""
    pairs = sorted((np.hypot(h.x - mm.x, h.y - mm.y), mm.member_id, h.household_id)
                   for mm in members.itertuples() for h in households.itertuples())
    load, taken, total = {}, set(), 0.0
    for d, mid, hid in pairs:
        if hid in taken or load.get(mid, 0) >= capacity:
            continue
        taken.add(hid)
        load[mid] = load.get(mid, 0) + 1
        total += d
    return len(taken), total


def test_contact_households_are_optimal_where_nearest_first_greedy_is_worse():
    """On one street (metres)::

        M1 ·········· H1 · M2 ········ H2
        0             3    4           7

    Greedy takes M2–H1 (1 m) first and is left with M1–H2 (7 m): 8 m. Optimal: M1–H1 + M2–H2 = 6 m.
    """
    members = pd.DataFrame({"member_id": [1, 2], "grid_code": "G", "x": [0.0, 4.0], "y": 0.0})
    households = pd.DataFrame({"household_id": [11, 12], "grid_code": "G", "x": [3.0, 7.0], "y": 0.0})
    links, unlinked = assign.link_contact_households(members, households, capacity=1)
    assert dict(zip(links["household_id"], links["member_id"])) == {11: 1, 12: 2}
    assert links["distance_m"].sum() == pytest.approx(6.0)
    assert unlinked.empty
    greedy_count, greedy_total = _greedy_nearest_first(members, households, 1)
    assert greedy_count == 2 and greedy_total == pytest.approx(8.0)


def _min_cost_flow_total(members, households, capacity):
    """Independent optimum: networkx max-flow min-cost (integer millimetres)."""
    g = nx.DiGraph()
    for mm in members.itertuples():
        g.add_edge("s", ("m", mm.member_id), capacity=capacity, weight=0)
        for h in households.itertuples():
            g.add_edge(("m", mm.member_id), ("h", h.household_id), capacity=1,
                       weight=int(round(1000 * np.hypot(h.x - mm.x, h.y - mm.y))))
    for h in households.itertuples():
        g.add_edge(("h", h.household_id), "t", capacity=1, weight=0)
    flow = nx.max_flow_min_cost(g, "s", "t")
    return sum(flow["s"].values()), nx.cost_of_flow(g, flow) / 1000


@pytest.mark.parametrize("seed", range(5))
def test_contact_links_match_min_cost_flow_respect_capacity_and_give_each_household_one_member(seed):
    rng = np.random.default_rng(seed)
    members = pd.DataFrame({"member_id": [1, 2, 3], "grid_code": "G",
                            "x": rng.uniform(0, 100, 3), "y": rng.uniform(0, 100, 3)})
    households = pd.DataFrame({"household_id": np.arange(100, 110), "grid_code": "G",
                               "x": rng.uniform(0, 100, 10), "y": rng.uniform(0, 100, 10)})
    links, unlinked = assign.link_contact_households(members, households, capacity=2)
    assert len(links) == 6  # 3 members × 2: as many as capacity allows
    assert links["member_id"].value_counts().max() <= 2
    assert links["household_id"].is_unique
    assert sorted(unlinked["household_id"]) == sorted(set(range(100, 110)) - set(links["household_id"]))
    flow_count, flow_total = _min_cost_flow_total(members, households, 2)
    assert flow_count == len(links)
    assert links["distance_m"].sum() == pytest.approx(flow_total, abs=0.01)
    assert _greedy_nearest_first(members, households, 2)[1] >= links["distance_m"].sum() - 1e-9


def test_contact_links_stay_inside_each_grid_and_grids_without_members_are_all_unlinked():
    members = pd.DataFrame({"member_id": [1], "grid_code": ["A"], "x": [0.0], "y": [0.0]})
    households = pd.DataFrame({"household_id": [1, 2, 3], "grid_code": ["A", "B", "B"],
                               "x": [500.0, 1.0, 2.0], "y": 0.0})
    links, unlinked = assign.link_contact_households(members, households, capacity=15)
    assert links[["household_id", "member_id"]].values.tolist() == [[1, 1]]
    assert links["distance_m"].tolist() == [500.0]
    assert unlinked.sort_values("household_id").values.tolist() == [[2, "B"], [3, "B"]]


def test_a_negative_capacity_is_refused_with_the_fix():
    with pytest.raises(InvalidInput, match="CONTACT_HOUSEHOLDS_PER_MEMBER"):
        assign.link_contact_households(pd.DataFrame(columns=["member_id", "grid_code", "x", "y"]),
                                       pd.DataFrame(columns=["household_id", "grid_code", "x", "y"]), -1)


def test_worker_load_counts_each_served_grid_once():
    wg = pd.DataFrame({"worker_id": [1, 1, 1, 2], "grid_code": ["A", "B", "B", "B"]})
    load = assign.worker_load(wg, {"A": 30, "B": 12})
    assert load.to_dict() == {1: 42, 2: 12}


def test_a_group_whose_parent_is_another_branch_is_reported():
    groups = pd.DataFrame({"id": [7, 8], "parent_id": [1, 1], "building_ids": [[100], [200, 201, 202]]})
    out = assign.group_parent_mismatches(groups, {100: 1, 200: 2, 201: 2, 202: 1})
    assert out == [{"group_id": 8, "parent_id": 1, "expected_branch_id": 2}]


# --- the store round trip, on both backends ----------------------------------------------------

def _tiny_world(session):
    """Community C with grids 001 (A) and 002 (B) as in :func:`two_grids`, published, and its people::

        +-----------+-----------+
        | b1 [##|#] | b2 [#]    |       * m3 lives 50 m east of B
        |  m1 in b1 |  m2 in b2 |
        +-----------+-----------+
    """
    code = "210213013099"
    session.add(m.District(code="210213000000", name="金州区"))
    session.add(m.Street(code="210213013000", district_code="210213000000", name="湾里街道"))
    session.add(m.Community(code=code, street_code="210213013000", name="测试社区",
                            geom=shapely.MultiPolygon([lonlat(box(0, 0, 200, 100))])))
    session.flush()
    grids = frame([box(0, 0, 100, 100), box(100, 0, 200, 100)], code=[code + "001", code + "002"])
    plan = plans.create_plan(session, code, grids)
    plans.publish(session, plan)
    b1 = m.Building(community_code=code, address="b1", geom=lonlat(box(86, 40, 106, 60)),
                    lon=lonlat(Point(96, 50)).x, lat=lonlat(Point(96, 50)).y)
    b2 = m.Building(community_code=code, address="b2", geom=lonlat(box(150, 40, 160, 50)),
                    lon=lonlat(Point(155, 45)).x, lat=lonlat(Point(155, 45)).y)
    session.add_all([b1, b2])
    session.flush()
    hh = [m.Household(building_id=b.id, unit=f"{i}") for i, b in enumerate((b1, b1, b1, b2), start=1)]
    session.add_all(hh)
    session.flush()
    session.add_all([m.Resident(household_id=h.id, name=f"居民{h.id}", phone="13812341234") for h in hh])
    committee = m.PartyOrganization(kind="committee", name="党委", community_code=code)
    session.add(committee)
    session.flush()
    branch_a = m.PartyOrganization(kind="grid_branch", name="A支部", community_code=code,
                                   grid_code=code + "001", parent_id=committee.id)
    branch_b = m.PartyOrganization(kind="grid_branch", name="B支部", community_code=code,
                                   grid_code=code + "002", parent_id=committee.id)
    session.add_all([branch_a, branch_b])
    session.flush()
    # b1's group wrongly sits under B's branch: b1 is A's (70 %)
    session.add(m.PartyOrganization(kind="group", name="b1小组", community_code=code, parent_id=branch_b.id,
                                    building_id=b1.id))
    m1 = m.PartyMember(name="甲", building_id=b1.id, organization_id=branch_a.id, geom=lonlat(Point(96, 50)))
    m2 = m.PartyMember(name="乙", building_id=b2.id, organization_id=branch_b.id, geom=lonlat(Point(155, 45)))
    m3 = m.PartyMember(name="丙", organization_id=committee.id, geom=lonlat(Point(250, 50)))
    worker = m.GridWorker(name="网格员", community_code=code)
    session.add_all([m1, m2, m3, worker])
    session.flush()
    session.execute(m.grid_worker_grid.insert(), [{"worker_id": worker.id, "grid_code": code + "001"},
                                                  {"worker_id": worker.id, "grid_code": code + "002"}])
    session.add(m.Camera(name="cam", bearing=0, fov=90, range_m=30, community_code=code,
                         geom=lonlat(Point(20, 20))))
    session.flush()
    return {"code": code, "plan": plan.id, "b1": b1.id, "b2": b2.id, "m1": m1.id, "m2": m2.id, "m3": m3.id,
            "branch_a": branch_a.id, "branch_b": branch_b.id, "worker": worker.id, "households": [h.id for h in hh]}


def _rows(session, model, plan_id):
    return session.scalars(select(model).where(model.plan_id == plan_id)).all()


def test_assignments_are_stored_with_their_plan_and_a_rerun_replaces_them(store):
    with store.transaction() as session:
        w = _tiny_world(session)
    with store.transaction() as session:
        (summary,) = assign.run(session, community=w["code"], capacity=1)
    code = w["code"]
    with store.session() as session:
        buildings = {r.building_id: r for r in _rows(session, m.BuildingGrid, w["plan"])}
        assert buildings[w["b1"]].grid_code == code + "001" and buildings[w["b1"]].split
        assert buildings[w["b1"]].share == pytest.approx(0.7, abs=1e-3)
        assert json.loads(buildings[w["b1"]].shares) == pytest.approx({code + "001": 0.7, code + "002": 0.3},
                                                                      abs=1e-3)
        assert (buildings[w["b2"]].grid_code, buildings[w["b2"]].split, buildings[w["b2"]].shares) == \
            (code + "002", False, "")
        members = {r.member_id: r for r in _rows(session, m.MemberGrid, w["plan"])}
        assert (members[w["m1"]].branch_id, members[w["m2"]].branch_id, members[w["m3"]].branch_id) == \
            (w["branch_a"], w["branch_b"], w["branch_b"])
        assert members[w["m3"]].outside and members[w["m3"]].distance_m == pytest.approx(50.0, rel=1e-3)
        links = _rows(session, m.ContactLink, w["plan"])
        # capacity 1: m1 takes one of b1's three households, m2 takes b2's; m3 lives outside
        assert sorted(link.member_id for link in links) == sorted([w["m1"], w["m2"]])
        entities = _rows(session, m.EntityGrid, w["plan"])
        assert [(e.entity_kind, e.grid_code) for e in entities] == [("camera", code + "001")]
        stored = json.loads(session.get(m.AssignmentRun, w["plan"]).summary)
    assert (summary["buildings"], summary["split_buildings"], summary["households"], summary["members"],
            summary["outside_members"], summary["contact_links"], summary["unlinked_households"],
            summary["cameras"], summary["workers_max_load"]) == (2, 1, 4, 3, 1, 2, 2, 1, 4)
    assert summary["per_grid"][code + "001"]["unlinked_households"] == 2
    assert summary["group_mismatches"] == [{"group_id": summary["group_mismatches"][0]["group_id"],
                                            "parent_id": w["branch_b"], "expected_branch_id": w["branch_a"],
                                            "community": code}]
    assert stored["contact_links"] == 2

    with store.transaction() as session:
        (again,) = assign.run(session, plan_ids=[w["plan"]], capacity=15)
    with store.session() as session:
        assert len(_rows(session, m.BuildingGrid, w["plan"])) == 2
        assert len(_rows(session, m.MemberGrid, w["plan"])) == 3
        assert len(_rows(session, m.ContactLink, w["plan"])) == 4
        assert session.scalar(select(func.count()).select_from(m.AssignmentRun)) == 1
    assert (again["contact_links"], again["unlinked_households"]) == (4, 0)


def test_the_summary_counts_the_households_buildings_declare_where_none_are_registered(app):
    """A buildings file with a households column and no register: the grids hold those households."""
    store = app.extensions["gridmap.store"]
    with store.transaction() as session:
        w = _tiny_world(session)
        code = w["code"]
        # b3 in grid B declares 40 households and has no register rows; b1's 3 rows win over its 9
        session.add(m.Building(community_code=code, address="b3", households=40, geom=lonlat(box(170, 70, 180, 80)),
                               lon=lonlat(Point(175, 75)).x, lat=lonlat(Point(175, 75)).y))
        session.get(m.Building, w["b1"]).households = 9
    with store.transaction() as session:
        (summary,) = assign.run(session, community=code, capacity=1)
    assert summary["households"] == 3 + 1 + 40
    assert summary["per_grid"][code + "001"]["households"] == 3
    assert summary["per_grid"][code + "002"]["households"] == 41
    out = app.test_cli_runner().invoke(args=["assign", "--community", code])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("community"))
    assert lines[header + 1].split()[4] == "44"


def test_an_unknown_community_or_plan_is_refused_and_nothing_is_written(store):
    with store.transaction() as session:
        _tiny_world(session)
    with pytest.raises(NotFound, match="999999999999") as err:
        with store.transaction() as session:
            assign.run(session, community="999999999999")
    assert "210213013099" in err.value.fix
    with pytest.raises(NotFound, match=r"Grid plan\(s\) 4242 are not in the store"):
        with store.transaction() as session:
            assign.run(session, plan_ids=[4242])
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(m.BuildingGrid)) == 0


# --- the Dalian demo ---------------------------------------------------------------------------

def test_on_the_demo_households_per_grid_sum_to_each_communitys_total(assigned_demo):
    _, store, summaries = assigned_demo
    with store.session() as session:
        totals = dict(session.execute(select(m.Building.community_code, func.count(m.Household.id))
                                      .join(m.Household).group_by(m.Building.community_code)).all())
    assert len(summaries) == 5
    for s in summaries:
        assert sum(g["households"] for g in s["per_grid"].values()) == s["households"] == totals[s["community"]]
    assert sum(s["households"] for s in summaries) == 11_900
    assert sum(s["buildings"] for s in summaries) == 320
    assert sum(s["members"] for s in summaries) == 880


def test_on_the_demo_every_member_in_the_community_is_in_the_branch_of_their_buildings_grid(assigned_demo):
    _, store, _ = assigned_demo
    with store.session() as session:
        grids = session.execute(select(m.Grid.code, m.Grid.geom).join(m.GridPlan)
                                .where(m.GridPlan.status == "published")).all()
        rows = session.execute(select(m.PartyMember.id, m.Building.lon, m.Building.lat, m.MemberGrid.grid_code,
                                      m.MemberGrid.outside, m.MemberGrid.distance_m,
                                      m.PartyOrganization.grid_code.label("branch_grid"))
                               .join(m.MemberGrid, m.MemberGrid.member_id == m.PartyMember.id)
                               .outerjoin(m.Building, m.PartyMember.building_id == m.Building.id)
                               .outerjoin(m.PartyOrganization, m.MemberGrid.branch_id == m.PartyOrganization.id)
                               ).all()
    grid_frame = gpd.GeoDataFrame({"code": [g.code for g in grids]}, geometry=[g.geom for g in grids], crs=4326)
    inside = [r for r in rows if not r.outside]
    homes = gpd.GeoDataFrame({"id": [r.id for r in inside]},
                             geometry=gpd.points_from_xy([r.lon for r in inside], [r.lat for r in inside]), crs=4326)
    joined = gpd.sjoin(homes, grid_frame, predicate="within").set_index("id")["code"]
    assert len(inside) > 800 and joined.index.is_unique and len(joined) == len(inside)
    for r in inside:
        assert r.grid_code == r.branch_grid == joined[r.id]
    outside = [r for r in rows if r.outside]
    assert outside and all(r.distance_m > 0 and r.grid_code == r.branch_grid for r in outside)


def test_on_the_demo_contact_links_respect_capacity_and_stay_in_the_members_grid(assigned_demo):
    _, store, summaries = assigned_demo
    with store.session() as session:
        rows = session.execute(select(m.ContactLink.member_id, m.ContactLink.household_id, m.MemberGrid.grid_code,
                                      m.BuildingGrid.grid_code.label("household_grid"))
                               .join(m.MemberGrid, (m.MemberGrid.member_id == m.ContactLink.member_id)
                                     & (m.MemberGrid.plan_id == m.ContactLink.plan_id))
                               .join(m.Household, m.Household.id == m.ContactLink.household_id)
                               .join(m.BuildingGrid, (m.BuildingGrid.building_id == m.Household.building_id)
                                     & (m.BuildingGrid.plan_id == m.ContactLink.plan_id))).all()
    links = pd.DataFrame(rows, columns=["member", "household", "grid", "household_grid"])
    assert links["household"].is_unique
    assert links.groupby("member").size().max() <= 15
    assert (links["grid"] == links["household_grid"]).all()
    assert len(links) == sum(s["contact_links"] for s in summaries)
    assert len(links) + sum(s["unlinked_households"] for s in summaries) == 11_900


def _all_rows(session):
    return {t.__tablename__: sorted(tuple(r) for r in session.execute(select(*t.__table__.c)).all())
            for t in (m.BuildingGrid, m.MemberGrid, m.ContactLink, m.EntityGrid)}


def test_assigning_one_community_at_a_time_gives_the_same_rows_as_assigning_all(assigned_demo):
    _, store, _ = assigned_demo
    with store.session() as session:
        before = _all_rows(session)
        communities = session.scalars(select(m.Community.code).order_by(m.Community.code)).all()
    with store.transaction() as session:
        for code in reversed(communities):
            assign.run(session, community=code)
    with store.session() as session:
        after = _all_rows(session)
    assert {k: len(v) for k, v in before.items()} == {"building_grid": 320, "member_grid": 880,
                                                      "contact_link": 10_980, "entity_grid": 237}
    assert after == before


def test_grid_members_is_for_admins_and_grid_workers_only(assigned_demo):
    _, store, _ = assigned_demo
    with store.session() as session:
        code = session.scalar(select(m.Grid.code).join(m.GridPlan).where(m.GridPlan.status == "published")
                              .order_by(m.Grid.code))
        for role in (None, "planner", "dispatcher"):
            with pytest.raises(Unauthenticated if role is None else Forbidden, match="admin, grid_worker") as err:
                assign.grid_members(session, code, role)
            assert err.value.details["allowed_roles"] == ["admin", "grid_worker"]
        out = assign.grid_members(session, code, "admin")
        expected = session.scalar(select(func.count(m.Resident.id)).join(m.Household)
                                  .join(m.BuildingGrid, m.BuildingGrid.building_id == m.Household.building_id)
                                  .where(m.BuildingGrid.grid_code == code))
        assert out["grid"]["code"] == code and len(out["residents"]) == expected > 0
        assert set(out["residents"][0]) == {"name", "address", "unit", "phone", "vulnerable"}
        assert "*" not in out["residents"][0]["phone"]
        linked = sum(len(c["households"]) for c in out["contact_links"])
        households = session.scalar(select(func.count(m.Household.id))
                                    .join(m.BuildingGrid, m.BuildingGrid.building_id == m.Household.building_id)
                                    .where(m.BuildingGrid.grid_code == code))
        assert linked + len(out["unlinked_households"]) == households
        assert all(len(c["households"]) <= 15 for c in out["contact_links"])
        assert {p["id"] for p in out["party_members"]} >= {c["member_id"] for c in out["contact_links"]}
        with pytest.raises(NotFound, match="999999999999999"):
            assign.grid_members(session, "999999999999999", "admin")


def test_a_grid_worker_sees_only_the_grids_they_serve(assigned_demo):
    _, store, _ = assigned_demo
    with store.session() as session:
        worker, own = session.execute(select(m.grid_worker_grid.c.worker_id, m.grid_worker_grid.c.grid_code)
                                      .order_by(m.grid_worker_grid.c.worker_id)).first()
        served = set(session.scalars(select(m.grid_worker_grid.c.grid_code)
                                     .where(m.grid_worker_grid.c.worker_id == worker)).all())
        other = session.scalar(select(m.Grid.code).where(m.Grid.code.not_in(served)).order_by(m.Grid.code))
        assert assign.grid_members(session, own, "grid_worker", worker_id=worker)["grid"]["code"] == own
        with pytest.raises(Forbidden, match=f"does not serve grid {other}") as err:
            assign.grid_members(session, other, "grid_worker", worker_id=worker)
        assert own in err.value.fix
        with pytest.raises(Forbidden):
            assign.grid_members(session, own, "grid_worker", worker_id=None)


# --- the command ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_the_assign_command_prints_a_summary_and_refuses_a_bad_community(tmp_path, demo_frames):
    from conftest import make_app
    app, _ = make_app(tmp_path, "sqlite")
    store = app.extensions["gridmap.store"]
    demo.build(store, frames=demo_frames)
    runner = app.test_cli_runner()

    bad = runner.invoke(args=["assign", "--community", "210213013999"])
    assert bad.exit_code == 2
    assert "Community '210213013999' is not in the store" in bad.output
    neither = runner.invoke(args=["assign"])
    assert neither.exit_code == 2 and "--community CODE or --all" in neither.output
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(m.AssignmentRun)) == 0

    one = runner.invoke(args=["assign", "--community", "210213013004"])
    assert one.exit_code == 0, one.output
    lines = one.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("community"))
    assert lines[header].split() == ["community", "grids", "buildings", "split", "households", "members",
                                     "outside", "links", "unlinked", "cameras", "max", "load"]
    row = lines[header + 1].split()
    assert row[:2] == ["210213013004", "18"] and row[4] == "3600" and row[5] == "260"

    everything = runner.invoke(args=["assign", "--all"])
    assert everything.exit_code == 0, everything.output
    total = next(line for line in everything.output.splitlines() if line.startswith("total")).split()
    assert total[1:3] == ["58", "320"] and total[4:6] == ["11900", "880"]
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(m.AssignmentRun)) == 5
    store.dispose()
