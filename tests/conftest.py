"""Fixtures: apps on a temporary SQLite file or a private PostGIS schema, the demo, a live server, Chromium."""
import contextlib
import functools
import os
import shutil
import threading
import uuid
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely

from gridmap import create_app
from gridmap.geo import osm
from gridmap.geo.roads import RoadGraph

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
REQUIRE_ALL = os.environ.get("GRIDMAP_REQUIRE_ALL") == "1"
# the command line speaks the shell's language (gridmap.cli.common.language): tests read its English
# unless they choose otherwise, whatever the locale of the machine running them
os.environ["GRIDMAP_LANG"] = "en"
PG_URL = os.environ.get("GRIDMAP_TEST_DATABASE_URL")


# --- tiny worlds drawn in metres -----------------------------------------------------------------
# Tests draw their geometry in metres east/north of a point and convert it to WGS84 here. The
# projection is written out as a PROJ string, not taken from gridmap's own CRS code, so what
# gridmap measures is checked against an independent projection.
CENTRE = (121.6, 38.9)  # a point in Dalian


@functools.lru_cache(maxsize=16)
def _drawing(centre):
    lon, lat = centre
    tm = pyproj.CRS.from_proj4(f"+proj=tmerc +lat_0={lat} +lon_0={lon} +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m")
    return (pyproj.Transformer.from_crs(tm, 4326, always_xy=True), pyproj.Transformer.from_crs(4326, tm, always_xy=True))


def lonlat(geom, *, centre=CENTRE):
    """A shapely geometry drawn in metres around ``centre``, in WGS84 lon/lat."""
    to_ll, _ = _drawing(tuple(centre))
    return shapely.transform(geom, lambda xy: np.column_stack(to_ll.transform(xy[:, 0], xy[:, 1])))


def at(x, y, *, centre=CENTRE):
    """WGS84 (lon, lat) of the point drawn at (x, y) metres around ``centre``."""
    lon, lat = _drawing(tuple(centre))[0].transform(x, y)
    return float(lon), float(lat)


def metres(geom, *, centre=CENTRE):
    """A WGS84 shapely geometry in the metres it was drawn in around ``centre``."""
    _, to_m = _drawing(tuple(centre))
    return shapely.transform(geom, lambda xy: np.column_stack(to_m.transform(xy[:, 0], xy[:, 1])))


def geodesic_m(lon1, lat1, lon2, lat2):
    """Distance in metres on the WGS84 ellipsoid (pyproj's Geod): the oracle for every distance gridmap gives."""
    scalar = all(np.ndim(v) == 0 for v in (lon1, lat1, lon2, lat2))
    lon1, lat1, lon2, lat2 = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (lon1, lat1, lon2, lat2)))
    _, _, d = _GEOD.inv(lon1, lat1, lon2, lat2)
    return float(d) if scalar else np.asarray(d)


_GEOD = pyproj.Geod(ellps="WGS84")


def write_osm(path, nodes, ways, node_tags=None):
    """A hand-written .osm file: ``nodes`` id → (x, y) in metres, ``ways`` (node ids, {tag: value}) numbered
    from 10, ``node_tags`` id → {tag: value}."""
    def tags(t):
        return "".join(f"<tag k='{k}' v='{v}'/>" for k, v in t.items())
    text = "<?xml version='1.0' encoding='UTF-8'?>\n<osm version='0.6'>\n"
    for i, p in nodes.items():
        text += f"<node id='{i}' version='1' lon='{at(*p)[0]!r}' lat='{at(*p)[1]!r}'>{tags((node_tags or {}).get(i, {}))}</node>\n"
    for n, (refs, t) in enumerate(ways, start=10):
        text += f"<way id='{n}' version='1'>" + "".join(f"<nd ref='{r}'/>" for r in refs) + tags(t) + "</way>\n"
    path.write_text(text + "</osm>\n", encoding="utf-8")
    return path


def osm_road_graph(path):
    """The road graph gridmap builds from an .osm file's ways, every island kept."""
    frame, _ = osm.read_roads(str(path))
    return RoadGraph.from_lines(gpd.GeoDataFrame(frame.rename(columns={"highway": "kind"}), crs=4326), min_island_m=0)


def road_m(g, a, b, mode):
    """Road distance in metres between two points given in the drawing's metres."""
    return g.distance_m(*at(*a), *at(*b), mode=mode)


def skip_or_fail(reason):
    """Skip on a user's machine; in CI (GRIDMAP_REQUIRE_ALL=1) a missing PostGIS or browser is a failure."""
    if REQUIRE_ALL:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def shared_data(*parts):
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the real data lives in ../shared/data beside the project)")
    return path


@pytest.fixture(scope="session")
def pg_url():
    if not PG_URL:
        skip_or_fail("GRIDMAP_TEST_DATABASE_URL is not set (PostgreSQL + PostGIS)")
    return PG_URL


def _pg_schema_url(base):
    """A URL whose connections live in a fresh schema, so tests never see each other's rows."""
    import sqlalchemy as sa
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    url = sa.engine.make_url(base).update_query_dict({"options": f"-csearch_path={schema},public"})
    return url.render_as_string(hide_password=False), schema


def _drop_schema(base, schema):
    import sqlalchemy as sa
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()


def make_app(tmp_path, backend="sqlite", **config):
    """A fresh app with an upgraded, empty database. Returns (app, cleanup)."""
    cleanup = lambda: None  # noqa: E731
    if backend == "postgis":
        if not PG_URL:
            skip_or_fail("GRIDMAP_TEST_DATABASE_URL is not set (PostgreSQL + PostGIS)")
        url, schema = _pg_schema_url(PG_URL)
        cleanup = lambda: _drop_schema(PG_URL, schema)  # noqa: E731
    else:
        url = f"sqlite:///{tmp_path / 'gridmap.db'}"
    instance = tmp_path / "instance"
    instance.mkdir(exist_ok=True)
    os.environ["GRIDMAP_INSTANCE_PATH"] = str(instance)
    try:
        app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "test", "MAP_TILES": "none",
                          "SNAPSHOT_CHECK_SECONDS": 0.0,
                          # tests post many reports from one address: tests/web/test_abuse.py switches limits on
                          "RATELIMIT_ENABLED": False, **config})
    finally:
        os.environ.pop("GRIDMAP_INSTANCE_PATH", None)
    app.extensions["gridmap.store"].upgrade()
    return app, cleanup


@pytest.fixture(params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)])
def backend(request):
    return request.param


@pytest.fixture
def app(tmp_path, backend):
    """An app with an empty, migrated store on each backend."""
    app, cleanup = make_app(tmp_path, backend)
    yield app
    app.extensions["gridmap.store"].dispose()
    cleanup()


@pytest.fixture
def sqlite_app(tmp_path):
    app, _ = make_app(tmp_path, "sqlite")
    yield app
    app.extensions["gridmap.store"].dispose()


@pytest.fixture
def store(app):
    return app.extensions["gridmap.store"]


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture(scope="session")
def demo_frames():
    from gridmap import demo
    return demo.generate(seed=2026)


@pytest.fixture(scope="session")
def demo_app(tmp_path_factory, demo_frames):
    """One app holding the Dalian demo on SQLite, shared by read-only tests."""
    from gridmap import demo
    app, _ = make_app(tmp_path_factory.mktemp("demo"), "sqlite")
    demo.build(app.extensions["gridmap.store"], frames=demo_frames)
    yield app
    app.extensions["gridmap.store"].dispose()


@pytest.fixture
def demo_client(demo_app):
    return demo_app.test_client()


@pytest.fixture(scope="session")
def assigned_demo(tmp_path_factory, demo_frames):
    """The demo in a store of its own (demo_app is read-only) whose published plans are assigned:
    (app, store, the assignment's summaries). CSRF off: tests post as signed-in clients."""
    from gridmap import assign, demo
    app, _ = make_app(tmp_path_factory.mktemp("assigned"), "sqlite")
    store = app.extensions["gridmap.store"]
    demo.build(store, frames=demo_frames)
    with store.transaction() as session:
        summaries = assign.run(session)  # every published plan
    app.config["WTF_CSRF_ENABLED"] = False
    yield app, store, summaries
    store.dispose()


def _closing_early(app):
    """``app`` with each response closed as soon as it has been iterated.

    Werkzeug's dev server closes the response only after draining the socket, and when the
    browser has already dropped the connection (it does, between page loads) that drain raises
    and the static file it was sending is left open: a ResourceWarning, an error under our
    warning filters, in whichever test happens to collect it. Closing in the generator's own
    ``finally`` runs on exhaustion or, at the latest, when the generator is collected.
    """
    def wrapped(environ, start_response):
        body = app(environ, start_response)
        try:
            yield from body
        finally:
            if hasattr(body, "close"):
                body.close()
    return wrapped


@contextlib.contextmanager
def serving(app):
    """Serve ``app`` on 127.0.0.1 at a free port for the browser; yields the base URL."""
    from werkzeug.serving import make_server
    server = make_server("127.0.0.1", 0, _closing_early(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@contextlib.contextmanager
def served_demo(tmp_dir, frames):
    """A writable demo app of a test module's own (:func:`writable_demo_app`), served: yields (app, url)."""
    app = writable_demo_app(tmp_dir, frames)
    with serving(app) as url:
        yield app, url
    app.extensions["gridmap.store"].dispose()


def writable_demo_app(tmp_dir, frames):
    """A demo app of a test module's own (its flow writes), with CSRF checks on as in production."""
    from gridmap import demo
    app, _ = make_app(tmp_dir, "sqlite")
    demo.build(app.extensions["gridmap.store"], frames=frames)
    app.config["WTF_CSRF_ENABLED"] = True
    return app


@pytest.fixture(scope="session")
def live_server(demo_app):
    """The demo app served on 127.0.0.1 at a free port, for the browser."""
    demo_app.config["WTF_CSRF_ENABLED"] = True
    with serving(demo_app) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, driven by Playwright (browsers cannot be downloaded here)."""
    exe = os.environ.get("GRIDMAP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        skip_or_fail("no chromium executable (apt-get install chromium, or set GRIDMAP_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    # No internet here: tile and CDN requests would only hang the page load.
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("http://127.0.0.1")
                  or route.request.url.startswith("data:") else route.abort())
    page = context.new_page()
    yield page
    context.close()


DEMO_PASSWORD = "gridmap-demo"


def login_client(app, username, password=DEMO_PASSWORD):
    """A test client signed in as ``username`` (CSRF is switched off for the sign-in and left off:
    the callers' fixtures switch it back on)."""
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    r = client.post("/login", data={"username": username, "password": password})
    assert r.status_code == 302, r.get_data(as_text=True)
    return client


def staff_page(browser, base, username, next_path, *, timezone_id=None, timeout=10000):
    """A desktop-sized Chromium page signed in through the real login form at ``base``; returns
    (context, page) — close the context when done. Nothing but ``base`` is reachable."""
    import re
    options = {"viewport": {"width": 1400, "height": 1000}, "locale": "zh-CN"}
    if timezone_id:
        options["timezone_id"] = timezone_id
    context = browser.new_context(**options)
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base)
                  or route.request.url.startswith("data:") else route.abort())
    page = context.new_page()
    page.set_default_timeout(timeout)
    page.goto(f"{base}/login?next={next_path}")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(re.escape(next_path) + "$"))
    return context, page


def sos_from_a_vulnerable_resident(app, client, device_id, *, newest=False):
    """Register a wearable for the first (or ``newest``) vulnerable resident and raise its SOS
    through the API with a new gateway key: returns (incident id, (lon, lat) of the home)."""
    from sqlalchemy import select

    from gridmap import apikeys, dispatch
    from gridmap.store import models as m
    with app.extensions["gridmap.store"].transaction() as s:
        key, _ = apikeys.create(s, f"gateway-{device_id}")
        order = m.Resident.id.desc() if newest else m.Resident.id
        rid, lon, lat = s.execute(
            select(m.Resident.id, m.Building.lon, m.Building.lat)
            .join(m.Household, m.Household.id == m.Resident.household_id)
            .join(m.Building, m.Building.id == m.Household.building_id)
            .where(m.Resident.vulnerable.is_(True)).order_by(order).limit(1)).one()
        dispatch.register_device(s, device_id, rid)
    r = client.post("/api/v1/sos", headers={"X-Api-Key": key},
                    json={"device_id": device_id, "lon": lon, "lat": lat, "time": "2026-05-04T16:00:00+08:00"})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["incident"]["id"], (lon, lat)


def head_revision():
    """The newest migration, so tests need no edit when one is added."""
    from alembic.script import ScriptDirectory
    from gridmap.store.db import _alembic_config
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


@contextlib.contextmanager
def a_resident_report(app):
    """A resident's report in ``app``'s store (its status page is a public page): yields its token and
    takes the report away afterwards, so a shared demo stays as other tests expect it."""
    from gridmap import dispatch
    from gridmap.store import models as m
    store = app.extensions["gridmap.store"]
    snap = app.extensions["gridmap.snapshots"].get()
    p = snap.grids.geometry.iloc[0].representative_point()
    with store.transaction() as s:
        incident, token = dispatch.resident_report(s, snap, category="sanitation", lon=p.x, lat=p.y,
                                                   description="楼道口垃圾堆积")
        incident_id = incident.id
    try:
        yield token
    finally:
        with store.transaction() as s:
            for model in (m.ResidentReport, m.IncidentEvent):
                s.query(model).filter(model.incident_id == incident_id).delete()
            s.query(m.Incident).filter(m.Incident.id == incident_id).delete()


@contextlib.contextmanager
def store_at_revision(backend, tmp_path, revision):
    """A store migrated up to ``revision`` only, as a deployment was before a later migration: on
    SQLite a file, on PostGIS a private schema dropped afterwards."""
    from alembic import command
    from gridmap.store import Store
    from gridmap.store.db import _alembic_config
    cleanup = lambda: None  # noqa: E731
    if backend == "postgis":
        if not PG_URL:
            skip_or_fail("GRIDMAP_TEST_DATABASE_URL is not set (PostgreSQL + PostGIS)")
        url, schema = _pg_schema_url(PG_URL)
        cleanup = lambda: _drop_schema(PG_URL, schema)  # noqa: E731
    else:
        url = f"sqlite:///{tmp_path / 'old.db'}"
    store = Store(url)
    try:
        with store.engine.begin() as conn:
            command.upgrade(_alembic_config(conn), revision)
        yield store
    finally:
        store.dispose()
        cleanup()
