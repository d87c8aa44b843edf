"""Folium maps that load only the vendored Leaflet, with tiles from settings and escaped popups."""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import folium
from branca.element import MacroElement
from folium.map import FitBounds
from folium.template import Template
from markupsafe import Markup, escape

from ..errors import InvalidInput

# Where the app serves vendor/leaflet; the web layer passes url_for's answer so a
# deployment under a path prefix (common behind intranet reverse proxies) still works.
DEFAULT_ASSETS = "/static/vendor/leaflet"

# Tile settings that are not a URL template. Folium's own provider names (e.g. "OpenStreetMap")
# pass through unchanged; "none" is for offline intranets where no tile server is reachable.
NO_TILES = {"none", "", "off"}


def base_map(bounds, tiles="none", attribution="", *, assets=DEFAULT_ASSETS, padding=((8, 8), (8, 8)), **options):
    """A map fitted to ``bounds`` that references no CDN.

    Parameters
    ----------
    bounds : (minx, miny, maxx, maxy)
        WGS84 lon/lat bounds to show, as from ``GeoDataFrame.total_bounds``.
    tiles : str
        The ``MAP_TILES`` setting: "none", a folium provider name, or a URL template
        with ``{z}/{x}/{y}``.
    attribution : str
        Required for a URL template (tile licences demand credit).
    assets : str
        URL of the folder holding leaflet.js, leaflet.css and images/.
    padding : ((left, top), (right, bottom))
        Pixels kept free around ``bounds``, e.g. for labels drawn beside points.

    Raises
    ------
    InvalidInput
        When a tile URL template comes without attribution.
    """
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    tiles = (tiles or "none").strip()
    # zoomSnap 0.25: a community is a few hundred metres across, and whole zoom steps often
    # leave it at a quarter of a phone-sized map.
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=15, tiles=None,
                   zoom_snap=0.25, **options)
    m.add_child(_MetricScale())
    # Folium's defaults pull Leaflet, jQuery, Bootstrap and Font Awesome from CDNs; grid offices
    # often run on intranets, so the map must work with the vendored Leaflet alone. New lists,
    # because folium's add_js_link mutates the class-level defaults in place.
    m.default_js = [("leaflet", f"{assets}/leaflet.js")]
    m.default_css = [("leaflet_css", f"{assets}/leaflet.css")]
    if tiles.lower() not in NO_TILES:
        if "{" in tiles and not (attribution or "").strip():
            raise InvalidInput(f"MAP_TILES={tiles!r} is a URL template but MAP_TILES_ATTRIBUTION is empty.",
                               fix="Set MAP_TILES_ATTRIBUTION to the credit the tile provider requires, "
                                   "or MAP_TILES=none for a map without tiles.")
        folium.TileLayer(tiles, attr=attribution or None, max_zoom=19).add_to(m)
    if maxx > minx and maxy > miny:
        # no animation: the map opens already fitted, so a screenshot or a test never catches it half-zoomed
        fit = FitBounds([[miny, minx], [maxy, maxx]], padding_top_left=padding[0], padding_bottom_right=padding[1])
        fit.options["animate"] = False
        m.add_child(fit)
    return m


def popup_html(title, rows=()):
    """Popup/tooltip HTML from a title and (label, value) rows, every value escaped.

    Leaflet sets popup strings as innerHTML, so a grid named ``<img onerror=...>`` would run
    script; Markup + escape keep user data as text whatever it contains. A row without a label
    shows its value alone, and a row without a value is left out.
    """
    parts = [Markup("<strong>{}</strong>").format(title)]
    parts += [Markup("<br>{}: {}").format(label, value) if label not in (None, "") else Markup("<br>{}").format(value)
              for label, value in rows if value not in (None, "")]
    return Markup("").join(parts)


def add_popup(layer, title, rows=(), **options):
    """Bind a popup built by :func:`popup_html` to a folium layer; returns the layer."""
    layer.add_child(_Bound("bindPopup", popup_html(title, rows), options))
    return layer


def add_tooltip(layer, title, rows=(), **options):
    """Bind a tooltip built by :func:`popup_html` to a folium layer; returns the layer."""
    layer.add_child(_Bound("bindTooltip", popup_html(title, rows), options))
    return layer


def js_string(html):
    """A JavaScript string literal safe inside <script>: no ``<`` survives, so no ``</script>``."""
    return (json.dumps(str(escape(html)), ensure_ascii=False)
            .replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


class _Bound(MacroElement):
    """``parent.bindPopup(html)`` / ``bindTooltip`` without folium's Popup, which needs jQuery
    and drops tooltip text unescaped into a JS template literal."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.{{ this.method }}({{ this.html }}, {{ this.options|tojavascript }});
        {% endmacro %}
    """)

    def __init__(self, method, html, options):
        super().__init__()
        self._name = "Bound"
        self.method = method
        self.html = js_string(html)
        self.options = options


class _MetricScale(MacroElement):
    """A scale bar in metres only: the users are in China, where feet mean nothing."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            L.control.scale({imperial: false}).addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self):
        super().__init__()
        self._name = "MetricScale"


class ZoomOnClick(MacroElement):
    """Zoom the map to ``bounds`` ([[south, west], [north, east]]) when the parent layer is clicked."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.on("click", function (e) {
                L.DomEvent.stopPropagation(e);  // a zoom, not a tap on the map to look up
                {{ this._parent._parent.get_name() }}.fitBounds({{ this.bounds|tojson }}, {padding: [8, 8]});
            });
        {% endmacro %}
    """)

    def __init__(self, bounds):
        super().__init__()
        self._name = "ZoomOnClick"
        self.bounds = [[float(v) for v in corner] for corner in bounds]


class PostClicks(MacroElement):
    """Post each map click's ``{type, lat, lng}`` to the parent window, so the page can locate it.

    The target origin is the map's own: the page that embeds /map is served by the same app,
    and no other site that frames the map learns where its visitors click.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.on("click", function (e) {
                if (window.parent === window) { return; }
                window.parent.postMessage({type: "gridmap:click", lat: e.latlng.lat, lng: e.latlng.lng},
                                          window.location.origin);
            });
        {% endmacro %}
    """)

    def __init__(self):
        super().__init__()
        self._name = "PostClicks"


def tile_source(tiles):
    """The CSP source of the tile server ``tiles`` (a MAP_TILES setting) draws from, or None.

    A provider name is resolved the way folium resolves it; a subdomain placeholder (``{s}.tile…``,
    ``webrd0{s}.is.autonavi.com``) becomes CSP's ``*.`` wildcard for every label up to it.
    """
    tiles = (tiles or "none").strip()
    if tiles.lower() in NO_TILES:
        return None
    url = folium.TileLayer(tiles, attr="-").tiles
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), parts.netloc.lower()
    if scheme not in ("http", "https") or not host:
        raise InvalidInput(f"MAP_TILES={tiles!r} is neither a tile provider folium knows nor an http(s) URL template.",
                           fix="Use a provider name such as OpenStreetMap, a URL like https://tile.example.org/{z}/{x}/{y}.png, "
                               "or MAP_TILES=none.")
    labels = host.split(".")
    templated = [i for i, label in enumerate(labels) if "{" in label]
    if templated:
        labels = ["*", *labels[templated[-1] + 1:]]
    return f"{scheme}://{'.'.join(labels)}"
