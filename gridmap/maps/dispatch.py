"""The dispatcher's maps: grids with the located point, grids near it and open incidents; the incident heat layer."""
from __future__ import annotations

import folium
import shapely

from .base import DEFAULT_ASSETS, PostClicks, add_tooltip, base_map
from .resident import _bounds

OUTLINE = {"color": "#2563eb", "weight": 1.5, "fillColor": "#2563eb", "fillOpacity": 0.03}
OWN = {"color": "#c2410c", "weight": 3, "fillColor": "#f97316", "fillOpacity": 0.25}
NEAR = {"color": "#b91c1c", "weight": 3, "dashArray": "6 4", "fillColor": "#fca5a5", "fillOpacity": 0.2}
POINT = {"radius": 8, "color": "#ffffff", "weight": 3, "fill": True, "fill_color": "#dc2626", "fill_opacity": 1.0}
INCIDENT = {"radius": 5, "color": "#7c2d12", "weight": 1, "fill": True, "fill_color": "#facc15", "fill_opacity": 0.9}
PRIORITY = {**INCIDENT, "fill_color": "#dc2626", "radius": 6}
# Cell colours from few to many incidents (ColorBrewer YlOrRd, 5 classes: readable on no tiles).
HEAT_COLOURS = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")


def dispatch_map(grids, *, point=None, own=None, near=(), incidents=(), tiles="none", attribution="",
                 assets=DEFAULT_ASSETS, labels=None):
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
    labels : dict, optional
        Translated words: ``grid``, ``point``, ``incident``, ``status``.
    """
    labels = {"grid": "Grid", "point": "Located point", "incident": "Incident", "status": "Status", **(labels or {})}
    near = set(near)
    shown = grids[grids["code"].isin(near | {own})] if point is not None and own else grids
    m = base_map(_bounds(shown, point), tiles, attribution, assets=assets)
    layer_grids = folium.FeatureGroup(name="grids").add_to(m)
    for row in grids.itertuples():
        style = OWN if row.code == own else NEAR if row.code in near else OUTLINE
        layer = folium.GeoJson(shapely.geometry.mapping(row.geometry), style_function=lambda _f, s=style: s)
        add_tooltip(layer, getattr(row, "name", None) or row.code, [(labels["grid"], row.code)], sticky=True)
        layer.add_to(layer_grids)
    layer_incidents = folium.FeatureGroup(name="incidents").add_to(m)
    for inc in incidents:
        # bubbling off: clicking an incident reads its tooltip, it does not relocate the panel
        dot = folium.CircleMarker([inc["lat"], inc["lon"]], bubbling_mouse_events=False,
                                  **(PRIORITY if inc.get("priority") else INCIDENT))
        add_tooltip(dot, f"{labels['incident']} #{inc['id']}",
                    [("", inc.get("category_name")), (labels["status"], inc.get("status"))])
        dot.add_to(layer_incidents)
    if point is not None:
        lon, lat = point
        marker = folium.CircleMarker([lat, lon], **POINT)
        add_tooltip(marker, labels["point"], [(labels["grid"], own)])
        marker.add_to(m)
    m.add_child(PostClicks())
    return m


def heat_map(grids, cells, *, tiles="none", attribution="", assets=DEFAULT_ASSETS, labels=None):
    """Incident counts per square cell over the grids' outlines.

    ``cells`` is a WGS84 GeoDataFrame with ``count`` (``dispatchview.heat_cells``). A count layer
    instead of a Leaflet.heat blur: it needs no plugin, and a count per 100 m square is a figure a
    street office can quote, where a blur's colour is not.
    """
    labels = {"incidents": "Incidents", "grid": "Grid", **(labels or {})}
    m = base_map(_bounds(grids, None), tiles, attribution, assets=assets)
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
