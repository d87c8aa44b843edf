"""JSON API v1: locate (also as of a day), grids, communities, address search, plans, crosswalk."""
from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user

from .. import lookup, plans, queries
from . import current_role, snapshot, store

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/locate")
def locate():
    """Locate a point: community, grid, workers (masked by role), party branch; ``at`` for a past day's plan."""
    lon, lat = lookup.parse_point(request.args.get("lon"), request.args.get("lat"), request.args.get("crs"))
    if request.args.get("at") is None:
        return jsonify(lookup.locate(snapshot(), lon, lat, role=current_role()))
    day = plans.parse_day(request.args.get("at"), name="at")
    with store().session() as session:
        snap = plans.snapshot_on(session, day)
    return jsonify({**lookup.locate(snap, lon, lat, role=current_role()), "at": day.isoformat()})


@bp.get("/grids")
def grids():
    """Published grids as a GeoJSON FeatureCollection, optionally of one community."""
    community = request.args.get("community")
    with store().session() as session:
        return jsonify(queries.grids_geojson(session, community))


@bp.get("/communities")
def communities():
    """All communities with their codes, street and district."""
    with store().session() as session:
        return jsonify(queries.communities(session))


@bp.get("/addresses")
def addresses():
    """Type-ahead over building addresses."""
    limit = queries.parse_limit(request.args.get("limit"), default=10, most=50)
    with store().session() as session:
        return jsonify(lookup.search_addresses(session, request.args.get("q", ""), limit=limit))


@bp.get("/nearest")
def nearest():
    """The k nearest responders or volunteers to a point, in metres, filtered by kind, skill, availability."""
    q = lookup.parse_nearest_query(request.args)
    return jsonify(lookup.nearest(snapshot(), **q, role=current_role()))


@bp.get("/grids/<code>/members")
def grid_members(code):
    """Residents, party members and contact links of one grid, for the roles that need them."""
    from .. import assign
    worker_id = current_user.worker_id if current_user.is_authenticated else None
    with store().session() as session:
        return jsonify(assign.grid_members(session, lookup.parse_grid_code(code), current_role(), worker_id=worker_id))


# --- plans ------------------------------------------------------------------------------------

def _limits():
    return plans.Limits.from_config(current_app.config)


@bp.get("/csrf")
def csrf_token():
    """A CSRF token for this session: send it back as the X-CSRFToken header on POSTs."""
    from flask_wtf.csrf import generate_csrf
    return jsonify({"csrf_token": generate_csrf()})


@bp.get("/plans")
def plan_list():
    """Plans of every status, newest first, optionally of one community."""
    with store().session() as session:
        return jsonify(plans.list_plans(session, request.args.get("community")))


@bp.get("/plans/<plan_id>")
def plan_detail(plan_id):
    """One plan with its grids as GeoJSON (households, workers, party branch per grid)."""
    with store().session() as session:
        return jsonify(plans.plan_detail(session, plan_id, limits=_limits()))


@bp.get("/plans/<plan_id>/validation")
def plan_validation(plan_id):
    """Every validation finding of a plan, errors first, each with kind and GeoJSON geometry."""
    with store().session() as session:
        return jsonify([f.to_dict() for f in plans.validate(session, plan_id, limits=_limits())])


@bp.post("/plans/<plan_id>/publish")
def plan_publish(plan_id):
    """Publish a draft (planner or admin): body {"version": N, "valid_from": "YYYY-MM-DD"?}."""
    plans.require_planner(current_role())
    args = plans.parse_publish_body(request.get_json(silent=True))
    with store().transaction() as session:
        out = plans.publish_plan(session, plan_id, limits=_limits(), **args)
    current_app.extensions["gridmap.snapshots"].invalidate()
    return jsonify(out)


@bp.post("/plans/<plan_id>/copy")
def plan_copy(plan_id):
    """Copy a plan of any status into a new draft (planner or admin)."""
    plans.require_planner(current_role())
    with store().transaction() as session:
        out = plans.plan_summary(plans.copy_plan(session, plan_id))
    return jsonify(out), 201


@bp.get("/plans/<plan_a>/diff/<plan_b>")
def plan_diff(plan_a, plan_b):
    """Buildings, households, party members and workers changing grid between two plans, with a map layer."""
    from ..catalog import SEES_PERSONAL_DATA
    with store().session() as session:
        return jsonify(plans.diff(session, plan_a, plan_b, personal=current_role() in SEES_PERSONAL_DATA))


@bp.get("/crosswalk")
def crosswalk():
    """Department grids against the unified grids of a community: area and household shares both ways."""
    from .. import crosswalk as cw
    with store().session() as session:
        return jsonify(cw.crosswalk(session, request.args.get("community"), request.args.get("plan")))
