"""The border under load: huge bodies against worker memory, and a longer fuzz of the whole API.

    .venv/bin/python bench/border_bench.py [--only bodies,fuzz] [--before /path/to/old/checkout]
                                           [--examples 100] [--sizes 50,150]

``bodies``: the Dalian demo on SQLite under gunicorn (2 sync workers) on 127.0.0.1. One client
streams bodies of 50 MB and 150 MB — ``[{},{},…]`` to ``POST /api/v1/incidents`` and ``[[],[],…]``
to ``POST /open311/v2/requests.json``, as the outside tester did, and a 50 MB multipart file to
Open311 — and the script reads each worker's peak resident memory (``VmHWM`` in /proc) before and
after: the growth is what one request cost. It prints the status, how many bytes the server let
the client send before it answered, the seconds and the growth. ``--before`` runs the same against
another checkout (e.g. a worktree of the commit before the border was bounded), the peer figure.

``fuzz``: schemathesis over every /api/v1 operation, hypothesis over Open311 and every page (tests/fuzzing.py,
the same driver the test suite runs with 12 examples), ``--examples`` valid and as many invalid
requests per operation, on SQLite and, when it answers at $GRIDMAP_TEST_DATABASE_URL, PostGIS;
prints the count of each status per operation and every 5xx with the curl command that repeats it.

``ratelimit``: the Dalian demo on SQLite under gunicorn (2 sync workers) with the default limits and
their default storage (counters in the store, shared by both workers), then with ``memory://`` (each
worker counts apart) as the peer figure. One client at 127.0.0.2 sends
``--flood`` reports (1,000) to ``POST /api/v1/incidents`` over ``--seconds`` (60) while three others at
127.0.0.3–5 report every 6 s; each client is its own loopback address, the address the limits count.
Prints per client the count of 201, 429 and other answers, the flood's first 429, the median
milliseconds of an accepted and of a refused report, and the incidents the store gained (which must
equal the 201s: a refused report writes nothing).
"""
from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from http_bench import HOST, free_port, stop_server  # noqa: E402

OUT = ROOT / "bench" / "out"
MB = 1024 * 1024


# --- bodies --------------------------------------------------------------------------------------

def demo_store(checkout):
    """A SQLite file with the Dalian demo, made once per checkout by its own ``gridmap demo``."""
    instance = OUT / f"border-{Path(checkout).name}"
    instance.mkdir(parents=True, exist_ok=True)
    db = instance / "gridmap.db"
    if not db.exists():
        env = {**os.environ, "GRIDMAP_INSTANCE_PATH": str(instance), "PYTHONPATH": str(checkout)}
        subprocess.run([sys.executable, "-m", "gridmap", "demo"], cwd=checkout, env=env, check=True,
                       stdout=subprocess.DEVNULL)
    return instance


def start(checkout, instance, workers=2):
    port = free_port()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    env = {**os.environ, "GRIDMAP_INSTANCE_PATH": str(instance), "PYTHONPATH": str(checkout),
           "GRIDMAP_SECRET_KEY": "bench-only-secret"}
    log = open(OUT / "border-server.log", "a")
    proc = subprocess.Popen([str(gunicorn), "--workers", str(workers), "--bind", f"{HOST}:{port}", "--timeout", "300",
                             "--worker-tmp-dir", "/dev/shm", "--log-level", "warning", "gridmap:create_app()"],
                            cwd=checkout, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection(HOST, port, timeout=5)
            c.request("GET", "/api/v1/communities")
            if c.getresponse().status == 200 and len(workers_of(proc)) == workers:
                c.close()
                warm(port)
                return proc, port
        except OSError:
            time.sleep(0.5)
    stop_server(proc)
    raise SystemExit("the server did not start; see bench/out/border-server.log")


def warm(port, n=20):
    for _ in range(n):  # requests land on either worker: warm both past their first-request costs
        c = http.client.HTTPConnection(HOST, port, timeout=30)
        c.request("POST", "/api/v1/incidents", body=b"[]", headers={"Content-Type": "application/json"})
        c.getresponse().read()
        c.close()


def workers_of(proc):
    try:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    except OSError:
        return []
    return [int(c) for c in children]


def _status(pid, key):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def peaks(proc):
    return {pid: _status(pid, "VmHWM") for pid in workers_of(proc)}


def pattern_body(unit, size):
    """``[unit,unit,…]`` of about ``size`` bytes, as chunks (never held whole by the client)."""
    chunk = (unit + b",") * (MB // (len(unit) + 1))
    sent = 1
    yield b"["
    while sent + len(chunk) < size:
        yield chunk
        sent += len(chunk)
    yield unit + b"]"


def multipart_body(size, boundary=b"gridmapbench"):
    head = (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"media\"; filename=\"big.jpg\"\r\n"
            b"Content-Type: image/jpeg\r\n\r\n")
    tail = b"\r\n--" + boundary + b"--\r\n"
    yield head
    left = size - len(head) - len(tail)
    block = b"\xff" * MB
    while left > 0:
        yield block[:min(left, MB)]
        left -= MB
    yield tail


def _length(chunks_factory):
    return sum(len(c) for c in chunks_factory())


def csrf(port):
    """A session cookie and its CSRF token, as the resident's page holds them (the API's POSTs need both)."""
    import json
    c = http.client.HTTPConnection(HOST, port, timeout=30)
    c.request("GET", "/api/v1/csrf")
    r = c.getresponse()
    token = json.loads(r.read())["csrf_token"]
    cookie = r.getheader("Set-Cookie").split(";")[0]
    c.close()
    return {"Cookie": cookie, "X-CSRFToken": token}


def send(port, path, chunks_factory, content_type, headers=()):
    """Stream a body with its Content-Length; returns (status, bytes the server let us send, seconds)."""
    length = _length(chunks_factory)
    headers = dict(headers)
    c = http.client.HTTPConnection(HOST, port, timeout=600)
    t0 = time.perf_counter()
    c.putrequest("POST", path)
    c.putheader("Content-Type", content_type)
    c.putheader("Content-Length", str(length))
    for name, value in headers.items():
        c.putheader(name, value)
    c.endheaders()
    sent = 0
    try:
        for chunk in chunks_factory():
            c.send(chunk)
            sent += len(chunk)
    except OSError:  # the server answered and closed before reading it all: what a limit should do
        pass
    try:
        r = c.getresponse()
        status = r.status
        r.read()
    except OSError as err:
        status = f"closed ({type(err).__name__})"
    c.close()
    return status, sent, time.perf_counter() - t0


def bodies(checkout, sizes, label):
    instance = demo_store(checkout)
    cases = []
    for size in sizes:
        cases += [(f"{size} MB [{{}},…] → POST /api/v1/incidents", "/api/v1/incidents",
                   lambda s=size: pattern_body(b"{}", s * MB), "application/json"),
                  (f"{size} MB [[],…] → POST /open311/v2/requests.json", "/open311/v2/requests.json",
                   lambda s=size: pattern_body(b"[]", s * MB), "application/json")]
    cases.append((f"{sizes[0]} MB multipart file → POST /open311/v2/requests.json", "/open311/v2/requests.json",
                  lambda: multipart_body(sizes[0] * MB), "multipart/form-data; boundary=gridmapbench"))
    rows = []
    for name, path, factory, ctype in cases:
        proc, port = start(checkout, instance)  # a fresh server a case: each peak is that request's alone
        try:
            session = csrf(port)
            before = peaks(proc)
            status, sent, seconds = send(port, path, factory, ctype, session)
            time.sleep(0.3)
            after = peaks(proc)
            growth = max(after.get(pid, 0) - before.get(pid, 0) for pid in before)
            rows.append((name, status, sent, seconds, growth, max(before.values())))
        finally:
            stop_server(proc)
    print(f"\nbodies — {label} ({checkout}), gunicorn 2 sync workers, Dalian demo on SQLite")
    print(f"{'request':<52} {'status':>8} {'sent MB':>8} {'s':>7} {'worker peak +MB':>16} {'baseline MB':>12}")
    for name, status, sent, seconds, growth, base in rows:
        print(f"{name:<52} {status!s:>8} {sent / MB:>8.1f} {seconds:>7.2f} {growth / MB:>16.1f} {base / MB:>12.0f}")
    return rows


# --- ratelimit -----------------------------------------------------------------------------------

def report_once(port, source, session, point, n):
    """One report from the loopback address ``source``; returns (status, milliseconds)."""
    import json
    body = json.dumps({"category": "noise", "lon": point[0], "lat": point[1],
                       "description": f"bench report {n} from {source}"}).encode()
    c = http.client.HTTPConnection(HOST, port, timeout=60, source_address=(source, 0))
    t0 = time.perf_counter()
    try:
        c.request("POST", "/api/v1/incidents", body=body, headers={"Content-Type": "application/json", **session})
        r = c.getresponse()
        r.read()
        status = r.status
    except OSError as err:
        status = f"closed ({type(err).__name__})"
    finally:
        c.close()
    return status, (time.perf_counter() - t0) * 1000


def _client_loop(port, source, point, count, interval, out):
    session = csrf(port)
    start = time.perf_counter()
    for n in range(count):
        wait = start + n * interval - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        out.append(report_once(port, source, session, point, n))


def ratelimit(checkout, flood=1000, seconds=60.0, storage="store", others=("127.0.0.3", "127.0.0.4", "127.0.0.5"),
              every=6.0):
    import sqlite3
    import statistics
    import threading

    instance = demo_store(checkout)
    db = instance / "gridmap.db"
    os.environ["GRIDMAP_RATELIMIT_STORAGE_URI"] = storage  # start() hands the environment to gunicorn
    try:
        proc, port = start(checkout, instance)
    finally:
        del os.environ["GRIDMAP_RATELIMIT_STORAGE_URI"]
    try:
        with sqlite3.connect(db) as con:
            con.execute("DELETE FROM rate_counter")  # an earlier run's counts (the day's limit) would carry over
            point = con.execute("SELECT lon, lat FROM building ORDER BY id LIMIT 1").fetchone()
            before = con.execute("SELECT count(*) FROM incident").fetchone()[0]
        results = {"127.0.0.2 (flood)": []}
        threads = [threading.Thread(target=_client_loop, args=(port, "127.0.0.2", point, flood, seconds / flood,
                                                               results["127.0.0.2 (flood)"]))]
        for source in others:
            results[source] = []
            threads.append(threading.Thread(target=_client_loop, args=(port, source, point, int(seconds // every) + 1,
                                                                       every, results[source])))
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.perf_counter() - t0
        with sqlite3.connect(db) as con:
            gained = con.execute("SELECT count(*) FROM incident").fetchone()[0] - before
    finally:
        stop_server(proc)
    print(f"\nratelimit — gunicorn 2 sync workers, Dalian demo on SQLite, default limits, "
          f"RATELIMIT_STORAGE_URI={storage}; {took:.0f} s")
    print(f"{'client':<20} {'sent':>5} {'201':>5} {'429':>5} {'other':>6} {'first 429':>10} {'ms 201':>7} {'ms 429':>7}")
    accepted = 0
    for name, rows in results.items():
        statuses = [s for s, _ in rows]
        ok = statuses.count(201)
        refused = statuses.count(429)
        accepted += ok
        first = statuses.index(429) if 429 in statuses else None
        ms = {code: statistics.median([t for s, t in rows if s == code]) if code in statuses else float("nan")
              for code in (201, 429)}
        print(f"{name:<20} {len(rows):>5} {ok:>5} {refused:>5} {len(rows) - ok - refused:>6} "
              f"{'—' if first is None else f'#{first}':>10} {ms[201]:>7.1f} {ms[429]:>7.1f}")
    print(f"incidents written: {gained} (201 answers: {accepted}); "
          f"other clients all 201: {all(s == 201 for k, rows in results.items() if k in others for s, _ in rows)}")
    return results


# --- fuzz ----------------------------------------------------------------------------------------

def fuzz(examples, backends):
    import tempfile

    import dispatch_world as w
    from conftest import at, make_app
    from fuzzing import Anchors, fuzz_api, fuzz_open311, fuzz_pages
    from sqlalchemy import select

    from gridmap import apikeys
    from gridmap.catalog import CATEGORIES
    from gridmap.dispatch.georeport import PUBLIC_CODES
    from gridmap.store import models as m

    for backend in backends:
        app, cleanup = make_app(Path(tempfile.mkdtemp(dir=OUT)), backend)
        store = app.extensions["gridmap.store"]
        w.build(store)
        app.config["WTF_CSRF_ENABLED"] = False
        client = app.test_client()
        client.post("/login", data={"username": "admin", "password": w.PASSWORD})
        lon, lat = at(100, 100)
        for category in ("noise", "water_leak"):
            client.post("/api/v1/incidents", json={"category": category, "lon": lon, "lat": lat})
        with store.transaction() as s:
            key, _ = apikeys.create(s, "fuzz")
        with store.session() as s:
            ids = lambda model: [str(i) for i in s.scalars(select(model.id))]  # noqa: E731
            plans = ids(m.GridPlan)
            anchors = Anchors(path={"incident_id": ids(m.Incident), "task_id": ids(m.WhistleTask),
                                    "volunteer_id": ids(m.Volunteer), "plan_id": plans, "plan_a": plans,
                                    "plan_b": plans, "code": [w.G1, w.G2]},
                              body={"lon": [lon], "lat": [lat], "device_id": ["W-0001", "W-0002"],
                                    "category": sorted(CATEGORIES)[:6],
                                    "time": ["2026-05-04T16:00:00+08:00", 1777881600],
                                    "action": ["accept", "dispatch", "resolve"], "version": [1, 2]},
                              lon=lon, lat=lat)
        t0 = time.perf_counter()
        report = fuzz_api(app, client, anchors, examples=examples, api_key=key)
        fuzz_open311(app, anchors=anchors, api_key=key, codes=PUBLIC_CODES, examples=examples * 10, report=report)
        fuzz_pages(app, client, anchors, examples=examples, report=report)
        seconds = time.perf_counter() - t0
        store.dispose()
        cleanup()
        print(f"\nfuzz — {backend}: {report.total:,} requests in {seconds:.0f} s, "
              f"{report.server_errors()} × 5xx; statuses {dict(sorted(report.statuses().items()))}")
        ops = sorted({op for op, _ in report.counts})
        for op in ops:
            st = report.statuses(op)
            print(f"  {op:<48} " + "  ".join(f"{code}×{n}" for code, n in sorted(st.items())))
        for failure in report.failures:
            print("  5xx:", failure)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="bodies,fuzz", help="parts: bodies, fuzz, ratelimit")
    ap.add_argument("--before", help="another checkout to run the bodies part against (the peer)")
    ap.add_argument("--sizes", default="50,150", help="body sizes in MB")
    ap.add_argument("--examples", type=int, default=100, help="valid and invalid requests per API operation")
    ap.add_argument("--flood", type=int, default=1000, help="ratelimit: reports the flooding client sends")
    ap.add_argument("--seconds", type=float, default=60.0, help="ratelimit: over how many seconds")
    ap.add_argument("--storage", default="store,memory://",
                    help="ratelimit: RATELIMIT_STORAGE_URI values to run with (memory:// is the peer: a count per worker)")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    parts = set(args.only.split(","))
    if "bodies" in parts:
        sizes = [int(s) for s in args.sizes.split(",")]
        bodies(str(ROOT), sizes, "this checkout")
        if args.before:
            bodies(args.before, sizes, "--before")
    if "fuzz" in parts:
        backends = ["sqlite"]
        if os.environ.setdefault("GRIDMAP_TEST_DATABASE_URL",
                                 "postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_test"):
            try:
                import sqlalchemy as sa
                sa.create_engine(os.environ["GRIDMAP_TEST_DATABASE_URL"]).connect().close()
                backends.append("postgis")
            except Exception as err:  # noqa: BLE001 — no server: say so and go on with SQLite
                print(f"PostGIS not reachable ({type(err).__name__}); fuzzing SQLite only")
        fuzz(args.examples, backends)
    if "ratelimit" in parts:
        for storage in args.storage.split(","):
            ratelimit(str(ROOT), args.flood, args.seconds, storage)


if __name__ == "__main__":
    main()
