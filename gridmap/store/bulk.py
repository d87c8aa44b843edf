"""Bulk inserts below the ORM: PostgreSQL COPY, SQLite one executemany per chunk."""
from sqlalchemy import Integer


def bulk_insert(session, model, rows, progress=None, chunk=50_000):
    """Insert a DataFrame whose columns are ``model``'s, geometry already encoded.

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
