"""The one permission table: which role may do what, and where (role × action × area); masking of personal data.

Every read and write that is not public asks this table: the web layer's ``requires(action)``
decorator before a view runs (may the role do it anywhere?), services (with :func:`check`,
:func:`can` and :func:`bounds`) where the answer depends on the object: whose grid, whose
community. The scope of a role's entry says where it may:

- ``ANY`` everywhere;
- ``SERVED`` only in the grids a grid worker serves (their worker record's grids). An object
  that lies in no grid (a volunteer; an incident where no grid is published) counts as served by
  the workers of the grids of its community;
- ``COVERED`` only in the communities a dispatcher's account covers (``gridmap set-communities``).
  An account that covers no community covers nothing: least privilege fails closed.

The user's :class:`Area` (served grids, covered communities) is read once a request by the web
layer and passed down; an object's place is ``at=(grid_code, community_code)``.
"""
import re
from dataclasses import dataclass

from .errors import Forbidden, N_, Unauthenticated

ROLES = ("admin", "planner", "dispatcher", "grid_worker")

ANY = "any"
SERVED = "served"  # the grids the grid worker's account serves (grid_worker_grid)
COVERED = "covered"  # the communities the dispatcher's account covers (user_community)
SCOPES = (ANY, SERVED, COVERED)

_AREA = {"admin": ANY, "dispatcher": COVERED, "grid_worker": SERVED}  # each role where it works
_HANDLERS = dict(_AREA)  # handle incidents on the ground
_DISPATCHERS = {"admin": ANY, "dispatcher": COVERED}  # send others, link duplicates, blow the whistle

#: action → {role: scope}. Read down a column to see everything one role may do, and where.
PERMISSIONS = {
    # planning: the planner's page and its edits, copying and publishing plans
    "plan.edit": {"admin": ANY, "planner": ANY},
    # uploading data files into the register (and undoing an upload): those who keep its geography
    "data.import": {"admin": ANY, "planner": ANY},
    # notice boards are posted in courtyards for all to read: any grid's board, not only one's own
    "board.print": {"admin": ANY, "planner": ANY, "grid_worker": ANY},
    # camera positions are not personal data, but not for the public either
    "coverage.read": {"admin": ANY, "planner": ANY, "dispatcher": ANY},
    # the dispatcher's page: full phones and the incidents of the communities covered
    "dispatch.use": dict(_DISPATCHERS),
    # incidents name residents and where the vulnerable live: those who handle them, where they work.
    # Planners draw grids; they see incident load only as public statistics.
    "incident.read": dict(_AREA),
    "incident.accept": dict(_HANDLERS),
    "incident.start": dict(_HANDLERS),
    "incident.resolve": dict(_HANDLERS),
    "incident.escalate": dict(_HANDLERS),
    "incident.dispatch": dict(_DISPATCHERS),
    "incident.reopen": dict(_DISPATCHERS),
    "incident.link_duplicate": dict(_DISPATCHERS),
    "incident.whistle": dict(_DISPATCHERS),
    # a resident follows their report by its status link: it shows the report's own photos, and a resolve's
    # photos only when the one who resolved chose to show them (they may show other people, plates, homes;
    # kept for staff unless someone who handles the incident there says they may go to the reporter)
    "incident.show_photos": dict(_HANDLERS),
    "whistle.report_in": dict(_AREA),
    # a volunteer's ledger is kept by the community the volunteer belongs to
    "ledger.read": dict(_AREA),
    "ledger.write": dict(_AREA),
    # the categories that are not public in statistics (an SOS dot marks where someone lives alone)
    "stats.private": dict(_AREA),
    # the city dashboard's KPIs, loads and trends (worker names as "phone.read" says): staff, each where it
    # works; a street or the city counts only the part of it a role works in
    "dashboard.read": dict(_AREA),
    # the residents, party members and contact households of a grid; names in plan diffs
    "people.read": {"admin": ANY, "grid_worker": SERVED},
    # phone numbers and reporters' names unmasked
    "phone.read": dict(_AREA),
    # the grid worker's workbench: their grids, inbox and people; patrols, check-ins and reports from
    # the phone. A patrol is a worker record's walk: roles without one (admin, dispatcher) have none.
    "worker.use": {"grid_worker": SERVED},
    "patrol.use": {"grid_worker": SERVED},
    # the city map: every area's outline and counts (public, as the resident map's grids are); its
    # incident points still ask incident.read, where the role may
    "city.read": {"admin": ANY, "planner": ANY, "dispatcher": ANY, "grid_worker": ANY},
    # correcting or retiring one imported record by hand (the register of every community at once)
    "record.edit": {"admin": ANY},
}

# What each action is called in a refusal ("Role 'planner' may not …").
_WHAT = {"plan.edit": "change grid plans", "data.import": "import data files", "board.print": "print notice boards",
         "coverage.read": "see camera coverage", "dispatch.use": "use the dispatcher's page",
         "incident.read": "read incidents", "incident.whistle": "blow the whistle",
         "incident.show_photos": "show resolve photos to the resident who reported",
         "whistle.report_in": "read or report on whistle tasks", "ledger.read": "read the service ledger",
         "ledger.write": "write the service ledger", "stats.private": "see private statistics",
         "dashboard.read": "read the dashboard",
         "people.read": "see the people of a grid", "phone.read": "see full phone numbers",
         "worker.use": "use the grid worker's workbench", "patrol.use": "patrol and check in",
         "record.edit": "correct or retire imported records", "city.read": "see the city map"}


@dataclass(frozen=True)
class Area:
    """Where an account works: the grid codes it serves, the community codes it covers."""

    grids: frozenset = frozenset()
    communities: frozenset = frozenset()

    def __post_init__(self):
        object.__setattr__(self, "grids", frozenset(self.grids))
        object.__setattr__(self, "communities", frozenset(self.communities))

    @property
    def served_communities(self):
        """The communities holding a served grid (a grid code starts with its community's 12 digits)."""
        return frozenset(g[:12] for g in self.grids)

    def holds(self, scope, grid, community):
        """Whether an object at ``grid`` (None: in no grid) in ``community`` lies in ``scope`` of this area."""
        community = community or (grid[:12] if grid else None)
        if scope == ANY:
            return True
        if scope == SERVED:
            return grid in self.grids if grid else community in self.served_communities
        if scope == COVERED:
            return community in self.communities
        return False


NOWHERE = Area()


def roles_for(action):
    """The roles that may do ``action`` somewhere, sorted."""
    return sorted(_row(action))


def scope_of(role, action):
    """The scope of ``role`` for ``action`` (ANY, SERVED, COVERED), or None when it may not at all."""
    return _row(action).get(role)


def can(role, action, *, at=None, area=None):
    """Whether ``role`` may do ``action`` at ``at`` = (grid code or None, community code or None).

    Without ``at``: whether the role may do it anywhere at all (the door of a page). With it, a
    ``SERVED`` or ``COVERED`` scope needs the place inside ``area`` (an :class:`Area`; None is
    nowhere)."""
    scope = _row(action).get(role)
    if scope is None:
        return False
    if at is None:
        return True
    return (area or NOWHERE).holds(scope, *at)


def bounds(role, action, area=None):
    """Where ``role`` may do ``action``, for filtering a list: None for everywhere, else
    ``(scope, area)`` with scope SERVED or COVERED; Forbidden-worthy roles get ``(None, NOWHERE)``."""
    scope = _row(action).get(role)
    if scope == ANY:
        return None
    return scope, (area or NOWHERE)


def check(role, action, *, at=None, area=None, what=None):
    """Raise unless :func:`can`: Unauthenticated for the public, Forbidden for a role that may not.

    The refusal names the roles that would do, or, for a role that may but not here, the grids
    it serves or the communities it covers."""
    if can(role, action, at=at, area=area):
        return
    doing = what or _WHAT.get(action) or action.replace(".", " ").replace("_", " ")
    allowed = roles_for(action)
    if role is None:
        raise Unauthenticated(N_("Log in first: only a signed-in role may %(doing)s."),
                              fix=N_("Sign in as one of: %(value)s."), details={"allowed_roles": allowed},
                              params={"doing": doing, "value": ', '.join(allowed)})
    scope = _row(action).get(role)
    area = area or NOWHERE
    grid, community = at if at is not None else (None, None)
    if scope == SERVED:
        served = sorted(area.grids)
        raise Forbidden(N_("This %(role)s does not serve grid %(value)s, and may %(doing)s only in the grids it "
                           "serves."),
                        fix=("Ask for one of your grids: " + ", ".join(served) + ".") if served
                        else "Ask an admin to link your account to a grid worker who serves this grid.",
                        details={"served_grids": served, "allowed_roles": allowed},
                        params={"role": role, "value": grid or community, "doing": doing})
    if scope == COVERED:
        covered = sorted(area.communities)
        raise Forbidden(N_("This %(role)s does not cover community %(value)s, and may %(doing)s only in the "
                           "communities it covers."),
                        fix=("Ask for one of your communities: " + ", ".join(covered) + ".") if covered
                        else "Ask an admin to run: gridmap set-communities USERNAME CODE…",
                        details={"covered_communities": covered, "allowed_roles": allowed},
                        params={"role": role, "value": community or (grid or '')[:12], "doing": doing})
    raise Forbidden(N_("Role %(role)s may not %(doing)s."),
                    fix=f"Sign in as one of: {', '.join(allowed)}." if allowed else "No role may.",
                    details={"allowed_roles": allowed},
                    params={"role": repr(role), "doing": doing})


_CELL = {ANY: "anywhere", SERVED: "grids served", COVERED: "communities covered", None: "—"}


def markdown_table():
    """The table as the README's "Security model" shows it (a test keeps the two the same)."""
    lines = ["| action | " + " | ".join(ROLES) + " |", "|---" * (len(ROLES) + 1) + "|"]
    for action, row in PERMISSIONS.items():
        lines.append(f"| `{action}` | " + " | ".join(_CELL[row.get(role)] for role in ROLES) + " |")
    return "\n".join(lines)


def _row(action):
    try:
        return PERMISSIONS[action]
    except KeyError:
        raise KeyError(f"{action!r} is not in the permission table") from None


# --- masking -------------------------------------------------------------------------------

_DIGITS = re.compile(r"\d")


def mask_phone(phone):
    """Mask a phone number, keeping the first three and last four digits: 13812341234 → 138****1234.

    Landlines keep their area code and last four digits (0411-****5678). Short or
    empty values are masked whole, so nothing identifying leaks from odd input.
    """
    phone = (phone or "").strip()
    digits = _DIGITS.findall(phone)
    if len(digits) < 8:
        return "*" * len(phone)
    if "-" in phone:
        area, _, rest = phone.partition("-")
        return f"{area}-{'*' * (len(rest) - 4)}{rest[-4:]}"
    return f"{phone[:3]}{'*' * (len(phone) - 7)}{phone[-4:]}"


def phone_for(role, phone, *, at=None, area=None):
    """The phone as ``role`` may see it (``role`` None for the public); with ``at``, as it may there."""
    return phone if can(role, "phone.read", at=at, area=area) else mask_phone(phone)


def mask_name(name):
    """张三丰 → 张**: enough to recognise a report of one's own, not to identify a stranger."""
    return (name[0] + "*" * (len(name) - 1)) if name else ""


def name_for(role, name, *, at=None, area=None):
    """The name as ``role`` may see it: whole for those who may see full phones (there), else masked."""
    return name if can(role, "phone.read", at=at, area=area) else mask_name(name)
