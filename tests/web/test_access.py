"""One permission table decides: every guarded route, asked by the public and by each role, answers as the table says."""
import re

import pytest

from conftest import DEMO_PASSWORD
from gridmap import access

# A value for each URL variable, so every rule can be asked for (most then answer 400 or 404 to a
# role that may ask: what matters here is that a role that may not never gets past the door).
_VALUES = {"plan_id": "1", "plan_a": "1", "plan_b": "2", "incident_id": "1", "task_id": "1", "volunteer_id": "1",
           "grid_code": "210213013004001", "code": "210213013004001", "kind": "redraw", "fmt": "png", "photo_id": "1",
           "patrol_id": "1", "upload_id": "x" * 22, "batch_id": "1", "record_id": "1"}
_USERS = {"admin": "admin", "planner": "planner", "dispatcher": "dispatcher", "grid_worker": "worker"}


def _guarded(app):
    """(rule, method, action) of every route behind ``requires``."""
    out = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        action = getattr(view, "required_action", None)
        if action is None:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((rule, method, action))
    return out


def _url(rule):
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda mt: _VALUES[mt.group(1)], rule.rule)


@pytest.fixture(scope="module")
def clients(demo_app):
    demo_app.config["WTF_CSRF_ENABLED"] = False
    out = {None: demo_app.test_client()}
    for role, username in _USERS.items():
        client = demo_app.test_client()
        r = client.post("/login", data={"username": username, "password": DEMO_PASSWORD})
        assert r.status_code == 302
        out[role] = client
    yield out
    demo_app.config["WTF_CSRF_ENABLED"] = True


def test_every_guarded_route_answers_each_role_as_the_permission_table_says(demo_app, clients):
    routes = _guarded(demo_app)
    assert len(routes) >= 20  # the planner's, the dispatcher's and the API's staff routes
    assert {a for _, _, a in routes} <= set(access.PERMISSIONS)
    for rule, method, action in routes:
        url = _url(rule)
        for role, client in clients.items():
            r = client.open(url, method=method, json={} if method == "POST" else None,
                            headers={"Accept": "application/json"})
            where = f"{method} {url} as {role or 'the public'}"
            if role is None:
                assert r.status_code == 401, where
            elif access.can(role, action):
                assert r.status_code not in (401, 403), where
            else:
                assert r.status_code == 403, where
                body = r.get_json()
                assert body["details"]["allowed_roles"] == access.roles_for(action), where


def test_every_staff_page_and_staff_api_route_is_guarded(demo_app):
    guarded = {rule.rule for rule, _, _ in _guarded(demo_app)}
    staff_pages = {r.rule for r in demo_app.url_map.iter_rules() if r.rule.startswith(("/planner", "/dispatch"))}
    assert staff_pages <= guarded
    assert {"/api/v1/incidents", "/api/v1/incidents/<incident_id>", "/api/v1/incidents/<incident_id>/duplicates",
            "/api/v1/incidents/<incident_id>/responders", "/api/v1/whistles/<int(max=2147483647):task_id>/report",
            "/api/v1/volunteers/<int(max=2147483647):volunteer_id>/services", "/api/v1/plans/<plan_id>/publish",
            "/api/v1/plans/<plan_id>/copy"} <= guarded


def test_a_refusal_names_the_roles_that_may_and_says_nothing_personal(clients):
    r = clients["planner"].get("/dispatch/incidents/1", headers={"Accept": "application/json"})
    assert r.status_code == 403
    body = r.get_json()
    assert "admin, dispatcher" in body["fix"] and "[" not in body["fix"]
    assert set(body) == {"error", "message", "fix", "details", "localized", "params"}


def test_the_table_is_complete_and_every_role_is_known():
    assert set(access.ROLES) == set(_USERS)
    for action, row in access.PERMISSIONS.items():
        assert set(row) <= set(access.ROLES), action
        assert set(row.values()) <= set(access.SCOPES), action


A1, A2, B1 = "210213013004001", "210213013004002", "210203010006001"


def test_a_grid_worker_reads_people_only_in_the_grids_they_serve():
    served = access.Area(grids={A1})
    assert access.can("grid_worker", "people.read", at=(A1, A1[:12]), area=served)
    assert not access.can("grid_worker", "people.read", at=(A2, A2[:12]), area=served)
    assert access.can("admin", "people.read", at=(B1, B1[:12]), area=access.NOWHERE)
    assert not access.can("dispatcher", "people.read", at=(A1, A1[:12]), area=access.Area(communities={A1[:12]}))
    assert not access.can(None, "phone.read")
    with pytest.raises(KeyError, match="not in the permission table"):
        access.can("admin", "no.such.action")
