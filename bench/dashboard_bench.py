"""The city dashboard at a million incidents: each panel's SQL on PostGIS and SQLite beside pandas on a DataFrame;
/api/v1/stats at 100,000 incidents before and after its rewrite to SQL aggregates.

    .venv/bin/python bench/dashboard_bench.py [--incidents 1000000] [--scale 1.0] [--seed 3] [--repeat 3]
                                              [--postgis URL | --no-postgis] [--only panels,stats]
                                              [--stats-incidents 100000] [--before /work/main]

**panels.** N incidents (default 1,000,000) uniform over the synthetic city's square (``synthetic_city.py``:
15,000 grids, 625 communities, 25 streets, 4 districts at scale 1) reported over 365 days; 55 % resolved
(lognormal time), 5 % merged duplicates, the rest open; 5 % without a deadline; 1 % without a grid; 8 %
escalated (a quarter of them twice) and 3 % whistled, recorded as incident_event and whistle_task rows as the
lifecycle writes them (every incident has its "report" step too); one grid worker a grid. Loaded with COPY into a
fresh PostGIS schema ``bench_dashboard`` and with executemany into bench/out/dashboard-bench.db (SQLite), then
ANALYZEd. For the city (the whole year by month), a district (90 days by week), a street and a community (30 days
by day), each panel of :mod:`gridmap.dispatch.kpis` — summary, children, categories, trend, workers — is timed
(median of ``--repeat``) on each store, beside pandas computing the same figures from a DataFrame of the same rows
already in memory (the peer; reading the rows into it is not counted). Both answers are compared; the run
fails if they differ.

**stats.** ``--stats-incidents`` (100,000) incidents in their own SQLite file and PostGIS schema
``bench_dashboard_stats``; ``dispatch.statistics(private=True)`` for the city and its JSON encoding (what
``/api/v1/stats`` does), here (after: SQL aggregates) and in a subprocess importing gridmap from ``--before``
(default /work/main, the checkout before the rewrite: rows into pandas), on the same stores.

Results also go to bench/out/dashboard-bench.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parents[1]
# GRIDMAP_CODE=<checkout>: time that checkout's gridmap (e.g. main before a change) with this script and data
CODE = Path(os.environ.get("GRIDMAP_CODE") or ROOT).resolve()
sys.path.insert(0, str(CODE))
sys.path.insert(0, str(ROOT / "bench"))

import synthetic_city  # noqa: E402

from gridmap import catalog, dispatch  # noqa: E402
from gridmap.dispatch import kpis  # noqa: E402
from gridmap.store import models as _models  # noqa: E402

FLAGS = hasattr(_models.Incident, "escalated")  # migration 0020 on: the flags are written with the incident

OUT = ROOT / "bench" / "out"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_test"
NOW = dt.datetime(2026, 12, 1, 8, 0, 0)
DAYS = 365
OPEN = list(dispatch.OPEN_STATUSES)


# -- the incidents -----------------------------------------------------------------------------------

def make(city, n, seed):
    """The incidents as a DataFrame (id from 1), the escalate and whistle rows, the workers' grid links."""
    rng = np.random.default_rng([seed, 97])
    pts = city.random_points(n, seed=97)
    tree = shapely.STRtree(city.grids.geometry.values)
    points = shapely.points(pts)
    where = np.full(n, -1)
    i_pt, i_grid = tree.query(points, predicate="within")
    where[i_pt] = i_grid
    lost = np.flatnonzero(where < 0)
    if len(lost):
        where[lost] = tree.query_nearest(points[lost], return_distance=False)[1]
    grid = city.grids["code"].to_numpy(dtype=object)[where]
    community = city.grids["community_code"].to_numpy(dtype=object)[where]
    grid[rng.random(n) < 0.01] = None
    cats = np.asarray([c.code for c in catalog.INCIDENT_CATEGORIES], dtype=object)
    u = rng.random(n)
    status = np.where(u < 0.55, "resolved", np.where(u < 0.60, "merged", np.asarray(OPEN, dtype=object)[
        rng.integers(0, len(OPEN), n)])).astype(object)
    reported = np.datetime64(NOW, "us") - (rng.random(n) * DAYS * 86400e6).astype("timedelta64[us]")
    resolved = reported + (rng.lognormal(np.log(20.0), 1.0, n) * 3600e6).astype("timedelta64[us]")
    resolved[~np.isin(status, ["resolved", "merged"])] = np.datetime64("NaT")
    deadline = reported + (rng.choice([2, 24, 72, 168], n) * 3600e6).astype("timedelta64[us]")
    deadline[rng.random(n) < 0.05] = np.datetime64("NaT")
    df = pd.DataFrame({"id": np.arange(1, n + 1), "category": cats[rng.integers(0, len(cats), n)], "status": status,
                       "level": np.asarray(catalog.LEVELS, dtype=object)[rng.integers(0, len(catalog.LEVELS), n)],
                       "community_code": community, "grid_code": grid, "reported_at": reported,
                       "resolved_at": resolved, "deadline_at": deadline, "lon": pts[:, 0], "lat": pts[:, 1]})
    escalated = np.flatnonzero(rng.random(n) < 0.08) + 1
    escalated = np.concatenate([escalated, escalated[: len(escalated) // 4]])
    whistled = np.flatnonzero(rng.random(n) < 0.03) + 1
    geoms = points
    return df, escalated, whistled, geoms


def _wkb(geoms, dialect):
    from gridmap.store.types import encode_many
    return encode_many(geoms, dialect)


INC_COLS = ["id", "category", "status", "description", "reporter_name", "reporter_phone", "community_code",
            "grid_code", "reported_at", "updated_at", "resolved_at", "version", "geom", "level", "department", "vetoed",
            "priority", "deadline_at", "source", "reporter_email", "address", "lon", "lat"]


def _incident_frame(df, geoms, dialect, escalated, whistled):
    out = pd.DataFrame({"id": df["id"], "category": df["category"], "status": df["status"], "description": "",
                        "reporter_name": "", "reporter_phone": "", "community_code": df["community_code"],
                        "grid_code": df["grid_code"], "reported_at": df["reported_at"],
                        "updated_at": df["reported_at"], "resolved_at": df["resolved_at"], "version": 1,
                        "geom": _wkb(geoms, dialect), "level": df["level"], "department": "", "vetoed": False,
                        "priority": False, "deadline_at": df["deadline_at"], "source": "api", "reporter_email": "",
                        "address": "", "lon": df["lon"], "lat": df["lat"]})
    if not FLAGS:
        return out[INC_COLS]
    # as the lifecycle sets them with the escalate step and the whistle task below
    out["escalated"], out["whistled"] = df["id"].isin(escalated), df["id"].isin(whistled)
    return out[INC_COLS + ["escalated", "whistled"]]


def _events(df, escalated):
    report = pd.DataFrame({"incident_id": df["id"], "at": df["reported_at"], "action": "report"})
    esc = pd.DataFrame({"incident_id": escalated, "at": df["reported_at"].to_numpy()[escalated - 1],
                        "action": "escalate"})
    ev = pd.concat([report, esc], ignore_index=True)
    ev.insert(0, "id", np.arange(1, len(ev) + 1))
    return ev.assign(actor="bench", role="dispatcher", to_status="reported", to_level="grid", note="")


def _whistles(df, whistled):
    at = df["reported_at"].to_numpy()[whistled - 1]
    return pd.DataFrame({"id": np.arange(1, len(whistled) + 1), "incident_id": whistled, "department": "城管",
                         "blown_by": "bench", "blown_at": at, "report_by": at + np.timedelta64(2, "h"), "note": ""})


def _workers(city):
    codes = city.grids["code"].to_numpy(dtype=object)
    workers = pd.DataFrame({"id": np.arange(1, len(codes) + 1), "name": [f"网格员{c[-6:]}" for c in codes],
                            "phone": "", "community_code": city.grids["community_code"].to_numpy(dtype=object),
                            "version": 1})
    links = pd.DataFrame({"worker_id": workers["id"], "grid_code": codes})
    return workers, links


def fill(store, city, df, escalated, whistled, geoms):
    """Communities through the importer; incidents, steps, whistles and workers by COPY (PostGIS) or executemany."""
    from gridmap import importer
    from gridmap.geo.crs import parse_crs
    from gridmap.geo.io import RawLayer
    t0 = time.perf_counter()
    store.upgrade()
    with store.transaction() as session:
        raw = RawLayer(frame=city.communities.copy(), crs=parse_crs(4326), source="synthetic:communities")
        importer.import_layer(session, "communities", raw)
    dialect = "postgresql" if store.is_postgis else "sqlite"
    workers, links = _workers(city)
    tables = [("incident", _incident_frame(df, geoms, dialect, escalated, whistled)), ("incident_event", _events(df, escalated)),
              ("whistle_task", _whistles(df, whistled)), ("grid_worker", workers), ("grid_worker_grid", links)]
    raw_conn = store.engine.raw_connection()
    try:
        if store.is_postgis:
            _copy(raw_conn.driver_connection, tables)
        else:
            _executemany(raw_conn.driver_connection, tables)
        raw_conn.commit()
    finally:
        raw_conn.close()
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        from sqlalchemy import text
        conn.execute(text("VACUUM ANALYZE" if store.is_postgis else "ANALYZE"))
        if store.is_sqlite:  # a WAL of the whole load would be consulted on every page read after
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    return time.perf_counter() - t0


def _copy(conn, tables):
    with conn.cursor() as cur:
        for name, frame in tables:
            buf = io.StringIO()
            # NULL as \N: an empty field stays an empty string (description, address … are NOT NULL)
            frame.to_csv(buf, index=False, header=False, na_rep="\\N", date_format="%Y-%m-%d %H:%M:%S.%f")
            buf.seek(0)
            cols = ", ".join(f'"{c}"' for c in frame.columns)
            with cur.copy(f"COPY {name} ({cols}) FROM STDIN WITH (FORMAT csv, NULL '\\N')") as copy:
                while chunk := buf.read(1 << 20):
                    copy.write(chunk)


def _sqlite_value(series):
    if pd.api.types.is_datetime64_any_dtype(series):
        # the text SQLAlchemy writes for a DateTime on SQLite: comparisons with bound times are text comparisons
        text = series.dt.strftime("%Y-%m-%d %H:%M:%S.%f")
        return text.astype(object).where(series.notna(), None)
    if series.dtype == bool:
        return series.astype(int)
    return series.astype(object).where(series.notna(), None)


def _executemany(conn, tables):
    for name, frame in tables:
        cols = list(frame.columns)
        values = [_sqlite_value(frame[c]) for c in cols]
        rows = list(zip(*[v.tolist() for v in values]))
        conn.executemany(f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", rows)


# -- the peer: the same panels in pandas ---------------------------------------------------------------

def peer_frame(df, city, escalated, whistled):
    places = city.communities[["code", "street_code", "district_code"]].rename(columns={"code": "community_code"})
    places["street_code"] = places["street_code"].str.ljust(12, "0")
    places["district_code"] = places["district_code"].str.ljust(12, "0")
    out = df.merge(places, on="community_code", how="left")
    out["esc"] = out["id"].isin(escalated)
    out["whi"] = out["id"].isin(whistled)
    return out


def _figures(g):
    status = g["status"]
    kept, closed, open_ = status != "merged", status == "resolved", status.isin(OPEN)
    on_time = closed & (g["deadline_at"].isna() | (g["resolved_at"] <= g["deadline_at"]))
    return pd.DataFrame({"reported": kept, "closed": closed, "on_time": on_time, "open": open_,
                         "overdue": open_ & (g["deadline_at"] < NOW), "escalated": kept & g["esc"],
                         "whistled": kept & g["whi"], "duplicates": status == "merged"})


def _rows(flags, key=None):
    agg = flags.sum().to_frame().T if key is None else flags.groupby(key, dropna=False).sum()
    out = []
    for k, r in agg.iterrows():
        d = {c: int(r[c]) for c in flags.columns}
        d["closure_rate"] = round(d["closed"] / d["reported"], 4) if d["reported"] else None
        d["on_time_rate"] = round(d["on_time"] / d["closed"], 4) if d["closed"] else None
        out.append((None if key is None or pd.isna(k) else k, d))
    return out


_KEY = {"district": "district_code", "street": "street_code", "community": "community_code", "grid": "grid_code"}


def peer_select(frame, level, code, start, end):
    day = frame["reported_at"]
    keep = (day >= pd.Timestamp(start)) & (day < pd.Timestamp(end + dt.timedelta(days=1)))
    if level != "city":
        keep &= frame[_KEY[level]] == code
    return frame[keep]


def peer_panels(frame, links, level, code, start, end, period):
    """Each panel in pandas: {panel: function() → answer comparable with kpis'}."""
    def sel():
        return peer_select(frame, level, code, start, end)

    def summary():
        return _rows(_figures(sel()))[0][1]

    def children():
        s = sel()
        key = s[_KEY[kpis.CHILD[level]]]
        return sorted(({"code": k, **d} for k, d in _rows(_figures(s), key)),
                      key=lambda r: (r["code"] is None, r["code"] or ""))

    def categories():
        s = sel()
        return sorted(({"category": k, **d} for k, d in _rows(_figures(s), s["category"])),
                      key=lambda c: (-c["reported"], c["category"]))

    def trend():
        s = sel()
        t = s["reported_at"]
        if period == "day":
            label = t.dt.strftime("%Y-%m-%d")
        elif period == "month":
            label = t.dt.strftime("%Y-%m")
        else:
            label = (t.dt.normalize() - pd.to_timedelta(t.dt.day_of_week, unit="D")).dt.strftime("%Y-%m-%d")
        got = dict(_rows(_figures(s), label))
        zero = {k: 0 for k in ("reported", "closed", "on_time", "open", "overdue", "escalated", "whistled",
                               "duplicates")}
        zero.update(closure_rate=None, on_time_rate=None)
        return [{"period": p, **got.get(p, zero)} for p in kpis.period_labels(start, end, period)]

    def workers():
        mine = links if level == "city" else links[links[_KEY[level]] == code]
        opened = frame.loc[frame["status"].isin(OPEN) & frame["grid_code"].notna(), ["grid_code", "deadline_at"]]
        per_grid = pd.DataFrame({"open": opened.groupby("grid_code").size(),
                                 "overdue": (opened["deadline_at"] < NOW).groupby(opened["grid_code"]).sum()})
        w = mine.join(per_grid, on="grid_code").fillna(0).groupby("worker_id").agg(
            grids=("grid_code", "nunique"), open=("open", "sum"), overdue=("overdue", "sum"))
        w = w.reset_index().sort_values(["open", "worker_id"], ascending=[False, True], kind="stable")
        top = w.head(kpis.MAX_WORKERS)
        return {"total": len(w), "rows": [{"id": int(r.worker_id), "grids": int(r.grids), "open": int(r.open),
                                           "overdue": int(r.overdue)} for r in top.itertuples()]}

    return {"summary": summary, "children": children, "categories": categories, "trend": trend, "workers": workers}


def _comparable(panel, value):
    if panel == "children":
        return [{k: v for k, v in r.items() if k != "name"} for r in value]
    if panel == "categories":
        return [{k: v for k, v in r.items() if k not in ("name", "name_en")} for r in value]
    if panel == "workers":
        return {"total": value["total"], "rows": [{k: r[k] for k in ("id", "grids", "open", "overdue")}
                                                  for r in value["rows"]]}
    return value


def best_of(fn, repeat):
    times, value = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), value  # the median: the machine is shared, its fastest run is luck


def scopes(frame):
    """(level, code, start, end, period): the city over the year, then the busiest district, street, community."""
    end = NOW.date()
    d = frame["district_code"].value_counts().index[0]
    s = frame.loc[frame["district_code"] == d, "street_code"].value_counts().index[0]
    c = frame.loc[frame["street_code"] == s, "community_code"].value_counts().index[0]
    return [("city", None, end - dt.timedelta(days=DAYS - 1), end, "month"),
            ("district", d, end - dt.timedelta(days=89), end, "week"),
            ("street", s, end - dt.timedelta(days=29), end, "day"),
            ("community", c, end - dt.timedelta(days=29), end, "day")]


def run_panels(args, city):
    t0 = time.perf_counter()
    df, escalated, whistled, geoms = make(city, args.incidents, args.seed)
    print(f"  {len(df):,} incidents made in {time.perf_counter() - t0:.1f} s", flush=True)
    frame = peer_frame(df, city, escalated, whistled)
    workers, links = _workers(city)
    places = frame[["community_code", "street_code", "district_code"]].drop_duplicates("community_code")
    links = links.assign(community_code=links["grid_code"].str[:12]).merge(places, on="community_code", how="left")
    stores = _stores(args, "dashboard-bench.db", "bench_dashboard")
    results, agreed = [], True
    for store in stores:
        name = "PostGIS" if store.is_postgis else "SQLite"
        seconds = fill(store, city, df, escalated, whistled, geoms)
        print(f"  {name}: loaded in {seconds:.1f} s", flush=True)
        with store.session() as session:
            for level, code, start, end, period in scopes(frame):
                scope = kpis.Scope(level=level, code=code, start=start, end=end, period=period, role="admin",
                                   now=NOW)
                peers = peer_panels(frame, links, level, code, start, end, period)
                for panel, fn in kpis.PANELS.items():
                    t_sql, ours = best_of(lambda: fn(session, scope), args.repeat)
                    t_pd, theirs = best_of(peers[panel], args.repeat)
                    same = _comparable(panel, ours) == theirs
                    agreed &= same
                    results.append({"backend": name, "level": level, "panel": panel, "sql_s": round(t_sql, 4),
                                    "pandas_s": round(t_pd, 4), "same": same})
                    print(f"  {name:8} {level:10} {panel:11} SQL {t_sql * 1000:8.1f} ms   pandas {t_pd * 1000:8.1f} ms"
                          f"   {'same' if same else 'DIFFERENT'}", flush=True)
        store.dispose()
    return results, agreed


# -- /api/v1/stats before and after -------------------------------------------------------------------------

_TIME_STATS = """
import datetime as dt, json, sys, time
from gridmap import dispatch
from gridmap.store import Store
store = Store(sys.argv[1]); now = dt.datetime.fromisoformat(sys.argv[2]); best = None
with store.session() as s:
    for _ in range(int(sys.argv[3])):
        t0 = time.perf_counter(); out = json.dumps(dispatch.statistics(s, private=True, now=now))
        best = min(best or 1e9, time.perf_counter() - t0)
        total = json.loads(out)["total"]
print(json.dumps({"seconds": best, "total": total}))
"""


def run_stats(args, city):
    df, escalated, whistled, geoms = make(city, args.stats_incidents, args.seed + 1)
    results = []
    for store in _stores(args, "dashboard-stats-bench.db", "bench_dashboard_stats"):
        name = "PostGIS" if store.is_postgis else "SQLite"
        fill(store, city, df, escalated, whistled, geoms)
        url = store.url.render_as_string(hide_password=False)
        store.dispose()
        row = {"backend": name}
        for side, path in (("after", ROOT), ("before", Path(args.before))):
            env = {**os.environ, "PYTHONPATH": str(path)}
            out = subprocess.run([sys.executable, "-c", _TIME_STATS, url, NOW.isoformat(), str(args.repeat)],
                                 env=env, capture_output=True, text=True, cwd=path)
            if out.returncode:
                print(out.stderr[-2000:], flush=True)
                row[side] = None
                continue
            got = json.loads(out.stdout.strip().splitlines()[-1])
            row[side], row[f"{side}_total"] = round(got["seconds"], 3), got["total"]
        results.append(row)
        print(f"  {name}: /api/v1/stats (statistics() + JSON) at {len(df):,} incidents: before {row['before']} s, "
              f"after {row['after']} s", flush=True)
    return results


def _stores(args, filename, schema):
    import sqlalchemy as sa

    from gridmap.store import Store
    path = OUT / filename
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    stores = [] if args.no_sqlite else [Store(f"sqlite:///{path}")]
    if not args.no_postgis:
        try:
            engine = sa.create_engine(args.postgis, connect_args={"connect_timeout": 5})
            with engine.begin() as conn:
                conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
                conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
                conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
            engine.dispose()
            url = sa.engine.make_url(args.postgis).update_query_dict({"options": f"-csearch_path={schema},public"})
            stores.append(Store(url.render_as_string(hide_password=False)))
        except Exception as e:  # noqa: BLE001 - any failure to connect means: no PostGIS here
            print(f"  note: PostGIS at {args.postgis} does not answer ({type(e).__name__}); SQLite only.", flush=True)
    return stores


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--incidents", type=int, default=1_000_000)
    ap.add_argument("--stats-incidents", type=int, default=100_000)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--postgis", default=os.environ.get("GRIDMAP_TEST_DATABASE_URL", DEFAULT_PG))
    ap.add_argument("--no-postgis", action="store_true")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--only", default="panels,stats")
    ap.add_argument("--before", default="/work/main", help="a checkout whose statistics() is the 'before'")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    city = synthetic_city.load(args.scale, args.seed)
    only = set(args.only.split(","))
    report, agreed = {"incidents": args.incidents, "scale": args.scale, "repeat": args.repeat}, True
    if "panels" in only:
        report["panels"], agreed = run_panels(args, city)
        print(f"\n{args.incidents:,} incidents; median of {args.repeat}; ms (SQL in the store / pandas on a "
              f"DataFrame in memory)")
        for r in report["panels"]:
            print(f"  {r['backend']:8} {r['level']:10} {r['panel']:11} {r['sql_s'] * 1000:8.1f} {r['pandas_s'] * 1000:8.1f}"
                  f"  {'same' if r['same'] else 'DIFFERENT'}")
    if "stats" in only:
        report["stats"] = run_stats(args, city)
    print(f"load average at end: {os.getloadavg()}")
    (OUT / "dashboard-bench.json").write_text(json.dumps(report, indent=2))
    if not agreed:
        sys.exit("the store's panels and pandas' differ")


if __name__ == "__main__":
    main()
