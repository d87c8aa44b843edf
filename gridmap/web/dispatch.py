"""The dispatcher's page: locate on a map, see who answers and who is near, report and move incidents; statistics."""
from flask import Blueprint, current_app, jsonify, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from .. import catalog, dispatch
from ..geo.roads import MODES
from ..maps import cameras as camera_maps
from ..maps import dispatch as dispatch_maps
from ..pages import dispatcher as dispatcher_page
from . import params
from .dashboard import period_names
from .common import current_area, current_role, requires, snapshot, store
from .security import frameable, map_page

bp = Blueprint("dispatch", __name__, url_prefix="/dispatch")


def _map_settings():
    return {"tiles": current_app.config["MAP_TILES"], "attribution": current_app.config["MAP_TILES_ATTRIBUTION"],
            "assets": url_for("static", filename="vendor/leaflet").rstrip("/")}


@bp.get("/")
@requires("dispatch.use")
def index():
    """Show the dispatcher's page."""
    return render_template("dispatch/index.html", categories=catalog.INCIDENT_CATEGORIES,
                           kinds=catalog.RESPONDER_KINDS, statuses=dispatch.STATUSES, status_labels=_status_labels(),
                           levels=catalog.LEVELS, level_names=catalog.LEVEL_NAMES,
                           colours=dispatch_maps.PROPOSAL_COLOURS, modes=_mode_labels())


def _mode_labels():
    """The travel modes the page offers, (code, name in the page's language), in the road table's order."""
    names = {"walk": _("On foot"), "ebike": _("E-bike"), "car": _("Car")}
    return [(mode, names[mode]) for mode in MODES]


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
@frameable
@requires("dispatch.use")
def locate_map():
    """Render the grids, the located point, grids within 30 m of it and the open incidents; with
    ``incident=<id>``, that incident and whom to send there, a line to each. With a point or an
    incident, the cameras of its community too (off), those that see the spot outlined."""
    point = params.optional_point(request.args)
    incident = request.args.get("incident")
    incident = params.record_id(incident) if incident is not None else None
    snap = snapshot()
    with store().session() as session:
        layers = dispatcher_page.map_layers(session, snap, point=point, incident_id=incident, role=current_role(),
                                            area=current_area(), min_blind_m2=current_app.config["BLIND_SPOT_MIN_M2"],
                                            mode=params.parse_mode(request.args))
    m = dispatch_maps.dispatch_map(snap.grids, **layers, kind_labels=_kind_labels(), status_labels=_status_labels(),
                                   labels={"grid": _("Grid"), "point": _("Located point"), "incident": _("Incident"),
                                           "status": _("Status"), "category": _("Category"), "kind": _("Kind"),
                                           "phone": _("Phone"), "distance": _("Distance"),
                                           **camera_maps.camera_labels(_)},
                                   **_map_settings())
    return map_page(m)


@bp.get("/incidents/<incident_id>")
@requires("dispatch.use")
def incident_panel(incident_id):
    """One incident for the panel, as JSON: history and whistle tasks, suggested duplicates, whom to send
    (by road for ``mode``)."""
    iid, mode = params.record_id(incident_id), params.parse_mode(request.args)
    with store().session() as session:
        return jsonify(dispatch.incident_panel(session, snapshot(), iid, role=current_role(), area=current_area(),
                                               mode=mode))


@bp.get("/panel")
@requires("dispatch.use")
def panel():
    """Everything about a point for the side panel, as JSON: place, workers, cameras, responders (by road for
    ``mode``), near grids."""
    lon, lat = params.parse_point(request.args.get("lon"), request.args.get("lat"), request.args.get("crs"))
    mode = params.parse_mode(request.args)
    return jsonify(dispatcher_page.panel(snapshot(), lon, lat, role=current_role(), area=current_area(), mode=mode))


@bp.get("/stats")
@requires("dispatch.use")
def stats():
    """Show resolution rate, time to resolve, open by level, tables by grid/community/period and the heat map."""
    q, s = _statistics()
    snap = snapshot()
    return render_template("dispatch/stats.html", s=s, names=dispatcher_page.place_names(snap),
                           periods=dispatch.PERIODS, period_names=period_names(), levels=catalog.LEVELS,
                           level_names=catalog.LEVEL_NAMES,
                           communities=dispatcher_page.communities(snap),
                           map_url=url_for("dispatch.stats_map", **request.args))


@bp.get("/stats/map")
@frameable
@requires("dispatch.use")
def stats_map():
    """Render incident counts per 100 m square over the grids."""
    q, s = _statistics()
    snap = snapshot()
    grids = snap.grids if q["community"] is None else snap.grids[snap.grids["community_code"] == q["community"]]
    cells = dispatch.heat_cells(s["heatmap"], snap.metric)
    return map_page(dispatch_maps.heat_map(grids, cells, labels={"incidents": _("Incidents"), "grid": _("Grid")},
                                        **_map_settings()))


def _statistics():
    """The statistics the query string asks for, as the signed-in role may see them: (query, figures)."""
    q = params.parse_stats_query(request.args)
    with store().session() as session:
        return q, dispatch.statistics(session, **q, role=current_role(), area=current_area())
