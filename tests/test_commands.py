"""Commands wired to what was dead code, and settings that reach every caller through the app's config."""
import json

import pytest
from sqlalchemy import select

import dispatch_world as w
from conftest import make_app
from gridmap import dispatch
from gridmap.store import models as m


@pytest.fixture
def world(tmp_path):
    app, _ = make_app(tmp_path)
    w.build(app.extensions["gridmap.store"])
    return app


def test_a_wearable_registered_by_the_command_raises_an_sos_and_a_deactivated_one_does_not(world):
    runner = world.test_cli_runner()
    with world.extensions["gridmap.store"].session() as s:
        resident = s.scalar(select(m.Resident.id).order_by(m.Resident.id))
    out = runner.invoke(args=["device", "register", "W-CLI-1", str(resident)])
    assert out.exit_code == 0 and "W-CLI-1" in out.output
    listed = runner.invoke(args=["device", "list"]).output
    assert "W-CLI-1" in listed and str(resident) in listed
    with world.app_context():
        snap = world.extensions["gridmap.snapshots"].get()
    alarm = {"device_id": "W-CLI-1", "lon": w.at(100, 100)[0], "lat": w.at(100, 100)[1], "time": w.T0,
             "actor": dispatch.Actor("api_key:test", "device")}
    with world.extensions["gridmap.store"].transaction() as s:
        inc, _ = dispatch.sos(s, snap, **alarm)
        assert inc.resident_id == resident and inc.priority
    assert runner.invoke(args=["device", "deactivate", "W-CLI-1"]).exit_code == 0
    with world.extensions["gridmap.store"].transaction() as s:
        with pytest.raises(Exception, match="deactivated"):
            dispatch.sos(s, snap, **alarm)
    bad = runner.invoke(args=["device", "register", "W-CLI-2", "999999"])
    assert bad.exit_code == 2 and "Resident 999999 does not exist" in bad.output


def test_a_communitys_own_work_item_list_loaded_by_the_command_routes_its_reports(world, tmp_path):
    runner = world.test_cli_runner()
    with world.app_context():
        snap = world.extensions["gridmap.snapshots"].get()
    noise = {"category": "noise", "lon": w.at(100, 100)[0], "lat": w.at(100, 100)[1]}
    with world.extensions["gridmap.store"].transaction() as s:
        assert dispatch.report(s, snap, **noise).level == "grid"  # noise is on the default list
    path = tmp_path / "items.json"
    path.write_text(json.dumps({w.COMMUNITY: ["water_leak", "sanitation"]}), encoding="utf-8")
    out = runner.invoke(args=["work-items", "load", str(path)])
    assert out.exit_code == 0 and "1 communities" in out.output
    shown = runner.invoke(args=["work-items", "show", w.COMMUNITY]).output
    assert "its own list" in shown and "water_leak" in shown and "noise" not in shown
    with world.extensions["gridmap.store"].transaction() as s:
        inc = dispatch.report(s, snap, **noise)  # vetoed: straight to its department
        assert (inc.level, inc.vetoed, inc.department) == ("department", True, "公安分局")
    path.write_text(json.dumps({w.COMMUNITY: ["ufo"]}), encoding="utf-8")
    bad = runner.invoke(args=["work-items", "load", str(path)])
    assert bad.exit_code == 2 and "unknown categories ['ufo']" in bad.output
    path.write_text(json.dumps({"210213013999": ["noise"]}), encoding="utf-8")
    missing = runner.invoke(args=["work-items", "load", str(path)])
    assert missing.exit_code == 2 and "210213013999" in missing.output
    with world.extensions["gridmap.store"].session() as s:  # the refused files changed nothing
        assert sorted(s.scalars(select(m.WorkItem.category)).all()) == ["sanitation", "water_leak"]


def test_an_environment_setting_reaches_the_api_and_the_command_alike(tmp_path, monkeypatch):
    """GRID_MAX_HOUSEHOLDS from the environment decides validation on the web and on the command line."""
    monkeypatch.setenv("GRIDMAP_GRID_MAX_HOUSEHOLDS", "1")
    app, _ = make_app(tmp_path)
    w.build(app.extensions["gridmap.store"])
    with app.extensions["gridmap.store"].session() as s:
        plan = s.scalar(select(m.GridPlan.id).where(m.GridPlan.status == "published"))
    web = app.test_client().get(f"/api/v1/plans/{plan}/validation").get_json()
    cli = app.test_cli_runner().invoke(args=["plan", "validate", str(plan), "--json"])
    over = [f for f in web if f["kind"] == "over_limit"]
    assert over and "more than the limit of 1 (setting GRID_MAX_HOUSEHOLDS)" in over[0]["message"]
    assert [f["kind"] for f in json.loads(cli.output)] == [f["kind"] for f in web]
