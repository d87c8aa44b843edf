"""JSON API v1: locate, grids, communities, address search."""
from flask import Blueprint, jsonify, request

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
