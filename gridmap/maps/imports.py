"""The map of a dry run: the file's features, the ones the import would reject in red with their problems."""
from __future__ import annotations

import folium
import shapely

from .base import DEFAULT_ASSETS, add_tooltip, base_map

GOOD = {"color": "#2563eb", "weight": 1.5, "fillColor": "#2563eb", "fillOpacity": 0.15, "radius": 4}
BAD = {"color": "#dc2626", "weight": 3, "fillColor": "#dc2626", "fillOpacity": 0.35, "radius": 6}
#: Bad features get a tooltip each (their problems); past this many the colour alone says it.
TOOLTIPS = 500


def dry_run_map(collection, problems_by_row, *, tiles="none", attribution="", assets=DEFAULT_ASSETS, labels=None):
    """Build the map of a dry run.

    Parameters
    ----------
    collection : dict
        GeoJSON FeatureCollection in WGS84 whose features carry ``row`` and ``bad``
        (:func:`gridmap.importer.preview.inspect`'s ``features``).
    problems_by_row : dict
        Row → the problem dicts of that row, for the bad features' tooltips.
    tiles, attribution, assets :
        As :func:`gridmap.maps.base.base_map` takes them.
    labels : dict, optional
        Translated words: ``feature`` (e.g. "Feature %(row)s"), ``good`` and ``bad`` (layer names).

    Returns
    -------
    folium.Map
        Bad features are drawn last, so they lie above the good ones.
    """
    labels = {"feature": "Feature %(row)s", "good": "Features", "bad": "Rejected features", **(labels or {})}
    feats = collection.get("features") or []
    shapes = [shapely.geometry.shape(f["geometry"]) for f in feats]
    bounds = shapely.GeometryCollection(shapes).bounds if shapes else (121.55, 38.85, 121.70, 38.95)
    m = base_map(bounds, tiles, attribution, assets=assets)
    good = [f for f in feats if not f["properties"]["bad"]]
    if good:
        # one layer for all of them: a file of thousands of features stays one script block
        folium.GeoJson({"type": "FeatureCollection", "features": [_bare(f) for f in good]}, name=labels["good"],
                       style_function=lambda _f: GOOD, marker=folium.CircleMarker(**_marker(GOOD))).add_to(m)
    bad = [f for f in feats if f["properties"]["bad"]]
    if bad:
        group = folium.FeatureGroup(name=labels["bad"]).add_to(m)
        for n, f in enumerate(bad):
            layer = folium.GeoJson(_bare(f), style_function=lambda _f: BAD, marker=folium.CircleMarker(**_marker(BAD)))
            if n < TOOLTIPS:
                row = f["properties"]["row"]
                rows = [(p["field"], f"{p['message']}. {p['fix']}") for p in problems_by_row.get(row, [])]
                add_tooltip(layer, labels["feature"] % {"row": row}, rows, sticky=True)
            layer.add_to(group)
    return m


def _bare(feature):
    """The feature with its geometry only: nothing of the file's text reaches the map's script unescaped."""
    return {"type": "Feature", "geometry": feature["geometry"], "properties": {}}


def _marker(style):
    return {"radius": style["radius"], "color": style["color"], "weight": style["weight"], "fill": True,
            "fill_color": style["fillColor"], "fill_opacity": style["fillOpacity"]}
