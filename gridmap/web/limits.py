"""Request limits on the routes that write for strangers: reports, SOS, Open311 requests, sign-in.

Each limited endpoint has limits per client address and per a second identity — the signed-in
account, the api_key, the wearable, the username tried — so one address cannot flood the
dispatchers and a spread of addresses cannot either. The limits are settings
(``RATELIMIT_*``); Flask-Limiter counts them, by default in the store (:mod:`gridmap.store.counters`)
so every gunicorn worker counts against the same number. A refused request is not run: it
answers 429 with ``Retry-After``, in JSON on API paths, in the spec's format under /open311/,
and as a page for browsers.

The client address is ``request.remote_addr``: behind a reverse proxy it is the proxy's, unless
the app is configured to trust the proxy's X-Forwarded-For (ProxyFix rewrites remote_addr then).
"""
from __future__ import annotations

import hashlib
import logging
import math
import time

from flask import current_app, jsonify, render_template, request
from flask_babel import gettext as _
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_login import current_user
from limits import parse_many
from limits.storage import Storage
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..errors import GridmapError, InvalidInput, N_
from ..geo.errors import fill
from ..store import counters
from . import border, open311
from .common import wants_json

audit = logging.getLogger("gridmap.audit")

#: RATELIMIT_STORAGE_URI naming the store itself rather than a URI Flask-Limiter knows.
STORE = "store"


class StoreStorage(Storage):
    """Flask-Limiter's counters in the gridmap database: shared by every process that uses it."""

    STORAGE_SCHEME = ["gridmap-store"]

    def __init__(self, uri=None, wrap_exceptions=False, *, store=None, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.store = store

    @property
    def base_exceptions(self):
        return SQLAlchemyError

    def incr(self, key, expiry, amount=1):
        with self.store.transaction() as session:
            return counters.hit(session, _bounded(key), expiry, amount, time.time())

    def get(self, key):
        with self.store.session() as session:
            return counters.count(session, _bounded(key), time.time())

    def get_expiry(self, key):
        with self.store.session() as session:
            return counters.expires_at(session, _bounded(key), time.time())

    def check(self):
        try:
            with self.store.session() as session:
                session.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def reset(self):
        with self.store.transaction() as session:
            return counters.clear(session)

    def clear(self, key):
        with self.store.transaction() as session:
            counters.clear(session, _bounded(key))


def _bounded(key):
    # a key holds the client's identity (a device id can be 64 characters): long ones are hashed to fit the column
    return key if len(key) <= 200 else "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


# --- whom a limit counts -------------------------------------------------------------------------
# Each returns the caller's identity of its kind, prefixed so kinds never share a counter, or ""
# when the request has none (Flask-Limiter then skips that limit: an anonymous report has no account).

def _address():
    return f"addr:{request.remote_addr or 'unknown'}"


def _account():
    return f"user:{current_user.get_id()}" if current_user.is_authenticated else ""


def _api_key():
    key = request.headers.get("X-Api-Key") or _field("api_key")
    return f"key:{_digest(key)}" if isinstance(key, str) and key else ""


def _device():
    device = _field("device_id")
    return f"device:{device}" if isinstance(device, str) and device.strip() else ""


def _username():
    name = request.form.get("username", "").strip()
    return f"name:{_digest(name)}" if name else ""


def _field(name):
    """A field of the body (JSON object or form), or None; a body the view will refuse counts as none."""
    if not request.is_json:
        return request.form.get(name)
    try:
        body = border.json_body()
    except GridmapError:
        return None
    return body.get(name) if isinstance(body, dict) else None


def _digest(value):
    # secrets (api keys) and what people type (usernames, sometimes a password by mistake) are not kept as typed
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class _By:
    """A limit's key function that also knows its kind and setting, for the 429's message."""

    def __init__(self, kind, setting, identify):
        self.kind, self.setting, self.identify = kind, setting, identify

    def __call__(self):
        return self.identify()

    def absent(self):
        # a request without this identity is not counted by this limit (Flask-Limiter would log an error)
        return not self.identify()


_PER = {"address": N_("from this address"), "account": N_("for this account"), "api_key": N_("for this api_key"),
        "device": N_("for this device"), "username": N_("for this username")}
#: The limits library's units (RateLimitItem.GRANULARITY.name) as words of the catalogue.
_UNITS = {"second": N_("second"), "minute": N_("minute"), "hour": N_("hour"), "day": N_("day"),
          "month": N_("month"), "year": N_("year")}
_TOO_MANY = N_("Too many requests: at most %(limit)s %(per)s. Try again in %(retry)s s.")
_TOO_MANY_FIX = N_("Wait %(retry)s s before sending again; the operator sets this limit as %(setting)s.")
_LIMIT = N_("%(amount)s per %(multiples)s %(unit)s")

#: endpoint → its limits as (setting, kind, key function); a request is refused when any of them is spent.
RULES = {
    "api.incident_report": [("RATELIMIT_REPORTS", "address", _address),
                            ("RATELIMIT_ACCOUNT_REPORTS", "account", _account)],
    # the resident page's form (with photos): the same counters as the API's reports, see SHARED
    "reports.create": [("RATELIMIT_REPORTS", "address", _address),
                       ("RATELIMIT_ACCOUNT_REPORTS", "account", _account)],
    "open311.requests_create": [("RATELIMIT_API_KEY", "address", _address), ("RATELIMIT_API_KEY", "api_key", _api_key)],
    "api.sos": [("RATELIMIT_API_KEY", "address", _address), ("RATELIMIT_SOS", "device", _device)],
    "auth.login": [("RATELIMIT_LOGIN", "address", _address), ("RATELIMIT_LOGIN_USERNAME", "username", _username)],
}

#: endpoint → the name of the counters it shares: reports count once per caller whichever door they use
SHARED = {"api.incident_report": "reports", "reports.create": "reports"}


def init_app(app):
    """Attach a limiter to ``app`` and wrap the views of :data:`RULES` (after the blueprints are registered)."""
    for setting in sorted({s for rules in RULES.values() for s, _k, _f in rules}):
        _check_setting(setting, app.config[setting])
    uri = app.config["RATELIMIT_STORAGE_URI"] or STORE
    options = {}
    if uri == STORE:
        uri, options = "gridmap-store://", {"store": app.extensions["gridmap.store"]}
    try:
        limiter = Limiter(key_func=_address, storage_uri=uri, storage_options=options, strategy="fixed-window",
                          headers_enabled=False, swallow_errors=True)
        limiter.init_app(app)
    except Exception as err:  # noqa: BLE001 — an unknown scheme or a missing client library: say which setting
        raise InvalidInput(f"GRIDMAP_RATELIMIT_STORAGE_URI={app.config['RATELIMIT_STORAGE_URI']!r} cannot be used: {err}",
                           fix="Use 'store' (the default), 'memory://' for one process, or redis://host:6379/0 "
                               "with the redis package installed.") from None
    app.extensions["gridmap.limiter"] = limiter
    for endpoint, rules in RULES.items():
        view = app.view_functions[endpoint]
        for setting, kind, identify in rules:
            # swallow_errors: a counter store that fails is logged and lets the request through —
            # an SOS or a report must not be lost because the counters' table was busy
            by = _By(kind, setting, identify)
            if endpoint in SHARED:
                view = limiter.shared_limit(_provider(setting), SHARED[endpoint], key_func=by, exempt_when=by.absent,
                                            methods=["POST"])(view)
            else:
                view = limiter.limit(_provider(setting), key_func=by, exempt_when=by.absent, methods=["POST"])(view)
        app.view_functions[endpoint] = view
    app.register_error_handler(RateLimitExceeded, _too_many)


def _provider(setting):
    return lambda: current_app.config[setting]


def _check_setting(setting, value):
    try:
        if not parse_many(str(value)):
            raise ValueError(value)
    except ValueError:
        raise InvalidInput(f"GRIDMAP_{setting}={value!r} is not a limit.",
                           fix='Write e.g. "20 per minute;200 per day" (per second, minute, hour or day, joined by ";").') \
            from None


def _too_many(err):
    """429 naming the limit, whom it counts and when to come back; always with Retry-After."""
    by = err.limit.key_func
    spent = current_app.extensions["gridmap.limiter"].current_limit
    retry = max(1, math.ceil(spent.window[0] - time.time())) if spent is not None else 60
    limit = str(err.limit.limit)  # e.g. "20 per 1 minute"
    audit.warning("rate limit %s %s spent on %s %s (client %s)", limit, by.kind, request.method, request.path,
                  request.remote_addr)
    params = {"limit": limit, "per": _PER[by.kind], "retry": retry, "setting": f"GRIDMAP_{by.setting}"}
    message, fix = fill(_TOO_MANY, params), fill(_TOO_MANY_FIX, params)
    if request.path.startswith(open311.bp.url_prefix + "/"):
        response = open311.error(429, f"{message} {fix}")  # Open311 clients are programs: the spec's English
    elif wants_json():
        item = err.limit.limit
        unit = item.GRANULARITY.name
        # the page that called says it in its language; programs read the English, the code and details
        said = {**params, "per": _(_PER[by.kind]),
                "limit": _(_LIMIT, amount=item.amount, multiples=item.multiples, unit=_(_UNITS.get(unit, unit)))}
        response = jsonify({"error": "too_many_requests", "message": message, "fix": fix,
                            "localized": {"message": _(_TOO_MANY, **said), "fix": _(_TOO_MANY_FIX, **said)},
                            "details": {"limit": limit, "per": by.kind, "retry_after": retry,
                                        "setting": f"GRIDMAP_{by.setting}"}})
        response.status_code = 429
    else:
        page = GridmapError(_("You have sent too many requests in a short time."),
                            fix=_("Please wait %(seconds)d seconds and try again.", seconds=retry))
        response = current_app.make_response((render_template("error.html", error=page, message=page.message,
                                                               fix=page.fix), 429))
    response.headers["Retry-After"] = str(retry)
    return response
