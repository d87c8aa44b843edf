"""Where each role goes: the page a sign-in lands on, the header's links, the words of a refusal.

The header's links are not a list per role: each page is shown to whoever the permission table
lets through its view's ``requires(action)`` (read from the view itself), so a change to the
table changes the header with it.
"""
from flask import current_app, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from .. import access

#: The staff pages of the header, in the order they are shown: (endpoint, label).
PAGES = (
    ("resident.index", _l("Find my grid worker")),
    ("worker.index", _l("Workbench")),
    ("planner.index", _l("Grid planning")),
    ("dispatch.index", _l("Dispatch")),
    ("dispatch.stats", _l("Statistics")),
    ("dashboard.index", _l("Dashboard")),
    ("planner.coverage_page", _l("Camera coverage")),
    ("admin.imports", _l("Imports")),
    ("tiles.city", _l("City map")),
)

#: Where a sign-in lands when no ``next`` was asked for. Admins do everything; their busiest work
#: is the live one, so the dispatcher's page. Grid workers land on their workbench.
HOME = {"admin": "dispatch.index", "planner": "planner.index", "dispatcher": "dispatch.index",
        "grid_worker": "worker.index"}

#: Role names as people read them.
ROLE_NAMES = {"admin": _l("admin"), "planner": _l("planner"), "dispatcher": _l("dispatcher"),
              "grid_worker": _l("grid worker")}


def required_action(endpoint):
    """The action the view at ``endpoint`` ``requires``, or None for a public page."""
    return getattr(current_app.view_functions[endpoint], "required_action", None)


def may_open(role, endpoint):
    """Whether ``role`` (None: the public) gets through the door of the page at ``endpoint``."""
    action = required_action(endpoint)
    return action is None or (role is not None and access.can(role, action))


def home(role):
    """The endpoint a sign-in as ``role`` lands on (one it may open; the resident page otherwise)."""
    endpoint = HOME.get(role, "resident.index")
    return endpoint if may_open(role, endpoint) else "resident.index"


def header_pages():
    """The header's links for the signed-in user: ``(url, label, current)``; none for the public,
    whose only page is the one the brand links to."""
    if not current_user.is_authenticated:
        return []
    return [(url_for(endpoint), label, request.endpoint == endpoint) for endpoint, label in PAGES
            if may_open(current_user.role, endpoint)]


def role_name(role):
    return str(ROLE_NAMES.get(role, role or ""))
