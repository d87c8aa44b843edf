"""The city map over the vector tiles: districts, streets, communities and grids.

Drawn from ``/tiles/…`` by the vendored Leaflet.VectorGrid, coloured by a property with a legend,
with drill-down by click. Embeddable: :func:`embed_parts` gives the head, the ``<div>`` and the script
for a page of one's own (the city page, a dashboard).

The map's behaviour lives in ``static/city.js``; this module hands it its configuration (URLs,
levels and their zoom bands, class breaks, the catalogue's words) as one JSON object. In the page
it exposes ``window.GridmapCityMap = {map, colour(level, valuesByCode, title, breaks?), flyTo(level,
code)}`` and dispatches a ``gridmap:area`` event (detail ``{level, code, name}``) on ``document``
for every area clicked.
"""
from __future__ import annotations

import json
import re

from branca.element import MacroElement
from folium.template import Template

from .base import DEFAULT_ASSETS, base_map

LEVELS = ("districts", "streets", "communities", "grids")
PROPERTIES = ("households", "workers", "open_incidents")


def city_map(overview, *, tile_url, bounds_url, min_zooms, labels, script_url, vectorgrid_url, incidents=False,
             categories=None, colour_by="households", tiles="none", attribution="", assets=DEFAULT_ASSETS):
    """A Folium map of the whole city drawn from vector tiles.

    Parameters
    ----------
    overview : dict
        :func:`gridmap.tiles.overview`: ``bounds`` of the city, class ``breaks`` per level and property.
    tile_url, bounds_url : str
        URL templates with ``{layer}``/``{z}``/``{x}``/``{y}`` and ``{level}``/``{code}``.
    min_zooms : dict
        layer → the zoom from which it is drawn (:data:`gridmap.tiles.LAYERS`).
    labels : dict
        The words the map shows, already in the page's language.
    incidents : bool
        Whether to draw the incident points (the role may read incidents).
    categories : dict
        incident category code → its name, for the points' popups.
    """
    bounds = overview.get("bounds") or (121.3, 38.7, 122.0, 39.2)
    m = base_map(bounds, tiles=tiles, attribution=attribution, assets=assets, prefer_canvas=True)
    # Whole zooms: VectorGrid 1.3's canvas tiles find the feature under a click in the tile's own
    # pixels, which a tile shown at a fractional zoom (scaled) no longer matches.
    m.options["zoom_snap"] = 1
    # after Leaflet, which Folium links from default_js when the map renders
    m.default_js = [*m.default_js, ("vectorgrid", vectorgrid_url), ("gridmap_city", script_url)]
    config = {"tileUrl": tile_url, "boundsUrl": bounds_url, "levels": list(LEVELS),
              "minZoom": {k: int(v) for k, v in min_zooms.items()}, "properties": list(PROPERTIES),
              "colourBy": colour_by if colour_by in PROPERTIES else PROPERTIES[0],
              "breaks": overview.get("breaks") or {}, "incidents": bool(incidents),
              "categories": categories or {}, "labels": labels}
    m.add_child(_CityLayers(config))
    return m


def embed_parts(m):
    """``{"head", "html", "script"}`` of map ``m`` for a page that places the map in its own
    ``<div>``: Folium's rules for a whole-window map (``html, body`` at 100 %, no margins, a
    viewport that forbids zooming) are left out, so the page keeps its own layout."""
    root = m.get_root()
    root.render()
    head = root.header.render()
    head = re.sub(r"<style>\s*html, body \{.*?</style>", "", head, flags=re.S)
    head = re.sub(r"<style>\s*#map \{.*?</style>", "", head, flags=re.S)
    head = re.sub(r'<meta name="viewport"[^>]*>', "", head, flags=re.S)
    head = re.sub(r'<meta http-equiv="content-type"[^>]*>', "", head)
    return {"head": head, "html": root.html.render(), "script": f"<script>{root.script.render()}</script>"}


class _CityLayers(MacroElement):
    """``GridmapCity.start(map, config)`` from static/city.js, with the config as a JSON literal
    that holds no ``<`` (so no ``</script>`` inside a name can end the script)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            GridmapCity.start({{ this._parent.get_name() }}, {{ this.config }});
        {% endmacro %}
    """)

    def __init__(self, config):
        super().__init__()
        self._name = "CityLayers"
        self.config = (json.dumps(config, ensure_ascii=False).replace("<", "\\u003c")
                       .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
