"""Bulk inserts below the ORM: PostgreSQL COPY, SQLite one executemany per chunk."""
import numpy as np
from sqlalchemy import Integer

from ..errors import InvalidInput


def bulk_insert(session, model, rows, progress=None, chunk=50_000, checked=()):
    """Insert a DataFrame whose columns are ``model``'s, geometry already encoded.

    ``checked`` names text columns whose lengths the caller has checked already (a million
    values measured in Python cost seconds).

    Below the ORM on purpose: at a million rows its per-row bookkeeping cost five
    times the insert itself. PostgreSQL gets COPY; SQLite one executemany per chunk.
    """
    table = model.__table__
    cols = list(rows.columns)
    rows = rows.copy()
    for c in cols:
        # ids with gaps arrive as floats (NaN for None); PostgreSQL's COPY refuses "1.0" for an integer
        if isinstance(table.c[c].type, Integer) and rows[c].dtype.kind == "f":
            rows[c] = rows[c].astype("Int64")
    rows = rows.astype(object).where(rows.notna(), None)
    _check_lengths(table, rows.drop(columns=list(checked)))
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        names = ", ".join(f'"{c}"' for c in cols)
        with conn.connection.driver_connection.cursor() as cur:
            with cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
                for start in range(0, len(rows), chunk):
                    for row in rows.iloc[start:start + chunk].itertuples(index=False, name=None):
                        copy.write_row(row)
                    if progress:
                        progress(min(chunk, len(rows) - start))
        return
    sql = f'INSERT INTO "{table.name}" ({", ".join(cols)}) VALUES ({", ".join("?" * len(cols))})'
    for start in range(0, len(rows), chunk):
        conn.exec_driver_sql(sql, list(rows.iloc[start:start + chunk].itertuples(index=False, name=None)))
        if progress:
            progress(min(chunk, len(rows) - start))


def _check_lengths(table, rows):
    """Refuse text longer than its column, naming the column, its limit and the first such value.

    PostgreSQL refuses it in the middle of COPY with a driver error, SQLite keeps it silently: every
    bulk write (each import kind, OSM names and addresses alike) is checked here, once, the same on both.
    """
    for c in rows.columns:
        limit = getattr(table.c[c].type, "length", None)
        if not limit:
            continue
        lengths = rows[c].map(lambda v: len(v) if isinstance(v, str) else 0).to_numpy()
        long = np.flatnonzero(lengths > limit)
        if long.size:
            first = rows[c].iloc[long[0]]
            raise InvalidInput(
                f"{long.size} value(s) of {c} are longer than the {limit} characters {table.name}.{c} holds, "
                f"e.g. {first[:40]!r}… ({len(first)} characters); nothing was written.",
                fix=f"Shorten {c} to at most {limit} characters, or map another column to it.",
                details={"table": table.name, "column": c, "limit": limit, "count": int(long.size)})
