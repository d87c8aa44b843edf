"""Snapshot files at the bench city: one build per generation mapped by every process, beside a snapshot per process.

    .venv/bin/python bench/snapshot_bench.py [--scale 1.0] [--workers 4] [--rate 200] [--duration 20]
                                             [--skip-http] [--skip-memory]

On the synthetic city's store (``http_bench.prepare_store``: SQLite, grids published, responders,
volunteers, cameras, roads, workers) it measures, each beside today's path (``SNAPSHOT_DIR=memory``:
every process builds its own snapshot from the store):

1. build: ``Snapshot.from_store`` (the same in both), ``to_file``, the file's size;
2. a new process: from its start to its first ``locate`` answered, mapping the file vs building
   from the store (imports counted apart);
3. gunicorn ``--preload`` with ``--workers`` workers and with 1, warmed up: each worker's unique set size
   (psutil ``memory_full_info().uss``; also PSS), files vs memory;
4. a generation bump (what a publish or an import does) seen by ``--workers`` processes, each
   with its own ``SnapshotCache`` polling every 2 s (SQLite: no NOTIFY; on PostGIS a listener
   wakes them at once): seconds until each answers from the new generation, and how many built;
5. ``GET /api/v1/locate`` p99 under ``http_bench`` (open loop, 2 gunicorn workers), files vs memory.

Results go to bench/out/snapshot_bench-<scale>.json and are printed as one table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import http_bench  # noqa: E402
import synthetic_city  # noqa: E402

_NEW_PROCESS = """
import sys, time
t0 = time.perf_counter()
from gridmap.index import Snapshot, SnapshotCache
from gridmap.store import Store
import psutil
t_import = time.perf_counter() - t0
how, url, folder, lon, lat = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
t1 = time.perf_counter()
cache = SnapshotCache(Store(url), check_seconds=0, directory=None if how == "memory" else folder)
snap = cache.get()
t_load = time.perf_counter() - t1
answer = snap.locate(lon, lat)
t_first = time.perf_counter() - t0
mem = psutil.Process().memory_full_info()
print({"import_s": t_import, "load_s": t_load, "first_answer_s": t_first, "since_file_s": t_first - t_import,
       "builds": cache.builds, "grid": (answer["grid"] or {}).get("code"), "uss_mb": mem.uss / 2**20,
       "rss_mb": mem.rss / 2**20})
"""

_WATCHER = """
import sys, time
from gridmap.index import SnapshotCache
from gridmap.store import Store
url, folder = sys.argv[1], sys.argv[2]
cache = SnapshotCache(Store(url), check_seconds=2.0, directory=folder)
first = cache.get().generation
print("ready", first, cache.builds, flush=True)
while True:
    snap = cache.get()
    if snap.generation != first:
        print(repr({"seen_at": time.time(), "generation": snap.generation, "builds": cache.builds}), flush=True)
        break
    time.sleep(0.01)
"""


def new_process(how, url, folder, point):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", _NEW_PROCESS, how, url, str(folder), str(point[0]), str(point[1])],
                         env=env, capture_output=True, text=True, timeout=900)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return eval(out.stdout.strip().splitlines()[-1])  # our own dict literal from the child


def start_gunicorn(url, folder, how, workers):
    """gunicorn --preload (the workers share the imported modules' pages) on a free loopback port."""
    port = http_bench.free_port()
    env = {**os.environ, "GRIDMAP_DATABASE_URL": url, "GRIDMAP_INSTANCE_PATH": str(folder.parent),
           "GRIDMAP_SECRET_KEY": "bench-only-secret", "PYTHONPATH": str(ROOT),
           "GRIDMAP_SNAPSHOT_DIR": "memory" if how == "memory" else str(folder)}
    cmd = [str(Path(sys.executable).parent / "gunicorn"), "--preload", "--workers", str(workers),
           "--bind", f"{http_bench.HOST}:{port}", "--timeout", "300", "--log-level", "warning",
           "gridmap:create_app()"]
    log = open(ROOT / "bench" / "out" / "snapshot-gunicorn.log", "a")
    proc = subprocess.Popen(cmd, env=env, cwd=str(ROOT / "bench"), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    return proc, port


def worker_memory(url, folder, how, workers, paths):
    """USS / PSS / RSS (MB) of each gunicorn worker after every worker has answered requests."""
    import psutil
    proc, port = start_gunicorn(url, folder, how, workers)
    try:
        http_bench.warm_up(port, paths, proc=proc, concurrency=workers * 2, fast_s=0.05)
        kids = psutil.Process(proc.pid).children()
        for _ in range(3):  # open-loop rounds with more callers than workers: every worker serves
            http_bench.open_loop(port, paths, rate=100, duration=3, threads=workers * 2)
        time.sleep(3)  # the background threads finish warming (roads, addresses)
        out = []
        for k in kids:
            m = k.memory_full_info()
            out.append({"pid": k.pid, "uss_mb": m.uss / 2**20, "pss_mb": m.pss / 2**20, "rss_mb": m.rss / 2**20})
        return out
    finally:
        http_bench.stop_server(proc)


def http_steady(url, folder, how, paths, *, rate, duration, workers=2):
    """``GET /api/v1/locate`` open loop on gunicorn (2 workers) once the workers are idle after warming up."""
    proc, port = start_gunicorn(url, folder, how, workers)
    try:
        http_bench.warm_up(port, paths[::-1], proc=proc, concurrency=workers, fast_s=0.05)
        # wait for the background threads (roads, addresses) to finish: the server idle for 2 s
        last, idle = http_bench.server_cpu_s(proc), 0
        for _ in range(300):
            time.sleep(1)
            now = http_bench.server_cpu_s(proc)
            idle = idle + 1 if now - last < 0.05 else 0
            last = now
            if idle >= 2:
                break
        cpu0 = http_bench.server_cpu_s(proc)
        out = http_bench.open_loop(port, paths, rate=rate, duration=duration, threads=16)
        out["server_cpu_ms_per_request"] = (http_bench.server_cpu_s(proc) - cpu0) * 1000 / max(out["completed"], 1)
        out["load_average"] = os.getloadavg()
        return {k: out.get(k) for k in ("p50_ms", "p99_ms", "completed", "errors", "server_cpu_ms_per_request",
                                         "load_average")}
    finally:
        http_bench.stop_server(proc)


def publish_latency(url, folder, n):
    """Start ``n`` watcher processes on one store and folder, bump the generation, time each one's switch."""
    from gridmap.store import Store
    from gridmap.store.generations import bump_generation
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", _WATCHER, url, str(folder)], env=env, stdout=subprocess.PIPE,
                              text=True) for _ in range(n)]
    try:
        before = 0
        for p in procs:
            line = p.stdout.readline().split()
            assert line and line[0] == "ready", line
            before += int(line[2])
        store = Store(url)
        with store.transaction() as session:
            bump_generation(session)
        t0 = time.time()
        store.dispose()
        seen = [eval(p.stdout.readline()) for p in procs]
        files = sorted(Path(folder).glob("*/gen-*.snap"))
        file_s = files[-1].stat().st_mtime - t0 if files else float("nan")
        return {"seconds": [s["seen_at"] - t0 for s in seen], "builds": sum(s["builds"] for s in seen) - before,
                "file_written_after_s": file_s}
    finally:
        for p in procs:
            p.kill()
            p.wait()
            p.stdout.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--skip-http", action="store_true", help="no /api/v1/locate p99 run")
    ap.add_argument("--skip-memory", action="store_true", help="no gunicorn memory run")
    ap.add_argument("--skip-build", action="store_true", help="reuse the figures of steps 1-2 from the last run")
    ap.add_argument("--hows", default="file,memory",
                    help="which paths step 3 measures (file, memory); the other's figures come from the last run")
    args = ap.parse_args()

    from gridmap.index import Snapshot
    from gridmap.store import Store
    city = synthetic_city.load(args.scale)
    url, info = http_bench.prepare_store(city)
    point = tuple(city.random_points(1, seed=5)[0])
    paths = [f"/api/v1/locate?lon={x:.7f}&lat={y:.7f}" for x, y in city.random_points(2000, seed=11)]
    res = {"scale": args.scale, "store": info, "workers": args.workers}
    work = Path(tempfile.mkdtemp(prefix="snapshot-bench-", dir=ROOT / "bench" / "out"))

    last = ROOT / "bench" / "out" / f"snapshot_bench-{args.scale:g}.json"
    if last.exists():  # a path step 3 does not measure this time keeps its last figures
        res.update({k: v for k, v in json.loads(last.read_text()).items() if k.startswith("uss_")})
    if args.skip_build and last.exists():
        res.update({k: v for k, v in json.loads(last.read_text()).items() if k not in ("publish",) and
                    not k.startswith("http_") and (k.startswith(("new_process", "uss_")) or k in (
                        "from_store_s", "nbytes_mb", "to_file_s", "file_mb", "from_file_in_process_s"))})
    folder = work / "files"
    if args.skip_build and "new_process_file" in res:
        new_process("file", url, folder, point)  # the file the servers below map
        return _rest(args, res, url, folder, paths)
    store = Store(url)
    t = time.perf_counter()
    with store.session() as session:
        snap = Snapshot.from_store(session)
    res["from_store_s"] = time.perf_counter() - t
    res["nbytes_mb"] = snap.nbytes() / 2**20
    t = time.perf_counter()
    path = snap.to_file(work / "one")
    res["to_file_s"] = time.perf_counter() - t
    res["file_mb"] = path.stat().st_size / 2**20
    t = time.perf_counter()
    Snapshot.from_file(path)
    res["from_file_in_process_s"] = time.perf_counter() - t
    del snap
    store.dispose()
    print(f"build {res['from_store_s']:.1f} s, file {res['file_mb']:.0f} MB written in {res['to_file_s']:.1f} s",
          flush=True)

    # 2. a new process's first answer: the file exists (made by a first process) vs today's build
    new_process("file", url, folder, point)  # builds the file
    res["new_process_file"] = new_process("file", url, folder, point)
    res["new_process_memory"] = new_process("memory", url, folder, point)
    print("new process", res["new_process_file"], res["new_process_memory"], flush=True)

    return _rest(args, res, url, folder, paths)


def _rest(args, res, url, folder, paths):
    # 3. gunicorn workers' memory
    if not args.skip_memory:
        for how in args.hows.split(","):
            # the file exists (step 2 made it): every worker maps it, none builds
            res[f"uss_{how}_1"] = worker_memory(url, folder, how, 1, paths)
            res[f"uss_{how}_{args.workers}"] = worker_memory(url, folder, how, args.workers, paths)
            print(how, res[f"uss_{how}_1"], res[f"uss_{how}_{args.workers}"], flush=True)

    # 4. a publish seen by every process
    res["publish"] = publish_latency(url, folder, args.workers)
    print("publish", res["publish"], flush=True)

    # 5. HTTP p99 in the steady state: both after their snapshot is loaded and warmed
    if not args.skip_http:
        for how in ("memory", "file"):
            res[f"http_{how}"] = http_steady(url, folder, how, paths, rate=args.rate, duration=args.duration)
            print("http", how, res[f"http_{how}"], flush=True)

    (ROOT / "bench" / "out" / f"snapshot_bench-{args.scale:g}.json").write_text(json.dumps(res, indent=1, default=str))
    report(res)


def report(res):
    w = res["workers"]
    f, m = res["new_process_file"], res["new_process_memory"]
    rows = [("snapshot build from the store (s)", res["from_store_s"], res["from_store_s"]),
            ("write the file (s) / its size (MB)", f"{res['to_file_s']:.1f} / {res['file_mb']:.0f}", "-"),
            ("new process: imports (s)", f["import_s"], m["import_s"]),
            ("new process: snapshot ready after imports (s)", f["load_s"], m["load_s"]),
            ("new process: first locate after imports (s)", f["since_file_s"], m["since_file_s"]),
            ("new process: USS after first answer (MB)", f["uss_mb"], m["uss_mb"])]
    if f"uss_file_{w}" in res:
        for how in ("file", "memory"):
            one, many = res[f"uss_{how}_1"], res[f"uss_{how}_{w}"]
            res[f"{how}_ratio"] = sum(x["uss_mb"] for x in many) / one[0]["uss_mb"]
            # PSS counts a shared page once across the processes mapping it: the machine's real cost
            res[f"{how}_pss_ratio"] = sum(x["pss_mb"] for x in many) / one[0]["pss_mb"]
        rows += [("gunicorn 1 worker: USS (MB)", res["uss_file_1"][0]["uss_mb"], res["uss_memory_1"][0]["uss_mb"]),
                 (f"gunicorn {w} workers: USS each (MB)", " ".join(f"{x['uss_mb']:.0f}" for x in res[f"uss_file_{w}"]),
                  " ".join(f"{x['uss_mb']:.0f}" for x in res[f"uss_memory_{w}"])),
                 (f"gunicorn {w} workers: sum of USS / 1 worker's USS", res["file_ratio"], res["memory_ratio"]),
                 ("gunicorn 1 worker: PSS (MB)", res["uss_file_1"][0]["pss_mb"], res["uss_memory_1"][0]["pss_mb"]),
                 (f"gunicorn {w} workers: sum of PSS (MB)", sum(x["pss_mb"] for x in res[f"uss_file_{w}"]),
                  sum(x["pss_mb"] for x in res[f"uss_memory_{w}"])),
                 (f"gunicorn {w} workers: sum of PSS / 1 worker's PSS", res["file_pss_ratio"],
                  res["memory_pss_ratio"])]
    p = res["publish"]
    rows.append((f"generation bump → seen by each of {w} processes (s)",
                 " ".join(f"{s:.1f}" for s in p["seconds"]) + f" ({p['builds']} build)", "-"))
    if "http_file" in res:
        rows.append(("/api/v1/locate p99 (ms), 2 workers", res["http_file"]["p99_ms"], res["http_memory"]["p99_ms"]))
        rows.append(("/api/v1/locate server CPU per request (ms)", res["http_file"]["server_cpu_ms_per_request"],
                     res["http_memory"]["server_cpu_ms_per_request"]))
    print(f"\nscale {res['scale']:g}: {res['store']['grids']:,} grids, {res['store']['responders']:,} responders, "
          f"{res['store']['cameras']:,} cameras, {res['store']['road_lines']:,} road lines")
    print(f"| {'':58} | snapshot file | per process (memory) |\n|{'-' * 60}|{'-' * 15}|{'-' * 22}|")
    for name, a, b in rows:
        fa = f"{a:.2f}" if isinstance(a, float) else str(a)
        fb = f"{b:.2f}" if isinstance(b, float) else str(b)
        print(f"| {name:58} | {fa:>13} | {fb:>20} |")


if __name__ == "__main__":
    main()
