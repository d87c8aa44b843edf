"""Statistics of incidents: resolution rate, time to resolve, open by level, by grid, community and period; heat."""
from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import case, func, or_, select

from .. import access, catalog
from ..store import models as m
from .areas import clause
from .rules import OPEN_STATUSES, utcnow
from .sqlexpr import hours_between, period_label


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

    Every figure is an aggregate the store computes (a few grouped queries); no incident row comes
    into Python but as a heatmap point (its two coordinates).
    """
    now = now or utcnow()
    inc = m.Incident.__table__
    where = []
    for column, value in ((inc.c.community_code, community), (inc.c.grid_code, grid)):
        if value is not None:
            where.append(column == value)
    if start is not None:
        where.append(inc.c.reported_at >= dt.datetime.combine(start, dt.time()))
    if end is not None:
        where.append(inc.c.reported_at < dt.datetime.combine(end + dt.timedelta(days=1), dt.time()))
    if not private:
        seen = private_clause(role, area, "stats.private", grid_col=inc.c.grid_code,
                              community_col=inc.c.community_code, category_col=inc.c.category)
        if seen is not None:
            where.append(seen)
    kept = [*where, inc.c.status != "merged"]
    f = _figures(inc, now)

    head = session.execute(select(*f).where(*kept)).one()
    duplicates = session.scalar(select(func.count()).where(*where, inc.c.status == "merged"))
    hours = hours_between(inc.c.reported_at, inc.c.resolved_at)
    done = [*kept, inc.c.status == "resolved", inc.c.resolved_at.is_not(None)]
    count = head.resolved or 0
    levels = dict(session.execute(select(inc.c.level, func.count()).where(*kept, inc.c.status.in_(OPEN_STATUSES))
                                  .group_by(inc.c.level)).all())
    label = period_label(inc.c.reported_at, period)
    # the heatmap is one point per incident by definition (its length is the count the map shows): only the
    # two coordinates come out of the store, in report order
    heat = session.execute(select(inc.c.lat, inc.c.lon).where(*kept, inc.c.lon.is_not(None), inc.c.lat.is_not(None))
                           .order_by(inc.c.id)).all()
    total = head.total or 0
    return {"filters": {"community": community, "grid": grid, "period": period,
                        "start": start.isoformat() if start else None, "end": end.isoformat() if end else None},
            "total": int(total), "resolved": int(count), "open": int(head.open or 0),
            "duplicates": int(duplicates or 0), "resolution_rate": _rate(count, total),
            "hours_to_resolve": {"median": _percentile(session, hours, done, count, 0.5),
                                 "p90": _percentile(session, hours, done, count, 0.9), "count": int(count)},
            "open_by_level": {lv: int(levels.get(lv, 0)) for lv in catalog.LEVELS},
            "overdue": int(head.overdue or 0),
            "by_community": _groups(session, inc.c.community_code, "community", kept, f),
            "by_grid": _groups(session, inc.c.grid_code, "grid", kept, f),
            "by_period": _groups(session, label, "period", kept, f),
            "heatmap": [[round(float(lat), 6), round(float(lon), 6), 1.0] for lat, lon in heat]}


def _flag(condition):
    return case((condition, 1), else_=0)


def _figures(inc, now):
    """The columns every group counts: total, resolved, open, overdue (merged rows are filtered out before)."""
    open_ = inc.c.status.in_(OPEN_STATUSES)
    return (func.count().label("total"), func.sum(_flag(inc.c.status == "resolved")).label("resolved"),
            func.sum(_flag(open_)).label("open"),
            func.sum(_flag(open_ & (inc.c.deadline_at < now))).label("overdue"))


def _groups(session, key, name, where, figures):
    """Counts and the resolution rate per value of ``key``, sorted, a missing value last: one GROUP BY."""
    rows = session.execute(select(key.label("key"), *figures).where(*where).group_by(key)).all()
    rows = sorted(rows, key=lambda r: (r.key is None, r.key or ""))
    return [{name: r.key, "total": int(r.total), "resolved": int(r.resolved or 0), "open": int(r.open or 0),
             "overdue": int(r.overdue or 0), "resolution_rate": _rate(r.resolved or 0, r.total)} for r in rows]


def _percentile(session, values, where, n, q):
    """The ``q`` quantile of ``values`` over ``where`` as numpy.percentile interpolates it (between the order
    statistics at (n - 1) q), rounded to 0.01; None for no values.

    PostgreSQL's percentile_cont is that definition; SQLite has no ordered-set aggregate, so it reads the one
    or two order statistics it needs with ORDER BY … LIMIT 2 OFFSET k, still in the store."""
    if not n:
        return None
    if session.get_bind().dialect.name == "postgresql":
        value = session.scalar(select(func.percentile_cont(q).within_group(values)).where(*where))
        return round(float(value), 2)
    k = (n - 1) * q
    lo = int(np.floor(k))
    pair = session.scalars(select(values).where(*where).order_by(values).limit(2).offset(lo)).all()
    value = pair[0] if len(pair) == 1 else pair[0] + (pair[1] - pair[0]) * (k - lo)
    return round(float(value), 2)


def private_clause(role, area, action, *, grid_col, community_col, category_col):
    """A SQL condition keeping the categories that are not public only where ``role`` may ``action``
    ("stats.private") within ``area``; None when it may everywhere."""
    private = category_col.in_([c.code for c in catalog.INCIDENT_CATEGORIES if not c.public])
    if not access.can(role, action):
        return ~private
    seen = clause(role, action, area, grid_col=grid_col, community_col=community_col)
    if seen is None:
        return None
    return or_(~private, seen)


def _rate(n, total):
    return round(float(n) / total, 4) if total else None


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
