"""The grid worker's map: my grids, today's patrol track and check-ins, buildings unvisited this month, my open incidents."""
from __future__ import annotations

import folium
import shapely

from .base import DEFAULT_ASSETS, PostClicks, add_popup, add_tooltip, base_map
from .labels import Feature, FlyTo, add_grid_labels, frame_pairs

GRID = {"color": "#2563eb", "weight": 2, "fillColor": "#2563eb", "fillOpacity": 0.06}
TRACK = {"color": "#7c3aed", "weight": 4, "opacity": 0.85}
UNVISITED = {"radius": 4, "color": "#b45309", "weight": 1, "fill": True, "fill_color": "#f59e0b", "fill_opacity": 0.9}
CHECKIN = {"radius": 7, "color": "#ffffff", "weight": 2, "fill": True, "fill_color": "#15803d", "fill_opacity": 1.0}
INCIDENT = {"radius": 8, "color": "#ffffff", "weight": 2, "fill": True, "fill_color": "#dc2626", "fill_opacity": 1.0}
#: What the page's legend says each style is (the template draws the swatches from these colours).
LEGEND = {"grid": GRID["color"], "track": TRACK["color"], "unvisited": UNVISITED["fill_color"],
          "checkin": CHECKIN["fill_color"], "incident": INCIDENT["fill_color"]}


def worker_map(grids, *, track=(), checkins=(), unvisited=(), incidents=(), tiles="none", attribution="",
               assets=DEFAULT_ASSETS, labels=None, status_labels=None):
    """Build the workbench's map.

    Parameters
    ----------
    grids : GeoDataFrame
        The worker's grids (WGS84, ``code``, ``name``); the view fits them.
    track : list of [[lon, lat], …]
        Today's patrols, one line each.
    checkins, unvisited, incidents : list of dict
        Today's check-ins (``address``, ``at``, ``note``, ``building_id``), the buildings nobody
        visited this month (``address``, ``lon``, ``lat``) and the open incidents (``id``,
        ``category_name``, ``status``, ``lon``, ``lat``, ``overdue``), as the workbench's page builder gives them.
    labels : dict
        Translated words: ``grid``, ``track``, ``checkin``, ``unvisited``, ``incident``, ``status``, ``overdue``.
    """
    labels = {"grid": "Grid", "track": "Today's patrol", "checkin": "Check-in", "unvisited": "Not visited this month",
              "incident": "Incident", "status": "Status", "overdue": "Overdue", **(labels or {})}
    status_labels = status_labels or {}
    m = base_map(_bounds(grids, track), tiles, attribution, assets=assets)
    layer = folium.FeatureGroup(name="grids").add_to(m)
    for row in grids.itertuples():
        g = folium.GeoJson(shapely.geometry.mapping(row.geometry), style_function=lambda _f: GRID)
        add_tooltip(g, row.name or row.code, [(labels["grid"], row.code)], sticky=True)
        g.add_child(Feature(f"grid:{row.code}"))
        g.add_to(layer)
    add_grid_labels(m, frame_pairs(grids), assets=assets)
    places = {c["building_id"]: c for c in checkins}
    for b in unvisited:
        if b["id"] in places:
            continue
        dot = folium.CircleMarker([b["lat"], b["lon"]], **UNVISITED)
        add_tooltip(dot, b["address"], [("", labels["unvisited"])])
        dot.add_to(m)
    for line in track:
        if len(line) >= 2:
            folium.PolyLine([[lat, lon] for lon, lat in line], class_name="patrol-track", **TRACK).add_to(m)
        elif line:
            folium.CircleMarker([line[0][1], line[0][0]], radius=4, color=TRACK["color"], fill=True).add_to(m)
    for c in checkins:
        if c.get("lon") is None:
            continue
        dot = folium.CircleMarker([c["lat"], c["lon"]], **CHECKIN)
        add_popup(dot, labels["checkin"], [("", c["address"]), ("", c["at"]), ("", c["note"])])
        dot.add_to(m)
    for i in incidents:
        if i.get("lon") is None:
            continue
        dot = folium.CircleMarker([i["lat"], i["lon"]], **INCIDENT)
        add_popup(dot, f"{labels['incident']} #{i['id']}",
                  [("", i["category_name"]), (labels["status"], status_labels.get(i["status"], i["status"])),
                   ("", labels["overdue"] if i.get("overdue") else "")])
        dot.add_to(m)
    m.add_child(FlyTo(assets=assets))
    m.add_child(PostClicks())
    return m


def _bounds(grids, track):
    boxes = [tuple(grids.total_bounds)] if len(grids) else []
    pts = [p for line in track for p in line]
    if pts:
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        boxes.append((min(xs), min(ys), max(xs), max(ys)))
    if not boxes:
        return (121.55, 38.85, 121.70, 38.95)
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
