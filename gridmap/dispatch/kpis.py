"""The city dashboard's figures (一网统管): KPIs of an area's incidents, by child area, category, worker, period.

Every figure is a SQL aggregate the store computes (SQLAlchemy Core, the same on SQLite and PostgreSQL):
no incident row comes into Python. The incidents counted are those *reported* in the window
``[start, end]`` (whole days) inside the area, as the permission table lets the role see them
(:mod:`gridmap.access`, "dashboard.read"); linked duplicates (status "merged") are not matters of
their own and count only as ``duplicates``.

The figures of one group (the area, a child area, a category, a period):

- ``reported`` — incidents reported (not merged);
- ``closed`` — of them, resolved; ``closure_rate`` = closed ÷ reported (结案率);
- ``on_time`` — closed no later than their deadline (``resolved_at <= deadline_at``; a matter with no
  deadline is on time, it had none to miss); ``on_time_rate`` = on_time ÷ closed (按期结案率);
- ``open`` and ``overdue`` (open, deadline passed before ``now``);
- ``escalated`` — handed to a higher level at least once (an "escalate" step in incident_event; read from
  the incident's ``escalated`` flag, set with that step);
- ``whistled`` — the community blew the whistle on it at least once (a whistle_task; the ``whistled`` flag);
- ``duplicates`` — linked duplicates reported in the window.

A worker's load is different: the incidents open *now* in the grids the worker serves, whenever reported.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import case, distinct, func, select

from .. import access, catalog
from ..errors import InvalidInput, N_, NotFound
from ..ids import parse_day
from ..store import models as m
from .areas import clause
from .rules import OPEN_STATUSES, PERIODS, utcnow
from .sqlexpr import no_index, period_label
from .stats import private_clause

AREA_LEVELS = ("city", "district", "street", "community", "grid")
CHILD = {"city": "district", "district": "street", "street": "community", "community": "grid", "grid": None}
CODE_DIGITS = {"district": 12, "street": 12, "community": 12, "grid": 15}
KPIS = ("reported", "closed", "closure_rate", "on_time", "on_time_rate", "open", "overdue", "escalated",
        "whistled", "duplicates")
DEFAULT_DAYS = 30
MAX_BUCKETS = 400  # periods in one trend: a day-by-day trend covers at most ~13 months
MAX_WORKERS = 200  # rows of the load table; the busiest first, the total told beside them

_INC = m.Incident.__table__
_COMMUNITY = m.Community.__table__
_STREET = m.Street.__table__
_GWG = m.grid_worker_grid
_WORKER = m.GridWorker.__table__


# --- the question ---------------------------------------------------------------------------------

def parse_query(args, *, today=None):
    """``level``, ``code``, ``from``, ``to``, ``period`` of a query string (a dict of text) validated.

    Returns a dict with keys level, code, start, end (dates, inclusive), period. InvalidInput names the
    parameter, the value and the fix; nothing is read from the store here."""
    today = today or utcnow().date()
    level = (args.get("level") or "city").strip()
    if level not in AREA_LEVELS:
        raise InvalidInput(N_("level=%(value)s is not an area level."), fix=N_("Use one of %(levels)s."),
                           details={"level": level}, params={"value": repr(level), "levels": ", ".join(AREA_LEVELS)})
    code = (args.get("code") or "").strip() or None
    if level == "city":
        if code is not None:
            raise InvalidInput(N_("code=%(value)s was given for the whole city, which has none."),
                               fix=N_("Leave code out for level=city, or give the level of the code."),
                               details={"code": code}, params={"value": repr(code)})
    else:
        digits = CODE_DIGITS[level]
        if code is None or not (len(code) == digits and code.isascii() and code.isdigit()):
            raise InvalidInput(N_("code=%(value)s is not the %(digits)s-digit code a %(level)s needs."),
                               fix=N_("Give code= with the %(level)s's %(digits)s-digit code."),
                               details={"code": code}, params={"value": repr(code), "digits": digits, "level": level})
    period = (args.get("period") or "day").strip()
    if period not in PERIODS:
        raise InvalidInput(N_("period=%(period)s is not known."), fix=N_("Use one of %(PERIODS)s."),
                           params={"period": repr(period), "PERIODS": ", ".join(PERIODS)})
    end = parse_day(args["to"], name="to") if args.get("to") else today
    start = parse_day(args["from"], name="from") if args.get("from") else end - dt.timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise InvalidInput(N_("from=%(start)s is after to=%(end)s."), fix=N_("Swap them: from is the first day."),
                           details={"from": start.isoformat(), "to": end.isoformat()},
                           params={"start": start.isoformat(), "end": end.isoformat()})
    buckets = len(period_labels(start, end, period))
    if buckets > MAX_BUCKETS:
        raise InvalidInput(N_("from=%(start)s to=%(end)s is %(value)s %(period)ss, more than the %(limit)s one trend "
                              "shows."), fix=N_("Choose a longer period (week or month) or a shorter window."),
                           details={"buckets": buckets, "limit": MAX_BUCKETS},
                           params={"start": start.isoformat(), "end": end.isoformat(), "value": buckets,
                                   "period": period, "limit": MAX_BUCKETS})
    return {"level": level, "code": code, "start": start, "end": end, "period": period}


def period_labels(start, end, period):
    """Every period label from ``start`` to ``end`` (days, inclusive), as the store labels them."""
    if period == "day":
        return [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
    if period == "week":
        monday = start - dt.timedelta(days=start.weekday())
        return [(monday + dt.timedelta(weeks=i)).isoformat() for i in range((end - monday).days // 7 + 1)]
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    first = start.year * 12 + start.month - 1
    return [f"{(first + i) // 12:04d}-{(first + i) % 12 + 1:02d}" for i in range(months)]


# --- where ----------------------------------------------------------------------------------------

def area_info(session, level, code):
    """The area's name and its breadcrumbs (city first): [{level, code, name}]. NotFound for an unknown code."""
    crumbs = [{"level": "city", "code": None, "name": None}]
    if level == "city":
        return crumbs
    community = street = district = None
    if level == "grid":
        name = session.scalar(select(func.max(m.Grid.name)).where(m.Grid.code == code))
        if name is None:
            raise _unknown(level, code)
        community = code[:12]
    elif level == "community":
        community = code
    elif level == "street":
        street = code
    else:
        district = code
    if community is not None:
        row = session.execute(select(m.Community.name, m.Community.street_code)
                              .where(m.Community.code == community)).first()
        if row is None:
            raise _unknown("community", community)
        street = row.street_code
        crumbs_tail = [{"level": "community", "code": community, "name": row.name}]
    else:
        crumbs_tail = []
    if street is not None:
        row = session.execute(select(m.Street.name, m.Street.district_code).where(m.Street.code == street)).first()
        if row is None:
            raise _unknown("street", street)
        district = row.district_code
        crumbs_tail.insert(0, {"level": "street", "code": street, "name": row.name})
    dname = session.scalar(select(m.District.name).where(m.District.code == district))
    if dname is None:
        raise _unknown("district", district)
    crumbs.append({"level": "district", "code": district, "name": dname})
    crumbs += crumbs_tail
    if level == "grid":
        crumbs.append({"level": "grid", "code": code, "name": name})
    return crumbs


def _unknown(level, code):
    return NotFound(N_("There is no %(level)s %(value)s in the store."),
                    fix=N_("Pick the area from the dashboard's tables, or check the code."),
                    details={"level": level, "code": code}, params={"level": level, "value": code})


def area_clause(level, code):
    """The SQL condition on incidents of the area (None for the city)."""
    if level == "city":
        return None
    if level == "grid":
        return _INC.c.grid_code == code
    if level == "community":
        return _INC.c.community_code == code
    communities = select(_COMMUNITY.c.code)
    if level == "street":
        communities = communities.where(_COMMUNITY.c.street_code == code)
    else:
        communities = communities.join(_STREET, _STREET.c.code == _COMMUNITY.c.street_code).where(
            _STREET.c.district_code == code)
    return _INC.c.community_code.in_(communities.scalar_subquery())


def check_area(role, area, level, code):
    """Forbidden when ``role`` may not read the dashboard, or asks for a community or grid outside its area.

    A street, district or the city may be asked by a role that works in part of it: its figures then
    count only the part (the role's clause narrows every query)."""
    access.check(role, "dashboard.read", what="read the dashboard")
    if level == "grid":
        access.check(role, "dashboard.read", at=(code, code[:12]), area=area, what="read the dashboard")
    elif level == "community":
        access.check(role, "dashboard.read", at=(None, code), area=area, what="read the dashboard")


class Scope:
    """What one dashboard question counts: the area, the window, the role's part of it, ``now``."""

    def __init__(self, *, level="city", code=None, start, end, period="day", role=None, area=None, now=None):
        self.level, self.code, self.start, self.end, self.period = level, code, start, end, period
        self.role, self.area, self.now = role, area, now or utcnow()
        self.first = dt.datetime.combine(start, dt.time())
        self.after = dt.datetime.combine(end + dt.timedelta(days=1), dt.time())
        where = []
        place = area_clause(level, code)
        if place is not None:
            where.append(place)
        self.role_clause = clause(role, "dashboard.read", area, grid_col=_INC.c.grid_code,
                                  community_col=_INC.c.community_code)
        if self.role_clause is not None:
            where.append(self.role_clause)
        hidden = private_clause(role, area, "stats.private", grid_col=_INC.c.grid_code,
                                community_col=_INC.c.community_code, category_col=_INC.c.category)
        if hidden is not None:
            where.append(hidden)
        self.filters = where
        self._where = None

    def where(self, session):
        """The conditions on incidents: the window, the area, the role's part, private categories.

        SQLite plans a range on ix_incident_reported whatever its width (it keeps no histogram): over
        most of the city's incidents that is a random read a row, several times a scan. When nothing
        else narrows the rows and the window holds more than a fifth of the span of report times, the
        window is written so that SQLite scans instead (PostgreSQL decides by its statistics)."""
        if self._where is None:
            reported = _INC.c.reported_at
            if not self.filters and session.get_bind().dialect.name == "sqlite" and self._wide(session):
                reported = no_index(reported)
            self._where = [reported >= self.first, reported < self.after, *self.filters]
        return self._where

    def _wide(self, session):
        lo, hi = session.execute(select(func.min(_INC.c.reported_at), func.max(_INC.c.reported_at))).one()
        if lo is None:
            return False
        span = (hi - lo).total_seconds() or 1.0
        inside = (min(hi, self.after) - max(lo, self.first)).total_seconds()
        return inside / span > 0.2


# --- the figures ------------------------------------------------------------------------------------

def _flag(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _columns(scope):
    status, kept = _INC.c.status, _INC.c.status != "merged"
    closed = status == "resolved"
    open_ = status.in_(OPEN_STATUSES)
    # escalated and whistled are flags on the incident (kept by gridmap.dispatch.incidents, filled for older
    # rows by migration 0020): every figure is read from the row alone, so from the window's covering index
    return (_flag(kept).label("reported"), _flag(closed).label("closed"),
            _flag(closed & (_INC.c.deadline_at.is_(None) | (_INC.c.resolved_at <= _INC.c.deadline_at)))
            .label("on_time"),
            _flag(open_).label("open"), _flag(open_ & (_INC.c.deadline_at < scope.now)).label("overdue"),
            _flag(kept & _INC.c.escalated).label("escalated"),
            _flag(kept & _INC.c.whistled).label("whistled"),
            _flag(status == "merged").label("duplicates"))


def _grouped(session, scope, keys, *, join=None):
    """One query: the figures of ``scope`` grouped by ``keys`` (none: one row)."""
    source = _INC if join is None else join(_INC)
    q = select(*keys, *_columns(scope)).select_from(source).where(*scope.where(session))
    if keys:
        q = q.group_by(*keys)
    return session.execute(q).all()


def _figures(row):
    out = {k: int(getattr(row, k) or 0) for k in ("reported", "closed", "on_time", "open", "overdue", "escalated",
                                                     "whistled", "duplicates")}
    out["closure_rate"] = _rate(out["closed"], out["reported"])
    out["on_time_rate"] = _rate(out["on_time"], out["closed"])
    return out


def _rate(n, total):
    return round(n / total, 4) if total else None


def summary(session, scope):
    """The area's KPIs: one row."""
    return _figures(_grouped(session, scope, ())[0])


def by_child(session, scope):
    """The KPIs of each child area (districts of the city, streets of a district, communities of a street,
    grids of a community) with its name, in code order; incidents of no child (no grid) last, code None."""
    child = CHILD[scope.level]
    if child is None:
        return []
    if child == "grid":
        key, join = _INC.c.grid_code, None
    elif child == "community":
        key, join = _INC.c.community_code, None
    elif child == "street":
        key = _COMMUNITY.c.street_code
        join = lambda s: s.outerjoin(_COMMUNITY, _COMMUNITY.c.code == _INC.c.community_code)  # noqa: E731
    else:
        key = _STREET.c.district_code
        join = lambda s: s.outerjoin(_COMMUNITY, _COMMUNITY.c.code == _INC.c.community_code).outerjoin(  # noqa: E731
            _STREET, _STREET.c.code == _COMMUNITY.c.street_code)
    rows = _grouped(session, scope, (key.label("code"),), join=join)
    names = _names(session, child, [r.code for r in rows if r.code is not None])
    rows = sorted(rows, key=lambda r: (r.code is None, r.code or ""))
    return [{"code": r.code, "name": names.get(r.code), **_figures(r)} for r in rows]


def _names(session, level, codes):
    if not codes:
        return {}
    if level == "grid":
        q = select(m.Grid.code, func.max(m.Grid.name)).where(m.Grid.code.in_(codes)).group_by(m.Grid.code)
    else:
        table = {"community": m.Community, "street": m.Street, "district": m.District}[level]
        q = select(table.code, table.name).where(table.code.in_(codes))
    return dict(session.execute(q).all())


def by_category(session, scope):
    """The KPIs of each incident category (its names in both languages), most reported first."""
    # not grouped along ix_incident_category_reported: SQLite would walk the whole index in category order
    # (for the grouping) and filter the area and window row by row
    rows = _grouped(session, scope, (no_index(_INC.c.category).label("category"),))
    out = []
    for r in rows:
        cat = catalog.CATEGORIES.get(r.category)
        out.append({"category": r.category, "name": cat.zh if cat else r.category,
                    "name_en": cat.en if cat else r.category, **_figures(r)})
    return sorted(out, key=lambda c: (-c["reported"], c["category"]))


def trend(session, scope):
    """The KPIs per period (day, week by its Monday, month) of the window, every period listed (empty ones 0)."""
    label = period_label(_INC.c.reported_at, scope.period)
    rows = {r.period: r for r in _grouped(session, scope, (label.label("period"),))}
    empty = _figures(_Zero)
    return [{"period": p, **(_figures(rows[p]) if p in rows else empty)}
            for p in period_labels(scope.start, scope.end, scope.period)]


class _Zero:
    reported = closed = on_time = open = overdue = escalated = whistled = duplicates = 0


def worker_load(session, scope, *, limit=MAX_WORKERS):
    """Each grid worker serving a grid in the area (and in the role's part of it): the grids served there, the
    incidents open in them now and how many of those are overdue; busiest first. Names as ``scope.role`` may
    see them (masked outside where it may read phones). Returns {"rows", "total"}."""
    grid = _GWG.c.grid_code
    community = func.substr(grid, 1, 12)
    where = [_WORKER.c.retired_at.is_(None)]
    if scope.level == "grid":
        where.append(grid == scope.code)
    elif scope.level == "community":
        where.append(community == scope.code)
    elif scope.level in ("street", "district"):
        communities = select(_COMMUNITY.c.code)
        if scope.level == "street":
            communities = communities.where(_COMMUNITY.c.street_code == scope.code)
        else:
            communities = communities.join(_STREET, _STREET.c.code == _COMMUNITY.c.street_code).where(
                _STREET.c.district_code == scope.code)
        where.append(community.in_(communities.scalar_subquery()))
    mine = clause(scope.role, "dashboard.read", scope.area, grid_col=grid, community_col=community)
    if mine is not None:
        where.append(mine)
    # the open incidents of the area per grid first (ix_incident_open_area), then onto the workers' grids
    open_where = [_INC.c.status.in_(OPEN_STATUSES), _INC.c.grid_code.is_not(None)]
    place = area_clause(scope.level, scope.code)
    if place is not None:
        open_where.append(place)
    load = (select(_INC.c.grid_code, func.count().label("open"), _flag(_INC.c.deadline_at < scope.now).label("overdue"))
            .where(*open_where).group_by(_INC.c.grid_code).subquery("load"))
    source = _GWG.join(_WORKER, _WORKER.c.id == _GWG.c.worker_id).outerjoin(load, load.c.grid_code == grid)
    n_open = func.coalesce(func.sum(load.c.open), 0)
    q = (select(_WORKER.c.id, _WORKER.c.name, _WORKER.c.community_code, func.count(distinct(grid)).label("grids"),
                n_open.label("open"), func.coalesce(func.sum(load.c.overdue), 0).label("overdue"),
                func.count().over().label("total"))  # every worker's row counted before the limit
         .select_from(source).where(*where).group_by(_WORKER.c.id, _WORKER.c.name, _WORKER.c.community_code))
    rows = session.execute(q.order_by(n_open.desc(), _WORKER.c.id).limit(limit)).all()
    total = rows[0].total if rows else 0
    return {"total": int(total or 0),
            "rows": [{"id": r.id, "name": access.name_for(scope.role, r.name, at=(None, r.community_code),
                                                          area=scope.area),
                      "community_code": r.community_code, "grids": int(r.grids), "open": int(r.open),
                      "overdue": int(r.overdue or 0)} for r in rows]}


PANELS = {"summary": summary, "children": by_child, "categories": by_category, "trend": trend, "workers": worker_load}


def dashboard(session, query, *, role=None, area=None, now=None):
    """Everything the dashboard shows for ``query`` (:func:`parse_query`), as ``role`` within ``area`` may see it.

    Forbidden for a role that may not read it there; NotFound for an unknown area code."""
    level, code = query["level"], query["code"]
    check_area(role, area, level, code)
    crumbs = area_info(session, level, code)
    scope = Scope(level=level, code=code, start=query["start"], end=query["end"], period=query["period"], role=role,
                  area=area, now=now)
    return {"area": {"level": level, "code": code, "name": crumbs[-1]["name"], "child_level": CHILD[level],
                     "breadcrumbs": crumbs,
                     "partial": scope.role_clause is not None},
            "window": {"from": scope.start.isoformat(), "to": scope.end.isoformat(), "period": scope.period,
                       "now": scope.now.isoformat(timespec="seconds")},
            "kpis": summary(session, scope), "children": by_child(session, scope),
            "categories": by_category(session, scope), "trend": trend(session, scope),
            "workers": worker_load(session, scope)}


__all__ = ["AREA_LEVELS", "CHILD", "KPIS", "PANELS", "Scope", "area_clause", "area_info", "by_category", "by_child",
           "check_area", "dashboard", "parse_query", "period_labels", "summary", "trend", "worker_load"]
