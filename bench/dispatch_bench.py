"""Incident statistics at city scale: ``dispatch.statistics`` beside the same figures as SQL GROUP BY.

    .venv/bin/python bench/dispatch_bench.py [--incidents 100000] [--scale 1.0] [--seed 3] [--repeat 3]
                                             [--postgis URL | --no-postgis]

N incidents (default 100,000) uniform over the synthetic city's square (``synthetic_city.py``:
15,000 grids in 625 communities at scale 1), each in the grid its point lies in, reported over
90 days; 55 % resolved after a lognormal time, 5 % merged duplicates, the rest open in one of
the four open statuses, some past their deadline; 1 % without a grid (a community with no
published grids). They are written to a fresh SQLite store (bench/out/dispatch-bench.db) and,
when PostgreSQL answers at ``--postgis`` (default ``$GRIDMAP_TEST_DATABASE_URL``), to a fresh
PostGIS schema ``bench_dispatch``.

On each store, fastest of ``--repeat`` runs:

- gridmap: ``dispatch.statistics(session, period="day", private=True)`` for the whole city and for
  the community with most incidents (it reads the rows, then groups in pandas and builds the
  heatmap list);
- reading the same rows alone (the select statistics() issues, no grouping), for scale;
- the peer: the same figures from the database — totals, open by level, overdue, counts per
  grid / community / day, median and p90 hours to resolve — with GROUP BY queries (SQLite:
  window functions for the percentiles; PostgreSQL: ``percentile_cont``), no heatmap;
- (statistics() before its rewrite to SQL aggregates, which read the rows into pandas, is timed beside
  it by ``dashboard_bench.py --only stats`` from another checkout; ``--skip-before`` is kept as a no-op.)

Both answers are compared figure by figure (percentiles to 0.01 h) and the run stops if they
differ. Results also go to bench/out/dispatch-bench.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import synthetic_city  # noqa: E402

from gridmap import catalog, dispatch  # noqa: E402

OUT = ROOT / "bench" / "out"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_test"
PG_SCHEMA = "bench_dispatch"
NOW = dt.datetime(2026, 5, 4, 8, 0, 0)  # naive UTC, as every stored time
DAYS = 90


# -- the incidents ---------------------------------------------------------------------------------

def make_incidents(city, n, seed):
    """Rows for ``incident`` as dicts (geom as shapely points), seeded."""
    rng = np.random.default_rng([seed, 41])
    pts = city.random_points(n, seed=41)
    tree = shapely.STRtree(city.grids.geometry.values)
    points = shapely.points(pts)
    where = np.full(n, -1)
    idx_pt, idx_grid = tree.query(points, predicate="within")
    where[idx_pt] = idx_grid
    # a point on an edge (or, in theory, outside) takes the nearest grid: every incident has a community
    lost = np.flatnonzero(where < 0)
    if len(lost):
        where[lost] = tree.query_nearest(points[lost], return_distance=False)[1]
    codes = city.grids["code"].to_numpy(dtype=object)[where]
    communities = city.grids["community_code"].to_numpy(dtype=object)[where]
    codes[rng.random(n) < 0.01] = None  # a community without published grids

    cats = [c.code for c in catalog.INCIDENT_CATEGORIES]
    category = np.asarray(cats, dtype=object)[rng.integers(0, len(cats), n)]
    u = rng.random(n)
    status = np.where(u < 0.55, "resolved", np.where(u < 0.60, "merged", np.asarray(dispatch.OPEN_STATUSES)[
        rng.integers(0, len(dispatch.OPEN_STATUSES), n)])).astype(object)
    level = np.asarray(catalog.LEVELS, dtype=object)[rng.choice(len(catalog.LEVELS), n, p=[0.55, 0.25, 0.12, 0.08])]
    # whole seconds, as the app stores them (utcnow to the microsecond would round the same either way)
    reported = NOW - (rng.random(n) * DAYS * 86400).astype("timedelta64[s]").astype(dt.timedelta)
    hours = rng.lognormal(np.log(20.0), 1.0, n)
    resolved = [r + dt.timedelta(seconds=int(h * 3600)) if s in ("resolved", "merged") else None
                for r, h, s in zip(reported, hours, status)]
    deadline = [r + dt.timedelta(hours=int(h)) for r, h in zip(reported, rng.choice([2, 24, 72, 168], n))]
    rows = []
    for i in range(n):
        rows.append({"category": category[i], "status": status[i], "level": level[i],
                     "department": "", "community_code": communities[i], "grid_code": codes[i],
                     "reported_at": reported[i], "updated_at": reported[i], "resolved_at": resolved[i],
                     "deadline_at": deadline[i], "source": "api", "lon": float(pts[i, 0]), "lat": float(pts[i, 1]),
                     "geom": points[i], "version": 1})
    return rows


def fill(store, city, rows, *, verbose=True):
    """Communities through the importer, then the incidents in one bulk insert; returns seconds."""
    from sqlalchemy import insert

    from gridmap import importer
    from gridmap.geo.crs import parse_crs
    from gridmap.geo.io import RawLayer
    from gridmap.store import models as m
    from gridmap.store.types import encode_many

    t0 = time.perf_counter()
    store.upgrade()
    with store.transaction() as session:
        raw = RawLayer(frame=city.communities.copy(), crs=parse_crs(4326), source="synthetic:communities")
        importer.import_layer(session, "communities", raw)
        geoms = encode_many([r["geom"] for r in rows], session.bind.dialect.name)
        chunk = 20_000
        for start in range(0, len(rows), chunk):
            part = [{**r, "geom": g} for r, g in zip(rows[start:start + chunk], geoms[start:start + chunk])]
            session.execute(insert(m.Incident), part)
    seconds = time.perf_counter() - t0
    if verbose:
        print(f"  {store.url.get_backend_name()}: {len(rows):,} incidents stored in {seconds:.1f} s", flush=True)
    return seconds


# -- the peer: the same figures in SQL -------------------------------------------------------------

def _sql(dialect):
    """The statements of the peer for one dialect: keyed expressions and the percentile query."""
    open_list = ", ".join(f"'{s}'" for s in dispatch.OPEN_STATUSES)
    if dialect == "sqlite":
        hours = "(julianday(resolved_at) - julianday(reported_at)) * 24.0"
        period = "strftime('%Y-%m-%d', reported_at)"
    else:
        hours = "EXTRACT(EPOCH FROM resolved_at - reported_at) / 3600.0"
        period = "to_char(reported_at, 'YYYY-MM-DD')"
    counts = (f"COUNT(*) AS total, SUM(CASE WHEN status = 'resolved' THEN 1 ELSE 0 END) AS resolved, "
              f"SUM(CASE WHEN status IN ({open_list}) THEN 1 ELSE 0 END) AS open, "
              f"SUM(CASE WHEN status IN ({open_list}) AND deadline_at IS NOT NULL AND deadline_at < :now "
              f"THEN 1 ELSE 0 END) AS overdue")
    return {"hours": hours, "period": period, "counts": counts}


def sql_statistics(session, *, community=None, now=NOW):
    """The figures of ``statistics(period="day")`` but the heatmap, each from a GROUP BY in the database."""
    from sqlalchemy import text
    dialect = session.bind.dialect.name
    s = _sql(dialect)
    where = "status <> 'merged'" + (" AND community_code = :community" if community else "")
    args = {"now": now, "community": community}

    def grouped(key_sql, name):
        rows = session.execute(text(f"SELECT {key_sql} AS k, {s['counts']} FROM incident WHERE {where} "
                                    f"GROUP BY {key_sql} ORDER BY {key_sql}"), args).all()
        return [{name: k, "total": t, "resolved": int(r), "open": int(o), "overdue": int(d),
                 "resolution_rate": round(float(r) / t, 4) if t else None} for k, t, r, o, d in rows]

    total, resolved, open_, overdue = session.execute(
        text(f"SELECT {s['counts']} FROM incident WHERE {where}"), args).one()
    duplicates = session.execute(text("SELECT COUNT(*) FROM incident WHERE status = 'merged'"
                                      + (" AND community_code = :community" if community else "")), args).scalar()
    by_level = dict(session.execute(text(
        f"SELECT level, COUNT(*) FROM incident WHERE {where} AND status IN "
        f"({', '.join(repr(x) for x in dispatch.OPEN_STATUSES)}) GROUP BY level"), args).all())
    resolved_where = where + " AND status = 'resolved'"
    if dialect == "postgresql":
        median, p90, count = session.execute(text(
            f"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY {s['hours']}), "
            f"percentile_cont(0.9) WITHIN GROUP (ORDER BY {s['hours']}), COUNT(*) "
            f"FROM incident WHERE {resolved_where}"), args).one()
    else:
        # linear interpolation between the order statistics around (n - 1) q, as numpy.percentile does
        median, p90, count = session.execute(text(
            f"WITH r AS (SELECT {s['hours']} AS x, ROW_NUMBER() OVER (ORDER BY {s['hours']}) - 1 AS i, "
            f"COUNT(*) OVER () AS n FROM incident WHERE {resolved_where}) "
            + "SELECT " + ", ".join(
                f"SUM(CASE WHEN i = CAST((n - 1) * {q} AS INTEGER) "
                f"THEN x * (1 - ((n - 1) * {q} - CAST((n - 1) * {q} AS INTEGER))) "
                f"WHEN i = CAST((n - 1) * {q} AS INTEGER) + 1 "
                f"THEN x * ((n - 1) * {q} - CAST((n - 1) * {q} AS INTEGER)) ELSE 0 END)" for q in (0.5, 0.9))
            + ", MAX(n) FROM r"), args).one()
    return {"total": total, "resolved": int(resolved or 0), "open": int(open_ or 0), "duplicates": duplicates,
            "resolution_rate": round(float(resolved) / total, 4) if total else None,
            "hours_to_resolve": {"median": None if median is None else round(float(median), 2),
                                 "p90": None if p90 is None else round(float(p90), 2), "count": int(count or 0)},
            "open_by_level": {lv: int(by_level.get(lv, 0)) for lv in catalog.LEVELS}, "overdue": int(overdue or 0),
            "by_community": grouped("community_code", "community"), "by_grid": grouped("grid_code", "grid"),
            "by_period": grouped(s["period"], "period")}


def compare(ours, peer):
    """Differences between statistics() and the SQL figures (percentiles to 0.01 h); [] when they agree."""
    out = []
    for key in ("total", "resolved", "open", "duplicates", "resolution_rate", "open_by_level", "overdue"):
        if ours[key] != peer[key]:
            out.append(f"{key}: {ours[key]} != {peer[key]}")
    for key in ("median", "p90", "count"):
        a, b = ours["hours_to_resolve"][key], peer["hours_to_resolve"][key]
        if (a is None) != (b is None) or (a is not None and abs(a - b) > 0.0101):
            out.append(f"hours {key}: {a} != {b}")
    for key in ("by_community", "by_grid", "by_period"):
        # SQL puts NULL first (SQLite) or last (PostgreSQL); statistics() last
        a = sorted(ours[key], key=lambda g: (g[key[3:]] is None, g[key[3:]] or ""))
        b = sorted(peer[key], key=lambda g: (g[key[3:]] is None, g[key[3:]] or ""))
        if a != b:
            bad = next((x, y) for x, y in zip(a, b) if x != y) if len(a) == len(b) else (len(a), len(b))
            out.append(f"{key}: first difference {bad}")
    return out


# -- timing ----------------------------------------------------------------------------------------

def best_of(fn, repeat):
    times, value = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return min(times), value


def read_rows(session, community=None):
    """The select statistics() issues, alone: what reading the rows costs before any grouping."""
    from sqlalchemy import select

    from gridmap.store import models as m
    q = select(m.Incident.id, m.Incident.category, m.Incident.status, m.Incident.level, m.Incident.community_code,
               m.Incident.grid_code, m.Incident.reported_at, m.Incident.resolved_at, m.Incident.deadline_at,
               m.Incident.lon, m.Incident.lat)
    if community is not None:
        q = q.where(m.Incident.community_code == community)
    return session.execute(q).all()


def measure(store, community, repeat, before=True):
    """Rows of (backend, scope, what, seconds) and whether both sides (and before) agreed."""
    name = "PostGIS" if store.is_postgis else "SQLite"
    rows, agreed = [], True
    with store.session() as session:
        for scope, code in (("city", None), (f"community {community}", community)):
            t_ours, ours = best_of(lambda: dispatch.statistics(session, community=code, now=NOW, private=True),
                                   repeat)
            t_read, _ = best_of(lambda: read_rows(session, code), repeat)
            t_sql, peer = best_of(lambda: sql_statistics(session, community=code), repeat)
            diff = compare(ours, peer)
            t_before = None
            agreed &= not diff
            for d in diff[:5]:
                print(f"  DIFFERENT ({name}, {scope}): {d}", flush=True)
            rows.append({"backend": name, "scope": scope, "grids": len(ours["by_grid"]), "incidents": ours["total"],
                         "statistics_s": round(t_ours, 3), "read_rows_s": round(t_read, 3),
                         "sql_group_by_s": round(t_sql, 3),
                         "before_s": None if t_before is None else round(t_before, 3), "agree": not diff})
            print(f"  {name} {scope}: statistics() {t_ours:.3f} s (reading the rows alone {t_read:.3f} s"
                  + ("" if t_before is None else f"; as before the rewrite {t_before:.3f} s")
                  + f"), SQL GROUP BY {t_sql:.3f} s, {'same figures' if not diff else 'DIFFERENT'}", flush=True)
    return rows, agreed


def _pg_store(url):
    """A Store in a fresh schema PG_SCHEMA of the database at ``url``; None when it does not answer."""
    import sqlalchemy as sa

    from gridmap.store import Store
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
            conn.execute(sa.text(f"CREATE SCHEMA {PG_SCHEMA}"))
        engine.dispose()
    except Exception as e:  # noqa: BLE001 - any failure to connect means: no PostGIS here
        print(f"  note: PostGIS at {url} does not answer ({type(e).__name__}); SQLite only.", flush=True)
        return None
    scoped = sa.engine.make_url(url).update_query_dict({"options": f"-csearch_path={PG_SCHEMA},public"})
    return Store(scoped.render_as_string(hide_password=False))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--incidents", type=int, default=100_000)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--postgis", default=os.environ.get("GRIDMAP_TEST_DATABASE_URL", DEFAULT_PG))
    ap.add_argument("--no-postgis", action="store_true")
    ap.add_argument("--skip-before", action="store_true", help="do not time the grouping as it was before")
    args = ap.parse_args()

    from gridmap.store import Store
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    city = synthetic_city.load(args.scale, args.seed)
    t0 = time.perf_counter()
    rows = make_incidents(city, args.incidents, args.seed)
    print(f"  {len(rows):,} incidents made in {time.perf_counter() - t0:.1f} s", flush=True)
    counts = {}
    for r in rows:
        counts[r["community_code"]] = counts.get(r["community_code"], 0) + 1
    community = max(sorted(counts), key=counts.get)

    stores = []
    path = OUT / "dispatch-bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    stores.append(Store(f"sqlite:///{path}"))
    if not args.no_postgis:
        pg = _pg_store(args.postgis)
        if pg is not None:
            stores.append(pg)
    results, agreed, load = [], True, {}
    for store in stores:
        load[store.url.get_backend_name()] = round(fill(store, city, rows), 1)
        if store.is_postgis:
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                from sqlalchemy import text
                conn.execute(text("VACUUM ANALYZE incident"))
        got, ok = measure(store, community, args.repeat, before=not args.skip_before)
        results += got
        agreed &= ok
        store.dispose()

    print(f"\n{args.incidents:,} incidents, {len(city.grids):,} grids, {len(city.communities):,} communities; "
          f"fastest of {args.repeat}; seconds")
    head = ("store", "scope", "grids", "statistics()", "rows alone", "SQL GROUP BY", "SQL/ours", "before", "same")
    print("  ".join(f"{h:>13}" for h in head))
    for r in results:
        print("  ".join(f"{v:>13}" for v in (r["backend"], r["scope"][:13], r["grids"], f"{r['statistics_s']:.3f}",
                                             f"{r['read_rows_s']:.3f}", f"{r['sql_group_by_s']:.3f}",
                                             f"{r['sql_group_by_s'] / r['statistics_s']:.2f}",
                                             "" if r["before_s"] is None else f"{r['before_s']:.3f}",
                                             "yes" if r["agree"] else "NO")))
    print(f"load average at end: {os.getloadavg()}")
    (OUT / "dispatch-bench.json").write_text(json.dumps({
        "incidents": args.incidents, "scale": args.scale, "seed": args.seed, "repeat": args.repeat,
        "community": community, "load_s": load, "results": results, "python": platform.python_version(),
        "when": dt.datetime.now().isoformat(timespec="seconds")}, indent=2))
    if not agreed:
        sys.exit("statistics() and the SQL figures (or statistics() before the rewrite) differ")


if __name__ == "__main__":
    main()
