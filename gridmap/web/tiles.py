"""The city map: its vector tiles (``/tiles/LAYER/Z/X/Y.mvt``), an area's bounds, the /city page.

Tiles are public for the area layers (a shared cache may keep them: ``Cache-Control: public``)
and private for incident points; every answer carries an ETag of its generation and tile, and
an ``If-None-Match`` that still holds gets a 304 without drawing anything. An empty tile — no
feature there, or a zoom below the layer's legible minimum — is a 204 with no body.
"""
from urllib.parse import unquote

from flask import Blueprint, current_app, jsonify, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from markupsafe import Markup

from .. import access, catalog, tiles
from ..errors import N_, InvalidInput
from ..maps import city as city_maps
from .common import current_area, current_role, requires, store
from .security import csp_nonce

bp = Blueprint("tiles", __name__)

MVT = "application/vnd.mapbox-vector-tile"
#: How long a shared or browser cache may reuse an area tile before asking again (ETag makes the
#: question cheap); a publish is seen by every viewer at most this late.
PUBLIC_SECONDS = 60


def tile_cache():
    cache = current_app.extensions.get("gridmap.tiles")
    if cache is None:
        cache = current_app.extensions["gridmap.tiles"] = tiles.TileCache(
            current_app.config["TILE_CACHE_BYTES"])
    return cache


@bp.get("/tiles/<layer>/<z>/<x>/<y>.mvt")
def tile(layer, z, x, y):
    """One vector tile of ``layer`` (districts, streets, communities, grids, incidents)."""
    role = current_role()
    # the area of the account matters to incident points only: the areas are the same for all
    area = current_area() if role and layer == "incidents" else None
    answer = tiles.tile(store(), layer, z, x, y, role=role, area=area,
                        cache=tile_cache(), check_seconds=current_app.config.get("SNAPSHOT_CHECK_SECONDS", 2.0))
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


def _labels():
    """The city map's words in the page's language."""
    return {
        "levels": {"districts": _("District"), "streets": _("Street office"), "communities": _("Community"),
                   "grids": _("Grid")},
        "properties": {"households": _("Households"), "workers": _("Grid workers"),
                       "open_incidents": _("Open incidents")},
        "colourBy": _("Colour by"), "noData": _("No figure"), "all": _("all"),
        "zoomIn": _("Zoom in to see the districts."), "incident": _("Incident"), "status": _("Status"),
        "level": _("Level"),
        "statuses": {"reported": _("reported"), "accepted": _("accepted"), "dispatched": _("dispatched"),
                     "in_progress": _("in progress")},
        "levels_incident": {lv: names[0] if _zh() else names[1] for lv, names in catalog.LEVEL_NAMES.items()},
    }


def _zh():
    locale = get_locale()
    return bool(locale) and locale.language == "zh"


def city_map_parts(*, colour_by="households"):
    """The city map of this request's role, as ``{"head", "html", "script"}`` for a page of its own
    (the city page; a dashboard embeds it the same way), inline scripts carrying the request's nonce."""
    role = current_role()
    area = current_area() if role else None
    overview = tiles.overview(store(), role=role, area=area)
    m = city_maps.city_map(
        overview, tile_url=unquote(url_for("tiles.tile", layer="{layer}", z="{z}", x="{x}", y="{y}")),
        bounds_url=unquote(url_for("tiles.bounds", level="{level}", code="{code}")),
        min_zooms={name: layer.min_zoom for name, layer in tiles.LAYERS.items()}, labels=_labels(),
        script_url=url_for("static", filename="city.js"),
        vectorgrid_url=url_for("static", filename="vendor/leaflet-vectorgrid/Leaflet.VectorGrid.bundled.min.js"),
        incidents=access.can(role, "incident.read"),
        categories={c.code: c.zh if _zh() else c.en for c in catalog.INCIDENT_CATEGORIES},
        colour_by=colour_by, tiles=current_app.config["MAP_TILES"],
        attribution=current_app.config["MAP_TILES_ATTRIBUTION"],
        assets=url_for("static", filename="vendor/leaflet").rstrip("/"))
    parts = city_maps.embed_parts(m)
    nonce = f'<script nonce="{csp_nonce()}">'
    return {k: Markup(v.replace("<script>", nonce)) for k, v in parts.items()}


@bp.get("/city")
@requires("city.read")
def city():
    """Show the city map: every district, street, community and grid, coloured by a figure."""
    colour_by = request.args.get("colour", "households")
    if colour_by not in tiles.PROPERTIES:
        raise InvalidInput(N_("Colour %(value)s is not a figure of the city map."),
                           fix=N_("Use one of: %(layers)s."),
                           params={"value": colour_by[:32], "layers": ", ".join(tiles.PROPERTIES)})
    return render_template("city/index.html", city=city_map_parts(colour_by=colour_by))
