"""Race benchmark: clients saving, publishing and moving incidents at once against the served demo; counts status codes.

    .venv/bin/python bench/race_bench.py [--server gunicorn|werkzeug] [--workers 2] [--clients 5] [--rounds 20]
                                         [--publish-rounds 3] [--postgis [URL]]

The Dalian demo (``gridmap.demo``) in a store of the run's own — a fresh copy of a SQLite file
built once and cached in bench/out/race/, or with ``--postgis`` a private schema built anew
and dropped at the end — served on 127.0.0.1 by gunicorn with 2 sync workers (as
``http_bench.py`` starts it) or by werkzeug's threaded server in this process. Then, through
the real login form, with CSRF tokens as the pages send them:

- saves: a planner copies the published plan of a community into a draft; each round
  ``--clients`` planners redraw one grid of it (to the boundary it has: every save is a real
  edit that moves the version on) from the version they all read, at once;
- publishes: each round ``--clients`` planners publish a draft each, copied from the published
  plan, at once, each saying the plan it replaces (as the planner page does);
- transitions: each round a report comes in, and ``--clients`` + 1 dispatchers accept or
  escalate it at once from the version they read.

Clients are released together by a barrier. It prints the count of each status code per part
(a lost race is a 409; anything but 200 and 409 is a bug and is shown with its answer) and
exits 1 when there was any. Bounded: the rounds given, 60 s a request, ``--limit`` seconds in
all; the server is stopped and the schema dropped whatever happens. Loopback only.
"""
from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import re
import shutil
import sqlite3
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from http_bench import HOST, _cookies, _request, free_port, start_server, stop_server  # noqa: E402

OUT = ROOT / "bench" / "out" / "race"
PASSWORD = "gridmap-demo"  # the demo's own accounts (gridmap.demo.DEMO_PASSWORD), local throwaway stores only
DEMO_FORMAT = 1  # bump when the cached demo must be rebuilt
LOOPBACK = ("127.0.0.1", "localhost", "::1")


# --- the store ------------------------------------------------------------------------------------

def sqlite_store():
    """A fresh SQLite copy of the demo (the pristine one is built once, ≈ 1 min, and cached)."""
    OUT.mkdir(parents=True, exist_ok=True)
    pristine = OUT / f"demo-v{DEMO_FORMAT}.db"
    if not (OUT / f"demo-v{DEMO_FORMAT}.ok").exists():
        from gridmap import demo
        from gridmap.store import Store
        for stale in OUT.glob(f"demo-v{DEMO_FORMAT}.db*"):
            stale.unlink()
        print("building the demo store once (cached in bench/out/race/) …", flush=True)
        store = Store(f"sqlite:///{pristine}")
        for line in demo.build(store):
            print("  " + line, flush=True)
        store.dispose()
        (OUT / f"demo-v{DEMO_FORMAT}.ok").write_text("ok")
    run = OUT / f"run-{uuid.uuid4().hex[:8]}.db"
    with sqlite3.connect(pristine) as src, sqlite3.connect(run) as dst:
        src.backup(dst)  # a consistent copy whatever the WAL holds
    return f"sqlite:///{run}", lambda: [p.unlink() for p in OUT.glob(f"{run.name}*")]


def postgis_store(base):
    """The demo built in a private schema of ``base`` (a loopback PostGIS database); dropped by the cleanup."""
    import sqlalchemy as sa

    from gridmap import demo
    from gridmap.store import Store
    url = sa.engine.make_url(base)
    if url.host not in LOOPBACK:
        raise SystemExit(f"--postgis {url.render_as_string()!r} is not on this machine; use a 127.0.0.1 database.")
    schema = f"race_bench_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))

    def drop():
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()
    run = url.update_query_dict({"options": f"-csearch_path={schema},public"}).render_as_string(hide_password=False)
    try:
        print(f"building the demo in schema {schema} …", flush=True)
        store = Store(run)
        demo.build(store)
        store.dispose()
    except BaseException:
        drop()
        raise
    return run, drop


# --- the server -----------------------------------------------------------------------------------

def serve(url, server, workers):
    """Start the app on 127.0.0.1; returns (port, stop, the gunicorn process or None)."""
    if server == "gunicorn":
        # gunicorn imports gridmap in its workers: from this checkout, not whatever is installed
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        proc, port = start_server(url, server="gunicorn", workers=workers)
        return port, lambda: stop_server(proc), proc
    from werkzeug.serving import make_server

    from gridmap import create_app
    instance = ROOT / "bench" / "out" / "instance"  # as http_bench's servers: never the project's own instance
    instance.mkdir(parents=True, exist_ok=True)
    os.environ["GRIDMAP_INSTANCE_PATH"] = str(instance)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-only-secret", "MAP_TILES": "none"})
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line a request would bury the counts
    srv = make_server(HOST, free_port(), app, threaded=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()

    def stop():
        srv.shutdown()
        app.extensions["gridmap.store"].dispose()
    return srv.server_port, stop, None


class Client:
    """One signed-in browser: its cookies and CSRF token, raw HTTP/1.1 on a fresh connection a request."""

    def __init__(self, port, username, *, proc=None, wait_s=120.0):
        self.port, self.jar = port, {}
        deadline = time.monotonic() + wait_s
        while True:  # the server may still be starting
            if proc is not None and proc.poll() is not None:
                raise RuntimeError("the server exited; see bench/out/http-gunicorn.log")
            try:
                status, body = self.request("GET", "/login")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        tag = re.search(rb'<input[^>]*name="csrf_token"[^>]*>', body)
        token = re.search(rb'value="([^"]+)"', tag.group(0)) if tag else None
        if status != 200 or token is None:
            raise RuntimeError(f"GET /login answered {status} without a CSRF token")
        from urllib.parse import urlencode
        form = urlencode({"csrf_token": token.group(1).decode(), "username": username, "password": PASSWORD})
        status, _ = self.request("POST", "/login", form.encode(), "application/x-www-form-urlencoded")
        if status != 302:
            raise RuntimeError(f"logging in as {username} answered {status}, not a redirect")
        self.csrf = self.get("/api/v1/csrf")[1]["csrf_token"]

    def request(self, method, path, data=b"", content_type=None):
        head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\nAccept: application/json\r\n"
        if self.jar:
            head += "Cookie: " + "; ".join(f"{k}={v}" for k, v in self.jar.items()) + "\r\n"
        if getattr(self, "csrf", None):
            head += f"X-CSRFToken: {self.csrf}\r\n"
        if content_type:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(data)}\r\n"
        status, rhead, body = _request(self.port, head.encode() + b"\r\n" + data, timeout=60)
        _cookies(rhead, self.jar)
        return status, body

    def get(self, path):
        status, body = self.request("GET", path)
        return status, json.loads(body) if body.startswith((b"{", b"[")) else body

    def post(self, path, doc):
        status, body = self.request("POST", path, json.dumps(doc).encode(), "application/json")
        try:
            return status, json.loads(body)
        except ValueError:
            return status, {"raw": body[:300].decode(errors="replace")}


def at_once(n, fire):
    """``fire(k)`` for k < n in n threads released together; (status, answer) each, in order."""
    barrier = threading.Barrier(n)
    out = [(-1, {"error": "no answer"})] * n

    def run(k):
        barrier.wait()
        try:
            out[k] = fire(k)
        except Exception as err:  # counted, not lost: a client that failed is a finding too
            out[k] = (-1, {"error": f"{type(err).__name__}: {err}"})
    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


# --- the parts ------------------------------------------------------------------------------------

def published_plan(client):
    status, plan_list = client.get("/api/v1/plans")
    published = [p for p in plan_list if p["status"] == "published"] if status == 200 else []
    if not published:
        raise RuntimeError(f"GET /api/v1/plans answered {status} without a published plan")
    return min(published, key=lambda p: p["id"])


def copy(client, plan_id, name):
    status, answer = client.post(f"/api/v1/plans/{plan_id}/copy", {})
    if status != 201:
        raise RuntimeError(f"copying plan {plan_id} answered {status}: {answer}")
    return answer


def saves(planners, rounds, counts, odd, until):
    """Each round every planner redraws the draft's first grid to the boundary it has, from the version all read."""
    n = len(planners)
    draft = copy(planners[0], published_plan(planners[0])["id"], "race bench")
    for round_ in range(rounds):
        if time.monotonic() > until:
            print("  saves: out of time", flush=True)
            break
        status, state = planners[0].get(f"/planner/api/plans/{draft['id']}")
        grid = state["grids"][0]
        body = {"version": state["plan"]["version"], "grid_code": grid["code"], "polygon": grid["geometry"]}
        answers = at_once(n, lambda k: planners[k].post(f"/planner/api/plans/{draft['id']}/redraw", body))
        _count("saves", answers, counts, odd)
        if [s for s, _ in answers].count(200) != 1:
            odd.append(("saves", f"round {round_}: {[s for s, _ in answers].count(200)} saves of one version"))


def publishes(planners, rounds, counts, odd, until):
    """Each round every planner publishes a draft of their own, copied from the published plan, at once."""
    n = len(planners)
    for round_ in range(rounds):
        if time.monotonic() > until:
            print("  publishes: out of time", flush=True)
            break
        current = published_plan(planners[0])
        drafts = [copy(planners[0], current["id"], f"race bench {round_}.{k}") for k in range(n)]
        # each says which plan it replaces, as the planner page does: a request waiting in the
        # server's queue while another publish commits is refused, not published over it
        answers = at_once(n, lambda k: planners[k].post(f"/api/v1/plans/{drafts[k]['id']}/publish",
                                                        {"version": drafts[k]["version"], "replaces": current["id"]}))
        _count("publishes", answers, counts, odd)
        live = [p["id"] for p in planners[0].get("/api/v1/plans")[1]
                if p["status"] == "published" and p["community"] == current["community"]]
        if len(live) != 1:
            odd.append(("publishes", f"round {round_}: community {current['community']} has published plans {live}"))


def transitions(dispatchers, rounds, counts, odd, until, point):
    """Each round a new report; every dispatcher accepts or escalates it at once from version 1."""
    n = len(dispatchers)
    actions = ["accept", "escalate"] * n
    for round_ in range(rounds):
        if time.monotonic() > until:
            print("  transitions: out of time", flush=True)
            break
        status, inc = dispatchers[0].post("/api/v1/incidents", {"category": "water_leak", "lon": point[0],
                                                                 "lat": point[1], "description": "race bench"})
        if status != 201:
            raise RuntimeError(f"reporting an incident answered {status}: {inc}")
        iid = inc["incident"]["id"]
        version = dispatchers[0].get(f"/api/v1/incidents/{iid}")[1]["version"]
        answers = at_once(n, lambda k: dispatchers[k].post(f"/api/v1/incidents/{iid}/transition",
                                                           {"action": actions[k], "version": version}))
        _count("transitions", answers, counts, odd)
        history = dispatchers[0].get(f"/api/v1/incidents/{iid}")[1]["history"]
        if len(history) != 1 + [s for s, _ in answers].count(200):
            odd.append(("transitions", f"incident {iid}: {len(history)} audited steps for "
                                       f"{[s for s, _ in answers].count(200)} accepted"))


def _count(part, answers, counts, odd):
    for status, answer in answers:
        counts[part][status] += 1
        if status not in (200, 409):
            odd.append((part, f"{status}: {json.dumps(answer, ensure_ascii=False)[:300]}"))


def a_point(planner):
    """(lon, lat) of a building in a grid of the first published plan: where a report is located and routed."""
    state = planner.get(f"/planner/api/plans/{published_plan(planner)['id']}")[1]
    building = next(b for b in state["buildings"] if b["grid"] is not None)
    return building["lon"], building["lat"]


def run(args):
    t0 = time.monotonic()
    until = t0 + args.limit
    url, cleanup = postgis_store(args.postgis) if args.postgis else sqlite_store()
    counts = collections.defaultdict(collections.Counter)
    odd = []
    try:
        port, stop, proc = serve(url, args.server, args.workers)
        try:
            planners = [Client(port, "planner", proc=proc) for _ in range(args.clients)]
            dispatchers = [Client(port, "dispatcher", proc=proc) for _ in range(args.clients + 1)]
            how = f"{args.workers} workers" if args.server == "gunicorn" else "a thread a request"
            print(f"serving on {HOST}:{port} ({args.server}, {how}); "
                  f"{args.clients} planners, {args.clients + 1} dispatchers signed in", flush=True)
            saves(planners, args.rounds, counts, odd, until)
            publishes(planners, args.publish_rounds, counts, odd, until)
            transitions(dispatchers, args.rounds, counts, odd, until, a_point(planners[0]))
        finally:
            stop()
    finally:
        cleanup()
    return counts, odd, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", default="gunicorn", choices=("gunicorn", "werkzeug"))
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers (werkzeug: threads as needed)")
    ap.add_argument("--clients", type=int, default=5, help="planners at once (dispatchers: one more)")
    ap.add_argument("--rounds", type=int, default=20, help="rounds of saves, and of transitions")
    ap.add_argument("--publish-rounds", type=int, default=3)
    ap.add_argument("--postgis", nargs="?", const="postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_test",
                    default=None, help="a loopback PostGIS database to build the demo in (a private schema)")
    ap.add_argument("--limit", type=float, default=900.0, help="seconds in all, then stop")
    args = ap.parse_args()
    if args.server == "gunicorn" and shutil.which("gunicorn", path=str(Path(sys.executable).parent)) is None:
        raise SystemExit("gunicorn is not installed beside this Python: .venv/bin/pip install gunicorn, "
                         "or pass --server werkzeug")
    counts, odd, seconds = run(args)
    print(json.dumps({"backend": "postgis" if args.postgis else "sqlite", "server": args.server,
                      "workers": args.workers if args.server == "gunicorn" else None, "clients": args.clients, "seconds": round(seconds, 1),
                      "status_counts": {part: dict(sorted(c.items())) for part, c in counts.items()}}, indent=1))
    for part, what in odd[:20]:
        print(f"  {part}: {what}")
    sys.exit(1 if odd else 0)


if __name__ == "__main__":
    main()
