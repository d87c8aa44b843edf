"""In real (headless) Chromium: every page runs under the Content-Security-Policy with no violation,
its map draws (tiles from another origin included), and a hostile ``next`` never leaves the site."""
import contextlib
import re
import threading
from pathlib import Path
from urllib.parse import quote

import pytest

pytestmark = pytest.mark.browser

TILE = (Path(__file__).resolve().parents[2] / "gridmap/static/vendor/leaflet/images/marker-icon.png").read_bytes()

# Every page that renders HTML, and the iframe each one draws its map in (None: no map).
PAGES = [
    ("/", "#map"),
    ("/login", None),
    ("/planner", "#map"),
    ("/planner/coverage?name=" + quote("和合大院"), "#map"),
    ("/dispatch/", "#map"),
    ("/dispatch/stats", "#heatmap"),
    ("/no-such-page", None),
]

# Runs in every frame before its own scripts: CSP reports every refusal as this event.
COLLECT_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", e => window.__csp.push(
    `${e.violatedDirective} blocked ${e.blockedURI || "inline"} in ${e.sourceFile || location.href}:${e.lineNumber}`));
"""


@contextlib.contextmanager
def _tile_server():
    """A tile server on ``localhost`` — another origin than the app's 127.0.0.1 — answering a PNG for any tile."""
    from werkzeug.serving import make_server

    def tiles(environ, start_response):
        start_response("200 OK", [("Content-Type", "image/png"), ("Content-Length", str(len(TILE)))])
        return [TILE]
    server = make_server("127.0.0.1", 0, tiles, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://localhost:{server.server_port}"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def tiled_server(tmp_path_factory, demo_frames):
    """The demo served with tiles from a server of another origin: (app base URL, tile origin)."""
    from conftest import make_app, serving

    from gridmap import demo
    with _tile_server() as tile_origin:
        app, _ = make_app(tmp_path_factory.mktemp("csp"), "sqlite", MAP_TILES=tile_origin + "/{z}/{x}/{y}.png",
                          MAP_TILES_ATTRIBUTION="test tiles", WTF_CSRF_ENABLED=True)
        demo.build(app.extensions["gridmap.store"], frames=demo_frames)
        with serving(app) as base:
            yield base, tile_origin
        app.extensions["gridmap.store"].dispose()


def _context(browser, allowed):
    context = browser.new_context(viewport={"width": 1200, "height": 900}, locale="zh-CN")
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(allowed)
                  else route.abort())
    context.add_init_script(COLLECT_VIOLATIONS)
    return context


def _sign_in(page, base, username, next_path):
    page.goto(f"{base}/login?next={quote(next_path)}")
    page.fill("#username", username)
    page.fill("#password", "gridmap-demo")
    page.locator("button[type=submit]").click()
    page.wait_for_load_state("load")


def test_every_page_runs_under_the_policy_without_a_violation_and_its_map_draws_tiles_and_shapes(
        browser, tiled_server):
    base, tile_origin = tiled_server
    context = _context(browser, (base, tile_origin))
    page = context.new_page()
    page.set_default_timeout(10000)
    console = []
    page.on("console", lambda msg: console.append(f"{page.url}: {msg.text}")
            if msg.type == "error" and "Content Security Policy" in msg.text else None)
    tiles = []
    page.on("requestfinished", lambda req: tiles.append(req.url) if req.url.startswith(tile_origin) else None)
    _sign_in(page, base, "admin", "/")

    for path, frame_selector in PAGES:
        tiles.clear()
        response = page.goto(base + path)
        assert "script-src 'self' 'nonce-" in response.headers["content-security-policy"], path
        if frame_selector:
            frame = page.frame_locator(frame_selector)
            frame.locator(".leaflet-container").wait_for()
            # grids, sectors or squares drawn by the map's own (nonce-carrying) script; the overview draws them small
            frame.locator(".leaflet-interactive").first.wait_for(state="attached")
            frame.locator("img.leaflet-tile-loaded").first.wait_for()  # a tile from the other origin, shown
            assert tiles, f"{path}: no tile was fetched from {tile_origin}"
        violations = [v for f in page.frames for v in f.evaluate("window.__csp || []")]
        assert violations == [], path
    assert console == []
    context.close()


@pytest.mark.parametrize("hostile", ["/\t/evil.example/phish", "/\\evil.example", "\\/evil.example",
                                     "//evil.example", "https:evil.example", "/%2F%2Fevil.example",
                                     "javascript:alert(document.domain)", "http://evil.example/"])
def test_a_login_with_a_hostile_next_stays_on_the_site(browser, live_server, hostile):
    context = _context(browser, live_server)
    page = context.new_page()
    page.set_default_timeout(10000)
    _sign_in(page, live_server, "dispatcher", hostile)
    assert re.match(re.escape(live_server) + "/", page.url), page.url
    assert page.locator(".who").inner_text() == "调度员"  # signed in, on the landing page
    context.close()
