"""The planner's page: edit draft plans on a map, validate, publish; printable grid notice boards; camera coverage."""
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _

from .. import coverage, plans
from ..errors import GridmapError
from ..maps import boardcache
from ..maps import cameras as camera_maps
from ..maps import planner as planner_maps
from ..pages import board as board_page
from ..pages import planner as planner_page
from . import bodies, border, params
from .common import localize_finding, requires, store
from .places import named
from .security import frameable, map_page

bp = Blueprint("planner", __name__, url_prefix="/planner")


def _limits():
    return plans.Limits.from_config(current_app.config)


def _min_blind():
    return current_app.config["BLIND_SPOT_MIN_M2"]


def _plan_arg(name, *, required=False):
    raw = request.args.get(name)
    if raw in (None, ""):
        if required:
            return params.plan_id(raw)  # names the missing id
        return None
    return params.plan_id(raw)


@bp.get("")
@requires("plan.edit")
def index():
    """Show the planner page for a community and plan."""
    community = params.optional_community(request.args.get("community"))
    with store().session() as session:
        choice = planner_page.planner_choices(session, community, _plan_arg("plan"))
    return render_template("planner/index.html", legend=planner_maps.legend(_legend_labels()), **choice)


@bp.get("/map")
@frameable
@requires("plan.edit")
def plan_map():
    """Render a plan's map: grids by deviation, buildings, findings, optional overlays, the community's cameras."""
    view = params.map_view(request.args.get("view"))
    with store().session() as session:
        layers = planner_page.plan_map(session, _plan_arg("plan", required=True), diff_with=_plan_arg("diff"),
                                       department=request.args.get("department") == "1", limits=_limits(),
                                       min_blind_m2=_min_blind())
    for f in layers.get("findings") or ():
        f["message"] = localize_finding(f)["localized"]["message"]  # the map's tooltips speak the page's language
    layers = {k: named(v) for k, v in layers.items()}
    m = planner_maps.planner_map(**layers, view=view, tiles=current_app.config["MAP_TILES"],
                                 attribution=current_app.config["MAP_TILES_ATTRIBUTION"],
                                 assets=url_for("static", filename="vendor/leaflet").rstrip("/"),
                                 draw_assets=url_for("static", filename="vendor/leaflet-draw").rstrip("/"),
                                 labels={**_map_labels(), **camera_maps.camera_labels(_)})
    return map_page(m)


@bp.get("/api/plans/<plan_id>")
@requires("plan.edit")
def plan_state(plan_id):
    """A plan's metrics per grid, findings and buildings, for the page's panel."""
    with store().session() as session:
        return jsonify(_localized(plans.plan_state(session, params.plan_id(plan_id), limits=_limits())))


@bp.post("/api/plans/<plan_id>/<any(redraw, move, split, merge, 'set-grids'):kind>")
@requires("plan.edit")
def edit(plan_id, kind):
    """Apply one edit {version, …}; answers the new state with undo/redo, 409 when stale or impossible."""
    kind = kind.replace("-", "_")
    pid = params.plan_id(plan_id)
    args = bodies.parse_edit(kind, border.json_body())
    with store().transaction() as session:
        out = plans.apply_edit(session, pid, kind, args, limits=_limits())
    return jsonify(_localized(out))


def _localized(state):
    """A plan state with each finding's message and fix in the page's language too (``localized``)."""
    for f in state.get("findings", ()):
        localize_finding(f)
    return state


@bp.get("/boards/<grid_code>.<any(png, pdf):fmt>")
@requires("board.print")
def board(grid_code, fmt):
    """A printable notice board of a published grid (or of ?plan=ID's grid) as PNG or PDF."""
    code = params.parse_grid_code(grid_code)
    with store().session() as session:
        data = board_page.board_data(session, code, plan_id=_plan_arg("plan"))
    out = boardcache.cached_board(data, fmt, Path(current_app.instance_path) / "boards", language=str(get_locale() or "zh"))
    mime = "image/png" if fmt == "png" else "application/pdf"
    return Response(out, mimetype=mime, headers={"Content-Disposition": f'inline; filename="grid-{code}.{fmt}"'})


@bp.get("/coverage")
@requires("coverage.read")
def coverage_page():
    """Show a courtyard's or community's camera coverage: figures, blind spots, cameras and the map."""
    error, name = None, None
    try:
        name = params.place_name(request.args.get("name"), required=False)
    except GridmapError as err:
        error = err  # shown above the form, so the fix can be acted on at once
    with store().session() as session:
        page = planner_page.coverage_page(session, name, min_blind_m2=_min_blind())
    error = error or page["error"]
    html = render_template("planner/coverage.html", choices=page["choices"], name=page["name"], report=page["report"],
                           error=error, camera_colour=camera_maps.camera_colour,
                           map_url=url_for("planner.coverage_map", name=name) if page["report"] else None)
    return html, error.status if error else 200


@bp.get("/coverage/map")
@frameable
@requires("coverage.read")
def coverage_map():
    """Render a place's outline, its cameras' view sectors and its hatched blind spots."""
    name = params.place_name(request.args.get("name"), required=True)
    with store().session() as session:
        report = coverage.report_for(session, name, min_blind_m2=_min_blind(), geometries=True)
    m = camera_maps.coverage_map(report, tiles=current_app.config["MAP_TILES"],
                                 attribution=current_app.config["MAP_TILES_ATTRIBUTION"],
                                 assets=url_for("static", filename="vendor/leaflet").rstrip("/"),
                                 labels=camera_maps.camera_labels(_))
    return map_page(m)


def _legend_labels():
    return {"grid": _("Grid boundary"),
            "building": _("Building"), "error": _("Validation error"), "warning": _("Validation warning"),
            "department": _("Department grid (overlay)"), "diff_area": _("Area changing grid (overlay)"),
            "diff_building": _("Building changing grid (overlay)"), "selected_grid": _("Selected grid"),
            "selected_building": _("Selected building"), "problem": _("Finding picked from the list"),
            "sketch": _("Your drawing")}


def _map_labels():
    return {"grid": _("Grid"), "households": _("Households"), "deviation": _("Deviation"),
            "findings": _("Validation findings"), "department": _("Department grids"), "diff": _("Changes"),
            "from": _("from"), "to": _("to"), "buildings": _("Buildings"), "grids": _("Grids"),
            **{f"draw_{k}": _(v) for k, v in planner_maps.DRAW_TEXTS.items()}}
