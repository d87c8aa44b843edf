"""A seeded synthetic Dalian-scale city for the engine benchmarks, cached under bench/out/.

    .venv/bin/python bench/synthetic_city.py [--scale 1.0] [--seed 3] [--force]

At scale 1: 15,000 contiguous irregular grids (Voronoi cells of a jittered lattice, clipped to a
30 × 30 km square centred on 121.6E 38.9N) in 625 communities, 25 streets and 4 districts;
60,000 buildings with 3,000,000 households as distinct points within 20 m of their building;
250,000 responders and 50,000 cameras near buildings. ``--scale s`` multiplies every count and
the area by ``s`` (the side by √s), so densities stay Dalian-like.

Made on demand from the same seed and not cached (they leave the cached arrays and ``FORMAT``
alone): :func:`volunteers` (20,000), :func:`roads` (a jittered street lattice of ≈ 200,000
segments, the graph ``routing_bench.py`` times) and :func:`workers` (one grid worker a grid).

Everything is made in a local transverse Mercator CRS in metres and converted to WGS84 once;
a vertex shared by two grids converts to the same lon/lat in both, so the grids stay contiguous
(checked: their areas add up to the square's and no two overlap).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridmap.catalog import RESPONDER_KINDS, VOLUNTEER_SKILLS  # noqa: E402
from gridmap.geo.crs import local_metric_crs  # noqa: E402

OUT = ROOT / "bench" / "out"
CENTRE = (121.6, 38.9)
FORMAT = 2  # bump when the generator changes, so stale caches are rebuilt
FULL = {"grids": 15_000, "buildings": 60_000, "households": 3_000_000, "responders": 250_000,
        "cameras": 50_000, "side_m": 30_000.0, "volunteers": 20_000, "road_segments": 200_000}
GRIDS_PER_COMMUNITY_SIDE = 5  # 5 × 5 lattice cells → ~25 grids a community
DISTRICTS = ("210202", "210203", "210204", "210211")  # 中山区, 西岗区, 沙河口区, 甘井子区
HOUSEHOLD_RADIUS_M = 20.0
KIND_WEIGHTS = {"police": 8, "auxiliary_police": 12, "mediator": 10, "property_management": 30,
                "utility": 15, "medical": 12, "legal": 5, "fire": 8}
RESPONDER_SKILLS = ("急救", "驾驶", "心理疏导", "维修", "法律咨询", "外语", "消防", "调解")
CAMERA_FOVS = (60.0, 90.0, 120.0)
ROAD_GAPS = 0.05  # share of lattice street segments removed, so that routes detour
ROAD_KINDS = {0: "primary", 4: "secondary"}  # every 8th street primary, the 4th between secondary


@dataclass
class City:
    """The synthetic city: WGS84 frames and arrays, plus the metric CRS it was made in."""
    scale: float
    seed: int
    grids: gpd.GeoDataFrame        # code (15 digits), name, community_code
    communities: gpd.GeoDataFrame  # code, name, street_code, street_name, district_code, district_name
    households: np.ndarray         # (n, 2) lon, lat
    household_building: np.ndarray  # (n,) building position
    buildings: np.ndarray          # (b, 2) lon, lat
    responders: gpd.GeoDataFrame   # id, name, kind, skills (';'-joined), available
    cameras: gpd.GeoDataFrame      # id, name, bearing, fov, range_m
    metric_crs: object
    square_m: tuple                # (minx, miny, maxx, maxy) in metric_crs
    build_seconds: float = 0.0

    def counts(self):
        return {"grids": len(self.grids), "communities": len(self.communities),
                "buildings": len(self.buildings), "households": len(self.households),
                "responders": len(self.responders), "cameras": len(self.cameras)}

    def random_points(self, n, seed=0, margin=0.01):
        """``n`` WGS84 points uniform over the city's square (shrunk by ``margin``), so all lie in a grid."""
        rng = np.random.default_rng([self.seed, seed, 7])
        minx, miny, maxx, maxy = self.square_m
        dx, dy = (maxx - minx) * margin, (maxy - miny) * margin
        x = rng.uniform(minx + dx, maxx - dx, n)
        y = rng.uniform(miny + dy, maxy - dy, n)
        lon, lat = Transformer.from_crs(self.metric_crs, 4326, always_xy=True).transform(x, y)
        return np.column_stack([lon, lat])


def sizes(scale):
    return {k: (v * math.sqrt(scale) if k == "side_m" else max(1, int(round(v * scale)))) for k, v in FULL.items()}


def cache_dir(scale, seed, out=OUT):
    return Path(out) / f"city-scale{scale:g}-seed{seed}"


def load(scale=1.0, seed=3, *, out=OUT, force=False, verbose=True):
    """The city for (scale, seed), generated once and then read from ``bench/out``."""
    folder = cache_dir(scale, seed, out)
    meta = folder / "meta.json"
    if not force and meta.exists() and json.loads(meta.read_text()).get("format") == FORMAT:
        return _read(folder, scale, seed)
    t0 = time.perf_counter()
    if verbose:
        print(f"generating the synthetic city at scale {scale:g} (seed {seed}) into {folder} …", flush=True)
    arrays = generate(scale, seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        np.save(folder / f"{name}.npy", arr, allow_pickle=False)
    secs = time.perf_counter() - t0
    meta.write_text(json.dumps({"format": FORMAT, "scale": scale, "seed": seed, "seconds": round(secs, 1),
                                "counts": {k: int(len(v)) for k, v in arrays.items() if k in
                                           ("grid_code", "community_code", "buildings", "households",
                                            "responder_id", "camera_id")}}, indent=1))
    city = _read(folder, scale, seed)
    city.build_seconds = secs
    if verbose:
        print(f"  generated in {secs:.1f} s: {city.counts()}", flush=True)
    return city


# -- generation ----------------------------------------------------------------------------------

def generate(scale, seed):
    """All the city's arrays (metric geometry converted to WGS84), keyed by cache file name."""
    n = sizes(scale)
    rng = np.random.default_rng(seed)
    crs = local_metric_crs(*CENTRE)
    to_wgs = Transformer.from_crs(crs, 4326, always_xy=True)
    half = n["side_m"] / 2
    square = shapely.box(-half, -half, half, half)
    out = {"square_m": np.array([-half, -half, half, half])}

    # Grids: Voronoi cells of seeds jittered inside a lattice, n of its cells kept.
    ny = max(1, int(round(math.sqrt(n["grids"]))))
    nx = int(math.ceil(n["grids"] / ny))
    keep = np.sort(rng.choice(nx * ny, n["grids"], replace=False))
    ix, iy = keep % nx, keep // nx
    cw, ch = n["side_m"] / nx, n["side_m"] / ny
    sx = -half + (ix + rng.uniform(0.1, 0.9, len(keep))) * cw
    sy = -half + (iy + rng.uniform(0.1, 0.9, len(keep))) * ch
    seeds = shapely.points(sx, sy)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=square, ordered=True))
    cells = shapely.intersection(cells, square)
    _check_partition(cells, square)
    cells_wgs = shapely.transform(cells, lambda xy: np.column_stack(to_wgs.transform(xy[:, 0], xy[:, 1])))

    # Administrative codes: 5 × 5 lattice cells a community, 5 × 5 communities a street, 4 districts.
    k = GRIDS_PER_COMMUNITY_SIDE
    cix, ciy = ix // k, (ny - 1 - iy) // k  # rows counted from the north
    ncx = int(math.ceil(nx / k))
    community_key = ciy * ncx + cix
    ckeys = np.unique(community_key)
    street_key = (ciy // 5) * 10_000 + (cix // 5)
    ncy = int(math.ceil(ny / k))
    snx, sny = int(math.ceil(ncx / 5)), int(math.ceil(ncy / 5))
    district_of_street = {}
    for s in np.unique(street_key):
        sy_, sx_ = divmod(int(s), 10_000)  # a quadrant of streets a district
        district_of_street[int(s)] = DISTRICTS[2 * (2 * sy_ >= sny) + (2 * sx_ >= snx)]
    street_code, next_street = {}, {}
    for s in sorted(district_of_street):
        d = district_of_street[s]
        next_street[d] = next_street.get(d, 0) + 1
        street_code[s] = f"{d}{next_street[d]:03d}"
    community_code, next_community = {}, {}
    for c in ckeys:
        s = int(street_key[np.flatnonzero(community_key == c)[0]])
        sc = street_code[s]
        next_community[sc] = next_community.get(sc, 0) + 1
        community_code[int(c)] = f"{sc}{next_community[sc]:03d}"
    grid_community = np.array([community_code[int(c)] for c in community_key])
    # grid sequence: rows north → south, west → east within each community
    order = np.lexsort((ix, -iy, grid_community))
    seq = np.empty(len(keep), dtype=int)
    _, first = np.unique(grid_community[order], return_index=True)
    starts = np.repeat(first, np.diff(np.append(first, len(order))))
    seq[order] = np.arange(len(order)) - starts + 1
    out["grid_wkb"], out["grid_wkb_offsets"] = _pack(shapely.to_wkb(cells_wgs))
    out["grid_code"] = np.array([f"{c}{s:03d}" for c, s in zip(grid_community, seq)])
    out["grid_community"] = grid_community
    ccodes = np.array(sorted(community_code.values()))
    outlines = [shapely.coverage_union_all(cells[grid_community == c]) for c in ccodes]
    outlines_wgs = shapely.transform(np.array(outlines, dtype=object),
                                     lambda xy: np.column_stack(to_wgs.transform(xy[:, 0], xy[:, 1])))
    out["community_wkb"], out["community_wkb_offsets"] = _pack(shapely.to_wkb(outlines_wgs))
    out["community_code"] = ccodes

    # Buildings, uniformly over the square; households clustered within 20 m of their building.
    bx = rng.uniform(-half, half, n["buildings"])
    by = rng.uniform(-half, half, n["buildings"])
    weights = rng.lognormal(0.0, 0.6, n["buildings"])
    per_building = rng.multinomial(n["households"], weights / weights.sum())
    hb = np.repeat(np.arange(n["buildings"], dtype=np.int32), per_building)
    r = HOUSEHOLD_RADIUS_M * np.sqrt(rng.uniform(0, 1, len(hb)))
    a = rng.uniform(0, 2 * np.pi, len(hb))
    inner = half - 1.0  # keep every point a metre inside the square: none on the city's outer edge
    hx, hy = np.clip(bx[hb] + r * np.cos(a), -inner, inner), np.clip(by[hb] + r * np.sin(a), -inner, inner)
    lon, lat = to_wgs.transform(hx, hy)
    households = np.column_stack([lon, lat])
    if len(np.unique(households, axis=0)) != len(households):
        raise RuntimeError("two households fell on the same point; change the seed")
    out["households"] = households
    out["household_building"] = hb
    out["buildings"] = np.column_stack(to_wgs.transform(bx, by))

    # Responders and cameras stand near buildings (normal, σ = 30 m), inside the square.
    kinds = np.array(list(KIND_WEIGHTS))
    assert set(kinds) <= set(RESPONDER_KINDS), "KIND_WEIGHTS names a kind catalog.RESPONDER_KINDS lacks"
    w = np.array(list(KIND_WEIGHTS.values()), float)
    nr = n["responders"]
    at = rng.integers(0, n["buildings"], nr)
    rx = np.clip(bx[at] + rng.normal(0, 30, nr), -inner, inner)
    ry = np.clip(by[at] + rng.normal(0, 30, nr), -inner, inner)
    out["responder_xy"] = np.column_stack(to_wgs.transform(rx, ry))
    out["responder_id"] = np.arange(1, nr + 1, dtype=np.int64)
    out["responder_kind"] = kinds[rng.choice(len(kinds), nr, p=w / w.sum())]
    nskills = rng.integers(0, 3, nr)
    picks = rng.random((nr, len(RESPONDER_SKILLS))).argsort(axis=1)
    out["responder_skills"] = np.array([";".join(RESPONDER_SKILLS[j] for j in sorted(picks[i, :nskills[i]]))
                                        for i in range(nr)])
    out["responder_available"] = rng.random(nr) < 0.8
    nc = n["cameras"]
    at = rng.integers(0, n["buildings"], nc)
    cx = np.clip(bx[at] + rng.normal(0, 30, nc), -inner, inner)
    cy = np.clip(by[at] + rng.normal(0, 30, nc), -inner, inner)
    out["camera_xy"] = np.column_stack(to_wgs.transform(cx, cy))
    out["camera_id"] = np.arange(1, nc + 1, dtype=np.int64)
    out["camera_bearing"] = rng.uniform(0, 360, nc).round(1) % 360.0
    out["camera_fov"] = np.array(CAMERA_FOVS)[rng.integers(0, len(CAMERA_FOVS), nc)]
    out["camera_range_m"] = rng.uniform(30, 120, nc).round(1)
    return out


def _check_partition(cells, square):
    total = float(shapely.area(cells).sum())
    if abs(total - square.area) > 1e-6 * square.area or shapely.get_num_geometries(cells).max() != 1:
        raise RuntimeError(f"grids do not tile the square: {total} m² of {square.area} m²")


def _pack(wkbs):
    lengths = np.fromiter((len(b) for b in wkbs), dtype=np.int64, count=len(wkbs))
    return np.frombuffer(b"".join(wkbs), dtype=np.uint8), np.concatenate([[0], np.cumsum(lengths)])


def _unpack(blob, offsets):
    raw = blob.tobytes()
    return shapely.from_wkb(np.array([raw[a:b] for a, b in zip(offsets[:-1], offsets[1:])], dtype=object))


# -- made on demand (not cached) ------------------------------------------------------------------

def _near_buildings(city, n, rng):
    """``n`` WGS84 points ~30 m (normal σ) from random buildings, at least 1 m inside the square."""
    to_metric = Transformer.from_crs(4326, city.metric_crs, always_xy=True)
    bx, by = to_metric.transform(city.buildings[:, 0], city.buildings[:, 1])
    inner = (city.square_m[2] - city.square_m[0]) / 2 - 1.0
    at = rng.integers(0, len(city.buildings), n)
    x = np.clip(np.asarray(bx)[at] + rng.normal(0, 30, n), -inner, inner)
    y = np.clip(np.asarray(by)[at] + rng.normal(0, 30, n), -inner, inner)
    lon, lat = Transformer.from_crs(city.metric_crs, 4326, always_xy=True).transform(x, y)
    return np.asarray(lon), np.asarray(lat)


def volunteers(city):
    """The city's volunteers (20,000 at scale 1): name, phone, skills (1–2 of
    ``catalog.VOLUNTEER_SKILLS``, ';'-joined), available (85 %), near buildings; WGS84."""
    n = sizes(city.scale)["volunteers"]
    rng = np.random.default_rng([city.seed, 101])
    lon, lat = _near_buildings(city, n, rng)
    nskills = rng.integers(1, 3, n)
    picks = rng.random((n, len(VOLUNTEER_SKILLS))).argsort(axis=1)
    skills = [";".join(VOLUNTEER_SKILLS[j] for j in sorted(picks[i, :nskills[i]])) for i in range(n)]
    return gpd.GeoDataFrame({
        "name": [f"V{i}" for i in range(1, n + 1)], "phone": [f"137{i:08d}" for i in range(1, n + 1)],
        "skills": skills, "available": rng.random(n) < 0.85}, geometry=gpd.points_from_xy(lon, lat), crs=4326)


def workers(city):
    """One grid worker a grid: name, phone, grids (its code), community_code; no position."""
    codes = city.grids["code"].to_numpy(dtype=object)
    return gpd.GeoDataFrame({
        "name": [f"网格员{c[-6:]}" for c in codes], "phone": [f"139{i:08d}" for i in range(1, len(codes) + 1)],
        "grids": codes, "community_code": city.grids["community_code"].to_numpy(dtype=object)},
        geometry=gpd.GeoSeries([None] * len(codes)), crs=4326)


def roads(city):
    """The city's streets: :func:`lattice_roads` over its square with ``road_segments`` segments."""
    side = city.square_m[2] - city.square_m[0]
    return lattice_roads(side, sizes(city.scale)["road_segments"], city.seed, metric_crs=city.metric_crs)[0]


def lattice_roads(side_m, segments, seed, *, metric_crs=None, merge=True):
    """Streets of a jittered lattice centred on :data:`CENTRE`, ``ROAD_GAPS`` of its segments removed.

    A square lattice of junctions ``side_m`` wide with ≈ ``segments`` segments between
    neighbours, each junction moved by a normal jitter of 0.15 lattice steps; 5 % of the segments
    are removed so that routes detour. With ``merge`` the surviving segments of each lattice row
    and column are joined into one LineString per unbroken run (as streets are drawn, sharing the
    junction vertex with the crossing streets); without it each segment is its own two-point
    line. Both give the same road graph.

    Returns
    -------
    (GeoDataFrame, numpy.ndarray)
        ``name``, ``kind`` and WGS84 LineStrings; the junctions in metres, (n², 2).
    """
    rng = np.random.default_rng(seed)
    n = int(round(math.sqrt(segments / 2 / (1 - ROAD_GAPS)))) + 1
    step = side_m / (n - 1)
    gx, gy = np.meshgrid(np.arange(n) * step - side_m / 2, np.arange(n) * step - side_m / 2)
    xy = np.column_stack([gx.ravel(), gy.ravel()]) + rng.normal(0, step * 0.15, size=(n * n, 2))
    ids = np.arange(n * n).reshape(n, n)
    rows = np.column_stack([ids[:, :-1].ravel(), ids[:, 1:].ravel()])
    cols = np.column_stack([ids[:-1, :].ravel(), ids[1:, :].ravel()])
    kept = rng.random(len(rows) + len(cols)) >= ROAD_GAPS
    to_wgs = Transformer.from_crs(metric_crs or local_metric_crs(*CENTRE), 4326, always_xy=True)
    ll = np.column_stack(to_wgs.transform(xy[:, 0], xy[:, 1]))
    if not merge:
        edges = np.vstack([rows, cols])[kept]
        lines = shapely.linestrings(ll[edges.ravel()].reshape(-1, 2, 2))
        return gpd.GeoDataFrame({"name": [""] * len(lines), "kind": ["residential"] * len(lines)},
                                geometry=lines, crs=4326), xy
    # street s (rows first, then columns) runs through junctions line_ids[s]; its edge i joins i, i+1
    line_ids = np.vstack([ids, ids.T])
    kept = np.vstack([kept[: len(rows)].reshape(n, n - 1), kept[len(rows):].reshape(n - 1, n).T])
    names, kinds, parts = [], [], []
    for s in range(2 * n):
        label = f"合成{'东西' if s < n else '南北'}{s % n + 1}路"
        kind = ROAD_KINDS.get((s % n) % 8, "residential")
        edges = kept[s]
        # an unbroken run of kept edges a..b-1 is one line through junctions a..b
        change = np.diff(np.r_[0, edges.astype(np.int8), 0])
        for a, b in zip(np.flatnonzero(change == 1), np.flatnonzero(change == -1)):
            parts.append(line_ids[s, a:b + 1])
            names.append(label)
            kinds.append(kind)
    lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
    lines = shapely.linestrings(ll[np.concatenate(parts)], indices=np.repeat(np.arange(len(parts)), lengths))
    return gpd.GeoDataFrame({"name": names, "kind": kinds}, geometry=lines, crs=4326), xy


# -- reading the cache -----------------------------------------------------------------------------

def _read(folder, scale, seed):
    a = {p.stem: np.load(p, allow_pickle=False) for p in folder.glob("*.npy")}
    crs = local_metric_crs(*CENTRE)
    codes = a["grid_code"].astype(object)
    grids = gpd.GeoDataFrame({"code": codes, "name": [f"网格{c[-6:]}" for c in codes],
                              "community_code": a["grid_community"].astype(object)},
                             geometry=_unpack(a["grid_wkb"], a["grid_wkb_offsets"]), crs=4326)
    cc = a["community_code"].astype(object)
    districts = {"210202": "中山区", "210203": "西岗区", "210204": "沙河口区", "210211": "甘井子区"}
    communities = gpd.GeoDataFrame({
        "code": cc, "name": [f"合成社区{c[-6:]}" for c in cc],
        "street_code": [c[:9] for c in cc], "street_name": [f"合成街道{c[6:9]}" for c in cc],
        "district_code": [c[:6] for c in cc], "district_name": [districts[c[:6]] for c in cc],
        "service_centre": "", "service_address": "", "service_phone": ""},
        geometry=_unpack(a["community_wkb"], a["community_wkb_offsets"]), crs=4326)
    rxy, cxy = a["responder_xy"], a["camera_xy"]
    rid = a["responder_id"]
    responders = gpd.GeoDataFrame({
        "id": rid, "name": [f"R{i}" for i in rid], "kind": pd.Categorical(a["responder_kind"].astype(object)),
        "skills": a["responder_skills"].astype(object), "available": a["responder_available"]},
        geometry=gpd.points_from_xy(rxy[:, 0], rxy[:, 1]), crs=4326)
    cid = a["camera_id"]
    cameras = gpd.GeoDataFrame({
        "id": cid, "name": [f"C{i}" for i in cid], "bearing": a["camera_bearing"], "fov": a["camera_fov"],
        "range_m": a["camera_range_m"]}, geometry=gpd.points_from_xy(cxy[:, 0], cxy[:, 1]), crs=4326)
    return City(scale=scale, seed=seed, grids=grids, communities=communities, households=a["households"],
                household_building=a["household_building"], buildings=a["buildings"], responders=responders,
                cameras=cameras, metric_crs=crs, square_m=tuple(float(v) for v in a["square_m"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--force", action="store_true", help="regenerate even when cached")
    args = ap.parse_args()
    t0 = time.perf_counter()
    city = load(args.scale, args.seed, force=args.force)
    print(f"{cache_dir(args.scale, args.seed)}: {city.counts()} (loaded in {time.perf_counter() - t0:.1f} s)")
    areas = city.grids.to_crs(city.metric_crs).area
    print(f"grid area: median {areas.median():,.0f} m², min {areas.min():,.0f}, max {areas.max():,.0f}; "
          f"vertices per grid: {shapely.get_num_coordinates(city.grids.geometry.values).mean():.1f}")


if __name__ == "__main__":
    main()
