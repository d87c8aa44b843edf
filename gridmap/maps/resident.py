"""The resident's map: a community's grids outlined, the resident's grid filled, the located point."""
from __future__ import annotations

import folium
import shapely

from .base import DEFAULT_ASSETS, PostClicks, add_popup, add_tooltip, base_map

OUTLINE = {"color": "#2563eb", "weight": 2, "fillColor": "#2563eb", "fillOpacity": 0.04}
HIGHLIGHT = {"color": "#c2410c", "weight": 3, "fillColor": "#f97316", "fillOpacity": 0.35}
POINT = {"radius": 8, "color": "#ffffff", "weight": 3, "fill": True, "fill_color": "#dc2626", "fill_opacity": 1.0}


def grid_map(grids, highlight=None, point=None, *, tiles="none", attribution="", assets=DEFAULT_ASSETS,
             labels=None):
    """Build the resident's map.

    Parameters
    ----------
    grids : GeoDataFrame
        WGS84 grids to outline, with ``code`` and optional ``name``.
    highlight : str, optional
        Code of the grid to fill (the resident's grid).
    point : (lon, lat), optional
        The located point, drawn as a circle marker; the view is fitted to the highlighted
        grid and the point when given, else to every grid.
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
    bounds = _bounds(focus if len(focus) else grids, point)
    m = base_map(bounds, tiles, attribution, assets=assets)

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

    m.add_child(PostClicks())
    return m


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
