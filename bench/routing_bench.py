"""Road-network ETA to the k nearest responders and fuzzy address search, each beside a plain peer.

    .venv/bin/python bench/routing_bench.py                 # full size, ≈ 1–2 min
    .venv/bin/python bench/routing_bench.py --segments 20000 --addresses 5000   # a quick look

Routing: a jittered lattice of streets over 30 × 30 km centred on 121.6E 38.9N (≈ 200,000
segments, 5 % of them removed so routes detour; ``synthetic_city.lattice_roads``, the same roads
the HTTP benchmark imports at scale 1), 20,000 responders at random. One incident =
its k = 10 straight-line-nearest responders (k-d tree in metres, as the Snapshot does), then
their road distances from :meth:`RoadGraph.distances_m` and ETAs. The peer runs networkx's
``single_source_dijkstra_path_length`` from the incident's snap segment's two ends on the same
graph (same snapping), which is what a plain implementation does; its answers are checked
against ours.

Geocode: 50,000 synthetic Dalian-style addresses; queries are real addresses typed loosely
(prefix dropped, traditional characters, full-width digits, Chinese numerals, a typo). Ours is
:meth:`AddressIndex.search`; the peer ``rapidfuzz.process.extract`` with ``WRatio`` over the raw
strings. "found" = the intended building ranked first.

Every timing is the best of ``--repeat`` runs (the machine is shared); results go to
``bench/out/routing_bench.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import networkx as nx
import numpy as np
from pyproj import Transformer
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridmap.geo.addresses import AddressIndex  # noqa: E402
from gridmap.routing import RoadGraph, eta_s  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import synthetic_city  # noqa: E402

OUT = ROOT / "bench" / "out"
SIDE_M = 30_000.0


def rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def pct(values, q):
    return float(np.percentile(np.asarray(values) * 1000, q))


# -- routing -----------------------------------------------------------------------------------
def lattice_roads(segments, seed):
    """Streets of a jittered lattice over the city's 30 × 30 km: ~``segments`` segments, 5 % removed,
    drawn as one LineString per unbroken street (``synthetic_city.lattice_roads``, the roads the
    HTTP benchmark imports), WGS84."""
    return synthetic_city.lattice_roads(SIDE_M, segments, seed)


def bench_routing(args):
    roads, _ = lattice_roads(args.segments, args.seed)
    builds = []
    for _ in range(args.repeat):
        before = rss_mb()
        t = time.perf_counter()
        graph = RoadGraph.from_lines(roads)
        builds.append((time.perf_counter() - t, rss_mb() - before))
    build_s = min(b[0] for b in builds)
    rng = np.random.default_rng(args.seed + 1)
    half = SIDE_M / 2 * 0.95
    to_metric = Transformer.from_crs(4326, graph.crs, always_xy=True)
    to_wgs = Transformer.from_crs(graph.crs, 4326, always_xy=True)
    resp_xy = rng.uniform(-half, half, size=(args.responders, 2))
    # responders in the graph's own metric CRS (the Snapshot keeps its own; any metric CRS will do)
    rlon, rlat = to_wgs.transform(resp_xy[:, 0], resp_xy[:, 1])
    responders = np.column_stack([rlon, rlat])
    tree = cKDTree(resp_xy)
    inc_xy = rng.uniform(-half * 0.9, half * 0.9, size=(args.incidents, 2))
    ilon, ilat = to_wgs.transform(inc_xy[:, 0], inc_xy[:, 1])

    def one_incident(i):
        x, y = to_metric.transform(ilon[i], ilat[i])
        _, near = tree.query((x, y), k=args.k)
        d = graph.distances_m(ilon[i], ilat[i], responders[near])
        return d, eta_s(d, "ebike")

    runs = []
    for _ in range(args.repeat):
        times = []
        for i in range(args.incidents):
            t = time.perf_counter()
            one_incident(i)
            times.append(time.perf_counter() - t)
        runs.append(times)
    ours = min(runs, key=lambda ts: np.percentile(ts, 50))

    # the peer: networkx on the same graph, same snapping, full single-source Dijkstra
    t = time.perf_counter()
    G = nx.from_scipy_sparse_array(graph._csr, edge_attribute="weight")
    nx_build = time.perf_counter() - t
    peer_times, worst = [], 0.0
    for i in range(min(args.peer_incidents, args.incidents)):
        x, y = to_metric.transform(ilon[i], ilat[i])
        _, near = tree.query((x, y), k=args.k)
        t = time.perf_counter()
        pts = np.vstack([[ilon[i], ilat[i]], responders[near]])
        snap = graph._snap(pts[:, 0], pts[:, 1])
        s = snap.seg[0]
        ends = [(int(graph._seg_u[s]), snap.frac[0] * graph._seg_len[s]),
                (int(graph._seg_v[s]), (1 - snap.frac[0]) * graph._seg_len[s])]
        lengths = [(off, nx.single_source_dijkstra_path_length(G, node, weight="weight")) for node, off in ends]
        peer = []
        for j, seg in enumerate(snap.seg[1:], start=1):
            best = math.inf
            for off, dist in lengths:
                for node, off_t in ((graph._seg_u[seg], snap.frac[j] * graph._seg_len[seg]),
                                    (graph._seg_v[seg], (1 - snap.frac[j]) * graph._seg_len[seg])):
                    best = min(best, off + dist.get(int(node), math.inf) + off_t)
            if seg == s:
                best = min(best, abs(snap.frac[j] - snap.frac[0]) * graph._seg_len[s])
            peer.append(snap.walk[0] + best + snap.walk[j])
        peer_times.append(time.perf_counter() - t)
        ours_d, _ = one_incident(i)
        both = np.isfinite(ours_d)
        assert np.array_equal(both, np.isfinite(peer)), "reachability differs from networkx"
        worst = max(worst, float(np.max(np.abs(ours_d[both] - np.asarray(peer)[both]), initial=0.0)))
    return {
        "segments_in": len(roads), "nodes": graph.n_nodes, "edges": graph.n_edges,
        "build_s": round(build_s, 2), "rss_growth_mb": round(builds[0][1], 1),
        "graph_nbytes_mb": round(graph.nbytes() / 2**20, 1),
        "k": args.k, "incidents": args.incidents,
        "ours_p50_ms": round(pct(ours, 50), 2), "ours_p99_ms": round(pct(ours, 99), 2),
        "networkx_graph_build_s": round(nx_build, 2),
        "networkx_p50_ms": round(pct(peer_times, 50), 1), "networkx_p99_ms": round(pct(peer_times, 99), 1),
        "networkx_incidents": len(peer_times), "max_abs_diff_vs_networkx_m": worst,
    }


# -- geocode -----------------------------------------------------------------------------------
_DISTRICTS = ("中山区", "西岗区", "沙河口区", "甘井子区", "金州区")
_ROAD_A = "长春民主胜利解放人民友好和平建设光明幸福兴华振兴东北黄河长江中华新华南山北山西安青年团结" \
          "春柳红旗华北星海黑石礁马栏泉水椒金桥锦绣湾里城志福源兴民滨河岭前桃源"
_ROAD_KIND = ("路", "街", "大街", "北路", "南路")
_T2S = {"湾": "灣", "号": "號", "栋": "棟", "区": "區", "兴": "興", "华": "華", "东": "東", "连": "連",
        "长": "長", "胜": "勝", "阳": "陽", "门": "門", "单": "單", "丰": "豐", "荣": "榮", "龙": "龍"}
_CN = "零一二三四五六七八九"


def _cn(n):
    if n < 10:
        return _CN[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return ("" if tens == 1 else _CN[tens]) + "十" + (_CN[ones] if ones else "")
    return str(n)


def synthetic_addresses(n, seed):
    rng = np.random.default_rng(seed)
    pairs = [_ROAD_A[i:i + 2] for i in range(0, len(_ROAD_A) - 1, 2)]
    seen, out = set(), []
    # a road lies in one district and street, as in a real city, so its address is unique
    roads = [a + k for a in pairs for k in _ROAD_KIND]
    where = {r: (_DISTRICTS[rng.integers(len(_DISTRICTS))], pairs[rng.integers(len(pairs))] + "街道")
             for r in roads}
    while len(out) < n:
        road = roads[rng.integers(len(roads))]
        d, street = where[road]
        number = int(rng.integers(1, 120))
        building = int(rng.integers(1, 13))
        addr = f"大连市{d}{street}{road}{number}号{building}栋"
        if addr not in seen:
            seen.add(addr)
            out.append((addr, road, number, building))
    return out


def loosen(entry, rng):
    addr, road, number, building = entry
    kind = rng.integers(5)
    if kind == 0:
        return f"{road}{number}号{building}栋"
    if kind == 1:
        return "".join(_T2S.get(c, c) for c in f"{road}{number}号{building}栋")
    if kind == 2:
        return f"{road}{number}号{building}栋".translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    if kind == 3:
        return f"{road}{_cn(number)}号{_cn(building)}栋"
    chars = list(road)
    chars[0] = "嘿"  # a one-character typo in the road's name
    return f"{''.join(chars)}{number}号{building}栋"


def bench_geocode(args):
    from rapidfuzz import fuzz, process
    entries = synthetic_addresses(args.addresses, args.seed)
    records = [{"building_id": i, "address": e[0], "lon": 121.6, "lat": 38.9} for i, e in enumerate(entries)]
    t = time.perf_counter()
    index = AddressIndex.from_records(records)
    build_s = time.perf_counter() - t
    rng = np.random.default_rng(args.seed + 2)
    picks = rng.choice(len(entries), size=args.queries, replace=False)
    queries = [(int(i), loosen(entries[i], rng)) for i in picks]
    runs = []
    for _ in range(args.repeat):
        times, found, top3 = [], 0, 0
        for i, q in queries:
            t = time.perf_counter()
            hits = index.search(q, limit=10)
            times.append(time.perf_counter() - t)
            found += bool(hits) and hits[0]["building_id"] == i
            top3 += i in {h["building_id"] for h in hits[:3]}
        runs.append((times, found, top3))
    ours, found, top3 = min(runs, key=lambda r: np.percentile(r[0], 50))
    raw = [e[0] for e in entries]
    peer_times, peer_found, peer_top3 = [], 0, 0
    peer_q = queries[: args.peer_queries]
    for i, q in peer_q:
        t = time.perf_counter()
        hits = process.extract(q, raw, scorer=fuzz.WRatio, limit=10)
        peer_times.append(time.perf_counter() - t)
        peer_found += hits[0][2] == i
        peer_top3 += i in {h[2] for h in hits[:3]}
    return {
        "addresses": len(entries), "build_s": round(build_s, 2), "queries": len(queries),
        "ours_p50_ms": round(pct(ours, 50), 2), "ours_p99_ms": round(pct(ours, 99), 2),
        "ours_found_first": f"{found}/{len(queries)}", "ours_found_top3": f"{top3}/{len(queries)}",
        "rapidfuzz_extract_p50_ms": round(pct(peer_times, 50), 1),
        "rapidfuzz_extract_p99_ms": round(pct(peer_times, 99), 1),
        "rapidfuzz_found_first": f"{peer_found}/{len(peer_q)}",
        "rapidfuzz_found_top3": f"{peer_top3}/{len(peer_q)}",
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--segments", type=int, default=200_000)
    p.add_argument("--responders", type=int, default=20_000)
    p.add_argument("--incidents", type=int, default=500)
    p.add_argument("--peer-incidents", type=int, default=20)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--addresses", type=int, default=50_000)
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--peer-queries", type=int, default=100)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--only", choices=["routing", "geocode"])
    args = p.parse_args()
    result = {}
    if args.only in (None, "routing"):
        result["routing"] = bench_routing(args)
        print(json.dumps(result["routing"], ensure_ascii=False, indent=1), flush=True)
    if args.only in (None, "geocode"):
        result["geocode"] = bench_geocode(args)
        print(json.dumps(result["geocode"], ensure_ascii=False, indent=1), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "routing_bench.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
