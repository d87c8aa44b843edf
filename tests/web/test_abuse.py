"""Abuse limits: reports, SOS, Open311 requests and sign-ins are counted per address and per identity,
refused with 429 + Retry-After when spent (nothing written), and a username is locked after a run of
failed sign-ins, right password or not, for a lock that doubles — on both backends, with the
counters in the store so that two processes count together.

The rest of the suite runs with RATELIMIT_ENABLED off (tests/conftest.py make_app); these tests
switch it on with small limits.
"""
import datetime as dt
import json
import logging
import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import func, select

from conftest import make_app
from gridmap import apikeys, create_app, lockout
from gridmap.errors import InvalidInput
from gridmap.store import models as m

import dispatch_world as w
from dispatch_world import at

A, B, C = "198.51.100.7", "198.51.100.8", "203.0.113.9"


def limited_app(tmp_path, backend, **config):
    app, cleanup = make_app(tmp_path, backend, **{"RATELIMIT_ENABLED": True, "WTF_CSRF_ENABLED": False, **config})
    w.build(app.extensions["gridmap.store"])
    return app, cleanup


@pytest.fixture
def make(tmp_path, backend):
    """make(**config) → an app of the dispatch world with limits on and ``config`` over the defaults."""
    made = []

    def build(**config):
        where = tmp_path / str(len(made))
        where.mkdir()
        app, cleanup = limited_app(where, backend, **config)
        made.append((app, cleanup))
        return app
    yield build
    for app, cleanup in made:
        app.extensions["gridmap.store"].dispose()
        cleanup()


def client_at(app, address):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def incidents(app):
    with app.extensions["gridmap.store"].session() as s:
        return s.scalar(select(func.count()).select_from(m.Incident))


def report(client, n=0):
    lon, lat = at(300, 100)
    return client.post("/api/v1/incidents", json={"category": "noise", "lon": lon, "lat": lat,
                                                   "description": f"loud music, report {n}"})


def assert_refused(r, setting, per):
    """A 429 in JSON naming the limit, whom it counts and the setting, with Retry-After in the header and body."""
    body = r.get_json()
    assert r.status_code == 429, body
    retry = int(r.headers["Retry-After"])
    assert 1 <= retry <= 60
    assert body["error"] == "too_many_requests" and body["details"]["retry_after"] == retry
    assert body["details"]["per"] == per and body["details"]["setting"] == f"GRIDMAP_{setting}"
    assert body["details"]["limit"] in body["message"] and f"{retry} s" in body["message"]


# --- reports ---------------------------------------------------------------------------------------

def test_one_address_gets_its_reports_then_429_with_nothing_written_while_another_address_still_reports(make):
    app = make(RATELIMIT_REPORTS="3 per minute;10 per day")
    flood, neighbour = client_at(app, A), client_at(app, B)
    assert [report(flood, i).status_code for i in range(3)] == [201, 201, 201]
    assert incidents(app) == 3
    refused = report(flood, 3)
    assert_refused(refused, "RATELIMIT_REPORTS", "address")
    assert refused.get_json()["details"]["limit"] == "3 per 1 minute"
    assert incidents(app) == 3  # the refused report was not run
    assert report(neighbour).status_code == 201
    assert incidents(app) == 4
    assert report(flood).status_code == 429  # still refused after the neighbour's report


def test_a_429_in_json_says_the_limit_in_the_pages_language_beside_the_english_for_programs(make):
    app = make(RATELIMIT_REPORTS="2 per minute")
    chinese, english = client_at(app, A), client_at(app, B)
    english.get("/?lang=en")
    for client in (chinese, english):
        assert [report(client, i).status_code for i in range(2)] == [201, 201]
    zh, en = report(chinese, 2), report(english, 2)
    for r in (zh, en):
        assert_refused(r, "RATELIMIT_REPORTS", "address")
    retry = zh.get_json()["details"]["retry_after"]
    assert zh.get_json()["message"] == f"Too many requests: at most 2 per 1 minute from this address. Try again in {retry} s."
    assert zh.get_json()["localized"] == {
        "message": f"请求过于频繁：此地址每 1 分钟最多 2 次。请 {retry} 秒后再试。",
        "fix": f"请等待 {retry} 秒后再发送；此限制由运维人员通过 GRIDMAP_RATELIMIT_REPORTS 设置。"}
    retry = en.get_json()["details"]["retry_after"]
    assert en.get_json()["localized"] == {
        "message": f"Too many requests: at most 2 per 1 minute from this address. Try again in {retry} s.",
        "fix": f"Wait {retry} s before sending again; the operator sets this limit as GRIDMAP_RATELIMIT_REPORTS."}


def test_a_refused_page_is_in_the_pages_language(make):
    app = make(RATELIMIT_LOGIN="1 per minute")
    pages = {}
    for lang, address in (("zh_CN", A), ("en", B)):
        client = client_at(app, address)
        client.get(f"/?lang={lang}")
        client.post("/login", data={"username": "nobody", "password": "wrong-password"})
        r = client.post("/login", data={"username": "nobody", "password": "wrong-password"})
        assert r.status_code == 429
        pages[lang] = r.get_data(as_text=True)
    assert "您" in pages["zh_CN"] or "请求" in pages["zh_CN"]
    assert "You have sent too many requests in a short time." in pages["en"]
    assert "You have sent too many requests" not in pages["zh_CN"] and "请求" not in pages["en"]


def test_a_refused_page_request_is_a_page_with_retry_after(make):
    app = make(RATELIMIT_LOGIN="2 per minute")
    client = client_at(app, A)
    for _ in range(2):
        client.post("/login", data={"username": "nobody", "password": "wrong-password"})
    r = client.post("/login", data={"username": "nobody", "password": "wrong-password"})
    assert r.status_code == 429 and r.content_type.startswith("text/html") and int(r.headers["Retry-After"]) >= 1
    assert "error-message" in r.get_data(as_text=True)
    assert client.get("/login").status_code == 200  # only sign-in attempts are counted, not the form


def test_the_account_limit_holds_across_addresses(make):
    app = make(RATELIMIT_REPORTS="100 per minute", RATELIMIT_ACCOUNT_REPORTS="2 per minute")
    clients = [client_at(app, address) for address in (A, B, C)]
    for client in clients:
        assert client.post("/login", data={"username": "dispatcher", "password": w.PASSWORD}).status_code == 302
    assert report(clients[0]).status_code == 201 and report(clients[1]).status_code == 201
    assert_refused(report(clients[2]), "RATELIMIT_ACCOUNT_REPORTS", "account")
    assert incidents(app) == 2
    # another account from the same address is counted apart, and so is the public
    other = client_at(app, C)
    assert other.post("/login", data={"username": "planner", "password": w.PASSWORD}).status_code == 302
    assert report(other).status_code == 201
    assert report(client_at(app, C)).status_code == 201
    assert incidents(app) == 4


def test_two_processes_on_one_store_count_against_the_same_limit(make, tmp_path, monkeypatch):
    app = make(RATELIMIT_REPORTS="4 per minute")
    monkeypatch.setenv("GRIDMAP_INSTANCE_PATH", str(tmp_path / "twin"))
    keys = ("DATABASE_URL", "SECRET_KEY", "MAP_TILES", "TESTING", "WTF_CSRF_ENABLED", "RATELIMIT_ENABLED",
            "RATELIMIT_REPORTS", "SNAPSHOT_CHECK_SECONDS")
    twin = create_app({k: app.config[k] for k in keys})  # another worker: its own limiter, the same store
    try:
        statuses = [report(client_at(a, A)).status_code for a in (app, twin, app, twin, app, twin)]
    finally:
        twin.extensions["gridmap.store"].dispose()
    assert statuses == [201, 201, 201, 201, 429, 429]
    assert incidents(app) == 4


def test_memory_storage_counts_too_in_one_process(make):
    app = make(RATELIMIT_REPORTS="1 per minute", RATELIMIT_STORAGE_URI="memory://")
    assert [report(client_at(app, A)).status_code for _ in range(2)] == [201, 429]
    with app.extensions["gridmap.store"].session() as s:
        assert s.scalar(select(func.count()).select_from(m.RateCounter)) == 0


# --- SOS and Open311 --------------------------------------------------------------------------------

def sos(client, key, device="W-0001"):
    lon, lat = at(100, 100)
    return client.post("/api/v1/sos", headers={"X-Api-Key": key},
                       json={"device_id": device, "lon": lon, "lat": lat, "time": "2026-05-04T16:00:00+08:00"})


def test_sos_is_limited_per_device_not_per_gateway(make):
    app = make(RATELIMIT_SOS="2 per minute")
    store = app.extensions["gridmap.store"]
    with store.transaction() as s:
        key, _ = apikeys.create(s, "gateway")
        grandma = s.scalar(select(m.Resident.id).where(m.Resident.name == "孙奶奶"))
        s.add(m.SosDevice(device_id="W-0003", resident_id=grandma, active=True))
    gateway = client_at(app, A)
    assert [sos(gateway, key).status_code for _ in range(2)] == [201, 201]
    assert_refused(sos(gateway, key), "RATELIMIT_SOS", "device")
    assert incidents(app) == 2
    assert sos(gateway, key, "W-0003").status_code == 201  # another wearable through the same gateway
    assert sos(client_at(app, B), key).status_code == 429  # the device, from wherever it is relayed
    assert incidents(app) == 3


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_open311_post_is_limited_per_api_key_and_refused_in_the_spec_format(make, fmt):
    app = make(RATELIMIT_API_KEY="2 per minute")
    with app.extensions["gridmap.store"].transaction() as s:
        key, _ = apikeys.create(s, "citizen-app")
        other, _ = apikeys.create(s, "other-app")
    lon, lat = at(300, 100)

    def post(address, api_key):
        return client_at(app, address).post(f"/open311/v2/requests.{fmt}", data={
            "api_key": api_key, "service_code": "noise", "lat": str(lat), "long": str(lon)})

    assert [post(A, key).status_code, post(B, key).status_code] == [201, 201]
    r = post(C, key)  # a new address, the same key: the key's limit
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    if fmt == "json":
        assert r.content_type == "application/json; charset=utf-8"
        [err] = json.loads(r.get_data())
        code, description = err["code"], err["description"]
    else:
        assert r.content_type == "text/xml; charset=utf-8"
        root = ET.fromstring(r.get_data())
        assert root.tag == "errors" and [e.tag for e in root] == ["error"]
        code, description = root.find("error/code").text, root.find("error/description").text
    assert str(code) == "429" and "for this api_key" in description and "GRIDMAP_RATELIMIT_API_KEY" in description
    assert incidents(app) == 2
    assert post(C, other).status_code == 201  # another key from that address
    assert post(A, other).status_code == 201  # address A: 2 of 2 spent now, the other key 2 of 2
    assert post(A, other).status_code == 429
    assert incidents(app) == 4


# --- sign-in: limits and the lockout ------------------------------------------------------------------

def sign_in(client, username, password):
    return client.post("/login", data={"username": username, "password": password})


def test_sign_ins_for_one_username_are_limited_from_any_address(make):
    app = make(RATELIMIT_LOGIN_USERNAME="3 per minute", LOGIN_LOCKOUT_FAILURES=0)
    statuses = [sign_in(client_at(app, address), "admin", "wrong-password").status_code for address in (A, B, C, A)]
    assert statuses == [401, 401, 401, 429]
    assert sign_in(client_at(app, B), "planner", w.PASSWORD).status_code == 302


@pytest.fixture
def clock(monkeypatch):
    """The lockout's clock, moved by hand: ``clock.now += timedelta(...)``."""
    class Clock:
        now = dt.datetime(2026, 5, 4, 8, 0, 0)
    monkeypatch.setattr(lockout, "clock", lambda: Clock.now)
    return Clock


def test_300_wrong_passwords_lock_admin_out_even_against_the_right_one_until_the_lock_runs_out(make, clock, caplog):
    app = make(RATELIMIT_ENABLED=False, LOGIN_LOCKOUT_FAILURES=5, LOGIN_LOCKOUT_SECONDS=60.0)
    attacker = client_at(app, A)
    caplog.set_level(logging.INFO, logger="gridmap.audit")
    statuses = [sign_in(attacker, "admin", f"guess-{i}").status_code for i in range(300)]
    assert statuses[:4] == [401] * 4 and statuses[4:] == [429] * 296
    owner = client_at(app, B)
    r = owner.post("/login?lang=en", data={"username": "admin", "password": w.PASSWORD})  # from elsewhere, right password
    retry = int(r.headers["Retry-After"])
    assert r.status_code == 429 and 1 <= retry <= 60
    assert f"Too many failed sign-ins for this username. Try again in {retry} seconds." in r.get_data(as_text=True)
    audit = [rec.getMessage() for rec in caplog.records if rec.name == "gridmap.audit"]
    assert sum("login failed" in line for line in audit) == 4
    assert sum("login locked" in line for line in audit) == 1
    assert sum("login refused" in line for line in audit) == 296

    clock.now += dt.timedelta(seconds=59)
    assert sign_in(client_at(app, B), "admin", w.PASSWORD).status_code == 429
    clock.now += dt.timedelta(seconds=2)
    assert sign_in(client_at(app, B), "admin", w.PASSWORD).status_code == 302
    with app.extensions["gridmap.store"].session() as s:
        assert s.get(m.LoginLock, "admin") is None  # the success forgot the failures


def test_each_lock_before_a_success_lasts_twice_as_long_and_a_success_starts_over(make, clock):
    app = make(RATELIMIT_ENABLED=False, LOGIN_LOCKOUT_FAILURES=3, LOGIN_LOCKOUT_SECONDS=60.0,
               LOGIN_LOCKOUT_MAX_SECONDS=200.0)
    client = client_at(app, A)

    def fail_until_locked():
        return [sign_in(client, "planner", "wrong-password").status_code for _ in range(3)]

    assert fail_until_locked() == [401, 401, 429]
    clock.now += dt.timedelta(seconds=61)
    assert fail_until_locked() == [401, 401, 429]  # the second lock: 120 s
    clock.now += dt.timedelta(seconds=61)
    assert sign_in(client, "planner", w.PASSWORD).status_code == 429
    clock.now += dt.timedelta(seconds=60)
    assert fail_until_locked() == [401, 401, 429]  # the third: 240 s, capped at 200
    r = sign_in(client, "planner", w.PASSWORD)
    assert r.status_code == 429 and 190 < int(r.headers["Retry-After"]) <= 200
    clock.now += dt.timedelta(seconds=201)
    assert sign_in(client, "planner", w.PASSWORD).status_code == 302
    # after the success the count starts over: two failures do not lock, and the next lock is 60 s again
    assert [sign_in(client, "planner", "wrong-password").status_code for _ in range(2)] == [401, 401]
    assert sign_in(client, "planner", w.PASSWORD).status_code == 302
    assert fail_until_locked() == [401, 401, 429]
    assert int(sign_in(client, "planner", w.PASSWORD).headers["Retry-After"]) <= 60


def test_an_unknown_username_is_answered_and_locked_exactly_like_a_known_one(make, clock):
    app = make(RATELIMIT_ENABLED=False, LOGIN_LOCKOUT_FAILURES=3)

    def answers(username):
        client = client_at(app, A)
        out = []
        for _ in range(4):
            r = sign_in(client, username, "wrong-password")
            out.append((r.status_code, r.headers.get("Retry-After"),
                        r.get_data(as_text=True).replace(username, "NAME")))
        return out

    assert answers("admin") == answers("no-such-user")


def test_a_limit_setting_that_is_not_a_limit_is_refused_at_start(tmp_path):
    with pytest.raises(InvalidInput, match="GRIDMAP_RATELIMIT_REPORTS='lots'"):
        make_app(tmp_path, "sqlite", RATELIMIT_ENABLED=True, RATELIMIT_REPORTS="lots")
    with pytest.raises(InvalidInput, match="RATELIMIT_STORAGE_URI"):
        make_app(tmp_path, "sqlite", RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="carrier-pigeon://")


def test_failures_through_two_processes_lock_the_name_for_both(make, clock, tmp_path, monkeypatch):
    app = make(RATELIMIT_ENABLED=False, LOGIN_LOCKOUT_FAILURES=4)
    monkeypatch.setenv("GRIDMAP_INSTANCE_PATH", str(tmp_path / "twin"))
    keys = ("DATABASE_URL", "SECRET_KEY", "MAP_TILES", "TESTING", "WTF_CSRF_ENABLED", "RATELIMIT_ENABLED",
            "LOGIN_LOCKOUT_FAILURES", "SNAPSHOT_CHECK_SECONDS")
    twin = create_app({k: app.config[k] for k in keys})
    try:
        statuses = [sign_in(client_at(a, A), "dispatcher", "wrong-password").status_code
                    for a in (app, twin, app, twin)]
        right = [sign_in(client_at(a, B), "dispatcher", w.PASSWORD).status_code for a in (app, twin)]
    finally:
        twin.extensions["gridmap.store"].dispose()
    assert statuses == [401, 401, 401, 429] and right == [429, 429]


def test_an_unknown_username_costs_the_same_password_hash_as_a_known_one(make, monkeypatch):
    from gridmap import accounts
    app = make(RATELIMIT_ENABLED=False)
    hashed = []
    real = accounts.check_password_hash
    monkeypatch.setattr(accounts, "check_password_hash", lambda stored, pw: hashed.append(stored) or real(stored, pw))
    for username in ("admin", "no-such-user"):
        assert sign_in(client_at(app, A), username, "wrong-password").status_code == 401
    assert len(hashed) == 2 and hashed[0].split("$")[0] == hashed[1].split("$")[0]  # one hash each, the same method


def test_the_switch_reads_yes_and_no_from_the_environment_and_refuses_anything_else():
    from gridmap import settings
    assert settings.from_environ({"GRIDMAP_RATELIMIT_ENABLED": "0"}) == {"RATELIMIT_ENABLED": False}
    assert settings.from_environ({"GRIDMAP_RATELIMIT_ENABLED": "on"}) == {"RATELIMIT_ENABLED": True}
    with pytest.raises(InvalidInput, match="GRIDMAP_RATELIMIT_ENABLED='maybe'"):
        settings.from_environ({"GRIDMAP_RATELIMIT_ENABLED": "maybe"})
