"""Snapshot files: a mapped snapshot answers as the one built in memory; one build per generation; stale processes keep serving; NOTIFY; bad files are rebuilt."""
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import shapely

from conftest import make_app

from gridmap import importer, snapfile
from gridmap.index import Snapshot, SnapshotCache
from gridmap.store.generations import generation

ROOT = Path(__file__).resolve().parents[1]


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)])
def demo_store(request, tmp_path_factory, demo_frames):
    """The demo in a store of its own on each backend: (store, folder for snapshot files)."""
    from gridmap import demo
    tmp = tmp_path_factory.mktemp(f"snapfile-{request.param}")
    app, cleanup = make_app(tmp, request.param)
    store = app.extensions["gridmap.store"]
    demo.build(store, frames=demo_frames)
    yield store, tmp / "snapshots"
    store.dispose()
    cleanup()


@pytest.fixture
def empty_store(tmp_path, backend):
    """An empty store on each backend and a folder for its snapshot files."""
    app, cleanup = make_app(tmp_path, backend)
    store = app.extensions["gridmap.store"]
    yield store, tmp_path / "snapshots"
    store.dispose()
    cleanup()


def _import_responder(store, tmp_path, name, lon=121.612, lat=38.91):
    """Import one police station through the importer (it bumps the generation, as a publish does)."""
    path = tmp_path / f"{name}.csv"
    path.write_text(f"name,kind,phone,lon,lat\n{name},police,13812341234,{lon},{lat}\n", encoding="utf-8")
    importer.import_file(store, "responders", path)


def _probe_points(snap, n=600, seed=5):
    """Random points over the grids' extent and beyond, plus grid vertices (the edge rule) and responders."""
    rng = np.random.default_rng(seed)
    b = snap.grids.total_bounds
    pad = 0.3 * max(b[2] - b[0], b[3] - b[1])
    pts = np.column_stack([rng.uniform(b[0] - pad, b[2] + pad, n), rng.uniform(b[1] - pad, b[3] + pad, n)])
    verts = shapely.get_coordinates(snap.grids.geometry.values)
    verts = verts[rng.choice(len(verts), min(200, len(verts)), replace=False)]
    people = np.column_stack([snap._entities.lon, snap._entities.lat])[:100] if snap._entities is not None \
        else np.zeros((0, 2))
    return np.vstack([pts, verts, people])


def _answers(snap, lon, lat):
    kinds = list(snap._entities.kind_names) if snap._entities is not None else []
    skill = snap._entities.skill_names[0] if snap._entities is not None and snap._entities.skill_names else None
    out = {"grid_at": snap.grid_at(lon, lat), "locate": snap.locate(lon, lat),
           "grids_near": snap.grids_near(lon, lat, 150)}
    try:
        out["locate_full"] = snap.locate_full(lon, lat)
        out["nearest"] = snap.nearest(lon, lat, k=4)
        out["nearest_skill"] = snap.nearest(lon, lat, k=3, skill=skill, available=True)
        out["nearest_each"] = snap.nearest_each(lon, lat, kinds, k=2)
        out["within"] = snap.within(lon, lat, 400)
        out["cameras"] = snap.cameras_seeing(lon, lat)
    except Exception as err:  # the same refusal from both (a point too far to measure)
        out["error"] = (type(err).__name__, str(err))
    return out


# -- round trip ---------------------------------------------------------------------------------
def test_a_mapped_snapshot_answers_every_question_as_the_one_built_in_memory(demo_store):
    store, folder = demo_store
    with store.session() as session:
        built = Snapshot.from_store(session)
    mapped = Snapshot.from_file(built.to_file(folder))
    assert mapped.source is not None and mapped.generation == built.generation
    # the big arrays are views of the file, not copies
    assert not mapped._grid_index._table.flags.writeable and not mapped._entities.xy.flags.writeable
    assert mapped._entities.xy.base is not None
    pts = _probe_points(built)
    on_edge = 0
    for lon, lat in pts.tolist():
        a, b = _answers(built, lon, lat), _answers(mapped, lon, lat)
        assert a == b, (lon, lat)
        on_edge += a["locate"]["on_shared_edge"]
    assert on_edge > 0  # the vertices exercised the edge rule (GEOS on the lazily decoded polygons)
    # the batch path of the polygon index too, against geopandas' own join
    got = mapped._grid_index.lookup(pts[:, 0], pts[:, 1])
    assert np.array_equal(got, built._grid_index.lookup(pts[:, 0], pts[:, 1]))
    assert built.grids.equals(mapped.grids) and built.communities.equals(mapped.communities)
    assert built.workers == mapped.workers and built.branches == mapped.branches


def test_roads_and_addresses_come_back_from_the_file_answering_alike(demo_store):
    store, folder = demo_store
    with store.session() as session:
        built = Snapshot.from_store(session)
    mapped = Snapshot.from_file(built.to_file(folder))
    assert built.roads is not None and built.addresses is not None
    assert (mapped.roads.n_nodes, mapped.roads.n_edges) == (built.roads.n_nodes, built.roads.n_edges)
    people = list(zip(built._entities.lon[:30].tolist(), built._entities.lat[:30].tolist()))
    for mode in ("walk", "ebike", "car"):
        for lon, lat in people[:5]:
            a = built.roads.routes(lon, lat, people[5:], mode=mode)
            b = mapped.roads.routes(lon, lat, people[5:], mode=mode)
            assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    for q in ("路", "1号", "社区"):
        assert built.addresses.search(q, limit=5) == mapped.addresses.search(q, limit=5)


def test_the_address_index_is_searched_in_the_files_own_pages_answering_alike(demo_store):
    """The address index is flat arrays in the file (no pickle, nothing unpickled per process) and
    answers every query — typed loosely, exact, by community, nearest a point — as the built one."""
    store, folder = demo_store
    with store.session() as session:
        built = Snapshot.from_store(session)
    mapped = Snapshot.from_file(built.to_file(folder / "addresses"))
    f = mapped._file
    assert "addresses.pickle" not in f.arrays and "addresses.rec.b" in f.arrays
    a, b = built.addresses, mapped.addresses
    recs = list(a._records)
    assert len(b) == len(a) == len(recs) > 0
    rng = np.random.default_rng(3)
    picks = [recs[i] for i in rng.choice(len(recs), min(25, len(recs)), replace=False)]
    queries = ["路", "1号", "社区", "号楼", "单元"] + [r.address for r in picks] + [r.address[2:-1] for r in picks]
    communities = [None, picks[0].community, "no-such-community"]
    for q in queries:
        for c in communities:
            assert a.search(q, community=c, limit=8) == b.search(q, community=c, limit=8)
    assert any(a.search(r.address, limit=1)[0]["score"] == 100.0 for r in picks)  # the exact path ran
    for r in picks:
        assert a.nearest(r.lon, r.lat, max_m=30) == b.nearest(r.lon, r.lat, max_m=30)


def test_mapped_road_graphs_answer_as_built_ones_from_the_files_own_pages(demo_store):
    """Every mode's graph comes from the file as it was finished (the arrays are read-only views of
    the mapping, nothing rebuilt), and answers — nearest segment and snap point, distances and
    ETAs both ways — equal the in-memory graph's on random points and the demo's people; the grid
    of cells finds the segment GEOS's STRtree says is nearest."""
    from gridmap.geo.roads import MODES
    store, folder = demo_store
    with store.session() as session:
        built = Snapshot.from_store(session)
    mapped = Snapshot.from_file(built.to_file(folder / "roads"))
    g, m = built.roads, mapped.roads
    assert set(m._nets) == {None, *MODES}  # every mode came from the file
    for net in m._nets.values():
        for a in (net.seg_xy, net.seg_u, net.labels, *net.fwd, *net.rev, *net.grid):
            assert not a.flags.writeable and not a.flags.owndata  # a view of the mapped file
    assert m._base_parts is None  # the segments' kinds were never decoded
    rng = np.random.default_rng(7)
    xy = np.vstack([net.seg_xy for net in g._nets.values() if net is not None]).reshape(-1, 2)
    lon, lat = g.metric.lonlat(xy[:, 0], xy[:, 1])
    lo, hi = np.array([lon.min(), lat.min()]), np.array([lon.max(), lat.max()])
    pad = 0.2 * (hi - lo)
    pts = np.vstack([rng.uniform(lo - pad, hi + pad, (300, 2)),
                     np.column_stack([built._entities.lon[:40], built._entities.lat[:40]]),
                     np.column_stack([lon, lat])[rng.choice(len(lon), 60)]])  # on vertices: ties
    for mode in (None, *MODES):
        gn, mn = g._net(mode), m._net(mode)
        if gn is None:
            assert mn is None
            continue
        x, y = g.metric.xy(pts[:, 0], pts[:, 1])
        seg = mn.nearest_segments(x, y)
        assert np.array_equal(seg, gn.nearest_segments(x, y))
        tree = shapely.STRtree(shapely.linestrings(np.asarray(gn.seg_xy).reshape(-1, 2, 2)))
        p = shapely.points(x, y)
        best = shapely.distance(p, tree.geometries[tree.query_nearest(p, all_matches=False)[1]])
        got = shapely.distance(p, tree.geometries[seg])
        assert np.allclose(got, best, rtol=0, atol=1e-7)
        for lon_i, lat_i in pts[::9].tolist():
            assert g.snap(lon_i, lat_i, mode=mode) == m.snap(lon_i, lat_i, mode=mode)
        for lon_i, lat_i in pts[::37].tolist():
            for inbound in (True, False):
                a = g.routes(lon_i, lat_i, pts[:120], mode=mode, inbound=inbound)
                b = m.routes(lon_i, lat_i, pts[:120], mode=mode, inbound=inbound)
                assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1], equal_nan=True)
                assert np.isfinite(a[0]).any()
    assert (m.n_nodes, m.n_edges) == (g.n_nodes, g.n_edges)


def test_a_new_generation_reuses_what_did_not_change_and_rebuilds_what_did(demo_store, tmp_path):
    """A responder imported: the responders' trees are new, the road graphs and the address index
    (the same arrays in both files) are the previous generation's objects, and every answer is
    the in-memory snapshot's."""
    store, folder = demo_store
    directory = folder.parent / f"reuse-{time.monotonic_ns()}"
    with store.session() as session:
        first = Snapshot.from_file(Snapshot.from_store(session).to_file(directory)).warm()
    _import_responder(store, tmp_path, "新站", lon=float(first._entities.lon[0]), lat=float(first._entities.lat[0]))
    with store.session() as session:
        built = Snapshot.from_store(session)
    second = Snapshot.from_file(built.to_file(directory), previous=first)
    assert second.generation == first.generation + 1
    assert second.roads is first.roads and second.addresses is first.addresses
    assert second._cameras.tree is first._cameras.tree and second._entities.tree is not first._entities.tree
    assert len(second._entities) == len(first._entities) + 1
    for lon, lat in _probe_points(built, n=150).tolist():
        assert _answers(built, lon, lat) == _answers(second, lon, lat), (lon, lat)


def test_names_and_ids_round_trip_as_values_not_python_lists():
    offsets, blob = snapfile.pack_values(["网格一", None, 3, "", "a\"b", np.int64(7)])
    got = snapfile.PackedValues(offsets, blob)
    assert list(got) == ["网格一", None, 3, "", "a\"b", 7] and got[-1] == 7 and len(got) == 6
    with pytest.raises(IndexError):
        got[6]


# -- one build per generation -------------------------------------------------------------------
def test_two_processes_seeing_a_new_generation_build_it_once(demo_store):
    store, folder = demo_store
    root = folder.parent / f"once-{time.monotonic_ns()}"
    caches = [SnapshotCache(store, check_seconds=0, directory=root) for _ in range(3)]
    got = [None] * 3
    start = threading.Barrier(3)

    def load(i):
        start.wait()
        got[i] = caches[i].get()
    threads = [threading.Thread(target=load, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sum(c.builds for c in caches) == 1
    with store.session() as session:
        gen = generation(session)
    assert [s.generation for s in got] == [gen] * 3 and all(s.source is not None for s in got)
    assert snapfile.generations_in(caches[0].directory) == [gen]


def test_the_build_lock_is_held_by_one_at_a_time(demo_store):
    store, folder = demo_store
    with snapfile.build_lock(store, folder, 99) as first:
        with snapfile.build_lock(store, folder, 99) as second:
            assert first and not second
    with snapfile.build_lock(store, folder, 99) as again:
        assert again


# -- a stale process keeps serving -------------------------------------------------------------
def test_a_process_keeps_answering_the_previous_generation_while_another_builds_the_next(empty_store, tmp_path):
    store, folder = empty_store
    _import_responder(store, tmp_path, "甲站")
    cache = SnapshotCache(store, check_seconds=0.05, directory=folder, listen=False)
    try:
        old = cache.get()
        assert [r["name"] for r in old.nearest(121.61, 38.91, k=5)] == ["甲站"]
        with snapfile.build_lock(store, cache.directory, old.generation + 1) as mine:
            assert mine  # this test is "the other process", building the next generation
            _import_responder(store, tmp_path, "乙站", lon=121.6101)
            for _ in range(20):
                time.sleep(0.05)
                snap = cache.get()  # never blocks, never builds: the other process holds the lock
                assert snap is old
            with store.session() as session:
                Snapshot.from_store(session).to_file(cache.directory)
        deadline = time.monotonic() + 30
        while cache.get() is old and time.monotonic() < deadline:
            time.sleep(0.05)
        new = cache.get()
        assert new.generation == old.generation + 1 and cache.builds == 1  # only its first snapshot
        assert [r["name"] for r in new.nearest(121.61, 38.91, k=5)] == ["乙站", "甲站"]
    finally:
        cache.close()


def test_only_the_two_newest_files_are_kept(empty_store, tmp_path):
    store, folder = empty_store
    cache = SnapshotCache(store, check_seconds=0, directory=folder)
    seen = []
    for i in range(4):
        _import_responder(store, tmp_path, f"站{i}")
        seen.append(cache.get().generation)
    assert snapfile.generations_in(cache.directory) == seen[-2:]


# -- bad files ----------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncated", "flipped", "garbage", "empty"])
def test_a_partial_or_corrupt_file_is_refused_and_rebuilt_never_served(empty_store, tmp_path, damage):
    store, folder = empty_store
    _import_responder(store, tmp_path, "甲站")
    with store.session() as session:
        good = Snapshot.from_store(session)
    directory = snapfile.folder_for(folder, store)
    path = good.to_file(directory)
    raw = path.read_bytes()
    # damage a byte inside the responders' coordinates: the file still has the right size
    xy_at = raw.index(good._entities.xy.tobytes())
    broken = {"truncated": raw[: len(raw) // 2], "empty": b"",
              "flipped": raw[:xy_at] + bytes([raw[xy_at] ^ 0x40]) + raw[xy_at + 1:],
              "garbage": b"GRIDSNAP" + os.urandom(len(raw) - 8)}[damage]
    path.write_bytes(broken)
    with pytest.raises(snapfile.BadSnapshotFile):
        snapfile.Mapped(path)
    cache = SnapshotCache(store, check_seconds=0, directory=folder)
    snap = cache.get()
    assert cache.builds == 1  # rebuilt, not served
    assert [r["name"] for r in snap.nearest(121.61, 38.91, k=1)] == ["甲站"]
    assert np.array_equal(snap._entities.xy, good._entities.xy)
    snapfile.Mapped(path)  # sound again


# -- NOTIFY reaches another process -------------------------------------------------------------
_WATCHER = textwrap.dedent("""
    import sys, time
    from gridmap.index import SnapshotCache
    from gridmap.store.db import Store
    store = Store(sys.argv[1])
    # polling once an hour: only a notification can bring the new generation in time
    cache = SnapshotCache(store, check_seconds=3600, directory=sys.argv[2])
    first = cache.get()
    cache._listener.connected.wait(30)
    print("ready", first.generation, flush=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        snap = cache.get()
        if snap.generation != first.generation:
            print("seen", snap.generation, [r["name"] for r in snap.nearest(121.61, 38.91, k=5)], flush=True)
            break
        time.sleep(0.02)
    else:
        print("timeout", flush=True)
""")


@pytest.mark.postgis
def test_a_publish_reaches_another_process_by_notify(tmp_path):
    app, cleanup = make_app(tmp_path, "postgis")
    store = app.extensions["gridmap.store"]
    try:
        _import_responder(store, tmp_path, "甲站")
        url = store.url.render_as_string(hide_password=False)
        watcher = subprocess.Popen([sys.executable, "-c", _WATCHER, url, str(tmp_path / "snapshots")],
                                   stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            ready = watcher.stdout.readline().split()
            assert ready[0] == "ready"
            _import_responder(store, tmp_path, "乙站", lon=121.6101)
            seen = watcher.stdout.readline().strip()
            with store.session() as session:
                gen = generation(session)
            assert seen == f"seen {gen} ['乙站', '甲站']"
            assert int(ready[1]) == gen - 1
        finally:
            watcher.kill()
            watcher.wait()
            watcher.stdout.close()
    finally:
        store.dispose()
        cleanup()


@pytest.mark.postgis
def test_a_rolled_back_bump_notifies_nobody(tmp_path):
    import psycopg

    from gridmap.store.generations import CHANNEL, bump_generation
    app, cleanup = make_app(tmp_path, "postgis")
    store = app.extensions["gridmap.store"]
    try:
        dsn = store.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True) as listener:
            listener.execute(f"LISTEN {CHANNEL}")
            with store.session() as session:
                bump_generation(session)
                session.rollback()
            assert list(listener.notifies(timeout=0.5, stop_after=1)) == []
            with store.transaction() as session:
                bump_generation(session)
            assert [n.channel for n in listener.notifies(timeout=5, stop_after=1)] == [CHANNEL]
    finally:
        store.dispose()
        cleanup()
