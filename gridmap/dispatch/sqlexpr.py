"""SQL the statistics need that SQLite and PostgreSQL spell differently: hours between times, period labels.

Hours from one time to another; the label of a report's day, week or month.

Each is one construct compiled per dialect, with its format strings inline rather than bound: PostgreSQL
then sees the same expression in SELECT and GROUP BY (two bound parameters would be two expressions).
"""
from __future__ import annotations

from sqlalchemy import Float, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class hours_between(FunctionElement):  # noqa: N801 - reads as a SQL function
    """Hours from the first time to the second, as a float."""
    type = Float()
    name = "hours_between"
    inherit_cache = True


@compiles(hours_between)
def _hours_sqlite(element, compiler, **kw):
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    # julianday is a double of days: its step near today is ~40 µs, far below the 0.01 h the figures show
    return f"((julianday({end}) - julianday({start})) * 24.0)"


@compiles(hours_between, "postgresql")
def _hours_pg(element, compiler, **kw):
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"(EXTRACT(EPOCH FROM ({end} - {start})) / 3600.0)"


class _label(FunctionElement):
    type = String()
    inherit_cache = True


class day_label(_label):  # noqa: N801
    """'YYYY-MM-DD' of a timestamp."""
    name = "day_label"
    inherit_cache = True


class week_label(_label):  # noqa: N801
    """'YYYY-MM-DD' of the Monday of a timestamp's ISO week, so labels sort as dates do."""
    name = "week_label"
    inherit_cache = True


class month_label(_label):  # noqa: N801
    """'YYYY-MM' of a timestamp."""
    name = "month_label"
    inherit_cache = True


_SQLITE = {"day_label": "strftime('%Y-%m-%d', {})",
           # 'weekday 0' moves on to the next Sunday (a Sunday stays), six days back is that week's Monday
           "week_label": "strftime('%Y-%m-%d', {}, 'weekday 0', '-6 days')",
           "month_label": "strftime('%Y-%m', {})"}
_PG = {"day_label": "to_char({}, 'YYYY-MM-DD')", "week_label": "to_char(date_trunc('week', {}), 'YYYY-MM-DD')",
       "month_label": "to_char({}, 'YYYY-MM')"}


@compiles(day_label)
@compiles(week_label)
@compiles(month_label)
def _label_sqlite(element, compiler, **kw):
    return _SQLITE[element.name].format(compiler.process(element.clauses, **kw))


@compiles(day_label, "postgresql")
@compiles(week_label, "postgresql")
@compiles(month_label, "postgresql")
def _label_pg(element, compiler, **kw):
    return _PG[element.name].format(compiler.process(element.clauses, **kw))


PERIOD_LABELS = {"day": day_label, "week": week_label, "month": month_label}


def period_label(column, period):
    """The SQL label of ``column``'s ``period`` (day, week, month)."""
    return PERIOD_LABELS[period](column)


class no_index(FunctionElement):  # noqa: N801
    """A column SQLite must not use an index for (unary plus: the same value); the column itself elsewhere."""
    name = "no_index"
    inherit_cache = True

    def __init__(self, column):
        super().__init__(column)
        self.type = column.type  # binds compared with it are written as the column's are


@compiles(no_index)
def _no_index_sqlite(element, compiler, **kw):
    return f"+{compiler.process(element.clauses, **kw)}"


@compiles(no_index, "postgresql")
def _no_index_pg(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)
