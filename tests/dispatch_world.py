"""A tiny hand-drawn community for the incident tests, drawn in metres and stored in WGS84.

    y=200 +-----------------+-----------------+
          |  grid 001       |  grid 002       |
          |  worker 王网格   |  worker 李网格   |
          |  (100,100) b1   |  (300,100) b2   |
    y=0   +-----------------+-----------------+
          0                200               400

Volunteers: 张助老 (助老;理发) at (110,100), 赵义诊 (义诊) at (390,100), 钱维修 (维修) at (120,100),
孙磨刀 (磨刀, unavailable) at (101,100). Responders: a mediator at (50,50), a utility crew at (350,150).
Resident 孙奶奶 (vulnerable, phone 13812345678) lives in b1 and wears device W-0001; W-0002 is
deactivated.
"""
import datetime as dt

from conftest import at, lonlat
from shapely.geometry import MultiPolygon, Point, box
from sqlalchemy import select

from gridmap import accounts
from gridmap.store import models as m
from gridmap.store.generations import bump_generation

COMMUNITY = "210213013004"
G1, G2 = COMMUNITY + "001", COMMUNITY + "002"
PASSWORD = "gridmap-test"
T0 = dt.datetime(2026, 5, 4, 8, 0, 0)  # a Monday, naive UTC like every stored time


def build(store):
    with store.transaction() as s:
        s.add(m.District(code="210213000000", name="金州区"))
        s.add(m.Street(code="210213013000", district_code="210213000000", name="湾里街道"))
        s.add(m.Community(code=COMMUNITY, street_code="210213013000", name="城志社区",
                          geom=MultiPolygon([lonlat(box(0, 0, 400, 200))])))
        s.flush()
        plan = m.GridPlan(community_code=COMMUNITY, status="published", valid_from=dt.date(2026, 1, 1))
        plan.grids.append(m.Grid(code=G1, name="第1网格", geom=lonlat(box(0, 0, 200, 200))))
        plan.grids.append(m.Grid(code=G2, name="第2网格", geom=lonlat(box(200, 0, 400, 200))))
        s.add(plan)
        for name, phone, grid, xy in (("王网格", "13900000001", G1, (90, 90)), ("李网格", "13900000002", G2, (310, 90))):
            w = m.GridWorker(name=name, phone=phone, community_code=COMMUNITY, geom=lonlat(Point(*xy)))
            s.add(w)
            s.flush()
            s.execute(m.grid_worker_grid.insert().values(worker_id=w.id, grid_code=grid))
        for name, skills, xy, available in (("张助老", "助老;理发", (110, 100), True), ("赵义诊", "义诊", (390, 100), True),
                                             ("钱维修", "维修", (120, 100), True), ("孙磨刀", "磨刀", (101, 100), False)):
            s.add(m.Volunteer(name=name, phone="13700000000", community_code=COMMUNITY, skills=skills,
                              available=available, geom=lonlat(Point(*xy))))
        s.add(m.Responder(name="调解员老周", kind="mediator", phone="13600000001", geom=lonlat(Point(50, 50))))
        s.add(m.Responder(name="水电维修队", kind="utility", phone="13600000002", geom=lonlat(Point(350, 150))))
        for i, xy in ((1, (100, 100)), (2, (300, 100))):
            lon, lat = at(*xy)
            s.add(m.Building(community_code=COMMUNITY, address=f"湾里路{i}号", name=f"b{i}", households=10,
                             geom=lonlat(Point(*xy)), lon=lon, lat=lat))
        s.flush()
        b1 = s.scalar(m.Building.__table__.select().where(m.Building.address == "湾里路1号").with_only_columns(m.Building.id))
        hh = m.Household(building_id=b1, unit="1-101", size=1)
        s.add(hh)
        s.flush()
        grandma = m.Resident(household_id=hh.id, name="孙奶奶", phone="13812345678", vulnerable=True)
        s.add(grandma)
        s.flush()
        s.add(m.SosDevice(device_id="W-0001", resident_id=grandma.id, active=True))
        s.add(m.SosDevice(device_id="W-0002", resident_id=grandma.id, active=False))
        # where they work: the dispatcher covers the community, the worker account is 王网格 serving G1
        first = s.scalar(select(m.GridWorker.id).where(m.GridWorker.name == "王网格"))
        for username, role in (("admin", "admin"), ("planner", "planner"), ("dispatcher", "dispatcher"),
                               ("worker", "grid_worker")):
            accounts.create_user(s, username, PASSWORD, role, worker_id=first if role == "grid_worker" else None,
                                 communities=[COMMUNITY] if role == "dispatcher" else ())
        bump_generation(s)
    return store


def login(app, username):
    client = app.test_client()
    r = client.post("/login", data={"username": username, "password": PASSWORD})
    assert r.status_code == 302, r.get_data(as_text=True)
    return client
