"""Labels on the maps (grid numbers, community names) and features a page can fly the map to.

Both work client-side in one shared script each (static/labels.js, static/fly.js), because what
fits and what collides depends on the zoom a person chooses, not on anything the server knows.
The server gives each label its anchor and the room around it (the polygon's horizontal and
vertical chords through the anchor): labels.js shows a label only from the zoom where it fits
in that room, and hides the lower-priority one of two labels whose boxes would overlap.
"""
from __future__ import annotations

import shapely
from branca.element import MacroElement
from folium.elements import JSCSSMixin
from folium.template import Template

#: Priorities: a name people look for wins over a number, the grid the page is about over its neighbours.
COMMUNITY, FOCUS, GRID = 30, 20, 10


def short_number(code):
    """The number a grid is called by on a map: the last three digits of its 15-digit code (its number
    within its community), as the planner's table shows it."""
    code = str(code)
    return code[-3:] if len(code) > 3 else code


def label_item(text, geometry, *, priority=GRID, kind="grid", key=None, zoom_to=None, side=None):
    """One label for labels.js: ``text`` inside ``geometry`` with the room around it.

    The anchor is the middle of the longest-held horizontal run through the representative point,
    and ``room`` is [west, east, south, north]: that run, and the vertical run through the anchor.
    labels.js shows the label once its box fits that room at the map's zoom. A point or line gets no
    room and is always a candidate (only collisions hide it). ``zoom_to`` ([[s, w], [n, e]]) makes
    the label a button that zooms there; ``side="right"`` draws it beside its anchor (a dot's name).
    """
    anchor = geometry.representative_point()
    x, y, room = anchor.x, anchor.y, None
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        minx, miny, maxx, maxy = geometry.bounds
        across = _run(geometry, shapely.LineString([(minx - 1e-6, y), (maxx + 1e-6, y)]), x, axis=0)
        if across is not None:
            x = (across[0] + across[1]) / 2  # on the run, so still inside the polygon
            down = _run(geometry, shapely.LineString([(x, miny - 1e-6), (x, maxy + 1e-6)]), y, axis=1)
            if down is not None:
                room = [round(across[0], 7), round(across[1], 7), round(down[0], 7), round(down[1], 7)]
    item = {"text": str(text), "lat": round(y, 7), "lng": round(x, 7), "priority": priority, "kind": kind,
            "room": room}
    if key is not None:
        item["key"] = str(key)
    if zoom_to is not None:
        item["zoomTo"] = [[float(v) for v in corner] for corner in zoom_to]
    if side is not None:
        item["side"] = side
    return item


def _run(geometry, line, at, axis):
    """(low, high) along ``axis`` of the piece of ``line`` inside ``geometry`` that holds ``at``."""
    cut = geometry.intersection(line)
    pieces = getattr(cut, "geoms", [cut])
    for piece in pieces:
        if piece.is_empty or piece.geom_type != "LineString":
            continue
        values = [c[axis] for c in piece.coords]
        lo, hi = min(values), max(values)
        if lo - 1e-9 <= at <= hi + 1e-9:
            return lo, hi
    return None


def static_root(assets):
    """The app's static folder URL from the vendored Leaflet's (``…/static/vendor/leaflet``): the maps
    get one asset URL from the web layer and the shared scripts sit two folders up."""
    return assets.rsplit("/vendor/", 1)[0] if "/vendor/" in assets else "/static"


class MapLabels(JSCSSMixin):
    """``gridmapLabels.add(map, items)``: labels that show where they fit and never overlap (static/labels.js)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            window.gridmapLabels.add({{ this._parent.get_name() }}, {{ this.items|tojson }});
        {% endmacro %}
    """)

    def __init__(self, items, *, assets):
        super().__init__()
        self._name = "MapLabels"
        self.items = list(items)
        self.default_js = [("gridmap_labels", f"{static_root(assets)}/labels.js")]


class FlyTo(JSCSSMixin):
    """Let the embedding page fly the map to a feature registered with :class:`Feature` and highlight it
    (``{type: "gridmap:fly", key}`` posted from the same origin; static/fly.js)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            window.gridmapFly.attach({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, *, assets):
        super().__init__()
        self._name = "FlyTo"
        self.default_js = [("gridmap_fly", f"{static_root(assets)}/fly.js")]


class Feature(MacroElement):
    """Register the parent layer under ``key`` (e.g. ``grid:210213013004009``) for :class:`FlyTo`."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            if (window.gridmapFly) window.gridmapFly.register({{ this.key|tojson }}, {{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, key):
        super().__init__()
        self._name = "Feature"
        self.key = str(key)


def add_grid_labels(m, grids, *, assets, focus=(), extra=()):
    """Label each grid of ``grids`` ((code, shapely geometry) pairs) with its short number; grids in
    ``focus`` win collisions. ``extra`` labels (e.g. communities) join the same decluttering."""
    focus = set(focus)
    items = [label_item(short_number(code), geom, priority=FOCUS if code in focus else GRID, key=f"grid:{code}")
             for code, geom in grids if geom is not None and not geom.is_empty]
    m.add_child(MapLabels([*extra, *items], assets=assets))
    return m


def frame_pairs(frame):
    """(code, geometry) of each row of a grids GeoDataFrame, for :func:`add_grid_labels`."""
    return zip(frame["code"], frame.geometry)
