"""The planner's page: edit draft plans on a map, validate, publish; printable grid notice boards; camera coverage."""
from functools import wraps

from flask import Blueprint, Response, current_app, jsonify, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.exceptions import HTTPException

from .. import boards, coverage, editing, plans
from ..errors import Forbidden, GridmapError, InvalidInput, NotFound
from ..extensions import login_manager
from ..maps import cameras as camera_maps
from ..maps import planner as planner_maps
from . import store

bp = Blueprint("planner", __name__, url_prefix="/planner")

BOARD_ROLES = ("admin", "planner", "grid_worker")  # grid workers print their own grid's board
# Camera positions are not personal data, but not for the public either: those who plan and dispatch.
COVERAGE_ROLES = ("admin", "planner", "dispatcher")
PLACE_NAME_MAX = 128  # the longest courtyard name the store holds


def _api():
    return request.path.startswith(f"{bp.url_prefix}/api/")


def roles(allowed):
    """Anonymous visitors go to the login page (JSON calls get 401); other roles get 403."""
    def wrap(view):
        @wraps(view)
        def inner(*args, **kwargs):
            if not current_user.is_authenticated:
                if _api():
                    return jsonify({"error": "unauthorized", "message": "Log in first.",
                                    "fix": "Log in as a planner or an administrator."}), 401
                return login_manager.unauthorized()
            if current_user.role not in allowed:
                raise Forbidden(f"Role {current_user.role!r} may not use this page.",
                                fix=f"Sign in as one of {list(allowed)}.", details={"allowed_roles": list(allowed)})
            return view(*args, **kwargs)
        return inner
    return wrap


# The app's handler answers JSON only under /api/ (or when asked); the page's script calls
# /planner/api/… and must always read JSON, a bad CSRF token included.
@bp.errorhandler(GridmapError)
def _error(err):
    if _api():
        return jsonify(err.to_dict()), err.status
    return render_template("error.html", error=err), err.status


@bp.errorhandler(HTTPException)
def _http_error(err):
    if _api():
        return jsonify({"error": err.name.lower().replace(" ", "_"), "message": err.description}), err.code
    return render_template("error.html", error=err), err.code


def _limits():
    return plans.Limits.from_config(current_app.config)


@bp.get("")
@roles(plans.PLANNING_ROLES)
def index():
    """Show the planner page for a community and plan."""
    with store().session() as session:
        choice = editing.planner_choices(session, request.args.get("community"), request.args.get("plan"))
    return render_template("planner/index.html", **choice)


@bp.get("/map")
@roles(plans.PLANNING_ROLES)
def plan_map():
    """Render a plan's map: grids by deviation, buildings, findings, optional overlays, the community's cameras."""
    view = _view(request.args.get("view"))
    with store().session() as session:
        layers = editing.map_layers(session, request.args.get("plan"), diff_with=request.args.get("diff"),
                                    department=request.args.get("department") == "1", limits=_limits())
        plan = plans.get_plan(session, request.args.get("plan"))
        cams = coverage.report_for(session, plan.community_code, min_blind_m2=_min_blind(), geometries=True)
    m = planner_maps.planner_map(**layers, view=view, editable=plan.status == "draft", cameras=cams,
                                 tiles=current_app.config["MAP_TILES"],
                                 attribution=current_app.config["MAP_TILES_ATTRIBUTION"],
                                 assets=url_for("static", filename="vendor/leaflet").rstrip("/"),
                                 draw_assets=url_for("static", filename="vendor/leaflet-draw").rstrip("/"),
                                 labels={**_map_labels(), **camera_maps.camera_labels(_)})
    return m.get_root().render(), 200, {"Content-Type": "text/html; charset=utf-8"}


@bp.get("/api/plans/<plan_id>")
@roles(plans.PLANNING_ROLES)
def plan_state(plan_id):
    """A plan's metrics per grid, findings and buildings, for the page's panel."""
    with store().session() as session:
        return jsonify(editing.plan_state(session, plan_id, limits=_limits()))


@bp.post("/api/plans/<plan_id>/<any(redraw, move, split, merge, 'set-grids'):kind>")
@roles(plans.PLANNING_ROLES)
def edit(plan_id, kind):
    """Apply one edit {version, …}; answers the new state with undo/redo, 409 when stale or impossible."""
    kind = kind.replace("-", "_")
    args = editing.parse_edit(kind, request.get_json(silent=True))
    with store().transaction() as session:
        out = editing.apply_edit(session, plan_id, kind, args, limits=_limits())
    return jsonify(out)


@bp.get("/boards/<grid_code>.<any(png, pdf):fmt>")
@roles(BOARD_ROLES)
def board(grid_code, fmt):
    """A printable notice board of a published grid (or of ?plan=ID's grid) as PNG or PDF."""
    plan = request.args.get("plan") or None
    make = boards.board_png if fmt == "png" else boards.board_pdf
    with store().session() as session:
        data = make(session, grid_code, plan_id=plan)
    mime = "image/png" if fmt == "png" else "application/pdf"
    return Response(data, mimetype=mime,
                    headers={"Content-Disposition": f'inline; filename="grid-{grid_code}.{fmt}"'})


@bp.get("/coverage")
@roles(COVERAGE_ROLES)
def coverage_page():
    """Show a courtyard's or community's camera coverage: figures, blind spots, cameras and the map."""
    name, report, error = request.args.get("name"), None, None
    with store().session() as session:
        choices = coverage.place_choices(session)
        try:
            name = _place_name(name, required=False)
            if name:
                report = coverage.report_for(session, name, min_blind_m2=_min_blind(), geometries=True)
        except (InvalidInput, NotFound) as err:
            error = err  # shown above the form, so the fix can be acted on at once
    page = render_template("planner/coverage.html", choices=choices, name=name, report=report, error=error,
                           map_url=url_for("planner.coverage_map", name=name) if report else None,
                           camera_colour=camera_maps.camera_colour)
    return page, error.status if error else 200


@bp.get("/coverage/map")
@roles(COVERAGE_ROLES)
def coverage_map():
    """Render a place's outline, its cameras' view sectors and its hatched blind spots."""
    name = _place_name(request.args.get("name"), required=True)
    with store().session() as session:
        report = coverage.report_for(session, name, min_blind_m2=_min_blind(), geometries=True)
    m = camera_maps.coverage_map(report, tiles=current_app.config["MAP_TILES"],
                                 attribution=current_app.config["MAP_TILES_ATTRIBUTION"],
                                 assets=url_for("static", filename="vendor/leaflet").rstrip("/"),
                                 labels=camera_maps.camera_labels(_))
    return m.get_root().render(), 200, {"Content-Type": "text/html; charset=utf-8"}


def _min_blind():
    return current_app.config.get("BLIND_SPOT_MIN_M2")


def _place_name(raw, *, required):
    """A courtyard name, community code or name from the query; None when absent and not required."""
    name = (raw or "").strip()
    if not name:
        if required:
            raise InvalidInput("name is missing.", fix="Send ?name= with a courtyard name, a community code or name.")
        return None
    if len(name) > PLACE_NAME_MAX or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise InvalidInput(f"name={name[:40]!r} is not a courtyard or community name.",
                           fix=f"Pick a place from the list (names are at most {PLACE_NAME_MAX} printable characters).",
                           details={"name": name[:PLACE_NAME_MAX]})
    return name


def _view(raw):
    """``lat,lng,zoom`` as floats, or None; anything else is a 400 naming it."""
    if not raw:
        return None
    try:
        lat, lng, zoom = (float(v) for v in raw.split(","))
        if not (-90 <= lat <= 90 and -180 <= lng <= 180 and 0 <= zoom <= 22):
            raise ValueError
    except ValueError:
        raise InvalidInput(f"view={raw!r} is not lat,lng,zoom.", fix="Leave view out, or send e.g. 38.9,121.6,16.",
                           details={"view": raw}) from None
    return lat, lng, zoom


def _map_labels():
    return {"grid": _("Grid"), "households": _("Households"), "deviation": _("Deviation"),
            "findings": _("Validation findings"), "department": _("Department grids"), "diff": _("Changes"),
            "from": _("from"), "to": _("to"), "buildings": _("Buildings"), "grids": _("Grids")}
