"""The city map's vector tiles: the features of a tile against an independent oracle (GeoPandas
over the store's rows, tile bounds from mercantile), both backends, SQLite ≈ PostGIS, the cache
and its invalidation by a publish, ETag/304, bad addresses, and incident points masked."""
import datetime as dt

import geopandas as gpd
import mapbox_vector_tile
import mercantile
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, box

from gridmap import plans, tiles
from gridmap.dispatch import rules
from gridmap.store import models as m
from gridmap.tiles import areas

from conftest import lonlat, make_app

SIDE = 1200  # a community: 3 × 3 grids of 400 m
DISTRICTS = ("210202000000", "210203000000")
PRIVATE = "elderly_help"  # not public in statistics (gridmap.catalog)


def community_codes():
    out = []
    for d in DISTRICTS:
        for s in (1, 2):
            for c in (1, 2):
                out.append((d, f"{d[:6]}{s:03d}000", f"{d[:6]}{s:03d}{c:03d}"))
    return out


def square(x, y, side):
    return box(x, y, x + side, y + side)


def build_world(store, seed=7):
    """Two districts × two streets × two communities in a 4 × 2 lattice, each community 3 × 3 grids,
    a building in every grid, workers in some, open and closed incidents, public and private."""
    rng = np.random.default_rng(seed)
    with store.transaction() as s:
        for d in DISTRICTS:
            s.add(m.District(code=d, name=f"区{d[4:6]}"))
        s.flush()
        for k, (d, st, c) in enumerate(community_codes()):
            if s.get(m.Street, st) is None:
                s.add(m.Street(code=st, district_code=d, name=f"街道{st[6:9]}"))
                s.flush()
            x0, y0 = (k % 4) * SIDE - 2 * SIDE, (k // 4) * SIDE - SIDE
            s.add(m.Community(code=c, street_code=st, name=f"社区{k}", geom=MultiPolygon([lonlat(square(x0, y0, SIDE))])))
            s.flush()
            cells = [square(x0 + i * 400, y0 + j * 400, 400) for j in (2, 1, 0) for i in range(3)]
            frame = gpd.GeoDataFrame({"code": [f"{c}{n:03d}" for n in range(1, 10)]},
                                     geometry=[lonlat(g) for g in cells], crs=4326)
            plan = plans.create_plan(s, c, frame)
            for n, cell in enumerate(cells, start=1):
                p = lonlat(Point(cell.centroid.x + rng.uniform(-150, 150), cell.centroid.y + rng.uniform(-150, 150)))
                s.add(m.Building(community_code=c, address=f"{c}-{n}", households=int(rng.integers(5, 200)),
                                 geom=p, lon=p.x, lat=p.y))
                if rng.random() < 0.5:
                    w = m.GridWorker(name=f"网格员{c}{n}", phone="13800000000", community_code=c)
                    s.add(w)
                    s.flush()
                    s.execute(m.grid_worker_grid.insert().values(worker_id=w.id, grid_code=f"{c}{n:03d}"))
            s.flush()
            plans.publish_plan(s, plan.id, on=dt.date(2026, 6, 1))
        for i in range(60):
            x, y = rng.uniform(-2 * SIDE, 2 * SIDE), rng.uniform(-SIDE, SIDE)
            p = lonlat(Point(x, y))
            k = int((x + 2 * SIDE) // SIDE) + 4 * int((y + SIDE) // SIDE)
            c = community_codes()[k][2]
            n = 1 + int((x + 2 * SIDE) % SIDE // 400) + 3 * (2 - int((y + SIDE) % SIDE // 400))
            s.add(m.Incident(category=PRIVATE if i % 5 == 0 else "noise",
                             status=rules.OPEN_STATUSES[i % 4] if i % 3 else "resolved", description="楼道堆物",
                             reporter_name="张三", reporter_phone="13900000000", community_code=c,
                             grid_code=f"{c}{n:03d}", geom=p, lon=p.x, lat=p.y, level="grid"))


@pytest.fixture
def world(app):
    build_world(app.extensions["gridmap.store"])
    return app


def decode(data, layer):
    if not data:
        return []
    return mapbox_vector_tile.decode(data).get(layer, {}).get("features", [])


def tile_box(z, x, y, buffer=tiles.layers.BUFFER):
    b = mercantile.xy_bounds(x, y, z)
    pad = (b.right - b.left) * buffer / tiles.layers.EXTENT
    return box(b.left - pad, b.bottom - pad, b.right + pad, b.top + pad)


def stored_grids(store):
    """The published grids as GeoPandas reads them, with the oracle's counts (sjoin, pandas)."""
    with store.session() as s:
        grids = gpd.GeoDataFrame(
            [{"code": g.code, "name": g.name, "geometry": g.geom} for g in s.query(m.Grid).join(m.GridPlan)
             .filter(m.GridPlan.status == "published")], crs=4326)
        b = gpd.GeoDataFrame([{"households": x.households, "geometry": Point(x.lon, x.lat)} for x in s.query(m.Building)],
                             crs=4326)
        workers = pd.DataFrame(s.execute(m.grid_worker_grid.select()).all(), columns=["worker_id", "grid_code"])
        inc = pd.DataFrame([(i.grid_code, i.category, i.status) for i in s.query(m.Incident)],
                           columns=["grid_code", "category", "status"])
    hh = gpd.sjoin(b, grids, predicate="within").groupby("code")["households"].sum()
    grids["households"] = grids["code"].map(hh).fillna(0).astype(int)
    grids["workers"] = grids["code"].map(workers.groupby("grid_code").size()).fillna(0).astype(int)
    open_ = inc[inc["status"].isin(rules.OPEN_STATUSES)]
    grids["open_all"] = grids["code"].map(open_.groupby("grid_code").size()).fillna(0).astype(int)
    grids["open_public"] = grids["code"].map(open_[open_["category"] != PRIVATE].groupby("grid_code").size()) \
        .fillna(0).astype(int)
    return grids


def tiles_over(frame, z):
    """Every tile at zoom ``z`` touching ``frame``."""
    w, s, e, n = frame.total_bounds
    return list(mercantile.tiles(w, s, e, n, [z]))


def test_open_statuses_agree_with_dispatch():
    assert areas.OPEN_STATUSES == rules.OPEN_STATUSES


@pytest.mark.parametrize("z", [14, 15, 16])
def test_grid_tiles_hold_the_grids_the_oracle_finds_with_their_counts(world, z):
    store = world.extensions["gridmap.store"]
    grids = stored_grids(store)
    merc = grids.to_crs(3857)
    seen = set()
    for t in tiles_over(grids, z):
        got = decode(tiles.tile(store, "grids", t.z, t.x, t.y, role=None).data, "grids")
        clip = tile_box(t.z, t.x, t.y)
        want = merc[merc.intersection(clip).area > 1.0]
        assert sorted(f["properties"]["code"] for f in got) == sorted(want["code"]), (t, z)
        by_code = grids.set_index("code")
        for f in got:
            p = f["properties"]
            row = by_code.loc[p["code"]]
            assert (p["name"], p["households"], p["workers"], p["open_incidents"]) == \
                (row["name"], row["households"], row["workers"], row["open_public"])
            assert f["geometry"]["type"] in ("Polygon", "MultiPolygon")
            # the drawn outline covers what the oracle clips, to the quantisation and simplification
            size = (clip.bounds[2] - clip.bounds[0]) / (1 + 2 * tiles.layers.BUFFER / tiles.layers.EXTENT)
            drawn = shapely.geometry.shape(f["geometry"])
            drawn_m2 = drawn.area * (size / tiles.layers.EXTENT) ** 2
            want_m2 = merc.set_index("code").loc[p["code"]].geometry.intersection(clip).area
            assert drawn_m2 == pytest.approx(want_m2, rel=0.03, abs=(size / 4096) ** 2 * 64)
        seen |= {f["properties"]["code"] for f in got}
    assert seen == set(grids["code"])


def test_areas_sum_their_grids_and_streets_and_districts_are_their_communities(world):
    store = world.extensions["gridmap.store"]
    grids = stored_grids(store)
    z = 12
    for layer, width in (("communities", 12), ("streets", 9), ("districts", 6)):
        if layer == "districts":
            z = 10
        want = grids.assign(key=grids["code"].str[:width]).groupby("key")[["households", "workers", "open_public"]].sum()
        found = {}
        for t in tiles_over(grids, z):
            for f in decode(tiles.tile(store, layer, t.z, t.x, t.y, role=None).data, layer):
                found[f["properties"]["code"]] = f["properties"]
        keys = {code[:width] for code in found}
        assert keys == set(want.index), layer
        for code, p in found.items():
            assert (p["households"], p["workers"], p["open_incidents"]) == tuple(want.loc[code[:width]]), (layer, code)


def test_private_categories_are_counted_only_for_roles_that_see_private_statistics(world):
    store = world.extensions["gridmap.store"]
    grids = stored_grids(store).set_index("code")
    assert (grids["open_all"] > grids["open_public"]).any()  # the world has something to hide
    for role, column in ((None, "open_public"), ("planner", "open_public"), ("dispatcher", "open_public"),
                         ("admin", "open_all")):
        counted = {}
        for t in tiles_over(grids, 14):
            answer = tiles.tile(store, "grids", t.z, t.x, t.y, role=role)
            assert answer.public == (column == "open_public")
            for f in decode(answer.data, "grids"):
                counted[f["properties"]["code"]] = f["properties"]["open_incidents"]
        assert counted == grids[column].to_dict(), role


def test_below_a_layers_minimum_zoom_the_tile_is_empty(world):
    store = world.extensions["gridmap.store"]
    grids = stored_grids(store)
    for layer, spec in tiles.LAYERS.items():
        t = tiles_over(grids, spec.min_zoom - 1)[0]
        assert tiles.tile(store, layer, t.z, t.x, t.y, role="admin").data == b""
        t = tiles_over(grids, spec.min_zoom + 1)[0]
        assert tiles.tile(store, layer, t.z, t.x, t.y, role="admin").data != b"" or layer == "incidents"


def test_incident_points_only_for_roles_that_read_incidents_and_only_where(world):
    store = world.extensions["gridmap.store"]
    client = world.test_client()
    with store.session() as s:
        inc = pd.DataFrame([(i.id, i.category, i.status, i.level, i.community_code, i.lon, i.lat)
                            for i in s.query(m.Incident)],
                           columns=["id", "category", "status", "level", "community", "lon", "lat"])
    z = 14
    t = mercantile.tile(inc["lon"].mean(), inc["lat"].mean(), z)
    r = client.get(f"/tiles/incidents/{z}/{t.x}/{t.y}.mvt")
    assert r.status_code == 401 and r.get_json()["error"] == "unauthorized"
    with pytest.raises(Exception) as refused:
        tiles.tile(store, "incidents", z, t.x, t.y, role="planner")
    assert refused.value.status == 403
    b = mercantile.bounds(t)
    buffer = (b.east - b.west) * tiles.layers.BUFFER / tiles.layers.EXTENT
    inside = inc[inc["lon"].between(b.west - buffer, b.east + buffer) & inc["lat"].between(b.south - buffer, b.north + buffer)
                 & inc["status"].isin(rules.OPEN_STATUSES)]
    assert len(inside) > 5
    got = decode(tiles.tile(store, "incidents", z, t.x, t.y, role="admin").data, "incidents")
    assert sorted(f["properties"]["id"] for f in got) == sorted(inside["id"])
    for f in got:
        assert set(f["properties"]) == {"id", "category", "status", "level"}  # no names, phones, descriptions
        row = inside.set_index("id").loc[f["properties"]["id"]]
        assert (f["properties"]["category"], f["properties"]["status"]) == (row["category"], row["status"])
    mine = sorted(inside["community"].unique())[:1]
    got = decode(tiles.tile(store, "incidents", z, t.x, t.y, role="dispatcher",
                            area=tiles.access.Area(communities=mine)).data, "incidents")
    assert sorted(f["properties"]["id"] for f in got) == sorted(inside[inside["community"].isin(mine)]["id"])
    assert tiles.tile(store, "incidents", z, t.x, t.y, role="dispatcher", area=tiles.access.Area()).data == b""


@pytest.mark.parametrize("path, status, says", [
    ("/tiles/rivers/13/1/1.mvt", 404, "districts, streets, communities, grids, incidents"),
    ("/tiles/grids/23/1/1.mvt", 400, "23"),
    ("/tiles/grids/-1/0/0.mvt", 400, "-1"),
    ("/tiles/grids/3/8/0.mvt", 400, "0–7"),
    ("/tiles/grids/3/0/-2.mvt", 400, "-2"),
    ("/tiles/grids/a/0/0.mvt", 400, "a"),
    ("/tiles/grids/13/1.5/0.mvt", 400, "1.5"),
    ("/tiles/grids/13/99999999999999999999999/0.mvt", 400, "99999999999999999999999"),
    ("/tiles/bounds/grids/nope.json", 404, "nope"),
    ("/tiles/bounds/rivers/1.json", 404, "rivers"),
])
def test_bad_addresses_are_refused_naming_the_value(world, path, status, says):
    r = world.test_client().get(path)
    assert r.status_code == status
    body = r.get_json()
    assert says in body["message"] + body.get("fix", "")


def test_etag_304_cache_control_and_publish_invalidates(world):
    store = world.extensions["gridmap.store"]
    client = world.test_client()
    grids = stored_grids(store)
    t = tiles_over(grids, 14)[0]
    url = f"/tiles/grids/{t.z}/{t.x}/{t.y}.mvt"
    first = client.get(url)
    assert first.status_code == 200 and first.mimetype == "application/vnd.mapbox-vector-tile"
    assert first.headers["Cache-Control"].startswith("public")
    etag = first.headers["ETag"]
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    cache = world.extensions["gridmap.tiles"]
    assert cache.hits >= 1 and len(cache) == 1
    codes = {f["properties"]["code"]: f["properties"] for f in decode(first.data, "grids")}
    target = sorted(codes)[0]
    community = target[:12]
    # renumber the community's grids and publish them through the plan publishing code
    with store.transaction() as s:
        old = grids[grids["code"].str.startswith(community)].sort_values("code")
        frame = gpd.GeoDataFrame({"code": [f"{community}{n:03d}" for n in range(10, 10 + len(old))]},
                                 geometry=list(old.geometry), crs=4326)
        plan = plans.create_plan(s, community, frame)
        plans.publish_plan(s, plan.id, on=dt.date(2026, 7, 1))
    after = client.get(url, headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["ETag"] != etag
    now = {f["properties"]["code"] for f in decode(after.data, "grids")}
    assert target not in now and f"{community}0{int(target[-2:]) + 9:02d}" in now
    assert len(cache) == 1  # the old generation's tile is gone, not left to age


def test_an_empty_tile_is_204_and_area_bounds_answer_for_a_drill_down(world):
    client = world.test_client()
    r = client.get("/tiles/grids/13/0/0.mvt")  # the Arctic, far from any grid
    assert r.status_code == 204 and r.data == b"" and r.headers["ETag"]
    store = world.extensions["gridmap.store"]
    grids = stored_grids(store).set_index("code")
    code = grids.index[4]
    got = client.get(f"/tiles/bounds/grids/{code}.json").get_json()
    assert got["bounds"] == pytest.approx(list(grids.loc[code].geometry.bounds), abs=1e-9)
    got = client.get(f"/tiles/bounds/districts/{DISTRICTS[1]}.json").get_json()
    want = gpd.GeoSeries(grids[grids.index.str.startswith(DISTRICTS[1][:6])].geometry).total_bounds
    assert got["bounds"] == pytest.approx(list(want), abs=1e-7)


def test_the_cache_is_bounded_in_bytes():
    cache = tiles.TileCache(max_bytes=10_000)
    for i in range(100):
        cache.put(("grids", 14, i, 0, 1, "public", 1), (b"x" * 1000, str(i)))
    assert cache.bytes <= 10_000 and len(cache) == cache.bytes // (1000 + tiles.cache.ENTRY_OVERHEAD)
    assert cache.get(("grids", 14, 99, 0, 1, "public", 1)) is not None
    assert cache.get(("grids", 14, 0, 0, 1, "public", 1)) is None
    cache.put(("grids", 14, 0, 0, 2, "public", 2), (b"y", "new"))
    assert len(cache) == 1  # a newer generation drops the older one's tiles
    cache.put(("grids", 14, 1, 0, 1, "public", 1), (b"z", "late"))
    assert len(cache) == 1  # and a late tile of the old generation is not kept


@pytest.mark.postgis
def test_sqlite_and_postgis_draw_the_same_tiles(tmp_path):
    for b in ("sqlite", "postgis"):
        (tmp_path / b).mkdir()
    apps = [make_app(tmp_path / b, b) for b in ("sqlite", "postgis")]
    try:
        stores = [a.extensions["gridmap.store"] for a, _ in apps]
        for st in stores:
            build_world(st)
        grids = stored_grids(stores[0])
        compared = 0
        for layer, z in (("districts", 10), ("streets", 12), ("communities", 13), ("grids", 14), ("grids", 16),
                         ("incidents", 14)):
            for t in tiles_over(grids, z):
                a, b = (decode(tiles.tile(st, layer, t.z, t.x, t.y, role="admin").data, layer) for st in stores)
                key = "id" if layer == "incidents" else "code"
                assert sorted(f["properties"][key] for f in a) == sorted(f["properties"][key] for f in b), (layer, t)
                pa = {f["properties"][key]: f for f in a}
                for f in b:
                    g = pa[f["properties"][key]]
                    if layer == "incidents":
                        assert f["properties"] == {**g["properties"], "id": f["properties"]["id"]}
                        continue
                    assert f["properties"] == g["properties"]
                    area_a = shapely.geometry.shape(g["geometry"]).area
                    area_b = shapely.geometry.shape(f["geometry"]).area
                    assert area_b == pytest.approx(area_a, rel=0.02, abs=64), (layer, t, f["properties"]["code"])
                    compared += 1
        assert compared > 100
    finally:
        for a, cleanup in apps:
            a.extensions["gridmap.store"].dispose()
            cleanup()


def test_a_process_behind_by_a_publish_reads_the_newer_areas_and_never_rebuilds_the_older(world):
    from gridmap.store.generations import generation
    store = world.extensions["gridmap.store"]
    with store.session() as s:
        gen = generation(s)
    assert areas.ensure_built(store, gen) == gen
    assert areas.ensure_built(store, gen - 1) == gen  # asked by a process that has not seen the last publish
    with store.session() as s:
        held = {g for (g,) in s.query(m.TileArea.generation).distinct()}
    assert held == {gen}
    grids = stored_grids(store)
    t = tiles_over(grids, 15)[0]
    stale = tiles.tile(store, "grids", t.z, t.x, t.y)  # drawn from what tile_area holds
    assert {f["properties"]["code"] for f in decode(stale.data, "grids")}
