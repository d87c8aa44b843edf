"""HTTP benchmark: the real app under a real WSGI server on loopback, driven open-loop at a fixed rate.

    .venv/bin/python bench/http_bench.py [--endpoint locate|panel] [--scale 1.0] [--server gunicorn|waitress]
                                         [--rate 200] [--duration 20] [--mode walk|ebike|car]

Two endpoints, each a GET at random points of the city:

- ``locate`` (default): ``GET /api/v1/locate?lon=&lat=``, anonymous.
- ``panel``: ``GET /dispatch/panel?lon=&lat=``, what the dispatcher's page asks on every click
  (``pages.dispatcher.panel``: locate, the grid's workers and party branch, the cameras seeing the
  point, the 3 nearest of each responder kind and of volunteers with road distance and ETA, and
  grids within 30 m), by road for ``--mode`` (car by default, as the page first asks). The client logs in once as a dispatcher through the real login form
  (GET /login for the CSRF token and session cookie, POST the form) and sends the session
  cookie with every request. Beside the HTTP figures it prints ``panel()`` timed in-process
  over the same points on a snapshot of the same store, for reference.

The store is a SQLite file holding the synthetic city's communities, grids (published),
responders, volunteers, cameras and streets (``synthetic_city.roads``: ≈ 200,000 segments at
scale 1), one grid worker a grid, all loaded through gridmap's own import border
(``importer.import_layer``); a party branch a grid (there is no import kind for party
organisations, so they are inserted as rows) and a dispatcher account (``accounts.create_user``).
It is cached in bench/out/ beside the city. The server runs the real app
(``gridmap:create_app()``) with 2 workers (gunicorn, sync) or 2 threads (waitress). The load
generator schedules request i at t0 + i/rate whatever happened before (open loop), so a slow
answer delays nothing else and shows up as latency; latency is measured from the scheduled time
("as the caller waited") and from the actual send ("service"). It fires rate × duration requests
at most, gives up ``duration + 15`` s after starting, and talks only to 127.0.0.1. Client and
server share the machine's 2 cores. Beside the latencies it reports the server's CPU time per
request (master and workers, from /proc): on a shared machine latency says how busy the machine
was, CPU time what a request costs.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


HOST = "127.0.0.1"  # loopback only, never anything else
STORE_FORMAT = 2  # 2: cameras, volunteers, roads, workers, party branches and a dispatcher as well
ENDPOINTS = {"locate": "/api/v1/locate", "panel": "/dispatch/panel"}
DISPATCHER = ("bench-dispatcher", "bench-only-password")  # a local throwaway store: not a secret


def prepare_store(city, *, verbose=True):
    """A SQLite store holding the city (see the module docstring); cached beside the city."""
    import synthetic_city
    folder = synthetic_city.cache_dir(city.scale, city.seed)
    path = folder / f"store-v{STORE_FORMAT}.db"
    url = f"sqlite:///{path}"
    done = folder / f"store-v{STORE_FORMAT}.ok"
    if done.exists() and path.exists():
        return url, json.loads(done.read_text())
    from sqlalchemy import insert

    from gridmap import accounts, importer
    from gridmap.geo.crs import parse_crs
    from gridmap.geo.io import RawLayer
    from gridmap.store import Store
    from gridmap.store import models as m

    path.unlink(missing_ok=True)
    store = Store(url)
    store.upgrade()
    seconds = {}
    roads = synthetic_city.roads(city)
    layers = [("communities", city.communities),
              ("grids", city.grids[["code", "name", "community_code", "geometry"]]),
              ("responders", city.responders[["name", "kind", "skills", "available", "geometry"]]),
              ("volunteers", synthetic_city.volunteers(city)),
              ("cameras", city.cameras[["name", "bearing", "fov", "range_m", "geometry"]]),
              ("roads", roads),
              ("workers", synthetic_city.workers(city))]
    with store.transaction() as session:
        for kind, frame in layers:
            t0 = time.perf_counter()
            frame = frame.copy()
            if "kind" in frame:
                frame["kind"] = frame["kind"].astype(str)
            raw = RawLayer(frame=frame, crs=parse_crs(4326), source=f"synthetic:{kind}")
            summary = importer.import_layer(session, kind, raw, publish=(kind == "grids"))
            seconds[kind] = round(time.perf_counter() - t0, 1)
            if verbose:
                print(f"  store: {summary.imported:,} {kind} in {seconds[kind]} s", flush=True)
        # no import kind for party organisations: one grid branch a grid, as plain rows
        session.execute(insert(m.PartyOrganization), [
            {"kind": "grid_branch", "name": f"{name}党支部", "community_code": community, "grid_code": code}
            for code, name, community in zip(city.grids["code"], city.grids["name"], city.grids["community_code"])])
        accounts.create_user(session, *DISPATCHER, "dispatcher", display_name="bench")
    store.dispose()
    info = {"grids": len(city.grids), "communities": len(city.communities), "responders": len(city.responders),
            "volunteers": int(synthetic_city.sizes(city.scale)["volunteers"]), "cameras": len(city.cameras),
            "road_lines": len(roads), "workers": len(city.grids), "seconds": seconds}
    done.write_text(json.dumps(info))
    return url, info


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def hello_app(environ, start_response):
    """The floor: a WSGI app that does nothing, served and driven exactly like gridmap."""
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "11")])
    return [b'{"ok":true}']


def start_server(url, *, server="gunicorn", workers=2, port=None, app="gridmap:create_app()"):
    """Start ``app`` under ``server`` on 127.0.0.1; returns (process, port)."""
    port = port or free_port()
    bindir = Path(sys.executable).parent
    instance = ROOT / "bench" / "out" / "instance"
    instance.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GRIDMAP_DATABASE_URL": url, "GRIDMAP_INSTANCE_PATH": str(instance),
           "GRIDMAP_SECRET_KEY": "bench-only-secret"}
    if server == "gunicorn":
        cmd = [str(bindir / "gunicorn"), "--workers", str(workers), "--bind", f"{HOST}:{port}",
               "--timeout", "300", "--log-level", "warning", app]
        if Path("/dev/shm").is_dir():  # gunicorn's advice: heartbeat files on disk can stall a worker
            cmd[1:1] = ["--worker-tmp-dir", "/dev/shm"]
    elif server == "waitress":
        factory = app.endswith("()")
        cmd = [str(bindir / "waitress-serve"), f"--threads={workers}", f"--listen={HOST}:{port}"] + \
            (["--call", app[:-2]] if factory else [app])
    else:
        raise SystemExit(f"--server {server!r} is not known; use gunicorn or waitress")
    log = open(ROOT / "bench" / "out" / f"http-{server}.log", "a")
    proc = subprocess.Popen(cmd, env=env, cwd=str(ROOT / "bench"), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    return proc, port


def server_cpu_s(proc):
    """CPU seconds (user + system) used so far by the server: its master and live workers (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    try:
        pids = [proc.pid] + [int(c) for c in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    except OSError:
        return float("nan")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a worker that just exited
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def stop_server(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the group this script started: the server and its workers
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _get(port, path, timeout=30.0, headers=b""):
    """One GET on a fresh connection, written by hand: http.client's own overhead (~0.5 ms of
    Python a request) would otherwise sit inside every latency measured here. ``headers``: extra
    header lines, each ending in CRLF (the session cookie)."""
    status, _, body = _request(port, f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n".encode() + headers
                               + b"Connection: close\r\n\r\n", timeout)
    return status, body


def _request(port, raw_request, timeout=30.0):
    """Send ``raw_request`` on a fresh connection; (status, head, body) of the answer."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(raw_request)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    if b"chunked" in head.lower():
        body = _dechunk(body)
    return int(head[9:12]), head, body


def _cookies(head, jar):
    """Update ``jar`` (name → value) from the Set-Cookie lines of a response head."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"set-cookie":
            pair = value.strip().split(b";", 1)[0]
            key, _, val = pair.partition(b"=")
            jar[key.decode()] = val.decode()
    return jar


def login(port, username, password, *, limit_s=120.0, proc=None):
    """Log in through the real form (GET /login for the CSRF token, POST it back) and return the
    ``Cookie:`` header line that carries the session, ready for :func:`_get`. Waits up to
    ``limit_s`` for the server to listen."""
    from urllib.parse import urlencode
    jar = {}
    t_end = time.monotonic() + limit_s
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("the server exited before the login; see bench/out/http-*.log")
        try:
            status, head, body = _request(port, f"GET /login HTTP/1.1\r\nHost: {HOST}\r\n"
                                                f"Connection: close\r\n\r\n".encode())
            break
        except OSError:
            if time.monotonic() > t_end:
                raise
            time.sleep(0.2)
    _cookies(head, jar)
    tag = re.search(rb'<input[^>]*name="csrf_token"[^>]*>', body)
    token = re.search(rb'value="([^"]+)"', tag.group(0)) if tag else None
    if status != 200 or token is None:
        raise RuntimeError(f"GET /login answered {status} without a CSRF token: {body[:300]!r}")
    form = urlencode({"csrf_token": token.group(1).decode(), "username": username, "password": password}).encode()
    cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
    status, head, body = _request(port, (
        f"POST /login HTTP/1.1\r\nHost: {HOST}\r\nCookie: {cookie}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(form)}\r\n"
        f"Connection: close\r\n\r\n").encode() + form)
    _cookies(head, jar)
    if status != 302:
        raise RuntimeError(f"POST /login answered {status}, not the redirect of a successful login: {body[:300]!r}")
    return ("Cookie: " + "; ".join(f"{k}={v}" for k, v in jar.items()) + "\r\n").encode()


def _dechunk(body):
    out, i = [], 0
    while True:
        j = body.index(b"\r\n", i)
        size = int(body[i:j].split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(body[j + 2:j + 2 + size])
        i = j + 2 + size + 2


def warm_up(port, paths, *, limit_s=600.0, proc=None, headers=b"", concurrency=1, fast_s=0.05):
    """Wait until the server answers and every worker has built its snapshot.

    With ``concurrency`` clients at once (one per worker), a sync worker busy building its snapshot
    makes the kernel hand the other client's connections to another worker, so every worker gets
    a request; one client alone can be served by one warm worker throughout and leave the other
    cold for the measured run. Each client must see 40 fast answers (under ``fast_s``) in a row.
    """
    if concurrency > 1:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(concurrency) as pool:
            runs = list(pool.map(lambda k: warm_up(port, paths[k:] + paths[:k], limit_s=limit_s, proc=proc,
                                                   headers=headers, fast_s=fast_s), range(concurrency)))
        return {"warm_up_requests": sum(r["warm_up_requests"] for r in runs),
                "first_request_s": max(r["first_request_s"] for r in runs)}
    t_end = time.monotonic() + limit_s
    fast, i, first = 0, 0, None
    while time.monotonic() < t_end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("the server exited during warm-up; see bench/out/http-*.log")
        t0 = time.perf_counter()
        try:
            status, body = _get(port, paths[i % len(paths)], timeout=300, headers=headers)
        except OSError:
            time.sleep(0.2)
            continue
        dt = time.perf_counter() - t0
        if status != 200:
            raise RuntimeError(f"warm-up request answered {status}: {body[:300]!r}")
        first = first or dt
        fast = fast + 1 if dt < fast_s else 0
        i += 1
        if fast >= 40:
            return {"warm_up_requests": i, "first_request_s": round(first, 2)}
    raise RuntimeError(f"the server was not warm after {limit_s:.0f} s")


def open_loop(port, paths, *, rate=200.0, duration=20.0, threads=16, headers=b""):
    """Fire GET paths[i] at t0 + i/rate for ``duration`` seconds; bounded, stops by itself."""
    n = int(rate * duration)
    jobs = queue.Queue()
    results = np.full((n, 3), np.nan)  # scheduled, sent, done (perf_counter seconds)
    status = np.zeros(n, dtype=np.int32)
    hard_stop = time.perf_counter() + duration + 15.0

    def worker():
        while True:
            job = jobs.get()
            if job is None:
                return
            i, sched = job
            if time.perf_counter() > hard_stop:
                continue
            t_send = time.perf_counter()
            try:
                code, _ = _get(port, paths[i % len(paths)], timeout=10, headers=headers)
            except OSError:
                code = -1
            results[i] = (sched, t_send, time.perf_counter())
            status[i] = code

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    t0 = time.perf_counter() + 0.05
    for i in range(n):
        sched = t0 + i / rate
        delay = sched - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        jobs.put((i, sched))
    for _ in pool:
        jobs.put(None)
    for t in pool:
        t.join(max(0.0, hard_stop - time.perf_counter()))
    done = ~np.isnan(results[:, 2])
    wait_ms = (results[done, 2] - results[done, 0]) * 1000
    service_ms = (results[done, 2] - results[done, 1]) * 1000
    span = results[done, 2].max() - t0 if done.any() else float("nan")
    return {"scheduled": n, "completed": int(done.sum()), "ok": int((status == 200).sum()),
            "errors": int(((status != 200) & done).sum()), "achieved_rps": round(done.sum() / span, 1),
            "p50_ms": float(np.percentile(wait_ms, 50)), "p90_ms": float(np.percentile(wait_ms, 90)),
            "p99_ms": float(np.percentile(wait_ms, 99)), "max_ms": float(wait_ms.max()),
            "service_p50_ms": float(np.percentile(service_ms, 50)),
            "service_p99_ms": float(np.percentile(service_ms, 99))}


def run(city, *, endpoint="locate", server="gunicorn", workers=2, rate=200.0, duration=20.0, threads=16,
        floor_s=10.0, verbose=True, mode=None, warm_ms=50.0):
    """Prepare the store, start the server, warm it, drive ``endpoint`` ("locate" or "panel"),
    stop it; then the same for the do-nothing ``hello_app`` for ``floor_s`` seconds (what server,
    client and machine cost alone). For "panel", also ``panel()`` in-process over the same points."""
    if endpoint not in ENDPOINTS:
        raise SystemExit(f"--endpoint {endpoint!r} is not known; use one of {sorted(ENDPOINTS)}")
    t0 = time.perf_counter()
    url, info = prepare_store(city, verbose=verbose)
    store_s = time.perf_counter() - t0
    pts = city.random_points(4000, seed=11)
    paths = [f"{ENDPOINTS[endpoint]}?lon={x:.7f}&lat={y:.7f}" + (f"&mode={mode}" if mode else "") for x, y in pts]
    proc, port = start_server(url, server=server, workers=workers)
    headers = b""
    try:
        t1 = time.perf_counter()
        if endpoint == "panel":
            headers = login(port, *DISPATCHER, proc=proc)
        warm = warm_up(port, paths[::-1], proc=proc, headers=headers, concurrency=workers, fast_s=warm_ms / 1000)
        warm["warm_s"] = round(time.perf_counter() - t1, 1)
        status, body = _get(port, paths[0], headers=headers)
        sample = _sample(endpoint, status, body)
        cpu0, client0 = server_cpu_s(proc), time.process_time()
        out = open_loop(port, paths, rate=rate, duration=duration, threads=threads, headers=headers)
        # CPU per request: unlike latency it barely depends on what else runs on the machine
        out["server_cpu_ms_per_request"] = (server_cpu_s(proc) - cpu0) * 1000 / max(out["completed"], 1)
        out["client_cpu_ms_per_request"] = (time.process_time() - client0) * 1000 / max(out["completed"], 1)
    finally:
        stop_server(proc)
    floor = None
    if floor_s:
        proc, port = start_server(url, server=server, workers=workers, app="http_bench:hello_app")
        try:
            warm_up(port, ["/"], proc=proc, fast_s=warm_ms / 1000)
            cpu0 = server_cpu_s(proc)
            floor = open_loop(port, ["/"], rate=rate, duration=floor_s, threads=threads)
            floor["server_cpu_ms_per_request"] = (server_cpu_s(proc) - cpu0) * 1000 / max(floor["completed"], 1)
        finally:
            stop_server(proc)
    out["floor"] = floor
    if endpoint == "panel":
        out["in_process"] = in_process_panel(url, pts, mode=mode or "car")
    out.update(warm)
    out.update({"endpoint": ENDPOINTS[endpoint], "server": server, "workers": workers, "rate": rate,
                "duration": duration, "store": info, "store_ready_s": round(store_s, 1), "sample": sample,
                "load_average": os.getloadavg()})
    return out


def _sample(endpoint, status, body):
    """What one answer held, to show the benchmark measured real work."""
    if status != 200:
        raise RuntimeError(f"{ENDPOINTS[endpoint]} answered {status}: {body[:300]!r}")
    doc = json.loads(body)
    out = {"grid": (doc.get("grid") or {}).get("code"), "bytes": len(body)}
    if endpoint == "panel":
        out.update({"distance_basis": doc["distance_basis"], "cameras": len(doc["cameras"]),
                    "workers": len(doc["workers"]), "party_branch": doc["party_branch"],
                    "responders": {k: len(v) for k, v in doc["responders"].items()},
                    "with_road_distance": sum(r.get("road_distance_m") is not None
                                              for v in doc["responders"].values() for r in v),
                    "near_other_grids": len(doc["near_other_grids"])})
        if doc["distance_basis"] != "road":
            raise RuntimeError("the panel answered without road distances: were the roads imported?")
    return out


def in_process_panel(url, pts, mode="car"):
    """``pages.dispatcher.panel`` timed in this process over ``pts``, on a snapshot of the same store."""
    from gridmap.pages import dispatcher as dispatchview
    from gridmap.index import Snapshot
    from gridmap.store import Store
    store = Store(url)
    with store.session() as session:
        snap = Snapshot.from_store(session)
    store.dispose()
    for x, y in pts[:100]:  # first use: numba kernels, the metric grids
        dispatchview.panel(snap, x, y, role="dispatcher", mode=mode)
    wall, cpu = [], []
    for x, y in pts:
        t, c = time.perf_counter(), time.thread_time()
        dispatchview.panel(snap, x, y, role="dispatcher", mode=mode)
        cpu.append(time.thread_time() - c)
        wall.append(time.perf_counter() - t)
    wall, cpu = np.asarray(wall) * 1000, np.asarray(cpu) * 1000
    return {"points": len(pts), "p50_ms": float(np.percentile(wall, 50)), "p99_ms": float(np.percentile(wall, 99)),
            "max_ms": float(wall.max()), "cpu_p50_ms": float(np.percentile(cpu, 50)),
            "cpu_p99_ms": float(np.percentile(cpu, 99))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint", default="locate", choices=sorted(ENDPOINTS),
                    help="locate: GET /api/v1/locate; panel: GET /dispatch/panel as a logged-in dispatcher")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--server", default="gunicorn", choices=("gunicorn", "waitress"))
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers or waitress threads")
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second (open loop)")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    ap.add_argument("--floor", type=float, default=10.0, help="seconds of the do-nothing app (0: skip)")
    ap.add_argument("--mode", default=None, choices=("walk", "ebike", "car"),
                    help="panel: the travel mode asked for (the page's selector); left out, the server's default (car)")
    ap.add_argument("--warm-ms", type=float, default=50.0,
                    help="an answer this fast counts towards warm (40 in a row); raise it on a loaded machine")
    args = ap.parse_args()
    import synthetic_city
    city = synthetic_city.load(args.scale, args.seed)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    r = run(city, endpoint=args.endpoint, server=args.server, workers=args.workers, rate=args.rate,
            duration=args.duration, floor_s=args.floor, mode=args.mode, warm_ms=args.warm_ms)
    print(json.dumps(r, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
