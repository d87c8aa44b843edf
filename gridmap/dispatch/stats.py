"""Statistics of incidents: resolution rate, time to resolve, open by level, by grid, community and period; heat."""
from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import select

from .. import access, catalog
from ..store import models as m
from .rules import OPEN_STATUSES, utcnow


def statistics(session, *, community=None, grid=None, period="day", start=None, end=None, now=None,
               private=False, role=None, area=None):
    """Resolution rate, time to resolve, open and overdue by level, grid, community and period, and a heatmap.

    Linked duplicates (status "merged") are not separate matters: they count in nothing but
    ``duplicates``. ``resolution_rate`` is resolved ÷ all other incidents; times are hours from
    report to resolution (median and 90th percentile, linear interpolation). ``start``/``end``
    are days (inclusive) of the report.

    Incidents of the categories that are not public (an SOS marks where someone vulnerable lives
    alone) count, in every figure and the heatmap, only where ``role`` may see private statistics
    within ``area`` (:mod:`gridmap.access`, "stats.private"): nowhere for the public, so no count
    tells of another area's SOS. ``private=True`` counts them all (the CLI, benchmarks).
    """
    now = now or utcnow()
    q = select(m.Incident.id, m.Incident.category, m.Incident.status, m.Incident.level, m.Incident.community_code, m.Incident.grid_code,
               m.Incident.reported_at, m.Incident.resolved_at, m.Incident.deadline_at, m.Incident.lon, m.Incident.lat)
    for column, value in ((m.Incident.community_code, community), (m.Incident.grid_code, grid)):
        if value is not None:
            q = q.where(column == value)
    if start is not None:
        q = q.where(m.Incident.reported_at >= dt.datetime.combine(start, dt.time()))
    if end is not None:
        q = q.where(m.Incident.reported_at < dt.datetime.combine(end + dt.timedelta(days=1), dt.time()))
    rows = session.execute(q).all()
    df = pd.DataFrame.from_records([tuple(r) for r in rows], columns=["id", "category", "status", "level", "community", "grid", "reported_at", "resolved_at",
                                     "deadline_at", "lon", "lat"])
    for column in ("reported_at", "resolved_at", "deadline_at"):
        df[column] = pd.to_datetime(df[column])
    if not private:
        df = df[~_hidden(df, role, area)]
    merged = df["status"] == "merged"
    df = df[~merged]
    resolved = df["status"] == "resolved"
    open_ = df["status"].isin(OPEN_STATUSES)
    df = df.assign(resolved=resolved, open=open_,
                   overdue=open_ & df["deadline_at"].notna() & (df["deadline_at"] < now),
                   hours=(df["resolved_at"] - df["reported_at"]).dt.total_seconds() / 3600.0)
    hours = df.loc[resolved, "hours"].to_numpy(dtype=float)
    df["period"] = _period_labels(df["reported_at"], period)
    open_levels = df.loc[open_, "level"].value_counts()

    return {"filters": {"community": community, "grid": grid, "period": period,
                        "start": start.isoformat() if start else None, "end": end.isoformat() if end else None},
            "total": int(len(df)), "resolved": int(resolved.sum()), "open": int(open_.sum()),
            "duplicates": int(merged.sum()), "resolution_rate": _rate(resolved.sum(), len(df)),
            "hours_to_resolve": {"median": _pct(hours, 50), "p90": _pct(hours, 90), "count": int(len(hours))},
            "open_by_level": {lv: int(open_levels.get(lv, 0)) for lv in catalog.LEVELS},
            "overdue": int(df["overdue"].sum()),
            "by_community": _groups(df, "community"), "by_grid": _groups(df, "grid"),
            "by_period": _groups(df, "period"),
            "heatmap": _heatmap(df)}


def _groups(df, key):
    """Counts and the resolution rate per value of ``key``, sorted, a missing value last.

    One ``groupby.agg`` for all the groups: a city has 15,000 grids, and a Python loop over
    the groups (a sub-frame each) took seconds where this takes milliseconds.
    """
    agg = df.groupby(key, dropna=False, sort=True).agg(
        total=("resolved", "size"), resolved=("resolved", "sum"), open=("open", "sum"), overdue=("overdue", "sum"))
    missing = agg.index.isna()
    keys = [None if gone else value for value, gone in zip(agg.index.tolist(), missing.tolist())]
    return [{key: value, "total": int(total), "resolved": int(resolved), "open": int(open_), "overdue": int(overdue),
             "resolution_rate": _rate(resolved, total)}
            for value, total, resolved, open_, overdue in zip(keys, agg["total"].tolist(), agg["resolved"].tolist(),
                                                               agg["open"].tolist(), agg["overdue"].tolist())]


def _hidden(df, role, area):
    """Rows of a category that is not public, outside where ``role`` may see them."""
    private = df["category"].isin([c.code for c in catalog.INCIDENT_CATEGORIES if not c.public])
    if not access.can(role, "stats.private"):
        return private
    bound = access.bounds(role, "stats.private", area)
    if bound is None:
        return private & False
    scope, area = bound
    grid, community = df["grid"], df["community"]
    if scope == access.SERVED:
        seen = grid.isin(area.grids) | (grid.isna() & community.isin(area.served_communities))
    else:
        seen = community.isin(area.communities)
    return private & ~seen


def _heatmap(df):
    """[[lat, lon, weight], …] as Leaflet.heat and folium's HeatMap take them."""
    keep = df["lon"].notna() & df["lat"].notna()
    pts = df.loc[keep, ["lat", "lon"]].to_numpy(dtype=float).round(6)
    return np.column_stack([pts, np.ones(len(pts))]).tolist()


def _period_labels(times, period):
    if period == "day":
        return times.dt.strftime("%Y-%m-%d")
    if period == "month":
        return times.dt.strftime("%Y-%m")
    # ISO week, labelled by its Monday so labels sort as dates do
    return (times.dt.normalize() - pd.to_timedelta(times.dt.day_of_week, unit="D")).dt.strftime("%Y-%m-%d")


def _rate(n, total):
    return round(float(n) / total, 4) if total else None


def _pct(values, q):
    return round(float(np.percentile(values, q)), 2) if len(values) else None




def heat_cells(heatmap, metric, *, cell_m=100.0):
    """Incident counts on a square grid of ``cell_m`` metres, as WGS84 polygons.

    Parameters
    ----------
    heatmap : list of [lat, lon, weight]
        As ``dispatch.statistics(...)["heatmap"]`` gives them.
    metric : gridmap.geo.crs.Metric
        The local frame the cells are square in (``Snapshot.metric``: one lattice for the city).

    Returns
    -------
    GeoDataFrame
        ``count`` (summed weights) per non-empty cell, WGS84, largest count first.
    """
    if not len(heatmap):
        return gpd.GeoDataFrame({"count": []}, geometry=[], crs=4326)
    pts = np.asarray(heatmap, dtype=float)
    x, y = metric.xy(pts[:, 1], pts[:, 0])
    ix, iy = np.floor(np.asarray(x) / cell_m).astype(np.int64), np.floor(np.asarray(y) / cell_m).astype(np.int64)
    keys, inverse = np.unique(np.column_stack([ix, iy]), axis=0, return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=pts[:, 2])
    boxes = shapely.box(keys[:, 0] * cell_m, keys[:, 1] * cell_m, (keys[:, 0] + 1) * cell_m, (keys[:, 1] + 1) * cell_m)
    cells = gpd.GeoDataFrame({"count": counts}, geometry=metric.unproject(boxes), crs=4326)
    return cells.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)
