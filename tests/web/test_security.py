"""Where a login may send the browser, the headers and cookies of every response, logout ending the
session on the server, and which proxy headers are believed."""
import re

import pytest

from conftest import make_app
from gridmap import accounts, create_app, settings
from gridmap.errors import InvalidInput
from gridmap.maps.base import tile_source
from gridmap.web.auth import safe_next

PASSWORD = "long-enough-pw"

# Each would leave the site (or smuggle a scheme) in some browser: refused, whatever its disguise.
HOSTILE = [
    "//evil.example", "///evil.example", "////evil.example", "/\\evil.example", "\\/evil.example",
    "\\\\evil.example", "/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "\t//evil.example",
    " //evil.example", "/ /evil.example", "/%09/evil.example", "/%0a/evil.example", "/%2F%2Fevil.example",
    "/%2f/evil.example", "%2F%2Fevil.example", "/%5Cevil.example", "/%5cevil.example", "/%252F%252Fevil.example",
    "/%25252F/evil.example", "https://evil.example", "https:evil.example", "http:/evil.example",
    "HTTPS://evil.example", "javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,<script>alert(1)</script>",
    "evil.example", "", "/\x00", "/\x00/evil.example", "/\x7f", "/a\\b", "/\u200b/evil.example",
    "/\u202e/evil.example", "/\ufeff/evil.example", "/\u3000/evil.example", "/\u00a0/evil.example",
    "/\uff0fevil.example", "/\uff3cevil.example", "\uff0f\uff0fevil.example", "/\u2028/evil.example",
    "/%E2%80%8B/evil.example", "/%EF%BC%8Fevil.example", "/%ef%bc%bcevil.example", "/x/../\\evil.example",
    "/" + "a" * 2100,
]

# Paths of this site, as Flask-Login's ?next= holds them: kept (non-ASCII sent percent-encoded).
ON_SITE = [
    ("/", "/"), ("/dispatch/", "/dispatch/"), ("/dispatch/stats?period=month&community=210213013004",
                                               "/dispatch/stats?period=month&community=210213013004"),
    ("/planner/coverage?name=和合大院", "/planner/coverage?name=%E5%92%8C%E5%90%88%E5%A4%A7%E9%99%A2"),
    ("/planner/coverage?name=%E5%92%8C", "/planner/coverage?name=%E5%92%8C"),
    ("/planner/coverage?name=a%20b", "/planner/coverage?name=a%20b"), ("/x#top", "/x#top"),
]


@pytest.mark.parametrize("target", HOSTILE)
def test_a_next_that_could_leave_the_site_is_refused(target):
    assert safe_next(target) is None


@pytest.mark.parametrize("target, location", ON_SITE)
def test_a_path_of_this_site_is_kept_as_next(target, location):
    assert safe_next(target) == location


def _user(app, username="li", role="planner"):
    with app.extensions["gridmap.store"].transaction() as s:
        accounts.create_user(s, username, PASSWORD, role)


def _login(app, username="li", next_=None):
    app.config["WTF_CSRF_ENABLED"] = False  # the tests post as a script would; the browser test keeps CSRF on
    client = app.test_client()
    r = client.post("/login", data={"username": username, "password": PASSWORD},
                    query_string={"next": next_} if next_ is not None else None)
    assert r.status_code == 302, r.get_data(as_text=True)
    return client, r


def _on_site(location):
    """Whether a Location keeps a browser here: a path, once the browser drops tabs and newlines and reads \\ as /."""
    seen = re.sub(r"[\t\n\r]", "", location).replace("\\", "/").lstrip(" \x00")
    return seen.startswith("/") and not seen.startswith("//") and ":" not in seen.split("/")[0]


def test_a_login_with_any_hostile_next_answers_a_location_on_this_site(app):
    _user(app)
    app.config["WTF_CSRF_ENABLED"] = False
    refused_at_the_border = 0
    for target in HOSTILE:
        client = app.test_client()
        r = client.post("/login", data={"username": "li", "password": PASSWORD}, query_string={"next": target})
        if r.status_code == 400:  # a control character: the border refuses the request, nobody signs in
            assert "next" in r.get_data(as_text=True), target
            assert client.get("/planner/api/plans/999999").status_code == 401
            refused_at_the_border += 1
            continue
        assert r.status_code == 302 and r.headers["Location"] == "/planner", target  # the planner's own page
    assert refused_at_the_border < len(HOSTILE) / 2  # most reach safe_next, which is what is tested here
    _, r = _login(app, next_="/planner/coverage?name=和合大院")
    assert r.headers["Location"] == "/planner/coverage?name=%E5%92%8C%E5%90%88%E5%A4%A7%E9%99%A2"
    assert _on_site(r.headers["Location"])


# ---- headers ---------------------------------------------------------------------------------

def _policy(response):
    return dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))


def test_every_kind_of_response_carries_the_security_headers(sqlite_app):
    _user(sqlite_app)
    client, _ = _login(sqlite_app)
    responses = {"page": client.get("/"), "login": sqlite_app.test_client().get("/login"),
                 "api": client.get("/api/v1/addresses?q=x"), "missing": client.get("/no-such-page"),
                 "static": client.get("/static/gridmap.css"),
                 "refused": sqlite_app.test_client().get("/planner/api/plans/1")}
    assert responses["refused"].status_code == 401
    for name, r in responses.items():
        policy = _policy(r)
        assert policy["default-src"] == "'self'", name
        assert re.fullmatch(r"'self' 'nonce-[A-Za-z0-9_-]{24}'", policy["script-src"]), name
        assert policy["object-src"] == "'none'" and policy["base-uri"] == "'self'", name
        assert policy["form-action"] == "'self'" and policy["frame-ancestors"] == "'none'", name
        assert policy["img-src"] == "'self' data:", name  # MAP_TILES=none: no tile server to allow
        assert "unsafe-inline" not in policy["script-src"] and "unsafe-eval" not in r.headers["Content-Security-Policy"]
        assert r.headers["X-Frame-Options"] == "DENY", name
        assert r.headers["X-Content-Type-Options"] == "nosniff", name
        assert r.headers["Referrer-Policy"] == "same-origin", name
        assert "geolocation=(self)" in r.headers["Permissions-Policy"], name
    r2 = client.get("/")
    assert _policy(r2)["script-src"] != _policy(responses["page"])["script-src"]  # a new nonce each time
    responses["static"].close()  # a file response holds the file open until closed


def test_a_map_page_may_be_framed_by_the_site_and_every_inline_script_carries_this_responses_nonce(demo_client):
    r = demo_client.get("/map")
    assert r.status_code == 200
    policy = _policy(r)
    assert policy["frame-ancestors"] == "'self'" and r.headers["X-Frame-Options"] == "SAMEORIGIN"
    nonce = re.search(r"'nonce-([^']+)'", policy["script-src"]).group(1)
    html = r.get_data(as_text=True)
    tags = re.findall(r"<script\b[^>]*>", html)
    inline = [t for t in tags if "src=" not in t]
    assert inline and all(t == f'<script nonce="{nonce}">' for t in inline), tags
    assert all(t.startswith('<script src="/static/') for t in tags if "src=" in t)  # vendored, no CDN
    # a map request that fails is still a page in the site's own frame
    bad = demo_client.get("/map?community=nonsense", headers={"Accept": "text/html"})
    assert bad.status_code == 400 and _policy(bad)["frame-ancestors"] == "'self'"


def test_the_tile_server_of_the_setting_is_the_one_image_origin_allowed(tmp_path):
    app, _ = make_app(tmp_path, MAP_TILES="https://{s}.tiles.example.org:8443/{z}/{x}/{y}.png",
                      MAP_TILES_ATTRIBUTION="© example")
    assert _policy(app.test_client().get("/login"))["img-src"] == "'self' data: https://*.tiles.example.org:8443"
    app.extensions["gridmap.store"].dispose()


@pytest.mark.parametrize("tiles, source", [
    ("none", None), ("", None), ("OpenStreetMap", "https://tile.openstreetmap.org"),
    ("Esri.WorldImagery", "https://server.arcgisonline.com"),
    ("https://tile.example.org/{z}/{x}/{y}.png", "https://tile.example.org"),
    ("http://webrd0{s}.is.autonavi.com/appmaptile?x={x}&y={y}&z={z}", "http://*.is.autonavi.com"),
])
def test_a_tile_setting_names_its_server_as_a_csp_source(tiles, source):
    assert tile_source(tiles) == source


def test_a_tile_setting_that_is_no_server_is_refused_with_the_fix():
    with pytest.raises(InvalidInput, match="MAP_TILES='no such provider'") as err:
        tile_source("no such provider")
    assert "MAP_TILES=none" in err.value.fix


# ---- cookies ---------------------------------------------------------------------------------

def _session_cookie(response):
    return next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))


@pytest.mark.parametrize("https", [False, True])
def test_the_session_cookie_is_httponly_samesite_lax_and_secure_when_served_over_https(tmp_path, https):
    app, _ = make_app(tmp_path, HTTPS=https)
    _user(app)
    _, r = _login(app)
    cookie = _session_cookie(r)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert ("Secure" in cookie.split("; ")) is https
    assert app.config["REMEMBER_COOKIE_SECURE"] is https and app.config["REMEMBER_COOKIE_SAMESITE"] == "Lax"
    app.extensions["gridmap.store"].dispose()


def test_an_https_setting_written_as_text_in_the_instance_file_is_read_as_yes_or_no(tmp_path):
    app, _ = make_app(tmp_path, HTTPS="0")
    assert app.config["SESSION_COOKIE_SECURE"] is False
    app.extensions["gridmap.store"].dispose()
    with pytest.raises(InvalidInput, match="HTTPS='sometimes'"):
        make_app(tmp_path, HTTPS="sometimes")


@pytest.mark.parametrize("raw, value", [("1", True), ("true", True), ("on", True), ("0", False), ("no", False),
                                        ("off", False)])
def test_the_https_setting_reads_yes_and_no_from_the_environment(raw, value):
    assert settings.from_environ({"GRIDMAP_HTTPS": raw}) == {"HTTPS": value}


def test_an_https_setting_that_is_neither_yes_nor_no_is_refused_with_the_fix():
    with pytest.raises(InvalidInput, match="GRIDMAP_HTTPS='maybe' is not a valid boolean"):
        settings.from_environ({"GRIDMAP_HTTPS": "maybe"})


# ---- logout ends the session on the server -----------------------------------------------------

def _replay(app, cookie):
    """A fresh client presenting a copied session cookie: (API status, page status, page Location)."""
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    api = thief.get("/planner/api/plans/999999")
    page = thief.get("/planner", headers={"Accept": "text/html"})
    return api.status_code, page.status_code, page.headers.get("Location", "")


def test_a_session_cookie_copied_before_logout_signs_no_one_in_after_it(app):
    _user(app)
    client, _ = _login(app)
    copied = client.get_cookie("session").value
    assert _replay(app, copied)[:2] == (404, 200)  # the copy works while the session lives: a real replay
    client.post("/logout")
    assert client.get("/planner", headers={"Accept": "text/html"}).status_code == 302
    api, page, location = _replay(app, copied)
    assert api == 401 and page == 302 and location.startswith("/login?next=")
    again, _ = _login(app)  # logging in again opens a new session that works
    assert again.get("/planner/api/plans/999999").status_code == 404
    assert _replay(app, copied)[0] == 401


def test_another_process_refuses_a_copied_cookie_after_logout_within_its_cache_time_and_admits_a_new_login(
        app, tmp_path, monkeypatch):
    """A second app on the same store stands for another web process, with its own login cache."""
    _user(app)
    monkeypatch.setenv("GRIDMAP_INSTANCE_PATH", str(tmp_path / "other"))
    other = create_app({**{k: app.config[k] for k in ("DATABASE_URL", "SECRET_KEY", "MAP_TILES")},
                        "TESTING": True, "LOGIN_CACHE_SECONDS": 0.0})
    client, _ = _login(app)
    copied = client.get_cookie("session").value
    assert _replay(other, copied)[0] == 404
    client.post("/logout")
    assert _replay(other, copied)[0] == 401
    # a login after the logout is admitted at once even by a process whose cache predates it
    other.config["LOGIN_CACHE_SECONDS"] = 60.0
    old, _ = _login(app, "li")
    assert _replay(other, old.get_cookie("session").value)[0] == 404  # warms the cache at this generation
    old.post("/logout")
    new, _ = _login(app, "li")
    assert _replay(other, new.get_cookie("session").value)[0] == 404
    other.extensions["gridmap.store"].dispose()


@pytest.mark.parametrize("command", [["set-password", "li", "--password", "another-long-pw"],
                                     ["set-role", "li", "--role", "planner"]])
def test_a_new_password_or_role_from_the_command_line_ends_the_accounts_sessions(app, command):
    _user(app, role="admin" if command[0] == "set-role" else "planner")
    app.config["LOGIN_CACHE_SECONDS"] = 0.0  # the command runs in another process: no cache to wait out here
    client, _ = _login(app)
    assert client.get("/planner/api/plans/999999").status_code == 404
    result = app.test_cli_runner().invoke(args=command)
    assert result.exit_code == 0, result.output
    assert client.get("/planner/api/plans/999999").status_code == 401
    with app.extensions["gridmap.store"].session() as s:
        account = accounts.authenticate(s, "li", "another-long-pw" if command[0] == "set-password" else PASSWORD)
    assert account is not None and account.generation == 1 and account.role == "planner"


def test_a_password_or_role_for_an_unknown_user_is_refused_by_name(app):
    result = app.test_cli_runner().invoke(args=["set-role", "nobody", "--role", "planner"])
    assert result.exit_code != 0 and "nobody" in result.output


# ---- proxies -----------------------------------------------------------------------------------

@pytest.mark.parametrize("proxies, scheme, client_addr", [(0, "http", "127.0.0.1"), (1, "https", "203.0.113.9")])
def test_forwarded_headers_are_believed_only_from_the_configured_proxies(tmp_path, proxies, scheme, client_addr):
    from flask import request
    app, _ = make_app(tmp_path, PROXY_COUNT=proxies)

    @app.get("/_probe")
    def _probe():
        return {"scheme": request.scheme, "addr": request.remote_addr, "host": request.host}

    r = app.test_client().get("/_probe", environ_base={"REMOTE_ADDR": "127.0.0.1"}, headers={
        "X-Forwarded-Proto": "https", "X-Forwarded-For": "6.6.6.6, 203.0.113.9", "X-Forwarded-Host": "evil.example"})
    assert r.get_json() == {"scheme": scheme, "addr": client_addr, "host": "localhost"}
    app.extensions["gridmap.store"].dispose()


@pytest.mark.parametrize("proxies", [-1, "1", 1.5])
def test_a_proxy_count_that_is_no_count_is_refused_with_the_fix(tmp_path, proxies):
    with pytest.raises(InvalidInput, match="PROXY_COUNT=") as err:
        make_app(tmp_path, PROXY_COUNT=proxies)
    assert "GRIDMAP_PROXY_COUNT" in err.value.fix


def test_migration_0008_keeps_accounts_of_before_signing_in_and_downgrades_cleanly(app):
    from alembic import command
    from sqlalchemy import inspect, text
    from werkzeug.security import generate_password_hash

    from gridmap.store.db import _alembic_config
    store = app.extensions["gridmap.store"]
    with store.engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0007")
    with store.engine.begin() as conn:
        assert "session_generation" not in {c["name"] for c in inspect(conn).get_columns("app_user")}
        conn.execute(text("INSERT INTO app_user (username, password_hash, role, display_name) "
                          "VALUES ('old', :h, 'planner', '')"), {"h": generate_password_hash(PASSWORD)})
    store.upgrade()
    client, _ = _login(app, "old")
    assert client.get("/planner/api/plans/999999").status_code == 404
    client.post("/logout")
    with store.session() as s:
        assert accounts.authenticate(s, "old", PASSWORD).generation == 1
