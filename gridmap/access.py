"""The one permission table: which role may do what, and where (role × action × area); masking of personal data.

Every read and write that is not public asks this table: the web layer's ``requires(action)``
decorator before a view runs, services (with :func:`check`) where the answer depends on the
object (whose grid, which transition). A role missing from an action's row may not do it; the
scope says where it may: ``ANY`` everywhere, ``SERVED`` only in the grids a grid worker serves.
"""
import re

from .errors import Forbidden, Unauthenticated

ROLES = ("admin", "planner", "dispatcher", "grid_worker")

ANY = "any"
SERVED = "served"  # the grids the grid worker's account serves (grid_worker_grid)

_STAFF = {role: ANY for role in ROLES}
_HANDLERS = {"admin": ANY, "dispatcher": ANY, "grid_worker": ANY}  # handle incidents on the ground
_DISPATCHERS = {"admin": ANY, "dispatcher": ANY}  # send others, link duplicates, blow the whistle

#: action → {role: scope}. Read down a column to see everything one role may do.
PERMISSIONS = {
    # planning: the planner's page and its edits, copying and publishing plans
    "plan.edit": {"admin": ANY, "planner": ANY},
    # notice boards are posted in courtyards for all to read: any grid's board, not only one's own
    "board.print": {"admin": ANY, "planner": ANY, "grid_worker": ANY},
    # camera positions are not personal data, but not for the public either
    "coverage.read": {"admin": ANY, "planner": ANY, "dispatcher": ANY},
    # the dispatcher's page: full phones and every incident, for those who send people
    "dispatch.use": dict(_DISPATCHERS),
    # incidents name residents and where the vulnerable live: signed-in staff only
    "incident.read": dict(_STAFF),
    "incident.accept": dict(_HANDLERS),
    "incident.start": dict(_HANDLERS),
    "incident.resolve": dict(_HANDLERS),
    "incident.escalate": dict(_HANDLERS),
    "incident.dispatch": dict(_DISPATCHERS),
    "incident.reopen": dict(_DISPATCHERS),
    "incident.link_duplicate": dict(_DISPATCHERS),
    "incident.whistle": dict(_DISPATCHERS),
    "whistle.report_in": dict(_STAFF),
    "ledger.read": dict(_STAFF),
    "ledger.write": dict(_STAFF),
    # statistics with the categories that are not public (an SOS dot marks where someone lives alone)
    "stats.private": dict(_STAFF),
    # the residents, party members and contact households of a grid; names in plan diffs
    "people.read": {"admin": ANY, "grid_worker": SERVED},
    # phone numbers unmasked
    "phone.read": {"admin": ANY, "dispatcher": ANY, "grid_worker": ANY},
}

# What each action is called in a refusal ("Role 'planner' may not …").
_WHAT = {"plan.edit": "change grid plans", "board.print": "print notice boards",
         "coverage.read": "see camera coverage", "dispatch.use": "use the dispatcher's page",
         "incident.read": "read incidents", "incident.whistle": "blow the whistle",
         "whistle.report_in": "read or report on whistle tasks", "ledger.read": "read the service ledger",
         "ledger.write": "write the service ledger", "stats.private": "see private statistics",
         "people.read": "see the people of a grid", "phone.read": "see full phone numbers"}


def roles_for(action):
    """The roles that may do ``action`` somewhere, sorted."""
    return sorted(_row(action))


def can(role, action, *, area=None, served=()):
    """Whether ``role`` may do ``action`` in ``area`` (a grid code; None: anywhere the role may).

    ``served`` are the grid codes the grid worker's account serves; a ``SERVED`` scope needs
    ``area`` among them.
    """
    scope = _row(action).get(role)
    if scope is None:
        return False
    if scope == SERVED and area is not None:
        return area in set(served)
    return True


def check(role, action, *, area=None, served=(), what=None):
    """Raise unless :func:`can`: Unauthenticated for the public, Forbidden for a role that may not.

    The refusal names the roles (or, for a grid worker, the grids) that would do."""
    if can(role, action, area=area, served=served):
        return
    doing = what or _WHAT.get(action) or action.replace(".", " ").replace("_", " ")
    allowed = roles_for(action)
    if role is None:
        raise Unauthenticated(f"Log in first: only a signed-in role may {doing}.",
                              fix=f"Sign in as one of: {', '.join(allowed)}.", details={"allowed_roles": allowed})
    if role is not None and _row(action).get(role) == SERVED:
        served = sorted(served)
        raise Forbidden(f"This {role} does not serve grid {area}, and may {doing} only in the grids it serves.",
                        fix=("Ask for one of your grids: " + ", ".join(served) + ".") if served
                        else "Ask an admin to link your account to a grid worker who serves this grid.",
                        details={"served_grids": served, "allowed_roles": allowed})
    raise Forbidden(f"Role {role!r} may not {doing}.",
                    fix=f"Sign in as one of: {', '.join(allowed)}." if allowed else "No role may.",
                    details={"allowed_roles": allowed})


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


def phone_for(role, phone):
    """The phone as ``role`` may see it (``role`` None for the public)."""
    return phone if can(role, "phone.read") else mask_phone(phone)


def mask_name(name):
    """张三丰 → 张**: enough to recognise a report of one's own, not to identify a stranger."""
    return (name[0] + "*" * (len(name) - 1)) if name else ""


def name_for(role, name):
    """The name as ``role`` may see it: whole for those who may see full phones, else masked."""
    return name if can(role, "phone.read") else mask_name(name)
