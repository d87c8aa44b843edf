"""The resident's map: a community's grids outlined, the resident's grid filled, the located point."""
from __future__ import annotations

import folium
import shapely

from branca.element import MacroElement
from folium.template import Template

from .base import DEFAULT_ASSETS, PostClicks, ZoomOnClick, add_popup, add_tooltip, base_map
from .labels import COMMUNITY, add_grid_labels, frame_pairs, label_item

OUTLINE = {"color": "#2563eb", "weight": 2, "fillColor": "#2563eb", "fillOpacity": 0.04}
HIGHLIGHT = {"color": "#c2410c", "weight": 3, "fillColor": "#f97316", "fillOpacity": 0.35}
POINT = {"radius": 8, "color": "#ffffff", "weight": 3, "fill": True, "fill_color": "#dc2626", "fill_opacity": 1.0}


def grid_map(grids, highlight=None, point=None, *, communities=None, tiles="none", attribution="",
             assets=DEFAULT_ASSETS, labels=None):
    """Build the resident's map.

    Parameters
    ----------
    grids : GeoDataFrame
        WGS84 grids to outline, with ``code`` and optional ``name``.
    highlight : str, optional
        Code of the grid to fill (the resident's grid).
    point : (lon, lat), optional
        The located point, drawn as a circle marker. The view fits every grid and the point:
        a resident sees their grid among its neighbours and can tap a neighbour.
    communities : DataFrame, optional
        ``code`` and ``name`` of communities. When ``grids`` span several communities (the
        overview before any lookup), each gets a named label; tapping it zooms to the community.
    tiles, attribution : str
        The ``MAP_TILES`` and ``MAP_TILES_ATTRIBUTION`` settings.
    assets : str
        URL of the vendored Leaflet folder.
    labels : dict, optional
        Translated words for the popups: ``grid`` and ``you_are_here``.

    Returns
    -------
    folium.Map
        Clicks on it are posted to the parent window (see ``base.PostClicks``).
    """
    labels = {"grid": "Grid", "you_are_here": "You are here", **(labels or {})}
    focus = grids[grids["code"] == highlight] if highlight is not None else grids.iloc[0:0]
    overview = (communities is not None and "community_code" in grids.columns
                and grids["community_code"].nunique() > 1)
    bounds = _bounds(grids, point)
    # Room on the right and below for the community labels drawn beside their dots.
    padding = ((24, 24), (110, 40)) if overview else ((8, 8), (8, 8))
    m = base_map(bounds, tiles, attribution, assets=assets, padding=padding)

    outlines = folium.FeatureGroup(name="grids").add_to(m)
    for row in grids.itertuples():
        name = getattr(row, "name", None) or row.code
        style = HIGHLIGHT if row.code == highlight else OUTLINE
        # One layer per grid keeps each tooltip bound to its own polygon, and the GeoJSON
        # carries only the geometry: names and codes reach the page through the escaped tooltip.
        layer = folium.GeoJson(shapely.geometry.mapping(row.geometry), style_function=lambda _f, s=style: s)
        add_tooltip(layer, name, [(labels["grid"], row.code)], sticky=True)
        layer.add_to(outlines)

    if point is not None:
        lon, lat = point
        marker = folium.CircleMarker(location=[lat, lon], **POINT)
        title = labels["you_are_here"]
        rows = []
        if len(focus):
            row = focus.iloc[0]
            rows = [(labels["grid"], f"{row.get('name') or row['code']} ({row['code']})")]
        add_popup(marker, title, rows)
        marker.add_to(m)

    extra = _community_labels(m, grids, communities) if overview else []
    add_grid_labels(m, frame_pairs(grids), assets=assets, focus=[highlight] if highlight else (), extra=extra)

    m.add_child(PostClicks())
    return m


def _community_labels(m, grids, communities):
    """A tappable dot per community and its name beside it (labels that give way to each other, see
    maps/labels.py): at city scale its grids are specks a thumb cannot aim at. Returns the labels."""
    names = dict(zip(communities["code"], communities["name"]))
    labels = []
    for code, own in grids.groupby("community_code"):
        minx, miny, maxx, maxy = own.total_bounds
        centre = own.geometry.union_all().representative_point()
        # bubblingMouseEvents off: the dot answers for its community (AskHere), wherever the thumb
        # landed on it, and zooms there; the map's own click would ask about the tapped pixel, which
        # at a city-wide zoom may lie outside every community
        dot = folium.CircleMarker([centre.y, centre.x], radius=9, color="#1d4ed8", weight=2, fill=True,
                                  fill_color="#ffffff", fill_opacity=1.0, bubbling_mouse_events=False,
                                  class_name="community-dot")
        name = names.get(code) or code
        add_tooltip(dot, name)
        dot.add_child(ZoomOnClick([[miny, minx], [maxy, maxx]]))
        dot.add_child(_AskHere())
        dot.add_to(m)
        labels.append(label_item(name, centre, priority=COMMUNITY, kind="community", key=f"community:{code}",
                                 zoom_to=[[miny, minx], [maxy, maxx]], side="right"))
    return labels


class _AskHere(MacroElement):
    """Post a click at the parent marker's own position: the page looks that place up."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.on("click", function () {
                if (window.parent === window) { return; }
                var at = {{ this._parent.get_name() }}.getLatLng();
                window.parent.postMessage({type: "gridmap:click", lat: at.lat, lng: at.lng}, window.location.origin);
            });
        {% endmacro %}
    """)

    def __init__(self):
        super().__init__()
        self._name = "AskHere"


def _bounds(frame, point):
    """Bounds of ``frame`` grown to include ``point``; a small box around the point alone."""
    boxes = []
    if len(frame):
        boxes.append(tuple(frame.total_bounds))
    if point is not None:
        lon, lat = point
        pad = 0.002  # about 200 m: enough to see the streets around a point outside any grid
        boxes.append((lon - pad, lat - pad, lon + pad, lat + pad))
    if not boxes:
        return (121.55, 38.85, 121.70, 38.95)  # central Dalian, for an empty store
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
