"""What every view needs: the store, the snapshot, who is asking and where they work, ``requires(action)``, JSON or a page."""
from functools import wraps

from flask import current_app, g, request
from flask_babel import gettext
from flask_login import current_user

from .. import access, accounts
from ..geo.errors import Said, fill
from ..dispatch import Actor
from .extensions import login_manager

# Paths whose callers are scripts (the JSON API, the planner page's own calls): they always get JSON.
_JSON_PREFIXES = ("/api/", "/planner/api/", "/worker/api/", "/tiles/")


def store():
    return current_app.extensions["gridmap.store"]


def snapshot():
    return current_app.extensions["gridmap.snapshots"].get()


def current_role():
    return current_user.role if current_user.is_authenticated else None


def current_area():
    """Where the signed-in account works (:class:`gridmap.access.Area`), read once a request.

    Read fresh, not with the cached login: a grid taken off a worker or a community off a
    dispatcher stops being theirs at the next request."""
    if "gridmap_area" not in g:
        if not current_user.is_authenticated or current_user.role not in ("dispatcher", "grid_worker"):
            g.gridmap_area = access.NOWHERE
        else:
            with store().session() as session:
                g.gridmap_area = accounts.area_of(session, current_user.id, current_user.role,
                                                  getattr(current_user, "worker_id", None))
    return g.gridmap_area


def current_actor():
    """Who acts in this request: the signed-in user with their role and area, or the public."""
    if not current_user.is_authenticated:
        return Actor()
    return Actor(current_user.username, current_user.role, current_area())


def requires(action):
    """Let a view run only for a role the permission table allows ``action``.

    Anonymous visitors go to the login page (scripts get a 401 in JSON); a signed-in role that
    may not get a 403 naming the roles that may.
    """
    def wrap(view):
        @wraps(view)
        def inner(*args, **kwargs):
            if not current_user.is_authenticated and not wants_json():
                return login_manager.unauthorized()  # a person: to the login page, and back here after
            access.check(current_role(), action)
            return view(*args, **kwargs)
        inner.required_action = action  # read by the test that walks every route as every role
        return inner
    return wrap


def wants_json():
    """Whether this request's caller reads JSON: API paths, or a client that asks for it first."""
    return request.path.startswith(_JSON_PREFIXES) or request.accept_mimetypes.best == "application/json"


def localized(template, params=None):
    """``template`` (an English catalogue msgid marked with ``N_``) in the page's language, filled.

    A message not in the catalogue (not yet a template) comes back as it is, in English."""
    if not template:
        return template
    # a "what" parameter names a kind of record (marked N_ where it is given): a word of the catalogue too
    params = {k: localized(v.template, v.params) if isinstance(v, Said)
              else gettext(v) if k == "what" and isinstance(v, str) else v for k, v in (params or {}).items()}
    return fill(gettext(template), params)  # gettext formats only with keyword arguments


def said(note):
    """A note (a :class:`Said`, its JSON dict, or a plain string) in the page's language."""
    note = Said.from_dict(note)
    return localized(note.template, note.params) if isinstance(note, Said) else note


def error_body(err):
    """An error's JSON: its English message, code and params for programs, and ``localized`` —
    message and fix in the page's language — for the pages that show it (validation findings
    in its details too)."""
    body = err.to_dict()
    body["localized"] = {"message": localized(err.template, err.params), "fix": localized(err.fix_template, err.params)}
    for listed in ("errors", "warnings"):
        for item in (body.get("details") or {}).get(listed) or ():
            if isinstance(item, dict) and "template" in item:
                localize_finding(item)
    return body


def localize_finding(finding):
    """Add ``localized`` (message and fix in the page's language) to a finding's dict; returns it."""
    params = finding.get("params") or {}
    finding["localized"] = {"message": localized(finding["template"], params),
                            "fix": localized(finding.get("fix_template"), params)}
    return finding

