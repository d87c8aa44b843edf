"""The planner's map: grids coloured by deviation, buildings, findings, overlays, cameras and a draw toolbar.

Overlays: the diff with another plan and the departments' legacy grids; cameras with their views
and the blind spots, off at first.
"""
from __future__ import annotations

import folium
import shapely
from branca.element import MacroElement
from folium.plugins import Draw
from folium.template import Template

from ..errors import N_
from .base import DEFAULT_ASSETS, add_tooltip, base_map
from .cameras import add_camera_layer
from .labels import Feature, FlyTo, add_grid_labels

DRAW_ASSETS = "/static/vendor/leaflet-draw"

BUILDING = {"color": "#475569", "weight": 1, "fillColor": "#94a3b8", "fillOpacity": 0.8}
FINDING = {"error": {"color": "#dc2626", "weight": 3, "fillColor": "#dc2626", "fillOpacity": 0.35, "dashArray": None},
           "warning": {"color": "#ea580c", "weight": 2, "fillColor": "#fb923c", "fillOpacity": 0.2, "dashArray": "4 4"}}
DEPARTMENT = {"color": "#7c3aed", "weight": 2, "fill": False, "dashArray": "6 4"}
DIFF_AREA = {"color": "#0f766e", "weight": 1, "fillColor": "#14b8a6", "fillOpacity": 0.45}
DIFF_BUILDING = {"color": "#0f766e", "weight": 2, "fillColor": "#0f766e", "fillOpacity": 0.9}
GRID_OUTLINE = {"color": "#1e3a8a", "weight": 2, "fillOpacity": 0.55}
# Drawn by the map's script when the page asks: the selection, the finding shown from the list, the sketch.
SELECTED_GRID = {"color": "#f59e0b", "weight": 5, "fill": False, "interactive": False}
SELECTED_BUILDING = {"color": "#b91c1c", "weight": 2, "fillColor": "#ef4444", "fillOpacity": 0.9, "interactive": False}
PROBLEM = {"color": "#dc2626", "weight": 4, "dashArray": "2 6", "fillColor": "#dc2626", "fillOpacity": 0.5}
SKETCH = {"color": "#c2410c", "weight": 3}

# Deviation from the mean households → fill colour: under-full grids blue, over-full red, balanced
# near white; the steps are the tolerances planners talk in (±5 %, ±15 %, ±30 %).
DEVIATION_STEPS = [(-0.30, "#2563eb"), (-0.15, "#60a5fa"), (-0.05, "#bfdbfe"), (0.05, "#f8fafc"),
                   (0.15, "#fecaca"), (0.30, "#f87171"), (float("inf"), "#dc2626")]


def deviation_colour(dev):
    """Fill colour of a grid ``dev`` (a share, e.g. -0.1 for 10 % under the mean) from the mean."""
    for upper, colour in DEVIATION_STEPS:
        if dev < upper:
            return colour
    return DEVIATION_STEPS[-1][1]


LEGEND_LABELS = {"grid": "Grid boundary",
                 "building": "Building", "error": "Validation error", "warning": "Validation warning",
                 "department": "Department grid (overlay)", "diff_area": "Area changing grid (overlay)",
                 "diff_building": "Building changing grid (overlay)", "selected_grid": "Selected grid",
                 "selected_building": "Selected building", "problem": "Finding picked from the list",
                 "sketch": "Your drawing"}


def _pct(share):
    return f"{share * 100:+.0f} %".replace("-", "−")


def legend(labels=None):
    """What each colour and line style on the planner's map means, from the same tables that style it.

    Returns ``(deviation, lines)``: the deviation classes as ``{"key", "label", "fill"}`` (the label
    a range of shares, e.g. "−15 % … −5 %"), and every other style as ``{"key", "label", "stroke",
    "fill", "dash", "weight"}`` with ``fill`` None where the shape is drawn unfilled.
    """
    t = {**LEGEND_LABELS, **(labels or {})}
    deviation, lower = [], None
    for upper, colour in DEVIATION_STEPS:
        if lower is None:
            text = f"< {_pct(upper)}"
        elif upper == float("inf"):
            text = f"≥ {_pct(lower)}"
        else:
            text = f"{_pct(lower)} … {_pct(upper)}"
        deviation.append({"key": f"deviation:{colour}", "label": text, "fill": colour})
        lower = upper
    styles = {"grid": {**GRID_OUTLINE, "fill": False}, "building": BUILDING, "error": FINDING["error"],
              "warning": FINDING["warning"], "department": DEPARTMENT, "diff_area": DIFF_AREA,
              "diff_building": DIFF_BUILDING, "selected_grid": SELECTED_GRID,
              "selected_building": SELECTED_BUILDING, "problem": PROBLEM, "sketch": {**SKETCH, "fill": False}}
    lines = [{"key": key, "label": t[key], "stroke": style["color"], "weight": style.get("weight", 2),
              "fill": style.get("fillColor") if style.get("fill", True) else None, "dash": style.get("dashArray")}
             for key, style in styles.items()]
    return deviation, lines


def planner_map(grids, buildings=None, *, findings=(), department=None, diff=None, cameras=None, view=None,
                tiles="none", attribution="", assets=DEFAULT_ASSETS, draw_assets=DRAW_ASSETS, editable=True,
                labels=None):
    """Build the planner's map.

    Parameters
    ----------
    grids : list of dict
        Per grid: ``code``, ``name``, ``households``, ``deviation`` and a GeoJSON ``geometry``
        (as :func:`gridmap.plans.plan_state` gives them).
    buildings : GeoDataFrame, optional
        WGS84 footprints indexed by building id, with ``address`` and ``households``.
    findings : list of dict
        Validation findings (``kind``, ``severity``, ``message``, GeoJSON ``geometry``): the red layer.
    department : dict, optional
        A GeoJSON FeatureCollection of department grids (``department``, ``code``, ``name``): a dashed overlay.
    diff : dict, optional
        A plan diff's GeoJSON (features of ``kind`` area / building with ``from`` and ``to``).
    cameras : dict, optional
        The community's ``views`` and ``blind_spots``, as ``coverage.report_for(..., geometries=True)``
        gives them: two layers, off when the map opens (a community's blind space is most of it,
        and its hatching would hide the grids' colours), toggled in the layer control.
    view : (lat, lon, zoom), optional
        Where to open instead of fitting the grids: the page keeps the planner's view across reloads.
    editable : bool
        Add the draw toolbar (polygon and polyline only).
    labels : dict, optional
        Translated words: grid, households, deviation, finding, department, changed, layers names,
        and the camera layer's (:func:`gridmap.maps.cameras.camera_labels`).

    Returns
    -------
    folium.Map
        Clicks on grids and buildings, and each drawn shape, are posted to the parent window
        (``gridmap:pick`` and ``gridmap:drawn``); the parent may post ``gridmap:select``,
        ``gridmap:problem`` and ``gridmap:clear`` back.
    """
    t = {"grid": "Grid", "households": "Households", "deviation": "Deviation", "building": "Building",
         "findings": "Findings", "department": "Department grids", "diff": "Changes", "from": "from", "to": "to",
         "buildings": "Buildings", "grids": "Grids", **(labels or {})}
    bounds = _bounds(grids)
    m = base_map(bounds, tiles, attribution, assets=assets)
    m.add_child(_Registry())
    if view is not None:
        m.add_child(_SetView(*view))

    layer = folium.FeatureGroup(name=t["grids"]).add_to(m)
    for g in grids:
        style = {**GRID_OUTLINE, "fillColor": deviation_colour(g["deviation"])}
        gj = folium.GeoJson(g["geometry"], style_function=lambda _f, s=style: s)
        add_tooltip(gj, g.get("name") or g["code"], [(t["grid"], g["code"]), (t["households"], g["households"]),
                                                    (t["deviation"], f"{g['deviation']:+.1%}")], sticky=True)
        gj.add_child(_Pick("grid", g["code"]))
        gj.add_child(Feature(f"grid:{g['code']}"))
        gj.add_to(layer)
    add_grid_labels(m, ((g["code"], shapely.geometry.shape(g["geometry"])) for g in grids), assets=assets)
    m.add_child(FlyTo(assets=assets))

    # Findings lie under the buildings: a building cut by a boundary is itself a finding's
    # shape, and it must stay clickable to be moved.
    if findings:
        flayer = folium.FeatureGroup(name=t["findings"]).add_to(m)
        for f in findings:
            if not f.get("geometry"):
                continue
            style = FINDING.get(f["severity"], FINDING["warning"])
            gj = folium.GeoJson(f["geometry"], style_function=lambda _f, s=style: s)
            add_tooltip(gj, f["kind"], [("", f["message"])], sticky=True)
            gj.add_to(flayer)

    if buildings is not None and len(buildings):
        blayer = folium.FeatureGroup(name=t["buildings"]).add_to(m)
        for bid, row in buildings.iterrows():
            gj = folium.GeoJson(shapely.geometry.mapping(row.geometry), style_function=lambda _f: BUILDING)
            add_tooltip(gj, row["address"] or f"#{bid}", [(t["households"], int(row["households"]))])
            gj.add_child(_Pick("building", int(bid)))
            gj.add_to(blayer)

    if diff:
        dlayer = folium.FeatureGroup(name=t["diff"]).add_to(m)
        for f in diff.get("features", []):
            kind = f["properties"].get("kind")
            if kind not in ("area", "building") or not f.get("geometry"):
                continue  # party members' homes are personal data: not on a planning map
            style = DIFF_AREA if kind == "area" else DIFF_BUILDING
            gj = folium.GeoJson(f["geometry"], style_function=lambda _f, s=style: s)
            p = f["properties"]
            add_tooltip(gj, t["diff"], [(t["from"], p.get("from") or "—"), (t["to"], p.get("to") or "—"),
                                        (t["households"], p.get("households"))])
            gj.add_to(dlayer)

    if department:
        olayer = folium.FeatureGroup(name=t["department"]).add_to(m)
        for f in department.get("features", []):
            p = f["properties"]
            gj = folium.GeoJson(f["geometry"], style_function=lambda _f: DEPARTMENT)
            add_tooltip(gj, p.get("name") or p.get("code") or "", [(t["department"], p.get("department")),
                                                                 ("", p.get("code"))], sticky=True)
            gj.add_to(olayer)

    if cameras:
        add_camera_layer(m, cameras.get("views", []), cameras.get("blind_spots", []), labels=labels, show=False)

    if editable:
        sketch = folium.FeatureGroup(name="sketch", control=False).add_to(m)
        draw = Draw(feature_group=sketch, show_geometry_on_click=False, position="topleft",
                    draw_options={"polyline": {"shapeOptions": {**SKETCH, "weight": 4}},
                                  "polygon": {"allowIntersection": False, "showArea": False,
                                              "shapeOptions": SKETCH},
                                  "rectangle": False, "circle": False, "marker": False, "circlemarker": False},
                    edit_options={"edit": False, "remove": True})
        # Folium's Draw links a CDN copy; the vendored one keeps the map working on an intranet.
        draw.default_js = [("leaflet_draw_js", f"{draw_assets}/leaflet.draw.js")]
        draw.default_css = [("leaflet_draw_css", f"{draw_assets}/leaflet.draw.css")]
        m.add_child(_DrawLocal({k[5:]: v for k, v in t.items() if k.startswith("draw_")}))  # before the toolbar is built
        draw.add_to(m)
        m.add_child(_DrawBridge(sketch))
    folium.LayerControl(collapsed=True).add_to(m)
    return m


def _bounds(grids):
    if not grids:
        return (121.55, 38.85, 121.70, 38.95)
    b = shapely.union_all([shapely.geometry.shape(g["geometry"]) for g in grids]).bounds
    return b


class _Registry(MacroElement):
    """``window.gridmapPlanner``: layers by grid code and building id, a same-origin ``post`` and a
    selection layer the page's ``gridmap:select`` messages redraw."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function (map) {
            var origin = window.location.origin;
            var reg = window.gridmapPlanner = {map: map, grid: {}, building: {},
                post: function (msg) { if (window.parent !== window) window.parent.postMessage(msg, origin); }};
            var selection = L.featureGroup().addTo(map), problem = L.featureGroup().addTo(map);
            var SELECT = {grid: {{ this.styles.grid|tojson }}, building: {{ this.styles.building|tojson }}};
            reg.select = function (kind, keys) {
                keys.forEach(function (k) {
                    var layer = reg[kind][k];
                    if (layer) selection.addLayer(L.geoJSON(layer.toGeoJSON(), {style: SELECT[kind], interactive: false}));
                });
            };
            window.addEventListener("message", function (event) {
                // Only the page that embeds this map (same origin, our parent) may steer it.
                if (event.origin !== origin || event.source !== window.parent) return;
                var d = event.data || {};
                if (d.type === "gridmap:select") {
                    selection.clearLayers();
                    reg.select("grid", d.grids || []);
                    reg.select("building", d.buildings || []);
                } else if (d.type === "gridmap:problem") {
                    problem.clearLayers();
                    if (d.geometry) problem.addLayer(L.geoJSON(d.geometry, {style: {{ this.styles.problem|tojson }}, interactive: false}));
                } else if (d.type === "gridmap:clear" && reg.clearSketch) {
                    reg.clearSketch();
                    problem.clearLayers();
                }
            });
            map.on("moveend", function () {
                var c = map.getCenter();
                reg.post({type: "gridmap:view", lat: c.lat, lng: c.lng, zoom: map.getZoom()});
            });
        })({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self):
        super().__init__()
        self._name = "PlannerRegistry"
        self.styles = {"grid": SELECTED_GRID, "building": SELECTED_BUILDING, "problem": PROBLEM}


class _Pick(MacroElement):
    """Register the parent layer under (kind, key) and post ``gridmap:pick`` when it is clicked."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function (layer, kind, key) {
            window.gridmapPlanner[kind][key] = layer;
            layer.on("click", function (e) {
                L.DomEvent.stopPropagation(e);
                window.gridmapPlanner.post({type: "gridmap:pick", kind: kind, key: key});
            });
        })({{ this._parent.get_name() }}, {{ this.kind|tojson }}, {{ this.key|tojson }});
        {% endmacro %}
    """)

    def __init__(self, kind, key):
        super().__init__()
        self._name = "Pick"
        self.kind, self.key = kind, key


#: Leaflet.draw's own words (L.drawLocal) this map uses, in English; the web layer passes them translated
#: as ``labels["draw_<key>"]``.
DRAW_TEXTS = {
    "polygon": N_("Draw a polygon"),
    "polyline": N_("Draw a line"),
    "cancel": N_("Cancel"),
    "cancel_title": N_("Cancel drawing"),
    "finish": N_("Finish"),
    "finish_title": N_("Finish drawing"),
    "undo": N_("Delete last point"),
    "undo_title": N_("Delete last point drawn"),
    "polygon_start": N_("Click to start drawing the shape."),
    "polygon_cont": N_("Click to continue drawing the shape."),
    "polygon_end": N_("Click the first point to close this shape."),
    "line_start": N_("Click to start drawing the line."),
    "line_cont": N_("Click to continue drawing the line."),
    "line_end": N_("Click the last point to finish the line."),
    "crossing": N_("The edges of the shape cannot cross!"),
    "remove": N_("Delete the drawing"),
    "remove_none": N_("Nothing to delete"),
    "save": N_("Save"),
    "save_title": N_("Save changes"),
    "clear": N_("Clear all"),
    "clear_title": N_("Clear all drawings"),
    "remove_tip": N_("Click the drawing to delete it."),
}


class _DrawLocal(MacroElement):
    """Leaflet.draw's buttons and tooltips in the page's language (L.drawLocal, read when the toolbar is built)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function (t, d) {
            d.draw.toolbar.buttons.polygon = t.polygon; d.draw.toolbar.buttons.polyline = t.polyline;
            d.draw.toolbar.actions = {title: t.cancel_title, text: t.cancel};
            d.draw.toolbar.finish = {title: t.finish_title, text: t.finish};
            d.draw.toolbar.undo = {title: t.undo_title, text: t.undo};
            d.draw.handlers.polygon.tooltip = {start: t.polygon_start, cont: t.polygon_cont, end: t.polygon_end};
            d.draw.handlers.polyline.tooltip = {start: t.line_start, cont: t.line_cont, end: t.line_end};
            d.draw.handlers.polyline.error = "<strong>" + t.crossing + "</strong>";
            d.edit.toolbar.buttons.remove = t.remove; d.edit.toolbar.buttons.removeDisabled = t.remove_none;
            d.edit.toolbar.actions.save = {title: t.save_title, text: t.save};
            d.edit.toolbar.actions.cancel = {title: t.cancel_title, text: t.cancel};
            d.edit.toolbar.actions.clearAll = {title: t.clear_title, text: t.clear};
            d.edit.handlers.remove.tooltip = {text: t.remove_tip};
        })({{ this.texts|tojson }}, L.drawLocal);
        {% endmacro %}
    """)

    def __init__(self, texts):
        super().__init__()
        self._name = "DrawLocal"
        self.texts = {**DRAW_TEXTS, **texts}


class _DrawBridge(MacroElement):
    """Keep one sketch at a time and post each as ``gridmap:drawn`` (GeoJSON geometry, or null when deleted).

    ``gridmapPlanner.sketch(geometry)`` does what the toolbar does, for scripts and tests.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function (map, sketch) {
            var reg = window.gridmapPlanner;
            function show(layer) {
                sketch.clearLayers();
                sketch.addLayer(layer);
                reg.post({type: "gridmap:drawn", geometry: layer.toGeoJSON().geometry});
            }
            map.on(L.Draw.Event.CREATED, function (e) { show(e.layer); });
            map.on(L.Draw.Event.DELETED, function () {
                if (!sketch.getLayers().length) reg.post({type: "gridmap:drawn", geometry: null});
            });
            reg.clearSketch = function () { sketch.clearLayers(); };
            reg.sketch = function (geometry) {
                var layer = L.geoJSON(geometry, {style: {{ this.sketch_style|tojson }}}).getLayers()[0];
                show(layer);
            };
        })({{ this._parent.get_name() }}, {{ this.sketch.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, sketch):
        super().__init__()
        self._name = "DrawBridge"
        self.sketch = sketch
        self.sketch_style = SKETCH


class _SetView(MacroElement):
    _template = Template("""
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.setView([{{ this.lat }}, {{ this.lon }}], {{ this.zoom }});
        {% endmacro %}
    """)

    def __init__(self, lat, lon, zoom):
        super().__init__()
        self._name = "SetView"
        self.lat, self.lon, self.zoom = float(lat), float(lon), float(zoom)
