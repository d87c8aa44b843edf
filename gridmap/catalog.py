"""Rules that vary, as data: responder kinds, volunteer skills, incident categories and who answers for them."""
import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidInput

# kind → (中文, English). Dispatch and the import border both read this table.
RESPONDER_KINDS = {
    "police": ("民警", "Police"),
    "auxiliary_police": ("辅警", "Auxiliary police"),
    "mediator": ("人民调解员", "Mediator"),
    "property_management": ("物业", "Property management"),
    "utility": ("水电气热维修", "Utility repair"),
    "medical": ("医疗", "Medical"),
    "legal": ("法律服务", "Legal aid"),
    "fire": ("消防", "Fire service"),
}

# kind → the farthest (metres, by road where roads are imported, else straight line) a responder
# of that kind is proposed from a spot. Beyond it they are no help: someone nearer must go, or the
# matter is for another station.
# - police 10 km: a 110 car crosses an urban district in ~15 min; a police station (派出所) covers far less.
# - auxiliary police 5 km: they patrol on foot or e-bike within their station's beat, a few km across.
# - mediator 5 km: people's mediators sit in the community or street office and walk to a dispute.
# - property management 2 km: a company only has keys and staff for the estates it manages nearby.
# - utility repair 15 km: one repair crew answers for a whole district's pipes and cables.
# - medical 10 km: urban 120 stations are planned 3-5 km apart; twice that is the longest sane run.
# - legal aid 10 km: an appointment, not an emergency, but still within the district.
# - fire 10 km: urban fire stations answer their area in ~5 min; 10 km is a neighbouring station's reach.
# - volunteer 3 km: unpaid neighbours who walk or cycle over (a 15-minute community life circle).
MAX_RESPONDER_DISTANCE_M = {
    "police": 10_000, "auxiliary_police": 5_000, "mediator": 5_000, "property_management": 2_000,
    "utility": 15_000, "medical": 10_000, "legal": 10_000, "fire": 10_000, "volunteer": 3_000,
}


def within_reach(kind, candidates):
    """``candidates`` no farther than :data:`MAX_RESPONDER_DISTANCE_M` allows for ``kind``, in their
    order; a kind without a limit keeps them all.

    The reach is measured by road where a route was measured (``road_distance_m``): a station
    4 km away across a river is not within 5 km. A candidate with a straight line only
    (``distance_m``: no roads imported, or no road of the mode reaches it) is measured by that.
    """
    limit = MAX_RESPONDER_DISTANCE_M.get(kind)
    if limit is None:
        return list(candidates)
    return [c for c in candidates if _reach_m(c) is not None and _reach_m(c) <= limit]


def _reach_m(candidate):
    road = candidate.get("road_distance_m")
    return road if road is not None else candidate.get("distance_m")


VOLUNTEER_SKILLS = ("理发", "磨刀", "维修", "义诊", "家电维修", "法律咨询", "心理疏导", "助老", "代购")

# --- Incidents: categories, levels, the community's work-item list ---------------------------
# "Small matters stay in the grid, big ones in the community": every category names the level
# that answers for it and the department that owns it when the community may not take it.

LEVELS = ("grid", "community", "street", "department")  # escalation order, lowest first
LEVEL_NAMES = {"grid": ("网格", "Grid"), "community": ("社区", "Community"),
               "street": ("街道", "Street office"), "department": ("职能部门", "Department")}

# Hours to settle an incident once it reaches a level, unless a category says otherwise.
DEADLINE_HOURS = {"grid": 24, "community": 72, "street": 120, "department": 168}
# Hours a department has to report (报到) after the community blows the whistle (吹哨).
WHISTLE_REPORT_HOURS = 24


@dataclass(frozen=True)
class Category:
    """One kind of incident and the rules that route it.

    ``level`` is where it is handled when the community takes it; ``department`` is where
    it goes when the community's work-item list does not include it (the veto), and where a
    department-level category always goes. ``deadlines`` overrides :data:`DEADLINE_HOURS`.
    """

    code: str
    zh: str
    en: str
    level: str
    department: str
    responders: tuple = ()
    skills: tuple = ()
    priority: bool = False
    deadlines: dict = field(default_factory=dict, hash=False)
    whistle_hours: int = WHISTLE_REPORT_HOURS
    public: bool = True  # False: reports name vulnerable people; kept out of Open311 and public maps

    def deadline_hours(self, level):
        return self.deadlines.get(level, DEADLINE_HOURS[level])


INCIDENT_CATEGORIES = (
    Category("noise", "噪音扰民", "Noise nuisance", "grid", "公安分局",
             responders=("police", "mediator"), skills=("心理疏导",)),
    Category("street_vending", "占道经营", "Street vending on the roadway", "community", "城市管理综合执法局",
             responders=("auxiliary_police",)),
    Category("corridor_clutter", "楼道堆物", "Belongings stacked in stairwells", "grid", "消防救援大队",
             responders=("property_management", "fire")),
    Category("street_light", "路灯损坏", "Broken street light", "department", "市政路灯管理处",
             responders=("utility",), skills=("维修",)),
    Category("water_leak", "水管漏水", "Leaking water pipe", "grid", "自来水公司",
             responders=("utility", "property_management"), skills=("维修",)),
    Category("neighbour_dispute", "邻里纠纷", "Dispute between neighbours", "grid", "司法所",
             responders=("mediator", "legal"), skills=("心理疏导", "法律咨询")),
    Category("falling_objects", "高空抛物", "Objects thrown from height", "community", "公安分局",
             responders=("police",)),
    Category("elderly_help", "独居老人求助", "Elderly person living alone asks for help", "grid", "民政局",
             responders=("medical",), skills=("助老", "义诊"), priority=True,
             deadlines={"grid": 1, "community": 2, "street": 4, "department": 8}, whistle_hours=2, public=False),
    Category("fire_hazard", "消防隐患", "Fire hazard", "community", "消防救援大队",
             responders=("fire", "property_management"), deadlines={"grid": 12, "community": 24}),
    Category("illegal_building", "违章建筑", "Illegal construction", "street", "城市管理综合执法局",
             responders=("auxiliary_police",)),
    Category("gas_leak", "燃气泄漏", "Gas leak", "department", "燃气公司",
             responders=("utility", "fire"), priority=True,
             deadlines={"grid": 1, "community": 1, "street": 1, "department": 2}, whistle_hours=1),
    Category("appliance_repair", "家电维修求助", "Household appliance repair for those in need", "grid", "民政局",
             skills=("家电维修", "维修")),
    Category("sanitation", "环境卫生", "Litter and sanitation", "grid", "环境卫生管理处",
             responders=("property_management",)),
)

CATEGORIES = {c.code: c for c in INCIDENT_CATEGORIES}
CATEGORY_BY_NAME = {c.zh: c for c in INCIDENT_CATEGORIES}
SOS_CATEGORY = "elderly_help"  # what a wearable's alarm becomes

# 社区工作事项清单: the categories a community takes itself. The default list left
# enforcement (street vending) to the 城管 department: a community has no power to fine.
# A community's own list (`gridmap work-items load FILE`, kept in the store) replaces it.
DEFAULT_WORK_ITEMS = frozenset({"noise", "corridor_clutter", "water_leak", "neighbour_dispute", "falling_objects",
                                "elderly_help", "fire_hazard", "appliance_repair", "sanitation"})


def category(code_or_name):
    """The Category with this code or Chinese name; InvalidInput naming the known codes otherwise."""
    if isinstance(code_or_name, Category):
        return code_or_name
    found = CATEGORIES.get(code_or_name) or CATEGORY_BY_NAME.get(code_or_name)
    if found is None:
        raise InvalidInput(f"category={code_or_name!r} is not in the incident catalogue.",
                           fix=f"Use one of {sorted(CATEGORIES)} (or its Chinese name).",
                           details={"category": code_or_name, "allowed": sorted(CATEGORIES)})
    return found


def work_items(community_code, lists=None):
    """The category codes ``community_code`` takes itself: its own list in ``lists``, else the default."""
    return frozenset((lists or {}).get(community_code, DEFAULT_WORK_ITEMS))


def load_work_items(path):
    """Read per-community work-item lists from a JSON file ``{"210213013004": ["noise", …], …}``.

    Every code is checked against the catalogue, so a typo fails at load, not at dispatch.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise InvalidInput(f"{path} cannot be read as a UTF-8 JSON file: {err}.",
                           fix='Write {"210213013004": ["noise", "water_leak"]} in UTF-8.') from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} does not hold a JSON object of community code → category codes.",
                           fix='Write {"210213013004": ["noise", "water_leak"]}.')
    out = {}
    for community, codes in data.items():
        if not (len(str(community)) == 12 and str(community).isdigit()) or not isinstance(codes, list) \
                or not codes or not all(isinstance(c, str) for c in codes):
            raise InvalidInput(f"{path}: {str(community)[:20]!r} → {str(codes)[:40]} is not a 12-digit community "
                               "code with a non-empty list of category codes.",
                               fix='Write {"210213013004": ["noise"]}; a community takes at least one category.')
        unknown = sorted(set(codes) - set(CATEGORIES))
        if unknown:
            raise InvalidInput(f"{path}: community {community} lists unknown categories {unknown}.",
                               fix=f"Use codes from {sorted(CATEGORIES)}.")
        out[str(community)] = frozenset(codes)
    return out
