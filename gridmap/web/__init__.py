"""Blueprints and the one error handler: JSON under /api, pages elsewhere."""
from flask import current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from ..errors import GridmapError


def store():
    return current_app.extensions["gridmap.store"]


def snapshot():
    return current_app.extensions["gridmap.snapshots"].get()


def current_role():
    from flask_login import current_user
    return current_user.role if current_user.is_authenticated else None


def register_blueprints(app):
    from ..extensions import csrf
    from . import api, auth, open311, planner, resident
    from . import dispatch as dispatch_pages
    app.register_blueprint(auth.bp)
    app.register_blueprint(planner.bp)
    app.register_blueprint(resident.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(dispatch_pages.bp)
    # Open311 clients are machines with an api_key, not browsers with a session: no CSRF token to send
    csrf.exempt(open311.bp)
    app.register_blueprint(open311.bp)

    @app.errorhandler(GridmapError)
    def _gridmap_error(err):
        if _wants_json():
            return jsonify(err.to_dict()), err.status
        return render_template("error.html", error=err), err.status

    @app.errorhandler(HTTPException)
    def _http_error(err):
        if _wants_json():
            return jsonify({"error": err.name.lower().replace(" ", "_"), "message": err.description}), err.code
        return render_template("error.html", error=err), err.code

    @app.errorhandler(Exception)
    def _unexpected(err):  # a bug: log it, never show a traceback
        current_app.logger.exception("unhandled error")
        if _wants_json():
            return jsonify({"error": "internal", "message": "Something went wrong on our side; it has been logged."}), 500
        return render_template("error.html", error=None), 500


def _wants_json():
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"
