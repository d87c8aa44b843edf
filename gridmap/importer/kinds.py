"""What each kind of import accepts and where it goes, as data: fields, geometry types, its check and its writer."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..catalog import RESPONDER_KINDS
from ..errors import N_
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


_PHONE = Field("phone", help=N_("contact phone"))
_COMMUNITY = Field("community_code", "code12", help=N_("12-digit community code; found from the location when absent"))

#: Each kind as the pages name it (the KIND of the command line stays the code).
LABELS = {"communities": N_("communities"), "grids": N_("grids"), "buildings": N_("buildings"),
          "party-members": N_("party members"), "workers": N_("grid workers"), "volunteers": N_("volunteers"),
          "responders": N_("responders"), "cameras": N_("cameras"), "roads": N_("roads"),
          "department-grids": N_("department grids")}

KINDS = {k.name: k for k in [
    Kind("communities", frozenset(POLYGONAL), (
        Field("code", "code12", required=True, help=N_("12-digit statistical code of the community")),
        Field("name", required=True),
        Field("name_en", help=N_("official English name; the pinyin of the name when absent")),
        Field("street_code", "str", help=N_("9- or 12-digit street code; derived from the community code when absent")),
        Field("street_name"), Field("street_name_en"), Field("district_code"), Field("district_name"),
        Field("district_name_en"),
        Field("service_centre"), Field("service_address"), Field("service_phone"),
    ), checks.check_communities, writers.write_communities, help=N_("community boundaries")),
    Kind("grids", frozenset(POLYGONAL), (
        Field("community_code", "code12", help=N_("the community the grid belongs to; found by overlap when absent")),
        Field("name"),
        Field("code", "code15", help=N_("15-digit grid code; numbered west→east, north→south when absent")),
    ), checks.check_grids, writers.write_grids, help=N_("grid polygons; each community's grids become one new plan")),
    Kind("buildings", frozenset(POLYGONAL | POINT), (
        Field("address", required=True, help=N_("the address residents type to find their grid")),
        Field("households", "int", default=0, low=0, high=100000),
        Field("name"), Field("floors", "int", default=None, low=0, high=300),
        Field("courtyard"), _COMMUNITY,
    ), checks.check_located, writers.write_buildings, help=N_("building footprints or points with addresses and household counts")),
    Kind("party-members", frozenset(POINT), (
        Field("name", required=True), _PHONE,
        Field("building_address", help=N_("address of the building they live in, as imported")),
        Field("in_service", "bool", default=False, help=N_("serving party member (in office): true/false")),
        Field("employer"),
    ), checks.check_party_members, writers.write_party_members, help=N_("party members and where they live")),
    Kind("workers", frozenset(POINT), (
        Field("name", required=True), _PHONE,
        Field("grids", "list", help=N_("grid codes served, separated by ';'")), _COMMUNITY,
    ), checks.check_workers, writers.write_workers, geometry_required=False, help=N_("grid workers and the grids they serve")),
    Kind("volunteers", frozenset(POINT), (
        Field("name", required=True), _PHONE,
        Field("skills", "list", help=N_("skills separated by ';', e.g. haircut;repairs")),
        Field("available", "bool", default=True), _COMMUNITY,
    ), checks.check_located, writers.write_volunteers, help=N_("volunteers with skills and availability")),
    Kind("responders", frozenset(POINT), (
        Field("name", required=True),
        Field("kind", "choice", required=True, choices=tuple(RESPONDER_KINDS)), _PHONE,
        Field("skills", "list"), Field("available", "bool", default=True),
    ), checks.check_nothing, writers.write_responders, help=N_("police, mediators, property management, utilities, medical, legal …")),
    Kind("cameras", frozenset(POINT), (
        Field("name", required=True), Field("channel"),
        Field("bearing", "float", required=True, low=0, high=360, help=N_("degrees clockwise from north")),
        Field("fov", "float", required=True, low=1, high=360, help=N_("horizontal field of view, degrees")),
        Field("range_m", "float", required=True, low=1, high=1000, help=N_("how far the camera sees, metres")),
        Field("courtyard"), _COMMUNITY,
    ), checks.check_located, writers.write_cameras, help=N_("cameras with position, bearing, field of view and range")),
    Kind("roads", frozenset(LINEAR), (
        Field("name"), Field("kind", help=N_("the road class (OSM highway): which travel modes may use it")),
        Field("oneway", help=N_("yes/true/1 along the line only, -1 against it, no; empty: the class decides")),
        Field("junction", help=N_("roundabout (or circular) makes the road one-way unless oneway says otherwise")),
        Field("layer", help=N_("the level: OSM layer; without it a tunnel is -1, a bridge 1")),
        Field("tunnel"), Field("bridge"),
        Field("access", help=N_("OSM access (no/private close the road to every mode a more specific tag leaves"
                                " unsaid), or a stored code such as car or walk,ebike")),
        Field("foot", help=N_("no/private: closed to walkers")),
        Field("bicycle", help=N_("no/private: closed to e-bikes")),
        Field("vehicle", help=N_("no/private: closed to e-bikes and cars")),
        Field("motor_vehicle", help=N_("no/private: closed to cars")),
        Field("motorcar", help=N_("no/private: closed to cars")),
        Field("oneway:bicycle", help=N_("the e-bike's own oneway (no: both ways on a one-way street)")),
    ), checks.check_nothing, writers.write_roads, help=N_("roads and paths (barriers for partitioning, network for routing)")),
    Kind("department-grids", frozenset(POLYGONAL), (
        Field("community_code", "code12", help=N_("the community the grid belongs to; found by overlap when absent")),
        Field("code", help=N_("the department's own grid code, kept as given")),
        Field("name"),
    ), checks.check_department_grids, writers.write_department_grids,
        help=N_("one department's legacy grids (--department NAME), kept beside the unified plans for the crosswalk")),
]}
