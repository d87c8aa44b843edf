"""The camera layer (view sectors coloured per camera, blind spots hatched) and the coverage report's map."""
from __future__ import annotations

import folium
import shapely
from branca.element import MacroElement
from folium.template import Template

from .base import DEFAULT_ASSETS, add_tooltip, base_map
from .labels import Feature, FlyTo

# Okabe & Ito's colour-blind-safe qualitative palette, its black and its yellow (too faint as a
# light fill) replaced by purple and brown; consecutive ids alternate warm and cool, and none of
# these is the dark red of a blind spot's hatching.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#6A3D9A", "#8C564B")
VIEW = {"weight": 1, "opacity": 0.9, "fillOpacity": 0.28, "className": "gridmap-camera-view"}
MARKER = {"radius": 4, "weight": 1.5, "color": "#ffffff", "fill_opacity": 1.0,
          "class_name": "gridmap-camera-marker"}
HATCH_ID = "gridmap-blind-hatch"
HATCH_COLOUR = "#b91c1c"
BLIND = {"color": HATCH_COLOUR, "weight": 1.5, "dashArray": "4 3", "fillColor": f"url(#{HATCH_ID})",
         "fillOpacity": 1.0, "className": "gridmap-blind-spot"}
AREA = {"color": "#1e3a8a", "weight": 2, "fill": False, "interactive": False}

LABELS = {"cameras": "Cameras", "blind_spots": "Blind spots", "camera": "Camera", "bearing": "Bearing",
          "fov": "Field of view", "range": "Range", "sees": "Public space seen", "blind_spot": "Blind spot",
          "area": "Area", "outline": "Outline"}


def camera_labels(gettext):
    """The layer's words through ``gettext`` (pass ``flask_babel.gettext``): maps import no Flask."""
    return {"cameras": gettext("Cameras"), "blind_spots": gettext("Blind spots"), "camera": gettext("Camera"),
            "bearing": gettext("Bearing"), "fov": gettext("Field of view"), "range": gettext("Range"),
            "sees": gettext("Public space seen"), "blind_spot": gettext("Blind spot"), "area": gettext("Area"),
            "outline": gettext("Outline")}


def camera_colour(camera_id):
    """The colour of a camera: fixed by its id, so it is the same on every map and page."""
    return PALETTE[int(camera_id) % len(PALETTE)]


def add_camera_layer(m, views, blind_spots=(), *, labels=None, show=True, show_blind=None):
    """Add the cameras' view sectors and the hatched blind spots to a folium map.

    Parameters
    ----------
    m : folium.Map
        A map drawn with Leaflet's SVG renderer (folium's default): the hatching is an SVG pattern.
    views : list of dict
        One per camera, as ``coverage.report_for(..., geometries=True)["views"]`` gives them:
        ``id``, ``name``, ``bearing``, ``fov``, ``range_m``, ``lon``, ``lat`` and a WGS84 GeoJSON
        ``geometry`` (None when the camera sees nothing: the marker is still drawn). A shapely
        geometry is accepted too.
    blind_spots : list of dict
        ``geometry`` (WGS84 GeoJSON or shapely) and ``m2``, as ``report_for`` gives them.
    labels : dict, optional
        Translated words (:func:`camera_labels`); English by default.
    show : bool
        Whether the cameras' layer is on when the map opens (it stays in the layer control).
    show_blind : bool, optional
        The same for blind spots; default ``show``.

    Returns
    -------
    (folium.FeatureGroup, folium.FeatureGroup)
        The cameras' and the blind spots' layers. Add a ``folium.LayerControl`` after them to let
        people toggle them.
    """
    t = {**LABELS, **(labels or {})}
    m.add_child(HatchPattern())
    # Blind spots first, so the sectors and markers lie above them and keep their tooltips.
    blind = folium.FeatureGroup(name=t["blind_spots"], show=show if show_blind is None else show_blind).add_to(m)
    for n, spot in enumerate(blind_spots, start=1):
        if spot.get("geometry") is None:
            continue
        gj = folium.GeoJson(_geojson(spot["geometry"]), style_function=lambda _f: BLIND)
        add_tooltip(gj, t["blind_spot"], [(t["area"], f"{spot['m2']:,.0f} m²")], sticky=True)
        gj.add_child(Feature(f"blind:{n}"))  # numbered as the coverage page's list numbers them
        gj.add_to(blind)
    layer = folium.FeatureGroup(name=t["cameras"], show=show).add_to(m)
    for i, cam in enumerate(views):
        colour = camera_colour(cam["id"] if cam.get("id") is not None else i)
        rows = [(t["bearing"], f"{cam['bearing']:.0f}°"), (t["fov"], f"{cam['fov']:.0f}°"),
                (t["range"], f"{cam['range_m']:.0f} m")]
        if cam.get("view_m2") is not None:
            rows.append((t["sees"], f"{cam['view_m2']:,.0f} m²"))
        title = cam.get("name") or f"{t['camera']} #{cam.get('id', i)}"
        if cam.get("geometry") is not None:
            style = {**VIEW, "color": colour, "fillColor": colour}
            gj = folium.GeoJson(_geojson(cam["geometry"]), style_function=lambda _f, s=style: s)
            add_tooltip(gj, title, rows, sticky=True)
            gj.add_to(layer)
        if cam.get("lat") is not None and cam.get("lon") is not None:
            dot = folium.CircleMarker([cam["lat"], cam["lon"]], fill_color=colour, **MARKER)
            add_tooltip(dot, title, rows)
            dot.add_to(layer)
    return layer, blind


def coverage_map(report, *, tiles="none", attribution="", assets=DEFAULT_ASSETS, labels=None):
    """The coverage page's map: the place's outline, its cameras' sectors and its hatched blind spots.

    ``report`` is ``coverage.report_for(..., geometries=True)``.
    """
    t = {**LABELS, **(labels or {})}
    outline = shapely.geometry.shape(report["area"])
    m = base_map(outline.bounds, tiles, attribution, assets=assets)
    folium.GeoJson(report["area"], name=t["outline"], style_function=lambda _f: AREA, control=False).add_to(m)
    add_camera_layer(m, report["views"], report["blind_spots"], labels=labels)
    m.add_child(FlyTo(assets=assets))
    folium.LayerControl(collapsed=False).add_to(m)
    return m


def _geojson(geometry):
    return shapely.geometry.mapping(geometry) if hasattr(geometry, "geom_type") else geometry


class HatchPattern(MacroElement):
    """Define the blind spots' hatching as an SVG <pattern> in the map's SVG renderer.

    Leaflet has no hatch fill, but its SVG renderer writes ``fillColor`` into the path's
    ``fill`` attribute as it is, so ``url(#gridmap-blind-hatch)`` there paints this pattern.
    The renderer is asked for (and so created) here, before any layer needs it; a second
    camera layer on the same map finds the pattern and adds none.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function (map, id, colour) {
            var svg = map.getRenderer({options: {}})._container;
            if (!svg || document.getElementById(id)) return;
            var ns = "http://www.w3.org/2000/svg";
            var defs = svg.querySelector("defs") ||
                svg.insertBefore(document.createElementNS(ns, "defs"), svg.firstChild);
            var pattern = document.createElementNS(ns, "pattern");
            pattern.setAttribute("id", id);
            pattern.setAttribute("patternUnits", "userSpaceOnUse");
            pattern.setAttribute("width", "8");
            pattern.setAttribute("height", "8");
            pattern.setAttribute("patternTransform", "rotate(45)");
            var back = document.createElementNS(ns, "rect");
            back.setAttribute("width", "8");
            back.setAttribute("height", "8");
            back.setAttribute("fill", colour);
            back.setAttribute("fill-opacity", "0.08");
            var line = document.createElementNS(ns, "line");
            line.setAttribute("x1", "0");
            line.setAttribute("y1", "0");
            line.setAttribute("x2", "0");
            line.setAttribute("y2", "8");
            line.setAttribute("stroke", colour);
            line.setAttribute("stroke-width", "2.5");
            line.setAttribute("stroke-opacity", "0.75");
            pattern.appendChild(back);
            pattern.appendChild(line);
            defs.appendChild(pattern);
        })({{ this._parent.get_name() }}, {{ this.pattern_id|tojson }}, {{ this.colour|tojson }});
        {% endmacro %}
    """)

    def __init__(self, pattern_id=HATCH_ID, colour=HATCH_COLOUR):
        super().__init__()
        self._name = "HatchPattern"
        self.pattern_id, self.colour = pattern_id, colour
