"""The app as a whole: settings, errors as pages or JSON, privacy masking, the command line."""
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gridmap import create_app, settings
from gridmap.errors import InvalidInput
from gridmap.access import mask_phone, phone_for
from gridmap.store import models as m

from conftest import head_revision, login_client

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_is_documented_in_the_readme():
    text = README.read_text(encoding="utf-8")
    missing = [s.name for s in settings.SETTINGS if f"`{s.name}`" not in text]
    assert missing == []


def test_the_readme_opens_with_the_two_commands():
    head = README.read_text(encoding="utf-8").split("```")[1]
    assert "make run" in head and "make test" in head


def test_settings_come_from_the_environment_with_their_types():
    assert settings.from_environ({"GRIDMAP_SNAPSHOT_CHECK_SECONDS": "0.5", "OTHER": "x"}) == \
        {"SNAPSHOT_CHECK_SECONDS": 0.5}
    with pytest.raises(InvalidInput, match="GRIDMAP_CONTACT_HOUSEHOLDS_PER_MEMBER='many'"):
        settings.from_environ({"GRIDMAP_CONTACT_HOUSEHOLDS_PER_MEMBER": "many"})


def test_an_unsupported_database_url_is_named(tmp_path):
    with pytest.raises(InvalidInput, match="'mysql' is not supported"):
        create_app({"DATABASE_URL": "mysql://root@localhost/x", "SECRET_KEY": "t"})


@pytest.mark.parametrize("phone,masked", [
    ("13812341234", "138****1234"), ("0411-87654321", "0411-****4321"), ("", ""), ("12345", "*****"),
])
def test_phones_are_masked_keeping_only_prefix_and_last_four(phone, masked):
    assert mask_phone(phone) == masked


def test_only_roles_that_need_it_see_whole_phones():
    assert phone_for(None, "13812341234") == "138****1234"
    assert phone_for("planner", "13812341234") == "138****1234"
    assert phone_for("dispatcher", "13812341234") == "13812341234"
    assert phone_for("grid_worker", "13812341234") == "13812341234"


def test_an_unknown_api_path_answers_json_and_a_page_answers_html(sqlite_app):
    c = sqlite_app.test_client()
    r = c.get("/api/v1/nothing")
    assert r.status_code == 404 and r.get_json()["error"] == "not_found"
    r = c.get("/nothing-here")
    assert r.status_code == 404 and r.mimetype == "text/html" and "<html" in r.get_data(as_text=True)


def test_an_unexpected_error_is_a_clean_500_without_a_traceback(sqlite_app):
    @sqlite_app.get("/api/v1/boom")
    def boom():
        raise RuntimeError("secret internals")
    sqlite_app.config["PROPAGATE_EXCEPTIONS"] = False
    r = sqlite_app.test_client().get("/api/v1/boom")
    assert r.status_code == 500
    assert "secret internals" not in r.get_data(as_text=True) and r.get_json()["error"] == "internal"


def test_login_needs_the_csrf_token_and_the_right_password(sqlite_app):
    from gridmap import accounts
    with sqlite_app.extensions["gridmap.store"].transaction() as s:
        accounts.create_user(s, "li", "long-enough-pw", "dispatcher")
    sqlite_app.config["WTF_CSRF_ENABLED"] = True
    c = sqlite_app.test_client()
    assert c.post("/login", data={"username": "li", "password": "long-enough-pw"}).status_code == 400
    page = c.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    assert c.post("/login", data={"username": "li", "password": "wrong", "csrf_token": token}).status_code == 401
    r = c.post("/login", data={"username": "li", "password": "long-enough-pw", "csrf_token": token})
    assert r.status_code == 302


def test_accounts_refuse_bad_roles_short_passwords_and_duplicates(sqlite_app):
    from gridmap import accounts
    from gridmap.errors import Conflict
    with sqlite_app.extensions["gridmap.store"].transaction() as s:
        with pytest.raises(InvalidInput, match="'mayor'"):
            accounts.create_user(s, "a", "long-enough-pw", "mayor")
        with pytest.raises(InvalidInput, match="shorter than 8"):
            accounts.create_user(s, "a", "short", "admin")
        accounts.create_user(s, "a", "long-enough-pw", "admin")
        with pytest.raises(Conflict):
            accounts.create_user(s, "a", "long-enough-pw", "admin")
        assert accounts.authenticate(s, "a", "long-enough-pw").role == "admin"
        assert accounts.authenticate(s, "nobody", "long-enough-pw") is None


@pytest.mark.parametrize("ttl", [0.0, 30.0])
def test_a_role_change_reaches_a_signed_in_user_within_the_login_cache_time(sqlite_app, monkeypatch, ttl):
    from sqlalchemy import update

    from gridmap import accounts
    from gridmap.web import auth
    sqlite_app.config["LOGIN_CACHE_SECONDS"] = ttl
    store = sqlite_app.extensions["gridmap.store"]
    with store.transaction() as s:
        accounts.create_user(s, "zhao", "long-enough-pw", "dispatcher")
    client = login_client(sqlite_app, "zhao", "long-enough-pw")
    assert client.get("/dispatch/", headers={"Accept": "text/html"}).status_code == 200
    with store.transaction() as s:
        s.execute(update(m.User).where(m.User.username == "zhao").values(role="planner"))
    # the page is refused as soon as the role is read again: at once without a cache, after the
    # cache time with one (the clock is moved on, not waited for)
    clock = [auth.time.monotonic()]
    monkeypatch.setattr(auth.time, "monotonic", lambda: clock[0])
    expected_now = 403 if ttl == 0 else 200
    assert client.get("/dispatch/", headers={"Accept": "text/html"}).status_code == expected_now
    clock[0] += ttl + 1
    assert client.get("/dispatch/", headers={"Accept": "text/html"}).status_code == 403


# ---- command line ----------------------------------------------------------------------------

@pytest.mark.slow
def test_cli_demo_builds_once_and_refuses_to_overwrite_without_force(sqlite_app, demo_frames, monkeypatch):
    from gridmap import demo
    monkeypatch.setattr(demo, "generate", lambda seed=2026: demo_frames)
    runner = sqlite_app.test_cli_runner()
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    assert "grids: 58" in first.output and "210213013004: plan" in first.output
    again = runner.invoke(args=["demo"])
    assert again.exit_code == 2 and "--force" in again.output
    forced = runner.invoke(args=["demo", "--force"])
    assert forced.exit_code == 0
    with sqlite_app.extensions["gridmap.store"].session() as s:
        assert s.scalar(select(func.count()).select_from(m.Camera)) == len(demo_frames["cameras"])
        assert s.scalar(select(func.count()).select_from(m.User)) == 4


def test_cli_locate_and_export(demo_app, demo_frames, tmp_path):
    runner = demo_app.test_cli_runner()
    snap = demo_app.extensions["gridmap.snapshots"].get()
    p = snap.grids.geometry[0].representative_point()
    out = runner.invoke(args=["locate", str(p.x), str(p.y)])
    assert out.exit_code == 0 and json.loads(out.output)["grid"]["code"] == snap.grids["code"][0]
    bad = runner.invoke(args=["locate", "38.9", "121.6"])
    assert bad.exit_code == 2 and "swapped" in bad.output
    path = tmp_path / "cameras.csv"
    out = runner.invoke(args=["export", "cameras", str(path)])
    assert out.exit_code == 0
    import pandas as pd
    back = pd.read_csv(path, encoding="utf-8-sig")
    assert {"name", "bearing", "fov", "range_m", "lon", "lat"} <= set(back.columns)
    assert len(back) == len(demo_frames["cameras"])
    assert sorted(back["name"]) == sorted(demo_frames["cameras"]["name"])


def test_cli_init_db_reports_the_revision(sqlite_app):
    out = sqlite_app.test_cli_runner().invoke(args=["init-db"])
    assert out.exit_code == 0 and f"revision {head_revision()}" in out.output


@pytest.mark.slow
def test_the_demo_builds_alike_on_both_backends(app, demo_frames):
    from gridmap import demo
    store = app.extensions["gridmap.store"]
    demo.build(store, frames=demo_frames)
    with store.session() as s:
        counts = {model.__tablename__: s.scalar(select(func.count()).select_from(model))
                  for model in (m.Community, m.Grid, m.Building, m.Household, m.Resident, m.PartyMember,
                                m.Camera, m.Courtyard)}
        linked = s.scalar(select(func.count()).select_from(m.Camera).where(m.Camera.courtyard_id.is_not(None)))
        members_in_branches = s.scalar(select(func.count()).select_from(m.PartyMember)
                                       .where(m.PartyMember.organization_id.is_not(None)))
    assert counts == {"community": 5, "grid": 58, "building": len(demo_frames["buildings"]),
                      "household": len(demo_frames["households"]), "resident": len(demo_frames["residents"]),
                      "party_member": len(demo_frames["party_members"]), "camera": len(demo_frames["cameras"]),
                      "courtyard": len(demo_frames["courtyards"])}
    assert linked == (demo_frames["cameras"]["courtyard"] != "").sum()
    assert members_in_branches == (demo_frames["party_members"]["org_key"] != "").sum()
