"""The schema: administrative hierarchy, plan generations, grids and everything assigned to them."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import (Boolean, Column, Date, DateTime, Float, ForeignKey, Index, Integer,
                        String, Table, Text, UniqueConstraint, func)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .types import Geometry


class Base(DeclarativeBase):
    pass


def _gist(table, column="geom"):
    # GiST indexes exist only on PostGIS; the migrations create them there.
    return Index(f"ix_{table}_{column}_gist", column, postgresql_using="gist").ddl_if(dialect="postgresql")


def utcnow():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


PLAN_STATUSES = ("draft", "published", "retired")
ROLES = ("admin", "planner", "dispatcher", "grid_worker")


class District(Base):
    __tablename__ = "district"
    code: Mapped[str] = mapped_column(String(12), primary_key=True)  # 12-digit statistical code
    name: Mapped[str] = mapped_column(String(64))


class Street(Base):
    __tablename__ = "street"
    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    district_code: Mapped[str] = mapped_column(ForeignKey("district.code"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    district: Mapped[District] = relationship()


class Community(Base):
    __tablename__ = "community"
    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    street_code: Mapped[str] = mapped_column(ForeignKey("street.code"), index=True)
    name: Mapped[str] = mapped_column(String(64))
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


class Building(Base):
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


class PartyMember(Base):
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


class GridWorker(Base):
    __tablename__ = "grid_worker"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(32), default="")
    community_code: Mapped[Optional[str]] = mapped_column(ForeignKey("community.code"), index=True)
    geom = mapped_column(Geometry("POINT"))


class Volunteer(Base):
    __tablename__ = "volunteer"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(32), default="")
    community_code: Mapped[Optional[str]] = mapped_column(ForeignKey("community.code"), index=True)
    skills: Mapped[str] = mapped_column(String(256), default="")  # ';'-separated
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    geom = mapped_column(Geometry("POINT"), nullable=False)
    __table_args__ = (_gist("volunteer"),)


class Responder(Base):
    __tablename__ = "responder"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    phone: Mapped[str] = mapped_column(String(32), default="")
    skills: Mapped[str] = mapped_column(String(256), default="")
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    geom = mapped_column(Geometry("POINT"), nullable=False)
    __table_args__ = (_gist("responder"),)


class Camera(Base):
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


class Road(Base):
    __tablename__ = "road"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    kind: Mapped[str] = mapped_column(String(32), default="")
    geom = mapped_column(Geometry("GEOMETRY"), nullable=False)
    __table_args__ = (_gist("road"),)


class Incident(Base):
    __tablename__ = "incident"
    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(String(64))
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
    __table_args__ = (_gist("incident"),)
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


class Meta(Base):
    """Small key/value facts, e.g. the published-plan generation every web process watches."""
    __tablename__ = "gridmap_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow,
                                                    server_default=func.now())
