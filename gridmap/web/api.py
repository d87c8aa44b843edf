"""JSON API v1: locate, grids, communities, address search."""
from flask import Blueprint, jsonify, request
from flask_login import current_user

from .. import lookup, queries
from . import current_role, snapshot, store

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/locate")
def locate():
    """Locate a point: community, grid, workers (masked by role), party branch."""
    lon, lat = lookup.parse_point(request.args.get("lon"), request.args.get("lat"), request.args.get("crs"))
    return jsonify(lookup.locate(snapshot(), lon, lat, role=current_role()))


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
