"""The schema: administrative hierarchy, plan generations, grids and everything assigned to them."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import (BigInteger, Boolean, Column, Date, DateTime, Float, ForeignKey, Index, Integer, LargeBinary,
                        SmallInteger, String, Table, Text, UniqueConstraint, func, text)
from sqlalchemy import false as sa_false
from sqlalchemy import true as sa_true
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .types import Geometry


class Base(DeclarativeBase):
    pass


def _gist(table, column="geom"):
    # GiST indexes exist only on PostGIS; the migrations create them there.
    return Index(f"ix_{table}_{column}_gist", column, postgresql_using="gist").ddl_if(dialect="postgresql")


class Sourced:
    """Where an imported record came from, and whether it is still live (gridmap.importer.batches).

    ``source`` names the register ("file", "osm", or what ``--source`` said), ``source_key`` the record within it (OSM
    type and id, a code, a column the user named, or a content hash), so importing a corrected file
    again updates the record instead of adding a second one. ``batch_id`` is the import that created
    it; ``retired_at`` hides it from every read (gridmap.store.retired) without deleting what refers
    to it (households, a volunteer's ledger), so an undo can bring it back. ``row_hash`` is the
    64-bit digest of the values last imported: an unchanged row is counted, not rewritten. ``version``
    guards single-record corrections (optimistic locking).
    """
    source: Mapped[Optional[str]] = mapped_column(String(256))
    source_key: Mapped[Optional[str]] = mapped_column(String(128))
    batch_id: Mapped[Optional[int]] = mapped_column(Integer, index=True)
    retired_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    row_hash: Mapped[Optional[int]] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")


#: gridmap.dispatch.rules.OPEN_STATUSES as the partial index on open incidents says it (the store sits below
#: dispatch; a test keeps the two the same)
# what each dashboard figure reads of an incident (gridmap.dispatch.kpis), carried in its window indexes
KPI_COLUMNS = ("status", "category", "grid_code", "deadline_at", "resolved_at", "escalated", "whistled")
OPEN_SQL = "status IN ('reported', 'accepted', 'dispatched', 'in_progress')"


def utcnow():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class District(Base):
    __tablename__ = "district"
    code: Mapped[str] = mapped_column(String(12), primary_key=True)  # 12-digit statistical code
    name: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[Optional[str]] = mapped_column(String(128))  # official, else pinyin (gridmap.geo.names)


class Street(Base):
    __tablename__ = "street"
    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    district_code: Mapped[str] = mapped_column(ForeignKey("district.code"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[Optional[str]] = mapped_column(String(128))
    district: Mapped[District] = relationship()


class Community(Base):
    __tablename__ = "community"
    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    street_code: Mapped[str] = mapped_column(ForeignKey("street.code"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[Optional[str]] = mapped_column(String(128))
    service_centre: Mapped[str] = mapped_column(String(128), default="")
    service_address: Mapped[str] = mapped_column(String(256), default="")
    service_phone: Mapped[str] = mapped_column(String(32), default="")
    geom = mapped_column(Geometry("MULTIPOLYGON"), nullable=False)
    street: Mapped[Street] = relationship()
    __table_args__ = (_gist("community"),)


class GridPlan(Base):
    """One generation of a community's grids. Published plans are never edited in place."""
    __tablename__ = "grid_plan"
    id: Mapped[int] = mapped_column(primary_key=True)
    community_code: Mapped[str] = mapped_column(ForeignKey("community.code"), index=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    status: Mapped[str] = mapped_column(String(16), default="draft")
    valid_from: Mapped[Optional[dt.date]] = mapped_column(Date)
    valid_to: Mapped[Optional[dt.date]] = mapped_column(Date)  # exclusive
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    grids: Mapped[list["Grid"]] = relationship(back_populates="plan", cascade="all, delete-orphan",
                                               order_by="Grid.code")
    __mapper_args__ = {"version_id_col": version}


class Grid(Base):
    __tablename__ = "grid"
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("grid_plan.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(15), index=True)  # 6 district + 3 street + 3 community + 3 seq
    name: Mapped[str] = mapped_column(String(128))
    geom = mapped_column(Geometry("POLYGON"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    plan: Mapped[GridPlan] = relationship(back_populates="grids")
    __table_args__ = (UniqueConstraint("plan_id", "code"), _gist("grid"))
    __mapper_args__ = {"version_id_col": version}


class Courtyard(Base):
    __tablename__ = "courtyard"
    id: Mapped[int] = mapped_column(primary_key=True)
    community_code: Mapped[Optional[str]] = mapped_column(ForeignKey("community.code"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    geom = mapped_column(Geometry("GEOMETRY"))
    __table_args__ = (UniqueConstraint("community_code", "name"),)


class Building(Sourced, Base):
    __tablename__ = "building"
    id: Mapped[int] = mapped_column(primary_key=True)
    community_code: Mapped[Optional[str]] = mapped_column(ForeignKey("community.code"), index=True)
    courtyard_id: Mapped[Optional[int]] = mapped_column(ForeignKey("courtyard.id"))
    address: Mapped[str] = mapped_column(String(256), index=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    households: Mapped[int] = mapped_column(Integer, default=0)
    floors: Mapped[Optional[int]] = mapped_column(Integer)
    geom = mapped_column(Geometry("GEOMETRY"), nullable=False)  # footprint polygon or a point
    lon: Mapped[float] = mapped_column(Float)  # representative point, for lookups without geometry parsing
    lat: Mapped[float] = mapped_column(Float)
    courtyard: Mapped[Optional[Courtyard]] = relationship()
    __table_args__ = (_gist("building"),)


class Household(Base):
    __tablename__ = "household"
    id: Mapped[int] = mapped_column(primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("building.id", ondelete="CASCADE"), index=True)
    unit: Mapped[str] = mapped_column(String(64), default="")
    size: Mapped[int] = mapped_column(Integer, default=1)


class Resident(Base):
    """Personal data: only what grid work needs (a name to call, a phone, whether to look in on them)."""
    __tablename__ = "resident"
    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(32), default="")
    vulnerable: Mapped[bool] = mapped_column(Boolean, default=False)


class PartyOrganization(Base):
    """Community party committee › grid party branch › building/courtyard party group."""
    __tablename__ = "party_organization"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # committee | grid_branch | group
    name: Mapped[str] = mapped_column(String(128))
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("party_organization.id"))
    community_code: Mapped[str] = mapped_column(ForeignKey("community.code"), index=True)
    grid_code: Mapped[Optional[str]] = mapped_column(String(15), index=True)
    building_id: Mapped[Optional[int]] = mapped_column(ForeignKey("building.id"))
    courtyard_id: Mapped[Optional[int]] = mapped_column(ForeignKey("courtyard.id"))


class PartyMember(Sourced, Base):
    __tablename__ = "party_member"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(32), default="")
    building_id: Mapped[Optional[int]] = mapped_column(ForeignKey("building.id"))
    organization_id: Mapped[Optional[int]] = mapped_column(ForeignKey("party_organization.id"))
    in_service: Mapped[bool] = mapped_column(Boolean, default=False)  # 在职党员
    employer: Mapped[str] = mapped_column(String(128), default="")
    geom = mapped_column(Geometry("POINT"))


grid_worker_grid = Table(
    "grid_worker_grid", Base.metadata,
    Column("worker_id", ForeignKey("grid_worker.id", ondelete="CASCADE"), primary_key=True),
    # By code, not id: a worker keeps serving "grid 001" across plan generations.
    Column("grid_code", String(15), primary_key=True, index=True),
)


class GridWorker(Sourced, Base):
    __tablename__ = "grid_worker"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(32), default="")
    community_code: Mapped[Optional[str]] = mapped_column(ForeignKey("community.code"), index=True)
    geom = mapped_column(Geometry("POINT"))


class Volunteer(Sourced, Base):
    __tablename__ = "volunteer"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(32), default="")
    community_code: Mapped[Optional[str]] = mapped_column(ForeignKey("community.code"), index=True)
    skills: Mapped[str] = mapped_column(String(256), default="")  # ';'-separated
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    geom = mapped_column(Geometry("POINT"), nullable=False)
    __table_args__ = (_gist("volunteer"),)


class Responder(Sourced, Base):
    __tablename__ = "responder"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    phone: Mapped[str] = mapped_column(String(32), default="")
    skills: Mapped[str] = mapped_column(String(256), default="")
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    geom = mapped_column(Geometry("POINT"), nullable=False)
    __table_args__ = (_gist("responder"),)


class Camera(Sourced, Base):
    __tablename__ = "camera"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(32), default="")
    community_code: Mapped[Optional[str]] = mapped_column(ForeignKey("community.code"), index=True)
    courtyard_id: Mapped[Optional[int]] = mapped_column(ForeignKey("courtyard.id"))
    bearing: Mapped[float] = mapped_column(Float)  # degrees clockwise from north
    fov: Mapped[float] = mapped_column(Float)  # horizontal field of view, degrees
    range_m: Mapped[float] = mapped_column(Float)
    geom = mapped_column(Geometry("POINT"), nullable=False)
    __table_args__ = (_gist("camera"),)


class CameraView(Base):
    """What a camera sees: its sector minus what building footprints hide (gridmap.coverage).

    Stored, not computed per request: a view costs about a millisecond, a locate must cost less
    than that in all. A camera without a row here has a stale or missing view (its buildings
    changed); ``coverage.refresh_views`` computes those.
    """
    __tablename__ = "camera_view"
    camera_id: Mapped[int] = mapped_column(ForeignKey("camera.id", ondelete="CASCADE"), primary_key=True)
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime)
    geom = mapped_column(Geometry("GEOMETRY"), nullable=False)  # may be empty: a camera facing a wall


class Road(Sourced, Base):
    __tablename__ = "road"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    kind: Mapped[str] = mapped_column(String(32), default="")  # the OSM highway class: who may use it
    # "yes" along the line only, "-1" against it, "no", or "" (the class decides): vehicles keep to it
    oneway: Mapped[str] = mapped_column(String(3), default="", server_default="")
    # the level (OSM layer; tunnel -1, bridge 1): a street does not meet the tunnel beneath it
    layer: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    # the modes its OSM access tags close it to, the e-bike's own oneway and the barriers on it:
    # "car", "walk,ebike", "ebike-oneway=no", "barrier@3=car" … ("" nothing said;
    # gridmap.geo.roads.access_value, barrier_words; at most roads.ACCESS_CODE_MAX characters)
    access: Mapped[str] = mapped_column(String(1024), default="", server_default="")
    geom = mapped_column(Geometry("GEOMETRY"), nullable=False)
    __table_args__ = (_gist("road"),)


class Incident(Base):
    """A reported problem, routed by the catalogue (gridmap.catalog) and moved on by gridmap.dispatch.

    ``level`` is who answers for it now (grid › community › street › department); ``deadline_at``
    is when that level must have settled it. Grid and community are located once, at report time,
    so a later re-gridding does not move old incidents.
    """
    __tablename__ = "incident"
    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(String(64))  # a catalog.CATEGORIES code
    status: Mapped[str] = mapped_column(String(16), default="reported")
    description: Mapped[str] = mapped_column(Text, default="")
    reporter_name: Mapped[str] = mapped_column(String(64), default="")
    reporter_phone: Mapped[str] = mapped_column(String(32), default="")
    community_code: Mapped[Optional[str]] = mapped_column(ForeignKey("community.code"), index=True)
    grid_code: Mapped[Optional[str]] = mapped_column(String(15), index=True)
    reported_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    resolved_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    geom = mapped_column(Geometry("POINT"), nullable=False)
    # 0004: routing, deadlines, duplicates, provenance
    level: Mapped[str] = mapped_column(String(16), default="grid")
    department: Mapped[str] = mapped_column(String(64), default="")
    vetoed: Mapped[bool] = mapped_column(Boolean, default=False)  # not on the community's work-item list
    priority: Mapped[bool] = mapped_column(Boolean, default=False)
    deadline_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    duplicate_of: Mapped[Optional[int]] = mapped_column(ForeignKey("incident.id", ondelete="SET NULL"), index=True)
    source: Mapped[str] = mapped_column(String(16), default="api")  # api | open311 | sos
    reporter_email: Mapped[str] = mapped_column(String(128), default="")
    address: Mapped[str] = mapped_column(String(256), default="")
    resident_id: Mapped[Optional[int]] = mapped_column(ForeignKey("resident.id", ondelete="SET NULL"))
    # lon/lat beside geom: a plain B-tree box prefilter for duplicates on both backends
    lon: Mapped[Optional[float]] = mapped_column(Float)
    lat: Mapped[Optional[float]] = mapped_column(Float)
    # 0020: whether it was ever escalated / whistled, set where gridmap.dispatch.incidents records the step:
    # the dashboard counts them per row and a join to incident_event and whistle_task per row cost more
    # than the rest of its figures together
    escalated: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=sa_false())
    whistled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=sa_false())
    __table_args__ = (_gist("incident"), Index("ix_incident_category_reported", "category", "reported_at"),
                      Index("ix_incident_status_level", "status", "level"),
                      # the dashboard's windows (gridmap.dispatch.kpis): the city's by day, an area's by day,
                      # a grid's open load
                      # 0020: with every column a figure reads, so a window is counted from the index
                      # alone (PostgreSQL: index-only scan; SQLite: covering index), not a heap page a row
                      Index("ix_incident_reported", "reported_at", "community_code", *KPI_COLUMNS),
                      Index("ix_incident_community_reported", "community_code", "reported_at", *KPI_COLUMNS),
                      Index("ix_incident_grid_status", "grid_code", "status"),
                      # the open ones alone, by area: a worker's load is read from this index only
                      Index("ix_incident_open_area", "community_code", "grid_code", "deadline_at",
                            postgresql_where=text(OPEN_SQL), sqlite_where=text(OPEN_SQL)))
    __mapper_args__ = {"version_id_col": version}


class User(Base):
    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    display_name: Mapped[str] = mapped_column(String(64), default="")
    # grid_worker accounts: the worker record they act as
    worker_id: Mapped[Optional[int]] = mapped_column(ForeignKey("grid_worker.id"))
    # Sessions carry the generation they were opened in; logging out, a new password or a new role
    # bumps it, and every older session (a copied cookie too) is then anonymous.
    session_generation: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")


# The communities a dispatcher's account covers: where it reads and moves incidents (gridmap.access COVERED).
# None configured covers nothing: a new account sees nothing until an admin says where it works.
user_community = Table(
    "user_community", Base.metadata,
    Column("user_id", ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True),
    Column("community_code", ForeignKey("community.code", ondelete="CASCADE"), primary_key=True, index=True),
)


class Meta(Base):
    """Small key/value facts, e.g. the published-plan generation every web process watches."""
    __tablename__ = "gridmap_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow,
                                                    server_default=func.now())


class TileArea(Base):
    """The areas of the city map's vector tiles (gridmap.tiles), built once per published generation.

    Districts and streets have no outline of their own (the union of their communities), and each
    area's households, workers and open incidents are sums over its grids: both cost seconds at
    city size, far too much inside a tile request. Built by the first process that asks for a
    tile of a new generation and read by every process after, on PostGIS straight into
    ``ST_AsMVT``; rows of older generations are deleted by the build.
    """
    __tablename__ = "tile_area"
    generation: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[str] = mapped_column(String(16), primary_key=True)  # districts | streets | communities | grids
    code: Mapped[str] = mapped_column(String(15), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    households: Mapped[int] = mapped_column(Integer, default=0)
    workers: Mapped[int] = mapped_column(Integer, default=0)
    # open incidents of the categories public in statistics, and of all categories (stats.private)
    open_public: Mapped[int] = mapped_column(Integer, default=0)
    open_all: Mapped[int] = mapped_column(Integer, default=0)
    geom = mapped_column(Geometry("GEOMETRY"), nullable=False)
    __table_args__ = (_gist("tile_area"),)


# --- Assignments: answers of gridmap.assign, stored per plan generation ----------------------
# Every row carries the plan it was computed against, so a retired plan keeps its answers
# ("who was this member's branch under last year's grids") and re-running a plan replaces
# only that plan's rows. No geometry here: positions live on the entities themselves.


class BuildingGrid(Base):
    """The one grid a building belongs to under a plan (largest overlap of its footprint).

    One row per building, not one per (building, grid) share: the primary key then
    guarantees a building (and its households) is counted in exactly one grid, and
    "buildings of grid G" is a plain ``WHERE grid_code = G`` nobody can get wrong by
    forgetting a "primary share" filter. Buildings cut by a boundary carry every share
    ≥ 0.1 % in ``shares`` (JSON text ``{"grid code": share}``), which is read for
    display, never queried.
    """
    __tablename__ = "building_grid"
    plan_id: Mapped[int] = mapped_column(ForeignKey("grid_plan.id", ondelete="CASCADE"), primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("building.id", ondelete="CASCADE"), primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(15))
    share: Mapped[float] = mapped_column(Float)  # of the footprint inside grid_code; 1.0 for point buildings
    split: Mapped[bool] = mapped_column(Boolean, default=False)
    shares: Mapped[str] = mapped_column(Text, default="")  # JSON {code: share} when split, else ""
    __table_args__ = (Index("ix_building_grid_plan_grid", "plan_id", "grid_code"),)


class MemberGrid(Base):
    """The grid party branch a party member is enrolled in under a plan ("enrolled where they live")."""
    __tablename__ = "member_grid"
    plan_id: Mapped[int] = mapped_column(ForeignKey("grid_plan.id", ondelete="CASCADE"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("party_member.id", ondelete="CASCADE"), primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(15))
    branch_id: Mapped[Optional[int]] = mapped_column(ForeignKey("party_organization.id", ondelete="SET NULL"))
    distance_m: Mapped[float] = mapped_column(Float, default=0.0)  # home to the grid polygon; 0 inside
    outside: Mapped[bool] = mapped_column(Boolean, default=False)  # lives outside every grid
    __table_args__ = (Index("ix_member_grid_plan_grid", "plan_id", "grid_code"),)


class ContactLink(Base):
    """党员联系户: a household and the party member who looks in on it, under a plan.

    The primary key (plan_id, household_id) is the rule "every household has at most one member".
    """
    __tablename__ = "contact_link"
    plan_id: Mapped[int] = mapped_column(ForeignKey("grid_plan.id", ondelete="CASCADE"), primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("party_member.id", ondelete="CASCADE"))
    distance_m: Mapped[float] = mapped_column(Float)
    __table_args__ = (Index("ix_contact_link_plan_member", "plan_id", "member_id"),)


class EntityGrid(Base):
    """The grid a camera, volunteer or responder stands in under a plan (kind + id: no FK, several tables)."""
    __tablename__ = "entity_grid"
    plan_id: Mapped[int] = mapped_column(ForeignKey("grid_plan.id", ondelete="CASCADE"), primary_key=True)
    entity_kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # camera | volunteer | responder
    entity_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(15))
    __table_args__ = (Index("ix_entity_grid_plan_grid", "plan_id", "grid_code"),)


class AssignmentRun(Base):
    """When a plan's assignments were last computed, and the summary figures of that run (JSON text)."""
    __tablename__ = "assignment_run"
    plan_id: Mapped[int] = mapped_column(ForeignKey("grid_plan.id", ondelete="CASCADE"), primary_key=True)
    ran_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    summary: Mapped[str] = mapped_column(Text, default="{}")


# --- Department grids: the legacy grids each department drew before they were unified ----------
# Kept beside the unified plans, never merged into them: the crosswalk (gridmap.plans.departments) reads
# both to tell a community which old grids each new grid replaces.


class DepartmentGrid(Base):
    """One grid as one department (综治, 公安, 民政 …) drew it, in the community it overlaps most."""
    __tablename__ = "department_grid"
    id: Mapped[int] = mapped_column(primary_key=True)
    department: Mapped[str] = mapped_column(String(64), index=True)
    # CASCADE: department grids describe a community; they go when it goes (demo --force clears communities).
    community_code: Mapped[str] = mapped_column(ForeignKey("community.code", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64), default="")  # the department's own code, kept as given
    name: Mapped[str] = mapped_column(String(128), default="")
    geom = mapped_column(Geometry("MULTIPOLYGON"), nullable=False)
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    __table_args__ = (_gist("department_grid"),)


# --- Incidents: audit trail, whistle tasks; volunteers' ledger; SOS devices; Open311 keys -----


class IncidentEvent(Base):
    """One audited step of an incident: who did what, when, from which state and level to which."""
    __tablename__ = "incident_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(64), default="")
    role: Mapped[str] = mapped_column(String(16), default="")
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[Optional[str]] = mapped_column(String(16))  # None for the report itself
    to_status: Mapped[str] = mapped_column(String(16))
    from_level: Mapped[Optional[str]] = mapped_column(String(16))
    to_level: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    # which incidents were ever escalated, read without touching the other steps (the dashboard)
    __table_args__ = (Index("ix_incident_event_action_incident", "action", "incident_id"),)


class WhistleTask(Base):
    """吹哨报到: the community blew the whistle; ``department`` must report by ``report_by``."""
    __tablename__ = "whistle_task"
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"), index=True)
    department: Mapped[str] = mapped_column(String(64))
    blown_by: Mapped[str] = mapped_column(String(64), default="")
    blown_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    report_by: Mapped[dt.datetime] = mapped_column(DateTime)
    reported_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    note: Mapped[str] = mapped_column(Text, default="")


class ServiceRecord(Base):
    """One line of a volunteer's service ledger (台账): who served whom, how, for how long."""
    __tablename__ = "service_record"
    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteer.id", ondelete="CASCADE"), index=True)
    day: Mapped[dt.date] = mapped_column(Date)
    resident_id: Mapped[Optional[int]] = mapped_column(ForeignKey("resident.id", ondelete="SET NULL"))
    household_id: Mapped[Optional[int]] = mapped_column(ForeignKey("household.id", ondelete="SET NULL"))
    incident_id: Mapped[Optional[int]] = mapped_column(ForeignKey("incident.id", ondelete="SET NULL"), index=True)
    skill: Mapped[str] = mapped_column(String(32))
    hours: Mapped[float] = mapped_column(Float)
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(64), default="")
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class SosDevice(Base):
    """A registered wearable (e.g. an elderly resident's alarm watch); only these may raise an SOS."""
    __tablename__ = "sos_device"
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id", ondelete="CASCADE"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    registered_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class WorkItem(Base):
    """社区工作事项清单: one category a community handles itself. A community without rows takes the
    catalogue's default list; a category not on its list goes straight to its department (the veto)."""
    __tablename__ = "work_item"
    community_code: Mapped[str] = mapped_column(ForeignKey("community.code", ondelete="CASCADE"), primary_key=True)
    category: Mapped[str] = mapped_column(String(64), primary_key=True)


class ApiKey(Base):
    """A key for Open311 clients and SOS gateways. Only the SHA-256 of the key is kept."""
    __tablename__ = "api_key"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12), default="")  # first characters, to tell keys apart in lists
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


# --- Abuse limits: counters every web process shares, and failed sign-ins per username ------------


class RateCounter(Base):
    """One request-limit counter (gridmap.web.limits): hits in the window that ends at ``expires_at``.

    Kept in the store so that every gunicorn worker and every host on the same database counts
    against the same number; a row past its window counts from zero again on its next hit."""
    __tablename__ = "rate_counter"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    expires_at: Mapped[float] = mapped_column(Float, nullable=False, index=True)  # Unix seconds


class LoginLock(Base):
    """Failed sign-ins of one username (known or not, so a lock does not tell which names exist).

    ``failures`` counts consecutive failures since the last lock; ``lockouts`` counts locks since the
    last successful sign-in, and each lock lasts twice as long as the one before. A success deletes the row."""
    __tablename__ = "login_lock"
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    lockouts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked_until: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    last_failure_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, index=True)


# --- Photos people attach; residents' reports followed by a token (migration 0013) --------------------------


class Photo(Base):
    """A photo attached to something (``owner_kind`` "incident": a resident's report; others may follow),
    as :mod:`gridmap.photos` stored it: sniffed, size-checked, re-encoded without its EXIF.

    Kept in the database, not on disk: it is written in the same transaction as its owner (a refused
    report leaves no file behind), and every process and host on the database serves it."""
    __tablename__ = "photo"
    id: Mapped[int] = mapped_column(primary_key=True)
    owner_kind: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(SmallInteger, default=0)  # order within its owner, from 0
    mime: Mapped[str] = mapped_column(String(16))  # image/jpeg | image/png | image/webp
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)  # bytes stored
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # the step it documents ("report": the resident's; "resolve": the worker's), and whether the holder of the
    # report's status link sees it (gridmap.dispatch.residents): a report's own photos always, a resolve's
    # only when the worker chose so at the resolve (access: incident.show_photos)
    stage: Mapped[str] = mapped_column(String(16), default="report", server_default="report")
    reporter_sees: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())
    __table_args__ = (Index("ix_photo_owner", "owner_kind", "owner_id"),)


class ResidentReport(Base):
    """A resident's report on the resident page: the incident, and the hash of the token of its public
    status page (``/reports/<token>``). Only the SHA-256 is kept, as for api keys: the link is the
    resident's alone. The contact the resident leaves is the incident's reporter fields."""
    __tablename__ = "resident_report"
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


# --- The grid worker's patrol (migration 0014): positions walked, buildings checked in at, sent-once receipts --------


class Patrol(Base):
    """One patrol (巡查) of a grid worker: started and stopped on the phone; its positions are PatrolPoints."""
    __tablename__ = "patrol"
    id: Mapped[int] = mapped_column(primary_key=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("grid_worker.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    ended_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    started_by: Mapped[str] = mapped_column(String(64), default="")
    points: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    distance_m: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)


class PatrolPoint(Base):
    """A position the phone reported during a patrol and the plausibility checks kept (gridmap.dispatch.patrol)."""
    __tablename__ = "patrol_point"
    id: Mapped[int] = mapped_column(primary_key=True)
    patrol_id: Mapped[int] = mapped_column(ForeignKey("patrol.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    lon: Mapped[float] = mapped_column(Float, nullable=False)
    lat: Mapped[float] = mapped_column(Float, nullable=False)
    accuracy_m: Mapped[float] = mapped_column(Float, nullable=False)
    __table_args__ = (Index("ix_patrol_point_patrol_at", "patrol_id", "at"),)


class Checkin(Base):
    """A grid worker's visit (走访) to a building, with a note.

    ``idempotency_key`` is made by the phone when the check-in is typed: a check-in queued offline
    and sent twice (a lost answer, a second tab) is stored once, and the replay answers the first."""
    __tablename__ = "checkin"
    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("grid_worker.id", ondelete="CASCADE"), index=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("building.id", ondelete="CASCADE"))
    patrol_id: Mapped[Optional[int]] = mapped_column(ForeignKey("patrol.id", ondelete="SET NULL"))
    grid_code: Mapped[str] = mapped_column(String(15), default="")
    at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)  # when it was typed (the phone's clock, checked)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)  # when it reached the server
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(64), default="")
    __table_args__ = (Index("ix_checkin_building_at", "building_id", "at"),)


class ReportReceipt(Base):
    """An incident a grid worker reported from the workbench, by the phone's idempotency key: sent twice, stored once."""
    __tablename__ = "report_receipt"
    idempotency_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"))
    username: Mapped[str] = mapped_column(String(64), default="")

# --- Import batches: every import, what it created, changed and retired, and how to take it back ----


class ImportBatch(Base):
    """One import (or one hand correction) of one kind: who, when, from where, and what it did.

    The record tables carry the batch that created each row (``batch_id``); what a batch changed or
    retired is kept in :class:`ImportChange` with the previous values, so ``undo`` can restore them.
    """
    __tablename__ = "import_batch"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    source: Mapped[str] = mapped_column(String(256), default="")
    mode: Mapped[str] = mapped_column(String(16))  # upsert | replace | append | edit | retire
    user: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    retired: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    undone_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    undone_by: Mapped[Optional[str]] = mapped_column(String(64))


class ImportChange(Base):
    """A record a batch updated or retired, with its values before (JSON; geometry as WKB hex)."""
    __tablename__ = "import_change"
    batch_id: Mapped[int] = mapped_column(ForeignKey("import_batch.id", ondelete="CASCADE"), primary_key=True)
    record_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(String(8))  # updated | retired
    previous: Mapped[str] = mapped_column(Text, default="{}")
    __table_args__ = (Index("ix_import_change_record", "record_id"),)


RECORD_MODELS = {"buildings": Building, "party-members": PartyMember, "workers": GridWorker,
                 "volunteers": Volunteer, "responders": Responder, "cameras": Camera, "roads": Road}

# One live record per key and source; retired rows keep theirs for undo, outside the index.
for _model in RECORD_MODELS.values():
    _live = _model.__table__.c.retired_at.is_(None)
    Index(f"ux_{_model.__tablename__}_source_key", _model.__table__.c.source, _model.__table__.c.source_key,
          unique=True, sqlite_where=_live, postgresql_where=_live)
