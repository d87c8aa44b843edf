"""Blueprints and the one error handler: JSON for API calls, pages elsewhere.

Views parse (``web.params``, ``web.bodies``), call a page builder or a service, and render; who
may call them is the permission table's business (:mod:`gridmap.access`), asked by ``common.requires``.
"""
from flask import current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from flask_babel import gettext as _

from ..errors import Forbidden, GridmapError, N_
from . import (admin, api, auth, border, dashboard, dispatch, limits, nav, open311, places, planner, reports,
               resident, security, tiles, worker)
from .common import current_role, error_body, said, wants_json
from .extensions import csrf, init_extensions


def register_blueprints(app):
    border.init_app(app)
    security.init_app(app)
    init_extensions(app)
    places.init_app(app)
    app.add_template_filter(said, "said")  # an import's notes, in the page's language
    for module in (auth, planner, resident, reports, api, dispatch, dashboard, worker, admin, tiles):
        app.register_blueprint(module.bp)
    # Open311 clients are machines with an api_key, not browsers with a session: no CSRF token to send
    csrf.exempt(open311.bp)
    app.register_blueprint(open311.bp)
    limits.init_app(app)  # wraps views of the blueprints above: after them

    @app.errorhandler(GridmapError)
    def _gridmap_error(err):
        if request.path.startswith(open311.bp.url_prefix + "/"):
            return open311.error(err.status, f"{err.message} {err.fix}" if err.fix else err.message)
        if wants_json():
            return jsonify(error_body(err)), err.status
        if isinstance(err, Forbidden):
            return _forbidden_page(err), err.status
        said = error_body(err)["localized"]
        return render_template("error.html", error=err, message=said["message"], fix=said["fix"]), err.status

    @app.errorhandler(HTTPException)
    def _http_error(err):
        if request.path.startswith(open311.bp.url_prefix + "/"):
            return open311.error(err.code, err.description)
        if wants_json():
            body = {"error": err.name.lower().replace(" ", "_"), "message": err.description}
            if isinstance(err, border.PayloadTooLarge):
                body["details"] = {"limit_bytes": err.limit, "setting": f"GRIDMAP_{err.setting}"}
            return jsonify(body), err.code
        said = _HTTP_WORDS.get(err.code)  # Werkzeug's own descriptions are English
        if said and not isinstance(err, border.PayloadTooLarge):
            return render_template("error.html", error=err, message=_(said[0]), fix=_(said[1])), err.code
        return render_template("error.html", error=err), err.code

    @app.errorhandler(Exception)
    def _unexpected(err):  # a bug: log it, never show a traceback
        current_app.logger.exception("unhandled error")
        message = "Something went wrong on our side; it has been logged."
        if request.path.startswith(open311.bp.url_prefix + "/"):
            return open311.error(500, message)
        if wants_json():
            return jsonify({"error": "internal", "message": message}), 500
        return render_template("error.html", error=None), 500


#: What a page says for the HTTP errors Werkzeug raises itself (message, what to do).
_HTTP_WORDS = {
    400: (N_("The request could not be understood."), N_("Go back and try again.")),
    404: (N_("There is no page at this address."), N_("Check the address, or start again from the map.")),
    405: (N_("This address does not take that kind of request."), N_("Go back and use the page's own buttons.")),
}


def _forbidden_page(err):
    """A refusal in the page's language: who may, and whom to ask (the service's message is English
    for API callers, who keep it with its code and details)."""
    details = err.details or {}
    allowed = details.get("allowed_roles") or []
    return render_template("forbidden.html", role=nav.role_name(current_role()),
                           allowed=[nav.role_name(r) for r in allowed],
                           place="served_grids" in details or "covered_communities" in details,
                           home=nav.home(current_role()))
