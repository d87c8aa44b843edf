"""What the city dashboard shows: the figures of :mod:`gridmap.dispatch.kpis` and the trend chart as geometry.

The chart is drawn on the server as inline SVG (no chart library, no CDN): this module turns the
trend into bars, a line and axis ticks in the SVG's own units; the template writes them with labels
in the page's language.
"""
from __future__ import annotations

from ..dispatch import kpis
from ..tiles import LAYERS

CHART_W, CHART_H = 640, 220
_PAD = {"left": 44, "right": 8, "top": 10, "bottom": 34}
MAP_KPIS = ("reported", "closure_rate", "on_time_rate", "open", "overdue", "escalated", "whistled")
#: the dashboard's area level → the city map's tile layer of it (gridmap.tiles.LAYERS)
MAP_LAYERS = {"district": "districts", "street": "streets", "community": "communities", "grid": "grids"}


def page(session, query, *, role=None, area=None, now=None):
    """The dashboard's figures (:func:`gridmap.dispatch.kpis.dashboard`) with ``chart`` (:func:`trend_chart`)
    and ``map_values`` (KPI → {child code: value}, what the map colours by)."""
    out = kpis.dashboard(session, query, role=role, area=area, now=now)
    out["chart"] = trend_chart(out["trend"])
    out["map_values"] = {k: {c["code"]: c[k] for c in out["children"] if c["code"] is not None} for k in MAP_KPIS}
    out["map"] = map_focus(out["area"]["level"], out["area"]["code"])
    return out


def map_focus(level, code):
    """Where the embedded city map (:mod:`gridmap.maps.city`) shows an area of the dashboard.

    ``layer`` is the tile layer the KPI colours (the area's children; the grid itself for a grid), ``band``
    the zooms in which that layer is the one drawn filled and clickable (its ``min_zoom`` up to the next
    layer's), ``area`` the tile layer of the area itself (None for the city), the one it is flown to by."""
    child = kpis.CHILD[level]
    layer = MAP_LAYERS[child or level]
    order = [name for name in MAP_LAYERS.values()]
    i = order.index(layer)
    top = LAYERS[order[i + 1]].min_zoom - 1 if i + 1 < len(order) else None
    return {"layer": layer, "band": [LAYERS[layer].min_zoom, top], "area": MAP_LAYERS.get(level), "code": code,
            "drill": child is not None}


def trend_chart(trend, *, width=CHART_W, height=CHART_H, max_labels=8):
    """Bars of reported incidents and a line of closed ones per period, in SVG units.

    Returns ``width``, ``height``, ``bars`` [{x, y, w, h, period, reported, closed}], ``line`` (the
    polyline's points attribute), ``ticks`` [{y, value}] on the count axis, ``labels`` [{x, text}] on the
    period axis (at most ``max_labels``, evenly spaced), ``baseline`` (y of zero) and ``left``."""
    left, right, top, bottom = _PAD["left"], width - _PAD["right"], _PAD["top"], height - _PAD["bottom"]
    n = len(trend)
    top_value = max([p["reported"] for p in trend] + [p["closed"] for p in trend] + [1])
    scale = _nice(top_value)
    step = (right - left) / max(n, 1)

    def y(v):
        return round(bottom - (bottom - top) * v / scale, 1)

    bars = [{"x": round(left + i * step + step * 0.1, 1), "w": round(max(step * 0.8, 0.5), 1), "y": y(p["reported"]),
             "h": round(bottom - y(p["reported"]), 1), "period": p["period"], "reported": p["reported"],
             "closed": p["closed"]} for i, p in enumerate(trend)]
    line = " ".join(f"{round(left + (i + 0.5) * step, 1)},{y(p['closed'])}" for i, p in enumerate(trend))
    every = max(1, -(-n // max_labels))
    labels = [{"x": round(left + (i + 0.5) * step, 1), "text": p["period"]} for i, p in enumerate(trend)
              if i % every == 0]
    ticks = [{"y": y(v), "value": v} for v in (0, scale // 2, scale)]
    return {"width": width, "height": height, "bars": bars, "line": line, "labels": labels, "ticks": ticks,
            "baseline": bottom, "left": left, "right": right}


def _nice(v):
    """The smallest of 1, 2, 5 × 10^k at or above ``v`` (an even axis), at least 2 so the mid tick is whole."""
    k = 1
    while True:
        for f in (1, 2, 5):
            if f * k >= v and f * k >= 2:
                return f * k
        k *= 10
