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

    # one scan for the head figures: counts per (status, level), at most 24 rows, summed here
    parts = session.execute(select(inc.c.status, inc.c.level, *f).where(*where)
                            .group_by(inc.c.status, inc.c.level)).all()
    live = [r for r in parts if r.status != "merged"]
    total, count = sum(r.total for r in live), sum(r.resolved or 0 for r in live)
    duplicates = sum(r.total for r in parts if r.status == "merged")
    levels = {}
    for r in live:
        if r.status in OPEN_STATUSES:
            levels[r.level] = levels.get(r.level, 0) + r.total
    hours = hours_between(inc.c.reported_at, inc.c.resolved_at)
    done = [*kept, inc.c.status == "resolved", inc.c.resolved_at.is_not(None)]
    median, p90 = _percentiles(session, hours, done, count, (0.5, 0.9))
    # one scan for both tables by place: per (community, grid), at most a row per grid, summed per community here
    pairs = session.execute(select(inc.c.community_code.label("community"), inc.c.grid_code.label("grid"), *f)
                            .where(*kept).group_by(inc.c.community_code, inc.c.grid_code)).all()
    label = period_label(inc.c.reported_at, period)
    # the heatmap is one point per incident by definition (its length is the count the map shows): only the
    # two coordinates come out of the store, in report order
    heat = session.execute(select(inc.c.lat, inc.c.lon).where(*kept, inc.c.lon.is_not(None), inc.c.lat.is_not(None))
                           .order_by(inc.c.id)).all()
    return {"filters": {"community": community, "grid": grid, "period": period,
                        "start": start.isoformat() if start else None, "end": end.isoformat() if end else None},
            "total": int(total), "resolved": int(count), "open": int(sum(r.open or 0 for r in live)),
            "duplicates": int(duplicates), "resolution_rate": _rate(count, total),
            "hours_to_resolve": {"median": median, "p90": p90, "count": int(count)},
            "open_by_level": {lv: int(levels.get(lv, 0)) for lv in catalog.LEVELS},
            "overdue": int(sum(r.overdue or 0 for r in live)),
            "by_community": _rolled(pairs, "community"), "by_grid": _rolled(pairs, "grid"),
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


def _rolled(rows, key):
    """Rows grouped by (community, grid) summed per ``key``, as :func:`_groups` gives them."""
    sums = {}
    for r in rows:
        k = getattr(r, key)
        acc = sums.setdefault(k, [0, 0, 0, 0])
        for i, v in enumerate((r.total, r.resolved, r.open, r.overdue)):
            acc[i] += v or 0
    keys = sorted(sums, key=lambda k: (k is None, k or ""))
    return [{key: k, "total": int(sums[k][0]), "resolved": int(sums[k][1]), "open": int(sums[k][2]),
             "overdue": int(sums[k][3]), "resolution_rate": _rate(sums[k][1], sums[k][0])} for k in keys]


def _percentiles(session, values, where, n, qs):
    """The ``qs`` quantiles of ``values`` over ``where`` as numpy.percentile interpolates them (between the
    order statistics at (n - 1) q), rounded to 0.01; None for no values.

    PostgreSQL's percentile_cont is that definition; SQLite has no ordered-set aggregate, so one sort numbers
    the values (row_number) and only the order statistics needed come out, still in the store."""
    if not n:
        return tuple(None for _ in qs)
    if session.get_bind().dialect.name == "postgresql":
        got = session.execute(select(*(func.percentile_cont(q).within_group(values) for q in qs)).where(*where)).one()
        return tuple(round(float(v), 2) for v in got)
    ks = [(n - 1) * q for q in qs]
    wanted = sorted({int(np.floor(k)) + d for k in ks for d in (1, 2) if int(np.floor(k)) + d <= n})
    ranked = select(values.label("v"), func.row_number().over(order_by=values).label("rn")).where(*where).subquery()
    at = dict(session.execute(select(ranked.c.rn, ranked.c.v).where(ranked.c.rn.in_(wanted))).all())
    out = []
    for k in ks:
        lo = int(np.floor(k))
        a, b = at[lo + 1], at.get(lo + 2, at[lo + 1])
        out.append(round(float(a + (b - a) * (k - lo)), 2))
    return tuple(out)


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
