"""What each kind of import accepts and where it goes, as data: fields, geometry types, its check and its writer."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..catalog import RESPONDER_KINDS
from . import checks, writers

POINT = {"Point"}
POLYGONAL = {"Polygon", "MultiPolygon"}
LINEAR = {"LineString", "MultiLineString"}


@dataclass(frozen=True)
class Field:
    name: str
    type: str = "str"  # str | int | float | bool | list | code12 | code15 | choice
    required: bool = False
    default: object = ""
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    help: str = ""


@dataclass(frozen=True)
class Kind:
    """What one KIND of `gridmap import KIND PATH` accepts and where it goes.

    ``check(session, frame, department=None)`` resolves references and returns ``(frame, problems)``
    without writing; ``write(session, frame, …)`` writes the checked frame and returns notes.
    """
    name: str
    geometry: frozenset
    fields: tuple
    check: Callable
    write: Callable
    geometry_required: bool = True
    help: str = ""

    def field(self, name):
        return next(f for f in self.fields if f.name == name)


_PHONE = Field("phone", help="contact phone")
_COMMUNITY = Field("community_code", "code12", help="12-digit community code; found from the location when absent")

KINDS = {k.name: k for k in [
    Kind("communities", frozenset(POLYGONAL), (
        Field("code", "code12", required=True, help="12-digit statistical code of the community"),
        Field("name", required=True),
        Field("name_en", help="official English name; pinyin (城志社区 → Chengzhi Community) when absent"),
        Field("street_code", "str", help="9- or 12-digit street code; derived from the community code when absent"),
        Field("street_name"), Field("street_name_en"), Field("district_code"), Field("district_name"),
        Field("district_name_en"),
        Field("service_centre"), Field("service_address"), Field("service_phone"),
    ), checks.check_communities, writers.write_communities, help="community boundaries (社区)"),
    Kind("grids", frozenset(POLYGONAL), (
        Field("community_code", "code12", help="the community the grid belongs to; found by overlap when absent"),
        Field("name"),
        Field("code", "code15", help="15-digit grid code; numbered west→east, north→south when absent"),
    ), checks.check_grids, writers.write_grids, help="grid polygons; each community's grids become one new plan"),
    Kind("buildings", frozenset(POLYGONAL | POINT), (
        Field("address", required=True, help="the address residents type to find their grid"),
        Field("households", "int", default=0, low=0, high=100000),
        Field("name"), Field("floors", "int", default=None, low=0, high=300),
        Field("courtyard"), _COMMUNITY,
    ), checks.check_located, writers.write_buildings, help="building footprints or points with addresses and household counts"),
    Kind("party-members", frozenset(POINT), (
        Field("name", required=True), _PHONE,
        Field("building_address", help="address of the building they live in, as imported"),
        Field("in_service", "bool", default=False, help="在职党员: true/false"),
        Field("employer"),
    ), checks.check_party_members, writers.write_party_members, help="party members and where they live"),
    Kind("workers", frozenset(POINT), (
        Field("name", required=True), _PHONE,
        Field("grids", "list", help="grid codes served, separated by ';'"), _COMMUNITY,
    ), checks.check_workers, writers.write_workers, geometry_required=False, help="grid workers (网格员) and the grids they serve"),
    Kind("volunteers", frozenset(POINT), (
        Field("name", required=True), _PHONE,
        Field("skills", "list", help="skills separated by ';' e.g. 理发;维修"),
        Field("available", "bool", default=True), _COMMUNITY,
    ), checks.check_located, writers.write_volunteers, help="volunteers with skills and availability"),
    Kind("responders", frozenset(POINT), (
        Field("name", required=True),
        Field("kind", "choice", required=True, choices=tuple(RESPONDER_KINDS)), _PHONE,
        Field("skills", "list"), Field("available", "bool", default=True),
    ), checks.check_nothing, writers.write_responders, help="police, mediators, property management, utilities, medical, legal …"),
    Kind("cameras", frozenset(POINT), (
        Field("name", required=True), Field("channel"),
        Field("bearing", "float", required=True, low=0, high=360, help="degrees clockwise from north"),
        Field("fov", "float", required=True, low=1, high=360, help="horizontal field of view, degrees"),
        Field("range_m", "float", required=True, low=1, high=1000, help="how far the camera sees, metres"),
        Field("courtyard"), _COMMUNITY,
    ), checks.check_located, writers.write_cameras, help="cameras with position, bearing, field of view and range"),
    Kind("roads", frozenset(LINEAR), (
        Field("name"), Field("kind", help="the road class (OSM highway): which travel modes may use it"),
        Field("oneway", help="yes/true/1 along the line only, -1 against it, no; empty: the class decides"),
        Field("junction", help="roundabout (or circular) makes the road one-way unless oneway says otherwise"),
        Field("layer", help="the level: OSM layer; without it a tunnel is -1, a bridge 1"),
        Field("tunnel"), Field("bridge"),
        Field("access", help="OSM access (no/private close the road to every mode a more specific tag leaves"
                             " unsaid), or a stored code such as car or walk,ebike"),
        Field("foot", help="no/private: closed to walkers"),
        Field("bicycle", help="no/private: closed to e-bikes"),
        Field("vehicle", help="no/private: closed to e-bikes and cars"),
        Field("motor_vehicle", help="no/private: closed to cars"),
        Field("motorcar", help="no/private: closed to cars"),
        Field("oneway:bicycle", help="the e-bike's own oneway (no: both ways on a one-way street)"),
    ), checks.check_nothing, writers.write_roads, help="roads and paths (barriers for partitioning, network for routing)"),
    Kind("department-grids", frozenset(POLYGONAL), (
        Field("community_code", "code12", help="the community the grid belongs to; found by overlap when absent"),
        Field("code", help="the department's own grid code, kept as given"),
        Field("name"),
    ), checks.check_department_grids, writers.write_department_grids,
        help="one department's legacy grids (--department NAME), kept beside the unified plans for the crosswalk"),
]}
