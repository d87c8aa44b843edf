"""The city dashboard: every KPI against pandas on the same rows read out of the store independently,
on both backends; who sees which area; bad parameters refused by name."""
import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from shapely.geometry import MultiPolygon, Point, box
from sqlalchemy import select

from gridmap import access, catalog, dispatch
from gridmap.dispatch import kpis
from gridmap.errors import Forbidden
from gridmap.store import models as m

import dispatch_world as w
from conftest import store_at_revision
from dispatch_world import COMMUNITY, G1, G2, T0, at, login, lonlat

OTHER_DISTRICT, OTHER_STREET = "210203000000", "210203010000"
OTHER_COMMUNITY = "210203010006"
OTHER_GRID = OTHER_COMMUNITY + "001"
NEIGHBOUR = "210213013005"  # a second community of the world's street, without grids
NOW = T0 + dt.timedelta(days=30)
OPEN = dispatch.OPEN_STATUSES


def _extend(store):
    """A second district (street, community, grid, worker) and a neighbouring community of the same street."""
    with store.transaction() as s:
        s.add(m.District(code=OTHER_DISTRICT, name="西岗区"))
        s.add(m.Street(code=OTHER_STREET, district_code=OTHER_DISTRICT, name="白云街道"))
        s.flush()
        s.add(m.Community(code=OTHER_COMMUNITY, street_code=OTHER_STREET, name="远方社区",
                          geom=MultiPolygon([lonlat(box(2000, 0, 2400, 200))])))
        s.add(m.Community(code=NEIGHBOUR, street_code="210213013000", name="邻里社区",
                          geom=MultiPolygon([lonlat(box(500, 0, 900, 200))])))
        s.flush()
        plan = m.GridPlan(community_code=OTHER_COMMUNITY, status="published", valid_from=dt.date(2026, 1, 1))
        plan.grids.append(m.Grid(code=OTHER_GRID, name="远方1网格", geom=lonlat(box(2000, 0, 2400, 200))))
        s.add(plan)
        worker = m.GridWorker(name="周远方", phone="13900000009", community_code=OTHER_COMMUNITY,
                              geom=lonlat(Point(2100, 100)))
        retired = m.GridWorker(name="吴退休", phone="13900000008", community_code=COMMUNITY,
                               geom=lonlat(Point(100, 100)), retired_at=T0)
        s.add_all([worker, retired])
        s.flush()
        s.execute(m.grid_worker_grid.insert(), [{"worker_id": worker.id, "grid_code": OTHER_GRID},
                                                {"worker_id": retired.id, "grid_code": G1}])


def _seed(app, n=500, seed=13):
    """``n`` incidents written straight to the store with their steps: every status, no deadline, resolved late
    and on time, reopened, escalated (once or twice), whistled, merged, no grid, other areas, outside the
    window; then a few through the real lifecycle (report, escalate, whistle, resolve)."""
    rng = np.random.default_rng(seed)
    places = [(G1, COMMUNITY), (G2, COMMUNITY), (None, COMMUNITY), (OTHER_GRID, OTHER_COMMUNITY),
              (None, OTHER_COMMUNITY), (None, NEIGHBOUR)]
    categories = [c.code for c in catalog.INCIDENT_CATEGORIES]
    store = app.extensions["gridmap.store"]
    with store.transaction() as s:
        for _ in range(n):
            grid, community = places[rng.integers(len(places))]
            status = dispatch.STATUSES[rng.integers(len(dispatch.STATUSES))]
            reported = T0 + dt.timedelta(days=int(rng.integers(-5, 40)), seconds=int(rng.integers(86400)),
                                         microseconds=int(rng.integers(10 ** 6)))
            deadline = None if rng.random() < 0.15 else reported + dt.timedelta(hours=int(rng.choice([2, 24, 240])))
            resolved = reported + dt.timedelta(hours=float(rng.uniform(0, 300))) \
                if status in dispatch.CLOSED_STATUSES else None
            lon, lat = at(*rng.uniform(0, 200, 2))
            inc = m.Incident(category=categories[rng.integers(len(categories))], status=status,
                             level=catalog.LEVELS[rng.integers(len(catalog.LEVELS))], community_code=community,
                             grid_code=grid, reported_at=reported, updated_at=reported, resolved_at=resolved,
                             deadline_at=deadline, lon=lon, lat=lat, geom=Point(lon, lat))
            s.add(inc)
            s.flush()
            steps = ["report"]
            if rng.random() < 0.25:
                steps += ["escalate"] * int(rng.integers(1, 3))
            if status in OPEN and rng.random() < 0.2:
                steps += ["resolve", "reopen"]
            for action in steps:
                s.add(m.IncidentEvent(incident_id=inc.id, at=reported, action=action, to_status=status,
                                      to_level=inc.level))
            whistles = int(rng.choice([0, 0, 0, 1, 2]))
            for _ in range(whistles):
                s.add(m.WhistleTask(incident_id=inc.id, department="城管", blown_at=reported,
                                    report_by=reported + dt.timedelta(hours=2)))
            # the flags as the lifecycle keeps them; the oracle reads the steps and tasks instead
            inc.escalated, inc.whistled = "escalate" in steps, whistles > 0
    # through the lifecycle, as the dispatcher's page records them
    snap = app.extensions["gridmap.snapshots"].get()
    worker = dispatch.Actor("worker", "grid_worker", access.Area(grids={G1}))
    desk = dispatch.Actor("dispatcher", "dispatcher", access.Area(communities={COMMUNITY}))
    with store.transaction() as s:
        for i, xy in enumerate(((50, 50), (60, 60), (250, 50))):
            when = T0 + dt.timedelta(days=3 + i)
            inc = dispatch.report(s, snap, category="noise", lon=at(*xy)[0], lat=at(*xy)[1], now=when, actor=worker)
            if i == 0:
                dispatch.whistle(s, inc.id, actor=desk, now=when)
            if i == 1:
                dispatch.transition(s, inc.id, "escalate", actor=desk, version=inc.version, now=when)
            if i == 2:
                for action in ("accept", "start", "resolve"):
                    dispatch.transition(s, inc.id, action, actor=desk, version=inc.version, now=when)


@pytest.fixture
def world(app):
    w.build(app.extensions["gridmap.store"])
    _extend(app.extensions["gridmap.store"])
    _seed(app)
    app.config["WTF_CSRF_ENABLED"] = False
    return app


# --- the oracle: pandas over the tables read whole ----------------------------------------------------

def _tables(app):
    engine = app.extensions["gridmap.store"].engine
    with engine.connect() as c:
        read = lambda q: pd.read_sql(q, c)  # noqa: E731
        inc = read(select(m.Incident.id, m.Incident.category, m.Incident.status, m.Incident.community_code,
                          m.Incident.grid_code, m.Incident.reported_at, m.Incident.resolved_at, m.Incident.deadline_at))
        places = read(select(m.Community.code.label("community_code"), m.Community.street_code,
                             m.Street.district_code).join(m.Street, m.Street.code == m.Community.street_code))
        events = read(select(m.IncidentEvent.incident_id, m.IncidentEvent.action))
        whistles = read(select(m.WhistleTask.incident_id))
        links = read(select(m.grid_worker_grid.c.worker_id, m.grid_worker_grid.c.grid_code))
        workers = read(select(m.GridWorker.id.label("worker_id"), m.GridWorker.name, m.GridWorker.retired_at))
    for col in ("reported_at", "resolved_at", "deadline_at"):
        inc[col] = pd.to_datetime(inc[col])
    inc = inc.merge(places, on="community_code", how="left")
    inc["escalated_ever"] = inc["id"].isin(events.loc[events["action"] == "escalate", "incident_id"])
    inc["whistled_ever"] = inc["id"].isin(whistles["incident_id"])
    return inc, links, workers


_KEY = {"district": "district_code", "street": "street_code", "community": "community_code", "grid": "grid_code"}


def _in_area(df, level, code):
    return pd.Series(True, index=df.index) if level == "city" else df[_KEY[level]] == code


def _figures(g):
    kept = g["status"] != "merged"
    closed = g["status"] == "resolved"
    open_ = g["status"].isin(OPEN)
    on_time = closed & (g["deadline_at"].isna() | (g["resolved_at"] <= g["deadline_at"]))
    out = {"reported": int(kept.sum()), "closed": int(closed.sum()), "on_time": int(on_time.sum()),
           "open": int(open_.sum()), "overdue": int((open_ & (g["deadline_at"] < NOW)).sum()),
           "escalated": int((kept & g["escalated_ever"]).sum()), "whistled": int((kept & g["whistled_ever"]).sum()),
           "duplicates": int((g["status"] == "merged").sum())}
    out["closure_rate"] = round(out["closed"] / out["reported"], 4) if out["reported"] else None
    out["on_time_rate"] = round(out["on_time"] / out["closed"], 4) if out["closed"] else None
    return out


def _labels(start, end, period):
    if period == "day":
        return [d.strftime("%Y-%m-%d") for d in pd.date_range(start, end, freq="D")]
    if period == "week":
        monday = pd.Timestamp(start) - pd.Timedelta(days=start.weekday())
        return [d.strftime("%Y-%m-%d") for d in pd.date_range(monday, end, freq="W-MON")]
    return [str(p) for p in pd.period_range(start, end, freq="M")]


def _oracle(app, level, code, start, end, period, mine=None):
    inc, links, workers = _tables(app)
    days = inc["reported_at"].dt.normalize()
    sel = inc[_in_area(inc, level, code) & (days >= pd.Timestamp(start)) & (days <= pd.Timestamp(end))]
    if mine is not None:
        sel = sel[mine(sel)]
    child = kpis.CHILD[level]
    children = []
    if child:
        for key, g in sel.groupby(_KEY[child], dropna=False, sort=False):
            children.append({"code": None if pd.isna(key) else key, **_figures(g)})
        children.sort(key=lambda r: (r["code"] is None, r["code"] or ""))
    cats = sorted(({"category": k, **_figures(g)} for k, g in sel.groupby("category")),
                  key=lambda c: (-c["reported"], c["category"]))
    fmt = {"day": "%Y-%m-%d", "month": "%Y-%m"}.get(period)
    label = sel["reported_at"].dt.strftime(fmt) if fmt else \
        (sel["reported_at"].dt.normalize() - pd.to_timedelta(sel["reported_at"].dt.day_of_week, unit="D")).dt.strftime(
            "%Y-%m-%d")
    per = {k: _figures(g) for k, g in sel.groupby(label)}
    empty = _figures(sel.iloc[0:0])
    trend = [{"period": p, **per.get(p, empty)} for p in _labels(start, end, period)]
    assert set(per) <= {t["period"] for t in trend}
    # load: open now in the grids each live worker serves inside the area, whenever reported
    live = links.merge(workers[workers["retired_at"].isna()], on="worker_id")
    live["community_code"] = live["grid_code"].str[:12]
    live = live.merge(inc[["community_code", "street_code", "district_code"]].drop_duplicates("community_code"),
                      on="community_code", how="left")
    live = live[_in_area(live, level, code)]
    if mine is not None:
        live = live[mine(live.assign(grid_code=live["grid_code"]))]
    opened = inc[inc["status"].isin(OPEN) & inc["grid_code"].notna()]
    load = []
    for wid, g in live.groupby("worker_id"):
        mine_open = opened[opened["grid_code"].isin(g["grid_code"])]
        load.append({"id": int(wid), "grids": g["grid_code"].nunique(), "open": len(mine_open),
                     "overdue": int((mine_open["deadline_at"] < NOW).sum())})
    return {"kpis": _figures(sel), "children": children, "categories": cats, "trend": trend,
            "workers": sorted(load, key=lambda r: (-r["open"], r["id"]))}


def _strip(rows, *keys):
    return [{k: v for k, v in r.items() if k not in keys} for r in rows]


def _ask(app, level, code, start, end, period, role="admin", area=None):
    q = kpis.parse_query({"level": level, "code": code or "", "from": start.isoformat(), "to": end.isoformat(),
                          "period": period})
    with app.extensions["gridmap.store"].session() as s:
        return kpis.dashboard(s, q, role=role, area=area, now=NOW)


CASES = [("city", None, 0, 39, "week"), ("district", "210213000000", 0, 39, "day"),
         ("street", "210213013000", -5, 20, "month"), ("community", COMMUNITY, 2, 30, "day"),
         ("grid", G1, 0, 39, "week"), ("district", OTHER_DISTRICT, -10, 45, "month"),
         ("community", NEIGHBOUR, 0, 39, "week")]


@pytest.mark.parametrize("level,code,first,last,period", CASES)
def test_every_kpi_agrees_with_pandas_on_the_same_rows(world, level, code, first, last, period):
    start, end = (T0 + dt.timedelta(days=first)).date(), (T0 + dt.timedelta(days=last)).date()
    got = _ask(world, level, code, start, end, period)
    want = _oracle(world, level, code, start, end, period)
    assert got["kpis"] == want["kpis"]
    assert _strip(got["children"], "name") == want["children"]
    assert _strip(got["categories"], "name", "name_en") == want["categories"]
    assert got["trend"] == want["trend"]
    assert _strip(got["workers"]["rows"], "name", "community_code") == want["workers"]
    assert got["workers"]["total"] == len(want["workers"])


def test_the_draw_covers_the_edge_cases(world):
    inc, _, _ = _tables(world)
    kept = inc[inc["status"] != "merged"]
    resolved = kept[kept["status"] == "resolved"]
    assert kept["deadline_at"].isna().any() and (resolved["resolved_at"] > resolved["deadline_at"]).any()
    assert (resolved["resolved_at"] <= resolved["deadline_at"]).any() and resolved["deadline_at"].isna().any()
    assert kept["escalated_ever"].any() and kept["whistled_ever"].any() and (inc["status"] == "merged").any()
    assert (kept["status"].isin(OPEN) & (kept["deadline_at"] < NOW)).any() and kept["grid_code"].isna().any()
    got = _ask(world, "city", None, (T0 - dt.timedelta(days=5)).date(), (T0 + dt.timedelta(days=39)).date(), "month")
    assert got["kpis"]["reported"] == len(kept) and {c["code"] for c in got["children"]} == {"210213000000",
                                                                                               OTHER_DISTRICT}
    # the lifecycle's own records: the whistled report and the escalated one count, the third closed on time
    noise = _ask(world, "grid", G1, (T0 + dt.timedelta(days=3)).date(), (T0 + dt.timedelta(days=5)).date(), "day")
    assert noise["kpis"]["whistled"] >= 1 and noise["kpis"]["escalated"] >= 1


def test_names_and_breadcrumbs_of_a_grid(world):
    got = _ask(world, "grid", G1, T0.date(), T0.date(), "day")
    assert [(c["level"], c["code"], c["name"]) for c in got["area"]["breadcrumbs"]] == [
        ("city", None, None), ("district", "210213000000", "金州区"), ("street", "210213013000", "湾里街道"),
        ("community", COMMUNITY, "城志社区"), ("grid", G1, "第1网格")]
    street = _ask(world, "street", "210213013000", T0.date(), (T0 + dt.timedelta(days=39)).date(), "month")
    assert {c["code"]: c["name"] for c in street["children"]} == {COMMUNITY: "城志社区", NEIGHBOUR: "邻里社区"}
    assert {r["name"] for r in street["workers"]["rows"]} == {"王网格", "李网格"}  # not the retired one


# --- the flags the figures read (migration 0020) -----------------------------------------------------------

def test_an_escalation_or_a_whistle_days_after_the_report_counts_in_the_reports_window(world):
    snap = world.extensions["gridmap.snapshots"].get()
    store = world.extensions["gridmap.store"]
    worker = dispatch.Actor("worker", "grid_worker", access.Area(grids={G1}))
    desk = dispatch.Actor("dispatcher", "dispatcher", access.Area(communities={COMMUNITY}))
    reported = T0 + dt.timedelta(days=45)  # after every seeded incident: the window holds this one alone
    day = reported.date()
    with store.transaction() as s:
        iid = dispatch.report(s, snap, category="noise", lon=at(20, 20)[0], lat=at(20, 20)[1], now=reported,
                              actor=worker).id

    def counts():
        k = _ask(world, "grid", G1, day, day, "day")["kpis"]
        with store.session() as s:
            row = s.get(m.Incident, iid)
            flags = (row.escalated, row.whistled)
        return k["reported"], k["escalated"], k["whistled"], flags

    assert counts() == (1, 0, 0, (False, False))
    with store.transaction() as s:
        version = s.get(m.Incident, iid).version
        dispatch.transition(s, iid, "escalate", actor=desk, version=version, now=reported + dt.timedelta(days=2))
    assert counts() == (1, 1, 0, (True, False))
    with store.transaction() as s:  # now with the community, where the whistle may still be blown
        dispatch.whistle(s, iid, actor=desk, now=reported + dt.timedelta(days=3))
    assert counts() == (1, 1, 1, (True, True))
    want = _oracle(world, "grid", G1, day, day, "day")  # from the steps and tasks, not the flags
    assert _ask(world, "grid", G1, day, day, "day")["kpis"] == want["kpis"]


@pytest.fixture(params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)])
def store_at_0019(request, tmp_path):
    """A store migrated up to 0019 only, as a deployment was before the flags."""
    with store_at_revision(request.param, tmp_path, "0019") as store:
        yield store


def test_migration_0020_flags_the_incidents_escalated_or_whistled_before_it(store_at_0019):
    store = store_at_0019
    # the incident table as it was at 0019: the model's columns but the two flags
    old = sa.Table("incident", sa.MetaData(), *[c._copy() for c in m.Incident.__table__.columns
                                                 if c.name not in ("escalated", "whistled")])
    with store.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO district (code, name) VALUES ('210213000000', '金州区')"))
        conn.execute(sa.text("INSERT INTO street (code, district_code, name) "
                             "VALUES ('210213013000', '210213000000', '湾里街道')"))
    with store.transaction() as s:
        s.execute(sa.insert(m.Community.__table__).values(
            code=COMMUNITY, street_code="210213013000", name="城志社区", service_centre="", service_address="",
            service_phone="", name_en="", geom=MultiPolygon([lonlat(box(0, 0, 100, 100))])))
        for i in range(1, 6):
            s.execute(sa.insert(old).values(id=i, category="noise", status="reported", community_code=COMMUNITY,
                                            grid_code=G1, reported_at=T0, updated_at=T0, geom=Point(*at(10, 10))))
        # 1: escalated twice; 2: whistled; 3: both; 4: only other steps; 5: nothing but its report
        steps = [(1, "report"), (1, "escalate"), (1, "escalate"), (2, "report"), (3, "escalate"), (4, "accept"),
                 (4, "resolve"), (5, "report")]
        s.execute(sa.insert(m.IncidentEvent.__table__), [{"incident_id": i, "at": T0, "action": a,
                                                          "to_status": "reported", "to_level": "grid"}
                                                         for i, a in steps])
        s.execute(sa.insert(m.WhistleTask.__table__), [{"incident_id": i, "department": "城管", "blown_at": T0,
                                                        "report_by": T0} for i in (2, 3, 3)])
    store.upgrade()
    assert store.current_revision() >= "0020"
    with store.session() as s:
        got = {r.id: (r.escalated, r.whistled) for r in s.execute(select(m.Incident.id, m.Incident.escalated,
                                                                          m.Incident.whistled))}
        k = kpis.summary(s, kpis.Scope(start=T0.date(), end=T0.date(), role="admin", now=NOW))
    assert got == {1: (True, False), 2: (False, True), 3: (True, True), 4: (False, False), 5: (False, False)}
    assert (k["reported"], k["escalated"], k["whistled"]) == (5, 2, 2)


# --- who sees what -----------------------------------------------------------------------------------

def test_a_dispatcher_sees_only_the_communities_it_covers(world):
    start, end = T0.date(), (T0 + dt.timedelta(days=39)).date()
    area = access.Area(communities={COMMUNITY})
    got = _ask(world, "city", None, start, end, "month", role="dispatcher", area=area)
    want = _oracle(world, "city", None, start, end, "month", mine=lambda df: df["community_code"] == COMMUNITY)
    assert got["area"]["partial"] and got["kpis"] == want["kpis"]
    assert [c["code"] for c in got["children"]] == ["210213000000"]
    assert {r["name"] for r in got["workers"]["rows"]} == {"王网格", "李网格"}
    with pytest.raises(Forbidden) as err:
        _ask(world, "community", OTHER_COMMUNITY, start, end, "day", role="dispatcher", area=area)
    assert err.value.status == 403 and OTHER_COMMUNITY in err.value.message


def test_a_grid_worker_sees_its_grids_and_its_communitys_incidents_in_no_grid(world):
    start, end = T0.date(), (T0 + dt.timedelta(days=39)).date()
    area = access.Area(grids={G1})
    got = _ask(world, "community", COMMUNITY, start, end, "week", role="grid_worker", area=area)
    want = _oracle(world, "community", COMMUNITY, start, end, "week",
                   mine=lambda df: (df["grid_code"] == G1) | (df["grid_code"].isna() & (df["community_code"]
                                                                                      == COMMUNITY)))
    assert got["kpis"] == want["kpis"] and [c["code"] for c in got["children"]] == [G1, None]
    assert [r["name"] for r in got["workers"]["rows"]] == ["王网格"]
    with pytest.raises(Forbidden) as err:
        _ask(world, "grid", G2, start, end, "day", role="grid_worker", area=area)
    assert err.value.status == 403


def test_through_the_api_each_role_gets_its_area_and_the_public_and_planners_none(world):
    admin, disp, worker = login(world, "admin"), login(world, "dispatcher"), login(world, "worker")
    q = {"level": "city", "from": T0.date().isoformat(), "to": (T0 + dt.timedelta(days=39)).date().isoformat(),
         "period": "month"}
    whole, mine = admin.get("/api/v1/dashboard", query_string=q).get_json(), disp.get(
        "/api/v1/dashboard", query_string=q).get_json()
    assert {c["code"] for c in whole["children"]} == {"210213000000", OTHER_DISTRICT}
    assert [c["code"] for c in mine["children"]] == ["210213000000"]
    assert mine["kpis"]["reported"] < whole["kpis"]["reported"]
    r = worker.get("/api/v1/dashboard", query_string={**q, "level": "grid", "code": G2})
    assert r.status_code == 403 and r.get_json()["error"] == "forbidden"
    r = world.test_client().get("/api/v1/dashboard", query_string=q)
    assert r.status_code == 401
    r = login(world, "planner").get("/api/v1/dashboard", query_string=q)
    assert r.status_code == 403 and r.get_json()["details"]["allowed_roles"] == ["admin", "dispatcher", "grid_worker"]


@pytest.mark.parametrize("query,named", [
    ({"level": "town"}, "level='town'"), ({"level": "community"}, "code=None"),
    ({"level": "community", "code": "21021301300"}, "code='21021301300'"),
    ({"level": "grid", "code": COMMUNITY}, "15-digit"), ({"level": "city", "code": COMMUNITY}, "code="),
    ({"from": "2026-05-10", "to": "2026-05-01"}, "from=2026-05-10 is after to=2026-05-01"),
    ({"from": "2026-13-01"}, "from='2026-13-01'"), ({"to": "0001-01-01"}, "to=0001-01-01"),
    ({"period": "year"}, "period='year'"), ({"from": "2020-01-01", "to": "2026-01-01", "period": "day"}, "2193 days"),
    ({"level": "community", "code": "１２３４５６７８９０１２"}, "code="),
])
def test_bad_parameters_are_a_400_naming_them(world, query, named):
    r = login(world, "admin").get("/api/v1/dashboard", query_string=query)
    assert r.status_code == 400 and named in r.get_json()["message"], r.get_json()


def test_an_unknown_area_is_a_404_naming_it(world):
    r = login(world, "admin").get("/api/v1/dashboard", query_string={"level": "street", "code": "210299099000"})
    assert r.status_code == 404 and "210299099000" in r.get_json()["message"]


# --- the page --------------------------------------------------------------------------------------------

def test_the_page_shows_the_figures_and_links_each_child_area(world):
    admin = login(world, "admin")
    q = {"level": "street", "code": "210213013000", "from": T0.date().isoformat(),
         "to": (T0 + dt.timedelta(days=39)).date().isoformat(), "period": "week"}
    data = admin.get("/api/v1/dashboard", query_string=q).get_json()
    html = admin.get("/dashboard", query_string={**q, "lang": "en"}).get_data(as_text=True)
    assert f'id="k-reported">Reported<strong>{data["kpis"]["reported"]}</strong>' in html
    for child in data["children"]:
        assert f'data-level="community" data-code="{child["code"]}"' in html
    assert html.count('<rect class="bar"') == len(data["trend"])
    assert 'id="dashboard-map"' in html and "/dashboard?" in html
    zh = admin.get("/dashboard", query_string={**q, "lang": "zh_CN"}).get_data(as_text=True)
    assert "结案率" in zh and "按期结案率" in zh and "周" in zh


def test_the_partial_index_on_open_incidents_names_the_open_statuses():
    # the store cannot import the lifecycle's table; the index's predicate must still match its queries
    assert m.OPEN_SQL == "status IN (" + ", ".join(f"'{s}'" for s in dispatch.OPEN_STATUSES) + ")"
