"""The dispatcher's maps: the located point and its grids, open incidents, whom to send, cameras; the heat layer.

The map of a point shows its grid, the grids near it and the open incidents; of an incident, whom to
send there and the cameras around the spot.
"""
from __future__ import annotations

import folium
import shapely
from branca.element import Element, MacroElement
from folium.template import Template
from markupsafe import Markup

from .base import DEFAULT_ASSETS, PostClicks, add_tooltip, base_map
from .cameras import add_camera_layer
from .labels import Feature, FlyTo, add_grid_labels, frame_pairs
from .resident import _bounds

OUTLINE = {"color": "#2563eb", "weight": 1.5, "fillColor": "#2563eb", "fillOpacity": 0.03}
OWN = {"color": "#c2410c", "weight": 3, "fillColor": "#f97316", "fillOpacity": 0.25}
NEAR = {"color": "#b91c1c", "weight": 3, "dashArray": "6 4", "fillColor": "#fca5a5", "fillOpacity": 0.2}
POINT = {"radius": 8, "color": "#ffffff", "weight": 3, "fill": True, "fill_color": "#dc2626", "fill_opacity": 1.0,
         "class_name": "located-point"}
INCIDENT = {"radius": 5, "color": "#7c2d12", "weight": 1, "fill": True, "fill_color": "#facc15", "fill_opacity": 0.9}
PRIORITY = {**INCIDENT, "fill_color": "#dc2626", "radius": 6}
SELECTED = {"radius": 10, "color": "#ffffff", "weight": 3, "fill": True, "fill_color": "#dc2626", "fill_opacity": 1.0,
            "class_name": "selected-incident"}  # the incident opened: larger than the others, drawn above its lines
# Whom to send, one colour per kind (grid workers blue, volunteers green, each responder kind its own),
# with the kind's first character in the badge: colour alone fails the colour-blind.
PROPOSAL_COLOURS = {"grid_worker": "#1d4ed8", "volunteer": "#15803d", "police": "#1e3a8a",
                    "auxiliary_police": "#0369a1", "mediator": "#7c3aed", "property_management": "#a16207",
                    "utility": "#0f766e", "medical": "#be123c", "legal": "#4d7c0f", "fire": "#c2410c"}
OTHER_COLOUR = "#475569"
_BADGE_CSS = Markup("""<style>
.proposal-icon span { display: block; width: 22px; height: 22px; line-height: 20px; border-radius: 50%;
  border: 2px solid #fff; box-shadow: 0 0 3px rgba(0,0,0,.6); color: #fff; text-align: center;
  font: bold 12px/20px sans-serif; box-sizing: border-box; }
</style>""")
# The views of the cameras that see the spot: a dark outline over their coloured sector, and a ring
# round the camera. Not interactive, so the sector's tooltip underneath still answers a hover.
SEEING = {"color": "#111827", "weight": 3, "opacity": 1.0, "fill": False, "interactive": False,
          "className": "gridmap-camera-seeing"}
SEEING_RING = {"radius": 8, "color": "#111827", "weight": 2.5, "fill": False, "interactive": False,
               "class_name": "gridmap-camera-seeing-ring"}
# Cell colours from few to many incidents (ColorBrewer YlOrRd, 5 classes: readable on no tiles).
HEAT_COLOURS = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")


def dispatch_map(grids, *, point=None, own=None, near=(), incidents=(), incident=None, proposal=None,
                 cameras=None, seeing=(), tiles="none", attribution="", assets=DEFAULT_ASSETS, labels=None,
                 kind_labels=None, status_labels=None):
    """Build the dispatcher's map.

    Parameters
    ----------
    grids : GeoDataFrame
        WGS84 grids to outline, with ``code`` and ``name``.
    point : (lon, lat), optional
        The located point.
    own : str, optional
        Code of the point's grid (filled).
    near : iterable of str
        Codes of other grids within the warning distance (dashed red).
    incidents : iterable of dict
        Open incidents with ``id``, ``lon``, ``lat``, ``category_name``, ``status``, ``priority``.
    incident : dict, optional
        The incident the dispatcher opened (keys as in ``incidents``): drawn larger, and the map
        is fitted to it and the nearest person of each kind in ``proposal``.
    proposal : dict, optional
        Whom to send to ``incident``, as ``dispatch.with_stations`` gives it: ``grid_workers``,
        ``responders`` (kind → list) and ``volunteers``, each person with ``name``, ``phone``
        (already masked for the role), ``lon``, ``lat``, ``distance_m``. Each person with a
        position gets a badge of its kind and a line from the incident.
    cameras : dict, optional
        The camera layer of the spot's community, as ``coverage.report_for(..., geometries=True)``
        gives it (``views``, ``blind_spots``): drawn off, to be switched on in the layer control.
    seeing : iterable of int
        Ids of the cameras that see the spot (``Snapshot.cameras_seeing``): their views are
        outlined and their markers ringed inside the camera layer.
    labels : dict, optional
        Translated words: ``grid``, ``point``, ``incident``, ``status``, ``category``, ``kind``, ``phone``,
        ``distance``, and the camera layer's (:func:`gridmap.maps.cameras.camera_labels`).
    kind_labels : dict, optional
        Translated kind names ("grid_worker", "volunteer" and the responder kinds) for badges and tooltips.
    status_labels : dict, optional
        Translated status names (code → name) for the incidents' tooltips; a code without a name shows as is.
    """
    labels = {"grid": "Grid", "point": "Located point", "incident": "Incident", "status": "Status",
              "category": "Category", "kind": "Kind", "phone": "Phone", "distance": "Distance", **(labels or {})}
    near = set(near)
    statuses = status_labels or {}
    people = _people(proposal) if incident is not None and proposal else []
    if incident is not None:
        # open on the incident and the nearest of each kind: the third medical team may be 20 km off,
        # and fitting it too would shrink the street around the incident to a dot; the farther
        # people lie at the end of their lines
        nearest = {}
        for kind, p in sorted(people, key=lambda kp: kp[1]["distance_m"], reverse=True):
            nearest[kind] = p  # the last one written, the nearest, stays
        # centred on the incident (as far out on each side as the farthest nearest one on any side): a
        # row opened from the list flies the map to the incident, which then sits where the eye looks
        x0, y0 = incident["lon"], incident["lat"]
        half_x = max([abs(p["lon"] - x0) for p in nearest.values()], default=0.0)
        half_y = max([abs(p["lat"] - y0) for p in nearest.values()], default=0.0)
        pad = 0.0005  # about 50 m, so a badge on the edge is not cut in half
        bounds = (x0 - half_x - pad, y0 - half_y - pad, x0 + half_x + pad, y0 + half_y + pad)
    else:
        shown = grids[grids["code"].isin(near | {own})] if point is not None and own else grids
        bounds = _bounds(shown, point)
    m = base_map(bounds, tiles, attribution, assets=assets)
    # only the camera layers are for switching: grids, incidents and whom to send stay out of the control
    layer_grids = folium.FeatureGroup(name="grids", control=False).add_to(m)
    for row in grids.itertuples():
        style = OWN if row.code == own else NEAR if row.code in near else OUTLINE
        layer = folium.GeoJson(shapely.geometry.mapping(row.geometry), style_function=lambda _f, s=style: s)
        add_tooltip(layer, getattr(row, "name", None) or row.code, [(labels["grid"], row.code)], sticky=True)
        layer.add_to(layer_grids)
    add_grid_labels(m, frame_pairs(grids), assets=assets, focus=[own] + sorted(near) if own else sorted(near))
    if cameras:
        _add_cameras(m, cameras, set(seeing), labels)
    layer_incidents = folium.FeatureGroup(name="incidents", control=False).add_to(m)
    for inc in incidents:
        # bubbling off: clicking an incident reads its tooltip, it does not relocate the panel
        dot = folium.CircleMarker([inc["lat"], inc["lon"]], bubbling_mouse_events=False,
                                  **(PRIORITY if inc.get("priority") else INCIDENT))
        add_tooltip(dot, f"{labels['incident']} #{inc['id']}",
                    [(labels["category"], inc.get("category_name")),
                     (labels["status"], statuses.get(inc.get("status"), inc.get("status")))])
        dot.add_child(Feature(f"incident:{inc['id']}"))
        dot.add_to(layer_incidents)
    on_top = [layer_incidents]
    if incident is not None:
        on_top.append(_add_proposal(m, incident, people, labels, kind_labels or {}, statuses))
    if point is not None:
        lon, lat = point
        marker = folium.CircleMarker([lat, lon], **POINT)
        add_tooltip(marker, labels["point"], [(labels["grid"], own)])
        marker.add_to(m)
        on_top.append(marker)
    if cameras:
        m.add_child(_KeepOnTop(on_top))
        folium.LayerControl(collapsed=False).add_to(m)
    m.add_child(FlyTo(assets=assets))
    m.add_child(PostClicks())
    return m


def _add_cameras(m, report, seeing, labels):
    """The community's camera layer (off), the views of the cameras in ``seeing`` outlined inside it."""
    layer, _blind = add_camera_layer(m, report.get("views", []), report.get("blind_spots", []), labels=labels,
                                     show=False)
    for cam in report.get("views", []):
        if cam.get("id") not in seeing:
            continue
        # the camera's id in a class of its own, so the page (and a test) can tell which view this is
        if cam.get("geometry") is not None:
            style = {**SEEING, "className": f"{SEEING['className']} gridmap-camera-{int(cam['id'])}"}
            folium.GeoJson(_mapping(cam["geometry"]), style_function=lambda _f, s=style: s).add_to(layer)
        if cam.get("lat") is not None and cam.get("lon") is not None:
            folium.CircleMarker([cam["lat"], cam["lon"]], **SEEING_RING).add_to(layer)


def _mapping(geometry):
    return shapely.geometry.mapping(geometry) if hasattr(geometry, "geom_type") else geometry


def _people(proposal):
    """(kind, person) for everyone proposed who has a position, grid workers first, as the panel lists them."""
    out = [("grid_worker", w) for w in proposal.get("grid_workers", ())]
    out += [(kind, r) for kind, rs in proposal.get("responders", {}).items() for r in rs]
    out += [("volunteer", v) for v in proposal.get("volunteers", ())]
    return [(kind, p) for kind, p in out
            if p.get("lon") is not None and p.get("lat") is not None and p.get("distance_m") is not None]


def _add_proposal(m, incident, people, labels, kind_labels, statuses):
    m.get_root().header.add_child(Element(_BADGE_CSS), name="proposal_css")
    layer = folium.FeatureGroup(name="proposal", control=False).add_to(m)
    start = [incident["lat"], incident["lon"]]
    for kind, p in people:
        colour = PROPOSAL_COLOURS.get(kind, OTHER_COLOUR)
        kind_name = kind_labels.get(kind, kind)
        rows = [(labels["kind"], kind_name), (labels["distance"], _metres(p.get("distance_m"))),
                (labels["phone"], p.get("phone"))]
        line = folium.PolyLine([start, [p["lat"], p["lon"]]], color=colour, weight=2, dash_array="5 4", opacity=0.9,
                               class_name=f"proposal-line proposal-line-{kind}", bubbling_mouse_events=False)
        add_tooltip(line, p["name"], rows, sticky=True)
        line.add_to(layer)
        # the name rides in aria-label, so a screen reader (and a test) can tell the badges apart
        badge = Markup('<span role="img" aria-label="{}" data-kind="{}" style="background:{}">{}</span>').format(
            f"{kind_name} {p['name']}", kind, colour, (kind_name or "?")[:1])
        marker = folium.Marker([p["lat"], p["lon"]], icon=folium.DivIcon(
            html=str(badge), icon_size=(22, 22), icon_anchor=(11, 11), class_name=f"proposal-icon proposal-{kind}"))
        add_tooltip(marker, p["name"], rows)
        marker.add_to(layer)
    dot = folium.CircleMarker(start, bubbling_mouse_events=False, **SELECTED)
    dot.add_child(Feature(f"incident:{incident['id']}"))  # drawn last: a row's fly finds the opened one
    add_tooltip(dot, f"{labels['incident']} #{incident['id']}",
                [(labels["category"], incident.get("category_name")),
                 (labels["status"], statuses.get(incident.get("status"), incident.get("status")))])
    dot.add_to(layer)
    return layer


def _metres(d):
    if d is None:
        return None
    return f"{d / 1000:.2f} km" if d >= 1000 else f"{round(d)} m"


class _KeepOnTop(MacroElement):
    """Bring the incidents, whom to send and the located point back above a camera layer switched on.

    Leaflet draws a layer added later above the ones before it, and the camera layers are added
    when switched on: their sectors would cover the incident dots and swallow their hovers.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.on("overlayadd", function () {
                {%- for name in this.names %}
                {{ name }}.bringToFront();
                {%- endfor %}
            });
        {% endmacro %}
    """)

    def __init__(self, layers):
        super().__init__()
        self._name = "KeepOnTop"
        self.names = [layer.get_name() for layer in layers]


#: The widest view the statistics map opens on, in degrees (~3 km at Dalian's latitude): 100 m squares
#: are then ~12 px or more on a laptop, and the opening view shows counts a person can read.
HEAT_VIEW_DEG = 0.03


def heat_view(grids, cells):
    """The bounds the statistics map opens on: every counted cell when they fit in
    :data:`HEAT_VIEW_DEG`, else that window around the busiest cell (zooming out shows the rest)."""
    if not len(cells):
        return _bounds(grids, None)
    minx, miny, maxx, maxy = cells.total_bounds
    if maxx - minx <= HEAT_VIEW_DEG and maxy - miny <= HEAT_VIEW_DEG:
        return minx, miny, maxx, maxy
    busiest = cells.geometry.iloc[int(cells["count"].to_numpy().argmax())].centroid
    half = HEAT_VIEW_DEG / 2
    return busiest.x - half, busiest.y - half, busiest.x + half, busiest.y + half


def heat_map(grids, cells, *, tiles="none", attribution="", assets=DEFAULT_ASSETS, labels=None):
    """Incident counts per square cell over the grids' outlines.

    ``cells`` is a WGS84 GeoDataFrame with ``count`` (``dispatch.heat_cells``). A count layer
    instead of a Leaflet.heat blur: it needs no plugin, and a count per 100 m square is a figure a
    street office can quote, where a blur's colour is not.
    """
    labels = {"incidents": "Incidents", "grid": "Grid", **(labels or {})}
    m = base_map(heat_view(grids, cells), tiles, attribution, assets=assets)
    for row in grids.itertuples():
        layer = folium.GeoJson(shapely.geometry.mapping(row.geometry), style_function=lambda _f: OUTLINE)
        add_tooltip(layer, getattr(row, "name", None) or row.code, [(labels["grid"], row.code)], sticky=True)
        layer.add_to(m)
    top = float(cells["count"].max()) if len(cells) else 1.0
    for row in cells.itertuples():
        colour = HEAT_COLOURS[min(len(HEAT_COLOURS) - 1, int(len(HEAT_COLOURS) * row.count / (top + 1e-9)))]
        style = {"color": colour, "weight": 0.5, "fillColor": colour, "fillOpacity": 0.7}
        layer = folium.GeoJson(shapely.geometry.mapping(row.geometry), style_function=lambda _f, s=style: s)
        add_tooltip(layer, labels["incidents"], [(labels["incidents"], int(row.count))])
        layer.add_to(m)
    return m
