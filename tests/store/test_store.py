"""The store on both backends: schema, geometry round trips, locking, plan generations."""
import datetime as dt

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, box
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from gridmap import plans
from gridmap.store import loaders
from gridmap.store import models as m
from gridmap.store.generations import generation

from conftest import head_revision

SQUARE_WITH_HOLE = Polygon([(121.60, 38.90), (121.61, 38.90), (121.61, 38.91), (121.60, 38.91)],
                           [[(121.603, 38.903), (121.606, 38.903), (121.606, 38.906), (121.603, 38.906)]])


def _community(session, code="210213013004", geom=None):
    session.add(m.District(code=code[:6] + "000000", name="金州区"))
    session.add(m.Street(code=code[:9] + "000", district_code=code[:6] + "000000", name="湾里街道"))
    c = m.Community(code=code, street_code=code[:9] + "000", name="城志社区",
                    geom=geom or MultiPolygon([box(121.60, 38.90, 121.62, 38.92)]))
    session.add(c)
    session.flush()
    return c


def test_migrations_create_exactly_the_models(store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from gridmap.store.db import include_object
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False, "include_object": include_object})
        diff = compare_metadata(ctx, m.Base.metadata)
    # GiST indexes are PostGIS-only and declared with ddl_if, which autogenerate cannot see through
    diff = [d for d in diff if not (d[0] in ("add_index", "remove_index") and d[1].name.endswith("_gist"))]
    assert diff == []
    assert store.current_revision() == head_revision()


def test_upgrade_twice_is_harmless(store):
    store.upgrade()
    assert store.current_revision() == head_revision()


def test_geometries_round_trip_exactly(store):
    multi = MultiPolygon([box(121.0, 38.0, 121.1, 38.1), box(121.2, 38.0, 121.3, 38.1)])
    with store.transaction() as s:
        _community(s, geom=multi)
        plan = m.GridPlan(community_code="210213013004")
        plan.grids.append(m.Grid(code="210213013004001", name="第1网格", geom=SQUARE_WITH_HOLE))
        s.add(plan)
        s.add(m.Camera(name="东门", bearing=45.0, fov=90.0, range_m=30.0, geom=Point(121.605, 38.905)))
    with store.session() as s:
        assert s.scalar(select(m.Community.geom)).equals(multi)
        grid = s.scalar(select(m.Grid))
        assert grid.geom.equals(SQUARE_WITH_HOLE) and len(grid.geom.interiors) == 1
        assert s.scalar(select(m.Camera.geom)) == Point(121.605, 38.905)


@pytest.mark.postgis
@pytest.mark.parametrize("backend", ["postgis"])
def test_postgis_columns_are_real_geometries_with_srid_4326_and_gist(store):
    with store.transaction() as s:
        _community(s)
    with store.engine.connect() as conn:
        srid, gtype = conn.execute(text("SELECT ST_SRID(geom), GeometryType(geom) FROM community")).one()
        assert (srid, gtype) == (4326, "MULTIPOLYGON")
        gist = {r[0] for r in conn.execute(text(
            "SELECT indexname FROM pg_indexes WHERE indexdef ILIKE '%USING gist%' AND schemaname = current_schema()"))}
        assert {"ix_grid_geom_gist", "ix_building_geom_gist", "ix_camera_geom_gist", "ix_community_geom_gist"} <= gist
        # the database itself answers spatial questions on what we stored
        inside = conn.execute(text(
            "SELECT ST_Contains(geom, ST_SetSRID(ST_MakePoint(121.61, 38.91), 4326)) FROM community")).scalar()
        assert inside is True


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_enforces_foreign_keys_and_uses_wal(store):
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000


def test_a_street_in_an_unknown_district_is_refused(store):
    with pytest.raises(IntegrityError):
        with store.transaction() as s:
            s.add(m.Street(code="210299001000", district_code="210299000000", name="无此区街道"))
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(m.Street)) == 0


def test_a_failed_transaction_writes_nothing(store):
    with pytest.raises(RuntimeError):
        with store.transaction() as s:
            _community(s)
            raise RuntimeError("halfway")
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(m.Community)) == 0


@pytest.mark.parametrize("model", ["plan", "grid", "incident"])
def test_a_stale_edit_is_refused_by_optimistic_locking(store, model):
    with store.transaction() as s:
        _community(s)
        plan = m.GridPlan(community_code="210213013004")
        plan.grids.append(m.Grid(code="210213013004001", name="第1网格", geom=box(121.60, 38.90, 121.61, 38.91)))
        s.add(plan)
        s.add(m.Incident(category="噪音", geom=Point(121.605, 38.905)))
    cls, attr = {"plan": (m.GridPlan, "name"), "grid": (m.Grid, "name"), "incident": (m.Incident, "description")}[model]
    first, second = store.session(), store.session()
    a, b = first.scalar(select(cls)), second.scalar(select(cls))
    setattr(a, attr, "first edit")
    first.commit()
    setattr(b, attr, "second edit, made on the old version")
    with pytest.raises(StaleDataError):
        second.commit()
    second.rollback()
    with store.session() as s:
        row = s.scalar(select(cls))
        assert getattr(row, attr) == "first edit" and row.version == 2
    first.close(), second.close()


def test_publishing_retires_the_previous_plan_and_answers_as_of(store):
    grids_a = gpd.GeoDataFrame({"name": ["甲"]}, geometry=[box(121.60, 38.90, 121.62, 38.92)], crs=4326)
    grids_b = gpd.GeoDataFrame({"name": ["西", "东"]},
                               geometry=[box(121.60, 38.90, 121.61, 38.92), box(121.61, 38.90, 121.62, 38.92)], crs=4326)
    with store.transaction() as s:
        _community(s)
        gen0 = generation(s)
        old = plans.publish(s, plans.create_plan(s, "210213013004", grids_a), on=dt.date(2026, 1, 1))
        new = plans.publish(s, plans.create_plan(s, "210213013004", grids_b), on=dt.date(2026, 5, 3))
        assert generation(s) == gen0 + 2
    with store.session() as s:
        old, new = s.get(m.GridPlan, old.id), s.get(m.GridPlan, new.id)
        assert (old.status, old.valid_to) == ("retired", dt.date(2026, 5, 3))
        assert (new.status, new.valid_from, new.valid_to) == ("published", dt.date(2026, 5, 3), None)
        # the grids a snapshot of a day is built from are the plan's valid that day
        assert codes_on(s, dt.date(2026, 5, 2)) == sorted(g.code for g in old.grids)
        assert codes_on(s, dt.date(2026, 5, 3)) == sorted(g.code for g in new.grids)
        assert codes_on(s, dt.date(2025, 12, 31)) == []
        # new grids take numbers no plan of the community ever used: 001 was the old plan's
        assert [g.code for g in new.grids] == ["210213013004002", "210213013004003"]
        assert [g.name for g in new.grids] == ["西", "东"]  # numbered west → east


def test_only_a_draft_can_be_published(store):
    from gridmap.errors import Conflict
    grids = gpd.GeoDataFrame(geometry=[box(121.60, 38.90, 121.62, 38.92)], crs=4326)
    with store.transaction() as s:
        _community(s)
        plan = plans.publish(s, plans.create_plan(s, "210213013004", grids))
        with pytest.raises(Conflict, match="only a draft"):
            plans.publish(s, plan)


def test_bulk_encoded_geometries_read_back_like_single_ones(store):
    from gridmap.store.types import encode_many
    pts = shapely.points([[121.6 + i * 1e-4, 38.9] for i in range(5)])
    with store.transaction() as s:
        s.execute(m.Responder.__table__.insert(),
                  [{"name": f"r{i}", "kind": "police", "phone": "", "skills": "", "available": True, "geom": g}
                   for i, g in enumerate(encode_many(pts, store.engine.dialect.name))])
    with store.session() as s:
        got = s.scalars(select(m.Responder.geom).order_by(m.Responder.id)).all()
    assert [g.wkt for g in got] == [g.wkt for g in pts]


def codes_on(session, day):
    return sorted(loaders.snapshot_frames(session, on=day)["grids"]["code"])
