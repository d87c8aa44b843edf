"""The city map's vector tiles (``/tiles/LAYER/Z/X/Y.mvt``), the bounds of an area for a drill-down,
and the city map page.

Tiles are public for the area layers (a shared cache may keep them: ``Cache-Control: public``)
and private for incident points; every answer carries an ETag of its generation and tile, and
an ``If-None-Match`` that still holds gets a 304 without drawing anything. An empty tile — no
feature there, or a zoom below the layer's legible minimum — is a 204 with no body.
"""
from flask import Blueprint, current_app, jsonify, request

from .. import tiles
from .common import current_area, current_role, store

bp = Blueprint("tiles", __name__)

MVT = "application/vnd.mapbox-vector-tile"
#: How long a shared or browser cache may reuse an area tile before asking again (ETag makes the
#: question cheap); a publish is seen by every viewer at most this late.
PUBLIC_SECONDS = 60


def tile_cache():
    cache = current_app.extensions.get("gridmap.tiles")
    if cache is None:
        cache = current_app.extensions["gridmap.tiles"] = tiles.TileCache(
            current_app.config.get("TILE_CACHE_BYTES", tiles.DEFAULT_BYTES))
    return cache


@bp.get("/tiles/<layer>/<z>/<x>/<y>.mvt")
def tile(layer, z, x, y):
    """One vector tile of ``layer`` (districts, streets, communities, grids, incidents)."""
    role = current_role()
    answer = tiles.tile(store(), layer, z, x, y, role=role, area=current_area() if role else None,
                        cache=tile_cache())
    if request.if_none_match.contains(answer.etag):
        response = current_app.response_class(status=304)
    elif answer.data:
        response = current_app.response_class(answer.data, mimetype=MVT)
    else:
        response = current_app.response_class(status=204)
    response.set_etag(answer.etag)
    if answer.public:
        response.headers["Cache-Control"] = f"public, max-age={PUBLIC_SECONDS}"
    else:
        response.headers["Cache-Control"] = "private, no-cache"
        response.vary.add("Cookie")
    return response


@bp.get("/tiles/bounds/<level>/<code>.json")
def bounds(level, code):
    """The bounds (west, south, east, north) of one area of the city map, for zooming to it."""
    west, south, east, north = tiles.area_bounds(store(), level, code)
    return jsonify({"level": level, "code": code, "bounds": [west, south, east, north]})
