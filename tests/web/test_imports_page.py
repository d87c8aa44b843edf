"""Imports from the browser: only admins and planners, the border refuses what no reader should see, the dry run is the importer's own verdict.

The buildings file used throughout, four squares of 10 m drawn 30 m apart::

    +--+  +--+  +--+  +--+
    |1 |  |2 |  |3 |  |4 |      households: "12", "三十", "-5", "8"   (2 and 3 are bad)
    +--+  +--+  +--+  +--+      hh:          12,   30,    5,    8    (all good)
"""
import csv
import io
import threading
import time
import json
import zipfile
from html import unescape as html_unescape
from pathlib import Path

import pytest
from shapely.geometry import box
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from conftest import lonlat, make_app, shared_data
from gridmap import accounts, importer
from gridmap.errors import InvalidInput
from gridmap.importer import jobs
from gridmap.store import models as m

PASSWORD = "a-long-test-password"
ROLES = {"admin": "admin", "planner": "planner", "dispatcher": "dispatcher", "grid_worker": "worker"}
JSON = {"Accept": "application/json"}


def buildings_geojson(households=("12", "三十", "-5", "8"), hh=(12, 30, 5, 8)):
    features = []
    for i, text in enumerate(households):
        square = lonlat(box(i * 40, 0, i * 40 + 10, 10))
        features.append({"type": "Feature", "geometry": square.__geo_interface__,
                         "properties": {"address": f"试验路{i + 1}号", "households": text, "hh": hh[i]}})
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False).encode()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One app for the module (each test keeps to its own uploads and counts what it adds)."""
    app, _ = make_app(tmp_path_factory.mktemp("imports"), "sqlite")
    store = app.extensions["gridmap.store"]
    with store.transaction() as s:
        for role, name in ROLES.items():
            accounts.create_user(s, name, PASSWORD, role)
        accounts.create_user(s, "planner2", PASSWORD, "planner")
    yield app
    store.dispose()


def client_as(app, username):
    """A client signed in as ``username`` (None: the public), one per user for the module: sign-ins are slow on purpose."""
    app.config["WTF_CSRF_ENABLED"] = False
    clients = app.extensions.setdefault("test.clients", {})
    if username not in clients:
        client = app.test_client()
        if username:
            r = client.post("/login", data={"username": username, "password": PASSWORD})
            assert r.status_code == 302
        clients[username] = client
    return clients[username]


def uploads_dir(app):
    return Path(app.instance_path) / "uploads"


def kept(app):
    """The uploads kept on disk."""
    root = uploads_dir(app)
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def buildings(app):
    with app.extensions["gridmap.store"].session() as s:
        return s.scalar(select(func.count()).select_from(m.Building))


def upload(client, name, data, kind="buildings", headers=JSON, **more):
    return post_form(client, "/admin/imports", {**more, "kind": kind, "file": FileStorage(io.BytesIO(data), name)}, headers)


def post_form(client, url, values, headers=JSON):
    # encoded here, in memory: the test client spools a large body to a file it never closes
    boundary, body = encode_multipart(MultiDict(list(values.items())))
    return client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}", headers=headers)


def finished(app, upload_id):
    return jobs.wait(uploads_dir(app) / upload_id, timeout=60)


def test_admins_and_planners_may_upload_and_others_are_refused_with_nothing_kept(world):
    stored = buildings(world)
    for role, name in ROLES.items():
        client = client_as(world, name)
        before = kept(world)
        page = client.get("/admin/imports")
        r = upload(client, "b.geojson", buildings_geojson())
        if role in ("admin", "planner"):
            assert page.status_code == 200 and 'id="upload-form"' in page.get_data(as_text=True)
            assert r.status_code == 201
            assert kept(world) == sorted(before + [r.get_json()["id"]])
            finished(world, r.get_json()["id"])
        else:
            assert page.status_code == 403 and r.status_code == 403
            assert r.get_json()["details"]["allowed_roles"] == ["admin", "planner"]
            assert kept(world) == before
    anonymous = client_as(world, None)
    before = kept(world)
    assert upload(anonymous, "b.geojson", buildings_geojson()).status_code == 401
    assert anonymous.get("/admin/imports").headers["Location"].startswith("/login")
    assert kept(world) == before and buildings(world) == stored  # only dry runs ran


def test_the_header_links_the_page_for_admins_and_planners_only(world):
    for role, name in ROLES.items():
        html = client_as(world, name).get("/?lang=en").get_data(as_text=True)
        assert ('href="/admin/imports"' in html) == (role in ("admin", "planner")), role


def test_the_dry_run_lists_exactly_the_problems_the_command_line_importer_rejects_the_file_with(world, tmp_path):
    client = client_as(world, "planner")
    stored = buildings(world)
    r = upload(client, "楼栋.geojson", buildings_geojson())
    state = finished(world, r.get_json()["id"])
    assert state["status"] == "done" and state["action"] == "check"
    found = state["result"]
    path = tmp_path / "same.geojson"
    path.write_bytes(buildings_geojson())
    with pytest.raises(InvalidInput) as cli:
        importer.import_file(world.extensions["gridmap.store"], "buildings", path)
    assert found["problems"] == cli.value.details["problems"]
    assert [(p["row"], p["field"], p["value"]) for p in found["problems"]] == [(2, "households", "三十"),
                                                                              (3, "households", "-5")]
    assert all(p["fix"] for p in found["problems"])
    assert (found["total"], found["bad_rows"], found["importable"]) == (4, 2, 2)
    assert found["columns"] == ["address", "households", "hh"] and found["rows"][1] == ["试验路2号", "三十", "30"]
    assert buildings(world) == stored  # a dry run writes nothing
    html = client.get(f"/admin/imports/{r.get_json()['id']}?lang=en").get_data(as_text=True)
    assert html.count('<tr data-row="') == 2 and "三十" in html
    table = client.get(f"/admin/imports/{r.get_json()['id']}/problems.csv").get_data(as_text=True)
    assert [line.split(",")[:4] for line in table.lstrip("\ufeff").splitlines()] == [
        ["row", "feature", "field", "value"], ["2", "试验路2号", "households", "三十"], ["3", "试验路3号", "households", "-5"]]
    # the map draws every feature, the two bad ones in red
    features = json.loads((uploads_dir(world) / r.get_json()["id"] / "features.json").read_text())
    assert sorted((f["properties"]["row"], f["properties"]["bad"]) for f in features["features"]) == [
        (1, False), (2, True), (3, True), (4, False)]
    map_html = client.get(f"/admin/imports/{r.get_json()['id']}/map").get_data(as_text=True)
    assert map_html.count('"#dc2626"') >= 2 and "leaflet.js" in map_html


def test_a_field_mapping_fixes_the_file_and_the_import_writes_it_and_deletes_the_upload(world):
    client = client_as(world, "admin")
    stored = buildings(world)
    upload_id = upload(client, "b.geojson", buildings_geojson()).get_json()["id"]
    finished(world, upload_id)
    form = {"kind": "buildings", "field.households": "hh"}
    assert client.post(f"/admin/imports/{upload_id}/check", data=form, headers=JSON).status_code == 202
    state = finished(world, upload_id)
    assert state["result"]["problems"] == [] and state["result"]["importable"] == 4
    assert buildings(world) == stored
    client.post(f"/admin/imports/{upload_id}/import", data=form, headers=JSON)
    state = finished(world, upload_id)
    assert state["status"] == "done" and state["result"]["imported"] == 4
    assert buildings(world) == stored + 4
    with world.extensions["gridmap.store"].session() as s:
        assert sorted(s.execute(select(m.Building.address, m.Building.households).order_by(m.Building.id.desc())
                                .limit(4)).all()) == [("试验路1号", 12), ("试验路2号", 30), ("试验路3号", 5), ("试验路4号", 8)]
    # the file and the features drawn from it are gone once imported
    assert list((uploads_dir(world) / upload_id).glob("*.geojson")) == []
    assert not (uploads_dir(world) / upload_id / "features.json").exists()
    again = client.post(f"/admin/imports/{upload_id}/import", data=form, headers=JSON)
    assert again.status_code == 400 and again.get_json()["details"]["code"] == "imported"
    assert buildings(world) == stored + 4


@pytest.mark.parametrize("name, data, code, words", [
    ("b.exe", b"MZ\x90\x00", "bad_extension", '".exe"'),
    ("b.shp", b"\x00\x00\x27\x0a", "shapefile_unzipped", ".dbf"),
    ("b.gpkg", b"address,lon,lat\nx,121.6,38.9\n", "wrong_type", "GeoPackage"),
    ("b.geojson", b"PK\x03\x04rest-of-a-zip", "wrong_type", "ZIP archive"),
    ("b.zip", b"not a zip at all", "wrong_type", "text"),
    ("b.csv", b"SQLite format 3\x00....", "wrong_type", "SQLite"),
    ("b.osm.pbf", b"<?xml version='1.0'?><osm></osm>", "wrong_type", "text"),
    ("b.csv", b"", "empty", "empty"),
])
def test_a_file_that_is_not_what_its_name_says_is_400_naming_it_and_nothing_is_kept(world, name, data, code, words):
    client = client_as(world, "planner")
    before = kept(world)
    r = upload(client, name, data)
    assert r.status_code == 400
    body = r.get_json()
    assert body["details"]["code"] == code and words in body["message"] and body["fix"]
    client.get("/admin/imports?lang=zh_CN")  # the page says it in its language, same status
    page = upload(client, name, data, headers={})
    html = page.get_data(as_text=True)
    assert page.status_code == 400 and 'id="error"' in html
    assert f"“{name}”" in html and body["message"].replace('"', "&#34;") not in html
    assert kept(world) == before


def test_a_file_past_the_upload_limit_is_413_naming_the_setting(world, monkeypatch):
    monkeypatch.setitem(world.config, "IMPORT_MAX_UPLOAD_BYTES", 500)
    client = client_as(world, "planner")
    before = kept(world)
    r = upload(client, "b.geojson", buildings_geojson())  # a few KB: past the file's limit, within the body's
    assert r.status_code == 413 and r.get_json()["details"]["setting"] == "GRIDMAP_IMPORT_MAX_UPLOAD_BYTES"
    assert "500 bytes" in r.get_json()["message"]
    big = upload(client, "b.geojson", b"{" + b" " * (world.config["MAX_BODY_BYTES"] + 4000) + b"}")
    assert big.status_code == 413 and big.get_json()["details"]["setting"] == "GRIDMAP_IMPORT_MAX_UPLOAD_BYTES"
    assert kept(world) == before


def zipped(members):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return out.getvalue()


def test_a_zip_bomb_is_413_before_it_is_inflated_and_nothing_is_kept(world, monkeypatch):
    monkeypatch.setitem(world.config, "IMPORT_MAX_UNZIPPED_BYTES", 1 << 20)
    client = client_as(world, "planner")
    before = kept(world)
    bomb = zipped([("b.shp", b"\x00" * (32 << 20))])  # 32 MiB of zeros in ~32 KiB
    assert len(bomb) < 100_000
    r = upload(client, "b.zip", bomb)
    assert r.status_code == 413
    body = r.get_json()
    assert body["details"]["code"] == "zip_unzipped" and body["details"]["bytes"] == 32 << 20
    assert body["details"]["setting"] == "GRIDMAP_IMPORT_MAX_UNZIPPED_BYTES"
    assert kept(world) == before


def test_a_zip_whose_member_lies_about_its_size_is_stopped_by_what_it_really_inflates_to(world, monkeypatch):
    monkeypatch.setitem(world.config, "IMPORT_MAX_UNZIPPED_BYTES", 1 << 20)
    before = kept(world)
    data = bytearray(zipped([("b.dbf", b"\x00" * (8 << 20))]))
    # rewrite the declared size (local header at 22, central directory 24 bytes past its signature) to 100 bytes
    data[22:26] = (100).to_bytes(4, "little")
    central = data.rfind(b"PK\x01\x02")
    data[central + 24:central + 28] = (100).to_bytes(4, "little")
    r = upload(client_as(world, "planner"), "b.zip", bytes(data))
    assert r.status_code == 400 and r.get_json()["details"]["code"] == "zip_damaged"
    assert kept(world) == before


def test_ten_thousand_parts_in_a_zip_or_in_the_form_are_413_not_memory(world):
    client = client_as(world, "planner")
    before = kept(world)
    many = zipped([(f"part{i}.txt", b"") for i in range(10_000)])
    r = upload(client, "b.zip", many)
    assert r.status_code == 413
    assert r.get_json()["details"]["members"] == 10_000 and r.get_json()["details"]["limit"] == 64
    form = upload(client, "b.csv", b"a,b\n", **{f"f{i}": "x" for i in range(10_000)})
    assert form.status_code == 413 and form.get_json()["details"]["setting"] == "GRIDMAP_MAX_FORM_PARTS"
    assert kept(world) == before


def test_an_upload_is_its_uploaders_to_another_planner_it_does_not_exist_an_admin_sees_it(world):
    stored = buildings(world)
    upload_id = upload(client_as(world, "planner"), "b.geojson", buildings_geojson()).get_json()["id"]
    finished(world, upload_id)
    other = client_as(world, "planner2")
    assert other.get(f"/admin/imports/{upload_id}", headers=JSON).status_code == 404
    assert other.post(f"/admin/imports/{upload_id}/import", data={"kind": "buildings"}, headers=JSON).status_code == 404
    assert upload_id not in other.get("/admin/imports").get_data(as_text=True)
    assert client_as(world, "admin").get(f"/admin/imports/{upload_id}").status_code == 200
    assert other.get("/admin/imports/not-an-id", headers=JSON).status_code == 404
    assert buildings(world) == stored


def test_expired_uploads_are_deleted_when_the_page_is_next_used(world):
    client = client_as(world, "planner")
    old = upload(client, "b.geojson", buildings_geojson()).get_json()["id"]
    finished(world, old)
    meta = uploads_dir(world) / old / "meta.json"
    data = json.loads(meta.read_text())
    meta.write_text(json.dumps({**data, "created": data["created"] - 25 * 3600}))
    new = upload(client, "b.geojson", buildings_geojson()).get_json()["id"]
    assert old not in kept(world) and new in kept(world)
    finished(world, new)


def import_through_the_page(app, client, data, form):
    upload_id = upload(client, "b.geojson", data).get_json()["id"]
    finished(app, upload_id)
    client.post(f"/admin/imports/{upload_id}/import", data=form, headers=JSON)
    state = finished(app, upload_id)
    assert state["status"] == "done", state
    return state["result"]


def test_every_import_is_a_batch_in_the_history_and_undo_takes_it_back_once(world):
    planner = client_as(world, "planner")
    stored = buildings(world)
    form = {"kind": "buildings", "field.households": "hh", "key": "address"}
    first = import_through_the_page(world, planner, buildings_geojson(), form)
    assert (first["created"], first["updated"], first["mode"]) == (4, 0, "upsert")
    assert buildings(world) == stored + 4
    same = import_through_the_page(world, planner, buildings_geojson(), form)  # the same file: nothing new
    assert (same["created"], same["updated"], same["unchanged"]) == (0, 0, 4) and buildings(world) == stored + 4
    again = import_through_the_page(world, planner, buildings_geojson(hh=(13, 30, 5, 8)), form)  # one correction
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 1, 3) and buildings(world) == stored + 4
    html = planner.get("/admin/imports?lang=en").get_data(as_text=True)
    assert f'<tr data-batch="{first["batch_id"]}"' in html and f'<tr data-batch="{again["batch_id"]}"' in html
    # the office's batches: undone newest first, by whoever may import, and the history says who
    early = planner.post(f"/admin/imports/batches/{first['batch_id']}/undo", headers=JSON)
    assert early.status_code == 409 and buildings(world) == stored + 4  # the later batch touched its records
    r = client_as(world, "planner2").post(f"/admin/imports/batches/{again['batch_id']}/undo", headers=JSON)
    assert r.get_json() == {"batch_id": again["batch_id"], "kind": "buildings", "retired": 0, "restored": 1,
                            "returned": 0}
    with world.extensions["gridmap.store"].session() as s:
        assert s.scalar(select(m.Building.households).where(m.Building.address == "试验路1号")) == 12
    for batch in (same["batch_id"], first["batch_id"]):
        r = planner.post(f"/admin/imports/batches/{batch}/undo", headers=JSON)
        assert r.status_code == 200 and r.get_json()["batch_id"] == batch
    assert buildings(world) == stored
    html = planner.get("/admin/imports?lang=en").get_data(as_text=True)
    assert "by planner2" in html and html.count('class="undone"') >= 2
    twice = planner.post(f"/admin/imports/batches/{first['batch_id']}/undo", headers=JSON)
    assert twice.status_code == 409 and buildings(world) == stored
    assert planner.post("/admin/imports/batches/999999/undo", headers=JSON).status_code == 404


def test_a_real_zipped_shapefile_passes_the_border_and_its_dry_run_is_the_command_lines_verdict(world):
    """Providence's 59 precincts (EPSG:4269) as buildings, households taken from a column of areas."""
    path = shared_data("providence", "precincts.zip")
    client = client_as(world, "planner")
    stored = buildings(world)
    upload_id = upload(client, "precincts.zip", path.read_bytes()).get_json()["id"]
    first = finished(world, upload_id)["result"]
    assert "'address'" in first["error"]["message"] and "NAME" in first["columns"]  # nothing says which is the address
    fields = {"address": "NAME", "households": "Shape__Are"}
    client.post(f"/admin/imports/{upload_id}/check", headers=JSON,
                data={"kind": "buildings", **{f"field.{k}": v for k, v in fields.items()}})
    found = finished(world, upload_id)["result"]
    with pytest.raises(InvalidInput) as cli:
        importer.import_file(world.extensions["gridmap.store"], "buildings", path, fields=fields)
    assert found["problems"] == cli.value.details["problems"]
    assert found["bad_rows"] == cli.value.details["rejected"] == 59 == found["total"]
    assert {p["field"] for p in found["problems"]} == {"households"} and buildings(world) == stored


def test_the_progress_of_a_running_job_is_polled_and_a_job_whose_process_died_says_so(world):
    client = client_as(world, "planner")
    upload_id = upload(client, "b.geojson", buildings_geojson()).get_json()["id"]
    folder = uploads_dir(world) / upload_id
    finished(world, upload_id)
    release = threading.Event()

    def work(report):
        report("writing", 40_000, 100_000, force=True)
        release.wait(30)
        return {"imported": 100_000}

    jobs.start(folder, "import", work, options={"kind": "buildings"})
    try:
        deadline = time.time() + 30
        while client.get(f"/admin/imports/{upload_id}/status").get_json()["stage"] != "writing":
            assert time.time() < deadline
            time.sleep(0.05)
        assert client.get(f"/admin/imports/{upload_id}/status").get_json() == {
            "status": "running", "action": "import", "stage": "writing", "done": 40_000, "total": 100_000}
        html = client.get(f"/admin/imports/{upload_id}").get_data(as_text=True)
        assert '<progress id="progress" max="100000" value="40000">' in html and 'id="options"' not in html
        again = client.post(f"/admin/imports/{upload_id}/check", data={"kind": "buildings"}, headers=JSON)
        assert again.status_code == 409 and again.get_json()["details"]["code"] == "job_running"
    finally:
        release.set()
    assert finished(world, upload_id)["result"] == {"imported": 100_000}
    # a process that died mid-job leaves a state whose heartbeat stopped
    state = json.loads((folder / "state.json").read_text())
    (folder / "state.json").write_text(json.dumps({**state, "status": "running", "heartbeat": time.time() - 3600}))
    assert client.get(f"/admin/imports/{upload_id}/status").get_json()["status"] == "interrupted"
    assert 'id="options"' in client.get(f"/admin/imports/{upload_id}").get_data(as_text=True)  # it may run again


def test_a_file_the_readers_refuse_is_a_dry_run_that_says_why_not_a_failure(world):
    client = client_as(world, "planner")
    upload_id = upload(client, "人员.csv", "name,phone\n张三,1\n".encode("gbk"), kind="workers").get_json()["id"]
    state = finished(world, upload_id)
    assert state["status"] == "done" and "GBK" in state["result"]["error"]["fix"]
    assert str(uploads_dir(world)) not in client.get(f"/admin/imports/{upload_id}").get_data(as_text=True)
    client.post(f"/admin/imports/{upload_id}/check", data={"kind": "workers", "encoding": "GBK"}, headers=JSON)
    found = finished(world, upload_id)["result"]
    assert found["error"] is None and found["rows"] == [["张三", "1"]] and found["importable"] == 1


def test_the_dry_runs_problems_are_said_in_the_pages_language_and_the_csv_keeps_a_stable_code(world):
    client = client_as(world, "planner")
    upload_id = upload(client, "楼栋.geojson", buildings_geojson()).get_json()["id"]
    assert finished(world, upload_id)["status"] == "done"
    problem = '<td>households 的值 "三十" 不是 0 到 100000 之间的有效 int</td><td>请填写 0 到 100000 之间的数字。</td>'
    zh = client.get(f"/admin/imports/{upload_id}?lang=zh_CN").get_data(as_text=True)
    assert html_unescape(zh).count("不是 0 到 100000 之间的有效 int") == 2 and problem in html_unescape(zh)
    zh_csv = client.get(f"/admin/imports/{upload_id}/problems.csv").get_data(as_text=True).lstrip("\ufeff")
    en = client.get(f"/admin/imports/{upload_id}?lang=en").get_data(as_text=True)
    assert 'households "三十" is not a valid int between 0 and 100000' in html_unescape(en) and "有效" not in en
    en_csv = client.get(f"/admin/imports/{upload_id}/problems.csv").get_data(as_text=True).lstrip("\ufeff")
    rows = {lang: list(csv.reader(io.StringIO(text))) for lang, text in (("zh", zh_csv), ("en", en_csv))}
    assert rows["zh"][0] == rows["en"][0] == ["row", "feature", "field", "value", "code", "problem", "fix"]
    assert [r[:5] for r in rows["zh"][1:]] == [r[:5] for r in rows["en"][1:]] == [
        ["2", "试验路2号", "households", "三十", "number_out_of_range"],
        ["3", "试验路3号", "households", "-5", "number_out_of_range"]]
    assert rows["zh"][1][5:] == ['households 的值 "三十" 不是 0 到 100000 之间的有效 int', "请填写 0 到 100000 之间的数字。"]
    assert rows["en"][2][5:] == ['households "-5" is not a valid int between 0 and 100000',
                                 "Write a number between 0 and 100000."]
    # the map's popups too
    assert "不是 0 到 100000 之间的有效 int" not in client.get(f"/admin/imports/{upload_id}/map").get_data(as_text=True)
    client.get("/?lang=zh_CN")
    assert "\\u4e0d\\u662f 0 \\u5230" in client.get(f"/admin/imports/{upload_id}/map").get_data(as_text=True) or \
        "不是 0 到 100000" in client.get(f"/admin/imports/{upload_id}/map").get_data(as_text=True)


def test_the_dry_runs_notes_are_said_in_the_pages_language_too(world):
    """A note (how records are matched) is made of a template and its params, like a problem: the
    Chinese page says it, and the thing it names, in Chinese; the English page in English."""
    client = client_as(world, "planner")
    upload_id = upload(client, "楼栋注记.geojson", buildings_geojson()).get_json()["id"]
    assert finished(world, upload_id)["status"] == "done"
    zh = html_unescape(client.get(f"/admin/imports/{upload_id}?lang=zh_CN").get_data(as_text=True))
    en = html_unescape(client.get(f"/admin/imports/{upload_id}?lang=en").get_data(as_text=True))
    assert "记录按其键匹配：内容（没有键列：可用 --key 指定一列）" in zh and "records are matched" not in zh
    assert "records are matched by their key: content (no key column: name one with --key)" in en
    assert "记录按其键匹配" not in en
