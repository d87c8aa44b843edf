"""The dispatcher's page: locate on a map, see who answers and who is near, report and move incidents; statistics."""
from functools import wraps

from flask import Blueprint, current_app, jsonify, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from .. import catalog, dispatch, dispatchview, lookup
from ..errors import Forbidden
from ..extensions import login_manager
from ..maps import cameras as camera_maps
from ..maps import dispatch as dispatch_maps
from . import snapshot, store

bp = Blueprint("dispatch", __name__, url_prefix="/dispatch")

ROLES = ("dispatcher", "admin")  # full phones and every incident: only those who send people


def roles(view):
    """Anonymous visitors go to the login page (JSON callers get 401); other roles get 403."""
    @wraps(view)
    def inner(*args, **kwargs):
        if not current_user.is_authenticated:
            if request.accept_mimetypes.best == "application/json":
                return jsonify({"error": "unauthorized", "message": "Log in first.",
                                "fix": "Log in as a dispatcher or an administrator."}), 401
            return login_manager.unauthorized()
        if current_user.role not in ROLES:
            raise Forbidden(f"Role {current_user.role!r} may not use the dispatcher's page.",
                            fix=f"Sign in as one of {list(ROLES)}.", details={"allowed_roles": list(ROLES)})
        return view(*args, **kwargs)
    return inner


def _map_settings():
    return {"tiles": current_app.config["MAP_TILES"], "attribution": current_app.config["MAP_TILES_ATTRIBUTION"],
            "assets": url_for("static", filename="vendor/leaflet").rstrip("/")}


def _html(m):
    return m.get_root().render(), 200, {"Content-Type": "text/html; charset=utf-8"}


@bp.get("/")
@roles
def index():
    """Show the dispatcher's page."""
    return render_template("dispatch/index.html", categories=catalog.INCIDENT_CATEGORIES,
                           kinds=catalog.RESPONDER_KINDS, statuses=dispatch.STATUSES, status_labels=_status_labels(),
                           levels=catalog.LEVELS, level_names=catalog.LEVEL_NAMES,
                           colours=dispatch_maps.PROPOSAL_COLOURS)


def _status_labels():
    """Status names in the page's language, for the page and the map's tooltips; the codes stay in the API."""
    return {"reported": _("reported"), "accepted": _("accepted"), "dispatched": _("dispatched"),
            "in_progress": _("in progress"), "resolved": _("resolved"), "merged": _("merged as duplicate")}


def _kind_labels():
    """Kind names as the map's badges and tooltips show them, in the page's language."""
    zh = (get_locale().language if get_locale() else "zh") != "en"
    return {"grid_worker": _("grid worker"), "volunteer": _("Volunteer"),
            **{kind: names[0] if zh else names[1] for kind, names in catalog.RESPONDER_KINDS.items()}}


@bp.get("/map")
@roles
def locate_map():
    """Render the grids, the located point, grids within 30 m of it and the open incidents; with
    ``incident=<id>``, that incident and whom to send there, a line to each. With a point or an
    incident, the cameras of its community too (off), those that see the spot outlined."""
    snap = snapshot()
    point, own, near, incident, proposal = None, None, (), None, None
    if request.args.get("lon") is not None or request.args.get("lat") is not None:
        point = lookup.parse_point(request.args.get("lon"), request.args.get("lat"), request.args.get("crs"))
        where = snap.locate(*point)
        own = where["grid"]["code"] if where["grid"] else None
        near = [g["code"] for g in dispatchview.near_other_grids(snap, *point)]
    with store().session() as session:
        incidents = dispatch.list_incidents(session, status="open", limit=500, role=current_user.role)
        if request.args.get("incident") is not None:
            opened = dispatch.incident_panel(session, snap, request.args["incident"], role=current_user.role)
            incident, proposal = opened["incident"], opened["proposal"]
        spot = point if point is not None else (incident["lon"], incident["lat"]) if incident else None
        cameras, seeing = dispatchview.cameras_at(session, snap, *spot,
                                                  min_blind_m2=current_app.config.get("BLIND_SPOT_MIN_M2")) \
            if spot and None not in spot else (None, ())
    m = dispatch_maps.dispatch_map(snap.grids, point=point, own=own, near=near, incidents=incidents,
                                   incident=incident, proposal=proposal, cameras=cameras, seeing=seeing,
                                   kind_labels=_kind_labels(), status_labels=_status_labels(),
                                   labels={"grid": _("Grid"), "point": _("Located point"), "incident": _("Incident"),
                                           "status": _("Status"), "category": _("Category"), "kind": _("Kind"),
                                           "phone": _("Phone"), "distance": _("Distance"),
                                           **camera_maps.camera_labels(_)},
                                   **_map_settings())
    return _html(m)


@bp.get("/incidents/<incident_id>")
@roles
def incident_panel(incident_id):
    """One incident for the panel, as JSON: history and whistle tasks, suggested duplicates, whom to send."""
    with store().session() as session:
        return jsonify(dispatch.incident_panel(session, snapshot(), incident_id, role=current_user.role))


@bp.get("/panel")
@roles
def panel():
    """Everything about a point for the side panel, as JSON: place, workers, cameras, responders, near grids."""
    lon, lat = lookup.parse_point(request.args.get("lon"), request.args.get("lat"), request.args.get("crs"))
    return jsonify(dispatchview.panel(snapshot(), lon, lat, role=current_user.role))


@bp.get("/stats")
@roles
def stats():
    """Show resolution rate, time to resolve, open by level, tables by grid/community/period and the heat map."""
    q = dispatch.parse_stats_query(request.args)
    with store().session() as session:
        s = dispatch.statistics(session, **q, private=True)
    snap = snapshot()
    names = dict(zip(snap.grids["code"], snap.grids["name"]))
    if snap.communities is not None:
        names.update(zip(snap.communities["code"], snap.communities["name"]))
    return render_template("dispatch/stats.html", s=s, names=names, periods=dispatch.PERIODS,
                           levels=catalog.LEVELS, level_names=catalog.LEVEL_NAMES,
                           communities=[] if snap.communities is None else
                           snap.communities[["code", "name"]].to_dict("records"),
                           map_url=url_for("dispatch.stats_map", **request.args))


@bp.get("/stats/map")
@roles
def stats_map():
    """Render incident counts per 100 m square over the grids."""
    q = dispatch.parse_stats_query(request.args)
    with store().session() as session:
        s = dispatch.statistics(session, **q, private=True)
    snap = snapshot()
    grids = snap.grids if q["community"] is None else snap.grids[snap.grids["community_code"] == q["community"]]
    cells = dispatchview.heat_cells(s["heatmap"], snap.metric_crs)
    return _html(dispatch_maps.heat_map(grids, cells, labels={"incidents": _("Incidents"), "grid": _("Grid")},
                                        **_map_settings()))
