"""Private memory (USS) of each piece a process makes from a snapshot file: the road graphs mapped
vs rebuilt per mode, an STRtree per mode (the former snapping index), the address index.

    .venv/bin/python bench/road_memory.py bench/out/snapshot-bench-*/one/gen-*.snap

The bench city's store has no building register, so the address index is measured apart, over a
register of the city's 60,000 buildings with made-up addresses: unpickled (as files held it
before) vs :meth:`AddressIndex.from_arrays` over the mapped file, and a search's time in each.

Each figure is ``psutil.Process().memory_full_info().uss`` after the step minus before it (MB), in
one fresh process per column so no step inherits another's pages.
"""
from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = """
import gc, json, sys
import numpy as np, psutil, shapely
from gridmap.index import Snapshot, _prefixed
from gridmap.geo.crs import metric_for
from gridmap.geo.roads import MODES, RoadGraph
proc = psutil.Process()
def uss():
    gc.collect()
    return proc.memory_full_info().uss / 2**20
how, path = sys.argv[1], sys.argv[2]
snap = Snapshot.from_file(path)
f, meta = snap._file, snap._file.meta["roads"]
out = {}
pts = np.random.default_rng(3).uniform([121.45, 38.85], [121.75, 39.05], (200, 2))
before = uss()
if how == "mapped":
    g = RoadGraph.from_arrays(metric_for(tuple(meta["metric"])), _prefixed(f, "roads"), meta)
    out["graph"] = uss() - before
    for mode in (None, *MODES):
        b = uss()
        for lon, lat in pts[:20].tolist():
            g.routes(lon, lat, pts, mode=mode)
        out[f"queries {mode}"] = uss() - b
elif how == "rebuilt":
    a = _prefixed(f, "roads")
    kinds = np.asarray(meta["kinds"], dtype=object)
    g = RoadGraph(metric=metric_for(tuple(meta["metric"])), seg_xy=a["seg_xy"], seg_u=a["seg_u"], seg_v=a["seg_v"],
                  seg_len=a["seg_len"], seg_kind=kinds[a["seg_kind"]], seg_dir=a["seg_dir"],
                  seg_closed=a["seg_closed"], seg_bike_dir=a["seg_bike_dir"], min_island_m=meta["min_island_m"],
                  barrier_nodes=a["barrier_nodes"], barrier_bits=a["barrier_bits"])
    out["mode-less graph"] = uss() - before
    for mode in MODES:
        b = uss()
        g._net(mode)
        out[f"build {mode}"] = uss() - b
    for mode in (None, *MODES):
        b = uss()
        for lon, lat in pts[:20].tolist():
            g.routes(lon, lat, pts, mode=mode)
        out[f"queries {mode}"] = uss() - b
elif how == "strtree":
    g = snap.roads
    for mode in (None, *MODES):
        b = uss()
        net = g._net(mode)
        trees = shapely.STRtree(shapely.linestrings(np.asarray(net.seg_xy).reshape(-1, 2, 2)))
        trees.query_nearest(shapely.points(np.asarray(net.seg_xy)[:10, :2]))
        out[f"STRtree {mode}"] = uss() - b
        out[f"segments {mode}"] = len(net.seg_len)
elif how in ("register-pickled", "register-mapped"):
    import pickle, tempfile, time
    from gridmap import snapfile
    from gridmap.geo.addresses import AddressIndex
    b = np.load(sys.argv[3])
    streets = ["湾里路", "中山路", "人民路", "解放路", "长江路", "黄河路", "五一路", "友好路", "胜利路", "建设路"]
    idx = AddressIndex.from_records(
        {"building_id": i, "address": f"辽宁省大连市甘井子区{streets[i % 10]}{i // 10 + 1}号{i % 7 + 1}栋",
         "lon": float(x), "lat": float(y), "community_code": f"C{i % 625}"} for i, (x, y) in enumerate(b))
    if how == "register-pickled":
        blob = pickle.dumps(idx, protocol=5)
        del idx
        before = uss()
        idx = pickle.loads(blob)
    else:
        arrays, m = idx.to_arrays()
        path = snapfile.write(tempfile.mkdtemp(), 1, {f"a.{k}": v for k, v in arrays.items()}, {"a": m})
        del idx, arrays
        f = snapfile.Mapped(path, verify=False)
        before = uss()
        idx = AddressIndex.from_arrays({k[2:]: v for k, v in f.arrays.items()}, f.meta["a"])
        out["file MB"] = f.nbytes / 2**20
    out["address index"] = uss() - before
    queries = ["湾里路12号", "中山路", "人民路3号2栋", "大连市解放路100号", "灣里路十二號", "建设路999号1栋"]
    idx.search(queries[0])
    t = time.perf_counter()
    for q in queries * 5:
        idx.search(q)
    out["search ms"] = (time.perf_counter() - t) * 1000 / (len(queries) * 5)
    before = uss() - out["address index"]
out["total"] = uss() - before
print(json.dumps(out))
"""


def main():
    path = sys.argv[1]
    env_path = str(ROOT)
    res = {}
    buildings = str(ROOT / "bench" / "out" / "city-scale1-seed3" / "buildings.npy")
    for how in ("mapped", "rebuilt", "strtree", "register-pickled", "register-mapped"):
        got = subprocess.run([sys.executable, "-c", _CHILD, how, path, buildings], capture_output=True, text=True,
                             env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"})
        if got.returncode:
            print(got.stderr[-2000:])
            continue
        res[how] = json.loads(got.stdout.strip().splitlines()[-1])
        print(how, {k: round(v, 1) for k, v in res[how].items()}, flush=True)
    (ROOT / "bench" / "out" / "road_memory.json").write_text(json.dumps(res, indent=1))
    gc.collect()


if __name__ == "__main__":
    main()
