"""Least privilege by area (Issue 14): every route, asked by every role about an object outside its area,
answers 401/403/404 or a list without it, and no personal field of it anywhere in the body.

The attack this replays: the demo's grid-worker account serves one grid of 城志社区 (A); it read an
SOS in 林茂社区 (B) with the resident's name, phone and home, saw seven full phones through
/responders and accepted it. Here a dispatcher covers A only, the worker serves one grid of A, the
planner has no area, and B holds an SOS, a whistled report, a volunteer's ledger and grids of
people. The same roles inside their area get the data whole (the positive controls), so a test
that answered 404 to everyone would fail.
"""
import io
import json
from pathlib import Path

import mercantile
import pytest
from PIL import Image
from sqlalchemy import func, select

from conftest import DEMO_PASSWORD, make_app
from gridmap import access, accounts, apikeys, assign, catalog, demo, dispatch
from gridmap.store import models as m

A, B = "210213013004", "210203010006"  # 城志社区, 林茂社区
G = A + "001"  # the one grid the demo's worker account serves
G_OTHER = A + "002"  # in A, not the worker's
B_GRID = B + "001"
USERS = {"admin": "admin", "planner": "planner", "dispatcher": "disp_a", "grid_worker": "worker"}
OUTSIDERS = (None, "planner", "dispatcher", "grid_worker")  # B lies outside each one's area
# Routes that answer about one object: outside the area, a refusal (never a 200 with the object).
SINGLE = {"/api/v1/incidents/<incident_id>", "/api/v1/incidents/<incident_id>/responders",
          "/api/v1/incidents/<incident_id>/duplicates", "/api/v1/incidents/<incident_id>/transition",
          "/api/v1/incidents/<incident_id>/whistle", "/api/v1/whistles/<int(max=2147483647):task_id>/report",
          "/api/v1/volunteers/<int(max=2147483647):volunteer_id>/services", "/dispatch/incidents/<incident_id>",
          "/api/v1/grids/<code>/members", "/open311/v2/requests/<request_id>.<fmt>", "/photos/<int:photo_id>"}
SKIP = {"/static/<path:filename>", "/logout"}  # files; signing out would end the walk's session
# Routes that show buildings as places, by their addresses, to the roles that plan (a building's
# address is public: the resident's box searches them). Her address is personal only as an SOS's.
# The dispatcher's panel names the building at a clicked spot, as the public address search would.
PLACES = {"/planner/map", "/planner/api/plans/<plan_id>", "/dispatch/panel"}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)])
def world(request, tmp_path_factory, demo_frames):
    """The demo with: an SOS, a whistled report and a volunteer's ledger line in B; a report in the
    worker's grid and one elsewhere in A; accounts for a dispatcher covering A only."""
    app, cleanup = make_app(tmp_path_factory.mktemp(f"area-{request.param}"), request.param)
    store = app.extensions["gridmap.store"]
    demo.build(store, frames=demo_frames)
    snap = app.extensions["gridmap.snapshots"].get()
    w = {"app": app, "backend": request.param}
    with store.transaction() as s:
        assign.run(s, community=A)  # the worker's grid members exist (a positive control)
        accounts.create_user(s, "disp_a", DEMO_PASSWORD, "dispatcher", communities=[A])
        worker_account = s.scalar(select(m.User).where(m.User.username == "worker"))
        served = s.scalars(select(m.grid_worker_grid.c.grid_code)
                           .where(m.grid_worker_grid.c.worker_id == worker_account.worker_id)).all()
        assert served == [G]  # the attack's account: one grid
        # the SOS: a vulnerable resident of B, her wearable a few metres off her building's centre
        rid, name, phone, address, blon, blat = s.execute(
            select(m.Resident.id, m.Resident.name, m.Resident.phone, m.Building.address, m.Building.lon, m.Building.lat)
            .join(m.Household, m.Household.id == m.Resident.household_id)
            .join(m.Building, m.Building.id == m.Household.building_id)
            .where(m.Building.community_code == B, m.Resident.vulnerable.is_(True), m.Resident.phone != "")
            .order_by(m.Resident.id).limit(1)).one()
        dispatch.register_device(s, "W-B-1", rid)
        key, _ = apikeys.create(s, "gateway")
    lon, lat = blon + 0.0000123, blat + 0.0000087
    client = app.test_client()
    r = client.post("/api/v1/sos", headers={"X-Api-Key": key},
                    json={"device_id": "W-B-1", "lon": lon, "lat": lat, "time": "2026-05-04T16:00:00+08:00"})
    assert r.status_code == 201, r.get_json()
    sos = r.get_json()["incident"]
    admin = dispatch.Actor("admin", "admin")
    with store.transaction() as s:
        inc = s.get(m.Incident, sos["id"])
        assert (inc.community_code, inc.reporter_name, inc.reporter_phone) == (B, name, phone)
        w.update(sos=inc.id, lon=inc.lon, lat=inc.lat, name=name, phone=phone, address=address)
        clutter = _report_in(s, snap, B_GRID, "corridor_clutter", "周建华", "13955550001", "林茂街7号3单元")
        w["task"] = dispatch.whistle(s, clutter.id, actor=admin).id
        w["clutter"] = clutter.id
        vol = s.scalar(select(m.Volunteer.id).where(m.Volunteer.community_code == B).order_by(m.Volunteer.id))
        dispatch.record_service(s, vol, actor=admin, day=dispatch.utcnow().date(), skill="助老", hours=1.0,
                                resident_id=rid, incident_id=inc.id, note=f"陪护 {name}")
        w["volunteer"] = vol
        w["volunteer_a"] = s.scalar(select(m.Volunteer.id).where(m.Volunteer.community_code == A)
                                    .order_by(m.Volunteer.id))
        w["in_g"] = _report_in(s, snap, G, "noise", "刘先生", "13811112222", "城志街1号").id
        w["in_a"] = _report_in(s, snap, G_OTHER, "noise", "陈女士", "13833334444", "城志街2号").id
        w["b_plan"] = s.scalar(select(m.GridPlan.id).where(m.GridPlan.community_code == B))
        # a resident's report in B with a photo and a contact: its status page is anyone's who holds the
        # link (the walk holds it), its contact no one's, its photo B's staff's only
        p = snap.grids.set_index("code").geometry[B_GRID].representative_point()
        resident_report, w["token"] = dispatch.resident_report(
            s, snap, category="sanitation", lon=p.x, lat=p.y, description="楼道口垃圾堆积", contact_name="吴居民",
            contact_phone="13977770001", files=[_a_jpeg()])
        w["photo"] = s.scalar(select(m.Photo.id).where(m.Photo.owner_id == resident_report.id))
    # what must never reach an outsider: her name, her phone, her home, where exactly she called from;
    # the other B reporter's name and phone
    w["secrets"] = [name, phone, address, repr(w["lon"]), repr(w["lat"]), repr(round(w["lon"], 6)),
                    repr(round(w["lat"], 6)), "周建华", "13955550001", "吴居民", "13977770001"]
    app.config["WTF_CSRF_ENABLED"] = False
    w["clients"] = {None: app.test_client()}
    for role, username in USERS.items():
        c = app.test_client()
        assert c.post("/login", data={"username": username, "password": DEMO_PASSWORD}).status_code == 302
        w["clients"][role] = c
    yield w
    store.dispose()
    cleanup()


def _a_jpeg():
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 90, 90)).save(buf, "JPEG")
    return buf.getvalue()


def _report_in(session, snap, grid, category, name, phone, address):
    """A report at a representative point of ``grid``, with a reporter's name, phone and address."""
    p = snap.grids.set_index("code").geometry[grid].representative_point()
    return dispatch.report(session, snap, category=category, lon=p.x, lat=p.y, reporter_name=name,
                           reporter_phone=phone, address=address, actor=dispatch.Actor("public"))


def _text(r):
    """The body as a person would read it: JSON decoded (Flask escapes 张 as \\u5f20), pages and XML as text."""
    if r.is_json:
        return json.dumps(r.get_json(), ensure_ascii=False)
    kind = r.headers.get("Content-Type", "")
    return r.get_data(as_text=True) if kind.startswith(("text/", "application/xml")) else ""


def _leaks(w, r, rule=None):
    body = _text(r)
    return [s for s in w["secrets"] if s and s in body and not (rule in PLACES and s == w["address"])]


def _state(w):
    """What a refused step must leave as it was: the B incidents, their events, tasks and ledger lines."""
    with w["app"].extensions["gridmap.store"].session() as s:
        incs = [(i.id, i.status, i.level, i.version) for i in
                s.scalars(select(m.Incident).where(m.Incident.id.in_([w["sos"], w["clutter"]])).order_by(m.Incident.id))]
        task = s.get(m.WhistleTask, w["task"])
        events = s.scalar(select(func.count()).select_from(m.IncidentEvent)
                          .where(m.IncidentEvent.incident_id.in_([w["sos"], w["clutter"]])))
        return (incs, events, task.reported_at,
                s.scalar(select(func.count()).select_from(m.ServiceRecord)))


def _walk_values(w):
    return {"incident_id": str(w["sos"]), "task_id": str(w["task"]), "volunteer_id": str(w["volunteer"]),
            "grid_code": B_GRID, "code": B_GRID, "plan_id": str(w["b_plan"]), "plan_a": str(w["b_plan"]),
            "plan_b": str(w["b_plan"]), "kind": "redraw", "request_id": str(w["sos"]),
            "token": w["token"], "photo_id": str(w["photo"]), "patrol_id": "1", "record_id": str(w["volunteer"]),
            "upload_id": "x" * 22, "batch_id": "1",
            # the incident points' tile over her home, at the zoom where incident points show
            "layer": "incidents", **dict(zip("xyz", map(str, mercantile.tile(w["lon"], w["lat"], 16)))),
            "level": "grids"}


def _bodies(w):
    """A well-formed body for each POST, so what answers is the area rule and not a 400 for the shape."""
    return {"/api/v1/incidents/<incident_id>/transition": {"action": "accept", "version": 1},
            "/api/v1/incidents/<incident_id>/whistle": {"note": "x"},
            "/api/v1/volunteers/<int(max=2147483647):volunteer_id>/services":
                {"day": "2026-05-04", "skill": "助老", "hours": 1, "incident_id": w["sos"]},
            # a new elderly-help report 20 m from her home: its possible duplicates must not name her
            "/api/v1/incidents": {"category": "elderly_help", "lon": w["lon"] + 0.0002, "lat": w["lat"] + 0.0001}}


def _fill(rule, values):
    import re
    fmt = "png" if "boards" in rule.rule else "json"
    return re.sub(r"<(?:[^:<>]+(?:\([^)]*\))?:)?([^<>]+)>",
                  lambda mt: fmt if mt.group(1) == "fmt" else values[mt.group(1)], rule.rule)


def test_every_route_asked_about_another_area_refuses_or_filters_and_names_nobody(world):
    w = world
    values, bodies = _walk_values(w), _bodies(w)
    # the query string of every GET: a point 6 m from her home, her community and grid, her incident
    query = {"lon": w["lon"] + 0.00005, "lat": w["lat"] + 0.00004, "community": B, "grid": B_GRID, "incident": w["sos"],
             "name": "", "q": "", "plan": w["b_plan"]}
    before = _state(w)
    walked, failures = 0, []
    for rule in w["app"].url_map.iter_rules():
        if rule.rule in SKIP:
            continue
        url = _fill(rule, values)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for role in OUTSIDERS:
                r = w["clients"][role].open(url, method=method, query_string=query if method == "GET" else None,
                                            json=bodies.get(rule.rule, {}) if method == "POST" else None,
                                            headers={"Accept": "application/json"})
                where = f"{method} {url} as {role or 'the public'}: {r.status_code}"
                walked += 1
                if r.status_code >= 500:
                    failures.append(where)
                if _leaks(w, r, rule.rule):
                    failures.append(f"{where} shows {_leaks(w, r, rule.rule)}")
                if rule.rule in SINGLE and r.status_code not in (401, 403, 404):
                    failures.append(f"{where}, not a refusal")
    assert failures == []
    assert walked >= 4 * 50
    assert _state(w) == before  # nothing refused was written


def test_admin_sees_her_sos_whole_so_the_walk_can_fail(world):
    w = world
    admin = w["clients"]["admin"]
    body = _text(admin.get(f"/api/v1/incidents/{w['sos']}"))
    assert all(s in body for s in (w["name"], w["phone"], w["address"], repr(w["lon"])))
    # and the same secrets the walk looks for do show in the answers the walk refuses others
    assert _leaks(w, admin.get(f"/dispatch/incidents/{w['sos']}"))
    assert _leaks(w, admin.get("/api/v1/incidents", query_string={"community": B}))
    assert repr(round(w["lat"], 6)) in _text(admin.get("/api/v1/stats"))  # her dot on the private heatmap
    ledger = admin.get(f"/api/v1/volunteers/{w['volunteer']}/services").get_json()
    assert ledger["services"][0]["note"] == f"陪护 {w['name']}"
    assert admin.get(f"/photos/{w['photo']}").mimetype == "image/jpeg"  # the photo the walk is refused
    assert "吴居民" in _text(admin.get("/api/v1/incidents", query_string={"community": B}))


@pytest.mark.parametrize("role", ["dispatcher", "grid_worker"])
def test_inside_their_area_the_dispatcher_and_the_worker_read_and_act_with_full_contacts(world, role):
    w = world
    c = w["clients"][role]
    r = c.get(f"/api/v1/incidents/{w['in_g']}")
    assert r.status_code == 200
    got = r.get_json()
    assert (got["reporter_name"], got["reporter_phone"]) == ("刘先生", "13811112222")
    assert "accept" in got["allowed_actions"]
    responders = c.get(f"/api/v1/incidents/{w['in_g']}/responders").get_json()
    assert responders["grid_workers"] and all("*" not in x["phone"] for x in responders["grid_workers"])
    listed = [i["id"] for i in c.get("/api/v1/incidents").get_json()]
    assert w["in_g"] in listed and w["sos"] not in listed and w["clutter"] not in listed
    # the rest of A: the dispatcher covers it, the worker serves only its one grid
    assert (w["in_a"] in listed) == (role == "dispatcher")
    assert c.get(f"/api/v1/incidents/{w['in_a']}").status_code == (200 if role == "dispatcher" else 404)
    own_ledger = c.get(f"/api/v1/volunteers/{w['volunteer_a']}/services")
    assert own_ledger.status_code == 200 and own_ledger.get_json()["volunteer"]["id"] == w["volunteer_a"]


def test_the_worker_reads_the_people_of_its_grid_and_is_told_its_grid_for_another(world):
    c = world["clients"]["grid_worker"]
    mine = c.get(f"/api/v1/grids/{G}/members")
    assert mine.status_code == 200 and mine.get_json()["residents"]
    assert all("*" not in p["phone"] for p in mine.get_json()["residents"] if p["phone"])
    other = c.get(f"/api/v1/grids/{B_GRID}/members")  # grids are public places: 403 naming its own
    assert other.status_code == 403 and other.get_json()["details"]["served_grids"] == [G]


@pytest.mark.parametrize("role", OUTSIDERS)
def test_the_attack_fails_on_both_backends_and_writes_nothing(world, role):
    """Read her SOS, list whom to send with their phones, accept it: refused, nothing written."""
    w = world
    c = w["clients"][role]
    before = _state(w)
    asked = [(c.get(f"/api/v1/incidents/{w['sos']}"), 404), (c.get(f"/api/v1/incidents/{w['sos']}/responders"), 404),
             (c.post(f"/api/v1/incidents/{w['sos']}/transition", json={"action": "accept", "version": 1}), 404),
             # a worker may blow no whistle anywhere: the table's 403 comes before any lookup
             (c.post(f"/api/v1/incidents/{w['sos']}/whistle", json={}), 403 if role == "grid_worker" else 404),
             (c.post(f"/api/v1/whistles/{w['task']}/report"), 404)]
    for r, expected in asked:
        expected = {None: 401, "planner": 403}.get(role, expected)
        assert r.status_code == expected, (r.request.path, r.get_json())
        assert not _leaks(w, r)
    assert _state(w) == before
    if role in ("dispatcher", "grid_worker"):  # 404 exactly as for an incident that never was
        gone = c.get("/api/v1/incidents/2147483000").get_json()
        here = c.get(f"/api/v1/incidents/{w['sos']}").get_json()
        assert here["message"] == gone["message"].replace("2147483000", str(w["sos"]))


def test_a_worker_accepts_in_its_grid_and_the_step_is_written(world):
    w = world
    c = w["clients"]["grid_worker"]
    with w["app"].extensions["gridmap.store"].transaction() as s:
        snap = w["app"].extensions["gridmap.snapshots"].get()
        iid = _report_in(s, snap, G, "noise", "何先生", "13877778888", "城志街3号").id
    r = c.post(f"/api/v1/incidents/{iid}/transition", json={"action": "accept", "version": 1})
    assert r.status_code == 200 and (r.get_json()["status"], r.get_json()["version"]) == ("accepted", 2)


def test_private_statistics_count_only_inside_the_area(world):
    w = world
    public = w["clients"][None].get("/api/v1/stats", query_string={"community": B}).get_json()
    dispatcher = w["clients"]["dispatcher"].get("/api/v1/stats", query_string={"community": B}).get_json()
    admin = w["clients"]["admin"].get("/api/v1/stats", query_string={"community": B}).get_json()
    hidden = [c.code for c in catalog.INCIDENT_CATEGORIES if not c.public]
    with w["app"].extensions["gridmap.store"].session() as s:
        private = s.scalar(select(func.count()).select_from(m.Incident).where(
            m.Incident.community_code == B, m.Incident.category.in_(hidden), m.Incident.status != "merged"))
    # B holds her SOS (private) and a whistled report (public): the private ones count only for the admin
    assert private >= 1 and admin["total"] >= private + 1
    assert public["total"] == dispatcher["total"] == admin["total"] - private
    assert len(public["heatmap"]) == len(dispatcher["heatmap"]) == len(admin["heatmap"]) - private
    # and the dispatcher's own community: its private reports count for it
    mine = w["clients"]["dispatcher"].get("/api/v1/stats", query_string={"community": A}).get_json()
    assert mine["total"] == w["clients"]["admin"].get("/api/v1/stats", query_string={"community": A}).get_json()["total"]


def test_the_table_gives_each_role_its_area_and_a_dispatcher_without_communities_covers_nothing():
    here = access.Area(communities={A})
    assert access.can("dispatcher", "incident.read", at=(G, A), area=here)
    assert not access.can("dispatcher", "incident.read", at=(B_GRID, B), area=here)
    assert not access.can("dispatcher", "incident.read", at=(G, A), area=access.NOWHERE)
    worker = access.Area(grids={G})
    assert access.can("grid_worker", "incident.accept", at=(G, A), area=worker)
    assert not access.can("grid_worker", "incident.accept", at=(G_OTHER, A), area=worker)
    # an object in no grid (a volunteer; a report where no grid is published) is served by its community's workers
    assert access.can("grid_worker", "ledger.read", at=(None, A), area=worker)
    assert not access.can("grid_worker", "ledger.read", at=(None, B), area=worker)
    assert access.can("admin", "incident.read", at=(B_GRID, B), area=access.NOWHERE)
    assert not access.can("planner", "incident.read")
    assert access.can("grid_worker", "board.print", at=(B_GRID, B), area=worker)  # boards are public by design


def test_the_cli_says_where_a_dispatcher_works_and_the_next_request_obeys(world):
    w = world
    cli = w["app"].test_cli_runner()
    made = cli.invoke(args=["create-user", "disp_b", "--role", "dispatcher", "--password", "long-enough-pw",
                            "--community", B])
    assert made.exit_code == 0 and f"covering {B}" in made.output, made.output
    c = w["app"].test_client()
    assert c.post("/login", data={"username": "disp_b", "password": "long-enough-pw"}).status_code == 302
    assert c.get(f"/api/v1/incidents/{w['sos']}").get_json()["reporter_phone"] == w["phone"]
    moved = cli.invoke(args=["set-communities", "disp_b", A])
    assert moved.exit_code == 0 and f"disp_b covers {A}" in moved.output
    assert c.get(f"/api/v1/incidents/{w['sos']}").status_code == 404  # at the next request, not the next login
    unknown = cli.invoke(args=["set-communities", "disp_b", "999999999999"])
    assert unknown.exit_code != 0 and "999999999999" in unknown.output and "not in the store" in unknown.output
    not_a_dispatcher = cli.invoke(args=["set-communities", "planner", A])
    assert not_a_dispatcher.exit_code != 0 and "only dispatchers" in not_a_dispatcher.output
    everywhere = cli.invoke(args=["set-communities", "disp_b", "--all"])
    assert everywhere.exit_code == 0 and B in everywhere.output and A in everywhere.output
    assert w["sos"] in [i["id"] for i in c.get("/api/v1/incidents").get_json()]
    nowhere = cli.invoke(args=["set-communities", "disp_b"])
    assert nowhere.exit_code == 0 and "covers no community" in nowhere.output
    assert c.get("/api/v1/incidents").get_json() == []  # fails closed
    refused = c.get(f"/api/v1/incidents/{w['in_g']}")
    assert refused.status_code == 404
    ghost = cli.invoke(args=["create-user", "gw2", "--role", "grid_worker", "--password", "long-enough-pw",
                             "--worker-id", "999999"])
    assert ghost.exit_code != 0 and "Grid worker 999999 does not exist" in ghost.output


def test_the_readme_shows_the_permission_table_as_the_code_has_it():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert access.markdown_table() in readme
    assert "| `incident.read` | anywhere | — | communities covered | grids served |" in readme
