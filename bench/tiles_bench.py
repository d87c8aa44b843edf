"""The city map at the bench city: first page bytes and server time, tile latency cold and cached
on SQLite (Python) and PostGIS (ST_AsMVT), beside a naive Folium GeoJson of every grid (the peer).

    .venv/bin/python bench/tiles_bench.py [--scale 0.1] [--samples 300] [--no-postgis]

The store is http_bench's SQLite store of the synthetic city (communities, published grids, a
worker a grid, a dispatcher), and for PostGIS the same communities, grids and workers imported
through the same border into the schema ``bench_tiles`` at $GRIDMAP_TEST_DATABASE_URL (dropped
after). Everything runs in this process through Flask's test client: "server time" is the time
the app takes to answer, with no network.

- First page: GET /city as the dispatcher (twice: the first visitor after the tiles' own timing,
  whose tiles are drawn cold in this app; then the next visitor, whose tiles are cached), every script and stylesheet it links, and every tile
  of the first view (the map fitted to the city in a 1280 × 800 px map, whole zooms, as city.js
  asks for them: each layer from its minimum zoom). Bytes are bodies as sent.
- Tiles: ``--samples`` tiles drawn at random over the city, for each layer at zooms from its
  minimum to 16, timed through ``gridmap.tiles.tile`` with an empty cache (cold: the per-generation
  areas already built) and again (cached), the generation read at most every 2 s as the app
  does (SNAPSHOT_CHECK_SECONDS). The areas' build per generation is timed apart.
- Peer: ``folium.Map`` + ``folium.GeoJson`` of every grid with its code and name, rendered to HTML.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PG_SCHEMA = "bench_tiles"
VIEW_PX = (1280, 800)


def pct(values, q):
    return float(np.percentile(np.asarray(values) * 1000, q)) if len(values) else float("nan")


def make_app(url):
    from gridmap import create_app
    instance = ROOT / "bench" / "out" / "instance"
    instance.mkdir(parents=True, exist_ok=True)
    os.environ["GRIDMAP_INSTANCE_PATH"] = str(instance)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-only-secret", "MAP_TILES": "none",
                      "RATELIMIT_ENABLED": False, "WTF_CSRF_ENABLED": False})
    return app


def first_view(bounds):
    """The whole zoom and tiles of the map fitted to ``bounds`` in VIEW_PX (Leaflet's fitBounds, zoomSnap 1)."""
    import mercantile
    w, s, e, n = bounds
    for z in range(22, -1, -1):
        x0, y0 = mercantile.xy(w, n)
        x1, y1 = mercantile.xy(e, s)
        px = 256 * 2 ** z / (2 * 20037508.342789244)
        if (x1 - x0) * px <= VIEW_PX[0] - 16 and (y0 - y1) * px <= VIEW_PX[1] - 16:
            break
    cx, cy = (w + e) / 2, (s + n) / 2
    mx, my = mercantile.xy(cx, cy)
    half_w, half_h = VIEW_PX[0] / 2 / px, VIEW_PX[1] / 2 / px
    lw, ls = mercantile.lnglat(mx - half_w, my - half_h)
    le, ln = mercantile.lnglat(mx + half_w, my + half_h)
    return z, list(mercantile.tiles(lw, ls, le, ln, [z]))


def first_page(app, username, password):
    from gridmap import tiles
    client = app.test_client()
    r = client.post("/login", data={"username": username, "password": password})
    assert r.status_code == 302, r.status_code
    t0 = time.perf_counter()
    page = client.get("/city")
    html_s = time.perf_counter() - t0
    assert page.status_code == 200, page.status_code
    html = page.data
    links = re.findall(rb'(?:src|href)="(/static/[^"]+)"', html)
    static_bytes, static_s = 0, 0.0
    for link in dict.fromkeys(links):
        t0 = time.perf_counter()
        r = client.get(link.decode())
        static_s += time.perf_counter() - t0
        static_bytes += len(r.data)
        r.close()
    store = app.extensions["gridmap.store"]
    ov = tiles.overview(store, role="dispatcher")
    z, view = first_view(ov["bounds"])
    tile_bytes, tile_s, n = 0, 0.0, 0
    for layer, spec in tiles.LAYERS.items():
        if z < spec.min_zoom or layer == "incidents":
            continue
        for t in view:
            t0 = time.perf_counter()
            r = client.get(f"/tiles/{layer}/{t.z}/{t.x}/{t.y}.mvt")
            tile_s += time.perf_counter() - t0
            tile_bytes += len(r.data)
            n += 1
    return {"html_bytes": len(html), "html_s": html_s, "static_bytes": static_bytes, "static_s": static_s,
            "zoom": z, "tiles": n, "tile_bytes": tile_bytes, "tile_s": tile_s,
            "total_bytes": len(html) + static_bytes + tile_bytes, "total_s": html_s + static_s + tile_s}


def sample_tiles(bounds, n, seed=1):
    import mercantile
    from gridmap import tiles
    rng = np.random.default_rng(seed)
    w, s, e, nn = bounds
    out = []
    for layer, spec in tiles.LAYERS.items():
        if layer == "incidents":
            continue
        zooms = list(range(spec.min_zoom, 17))
        for _ in range(n // 4):
            z = int(rng.choice(zooms))
            t = mercantile.tile(rng.uniform(w, e), rng.uniform(s, nn), z)
            out.append((layer, t.z, t.x, t.y))
    return out


def tile_times(store, sample):
    from gridmap import tiles
    from gridmap.store.generations import generation
    from gridmap.tiles import areas
    with store.session() as s:
        gen = generation(s)
    t0 = time.perf_counter()
    with store.transaction() as s:  # force a build of this generation
        s.query(__import__("gridmap.store.models", fromlist=["m"]).Meta).filter_by(key=areas.BUILT_KEY).delete()
    areas.ensure_built(store, gen)
    build_s = time.perf_counter() - t0
    cache = tiles.TileCache()
    tiles.tile(store, *sample[0], role="dispatcher", cache=tiles.TileCache())  # the Python side reads the areas once
    cold, cached, sizes = [], [], []
    for key in sample:
        t0 = time.perf_counter()
        answer = tiles.tile(store, *key, role="dispatcher", cache=cache, check_seconds=2.0)
        cold.append(time.perf_counter() - t0)
        sizes.append(len(answer.data))
    for key in sample:
        t0 = time.perf_counter()
        tiles.tile(store, *key, role="dispatcher", cache=cache, check_seconds=2.0)
        cached.append(time.perf_counter() - t0)
    return {"build_s": build_s, "cold": cold, "cached": cached, "sizes": sizes, "cache_bytes": cache.bytes}


def peer(city):
    import folium
    t0 = time.perf_counter()
    g = city.grids[["code", "name", "geometry"]]
    w, s, e, n = g.total_bounds
    m = folium.Map(location=[(s + n) / 2, (w + e) / 2], zoom_start=11, tiles=None)
    folium.GeoJson(g, tooltip=folium.GeoJsonTooltip(["code", "name"])).add_to(m)
    html = m.get_root().render()
    return {"bytes": len(html.encode()), "s": time.perf_counter() - t0}


def postgis_store(city, base):
    import sqlalchemy as sa

    import synthetic_city
    from gridmap import importer
    from gridmap.geo.crs import parse_crs
    from gridmap.geo.io import RawLayer
    from gridmap.store import Store
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {PG_SCHEMA}"))
    engine.dispose()
    url = sa.engine.make_url(base).update_query_dict({"options": f"-csearch_path={PG_SCHEMA},public"})
    store = Store(url.render_as_string(hide_password=False))
    store.upgrade()
    with store.transaction() as session:
        for kind, frame in (("communities", city.communities),
                            ("grids", city.grids[["code", "name", "community_code", "geometry"]]),
                            ("workers", synthetic_city.workers(city))):
            raw = RawLayer(frame=frame.copy(), crs=parse_crs(4326), source=f"synthetic:{kind}")
            importer.import_layer(session, kind, raw, publish=(kind == "grids"))
    return store


def drop_schema(base):
    import sqlalchemy as sa
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
    engine.dispose()


def report_tiles(name, r):
    print(f"  {name:<16} areas built in {r['build_s']:.1f} s; {len(r['cold'])} tiles, "
          f"median {np.median(r['sizes']) / 1024:.1f} KB, max {max(r['sizes']) / 1024:.1f} KB")
    print(f"  {'':<16} cold   p50 {pct(r['cold'], 50):7.2f} ms  p99 {pct(r['cold'], 99):7.2f} ms")
    print(f"  {'':<16} cached p50 {pct(r['cached'], 50):7.3f} ms  p99 {pct(r['cached'], 99):7.3f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--no-postgis", action="store_true")
    args = ap.parse_args()

    import http_bench
    import synthetic_city
    city = synthetic_city.load(args.scale, args.seed)
    url, info = http_bench.prepare_store(city)
    print(f"bench city at scale {args.scale:g}: {info['grids']:,} grids, {info['communities']:,} communities")

    app = make_app(url)
    store = app.extensions["gridmap.store"]
    sample = sample_tiles(tuple(city.grids.total_bounds), args.samples)
    sqlite = tile_times(store, sample)
    pages = [first_page(app, *http_bench.DISPATCHER) for _ in range(2)]  # the first visitor, then the next
    p = peer(city)

    print("\nfirst page of /city (HTML + scripts + styles + the first view's tiles), in-process:")
    for who, page in zip(("1st visit", "2nd visit"), pages):
        print(f"  gridmap {who}  {page['total_bytes'] / 1e6:6.2f} MB  server {page['total_s']:.3f} s   "
              f"(HTML {page['html_bytes'] / 1e3:.1f} KB in {page['html_s'] * 1000:.0f} ms; static "
              f"{page['static_bytes'] / 1e3:.0f} KB; {page['tiles']} tiles at z{page['zoom']}, "
              f"{page['tile_bytes'] / 1e3:.0f} KB in {page['tile_s'] * 1000:.0f} ms)")
    print(f"  peer              {p['bytes'] / 1e6:6.2f} MB  build  {p['s']:.3f} s   (folium.GeoJson of {len(city.grids):,} "
          f"grids; Leaflet and folium's CDN assets not counted)")
    print("\ntiles (gridmap.tiles.tile, dispatcher, cache empty then full):")
    report_tiles("SQLite (Python)", sqlite)
    if not args.no_postgis:
        base = os.environ.get("GRIDMAP_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_test")
        try:
            t0 = time.perf_counter()
            pg = postgis_store(city, base)
            load_s = time.perf_counter() - t0
        except Exception as err:  # noqa: BLE001 - a bench goes on without PostGIS
            print(f"  PostGIS          skipped: {err.__class__.__name__}: {str(err)[:200]}")
        else:
            try:
                print(f"  (PostGIS store loaded in {load_s:.0f} s)")
                report_tiles("PostGIS (ST_AsMVT)", tile_times(pg, sample))
            finally:
                pg.dispose()
                drop_schema(base)
    store.dispose()


if __name__ == "__main__":
    main()
