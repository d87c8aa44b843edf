"""Corrections, not duplicates: imports matched by source key, batches listed and undone, records corrected by hand.

The oracle for "the store is as it was" is a full export of the kind (every live record with the
importer's fields and geometry) taken before and compared after, on both backends.
"""
import pandas as pd
import pytest
import shapely
from sqlalchemy import func, select

from gridmap import importer
from gridmap.errors import Conflict, InvalidInput
from gridmap.store import loaders
from gridmap.store import models as m
from gridmap.store.retired import INCLUDE_RETIRED

from conftest import at, shared_data

#  Five volunteers on a line 100 m apart, each with the code the office gave them:
#
#     V1 ---- V2 ---- V3 ---- V4 ---- V5        (x = 0, 100, …, 400 m; y = 0)
VOLUNTEERS = pd.DataFrame({
    "编号": ["V1", "V2", "V3", "V4", "V5"],
    "name": ["王芳", "李强", "张伟", "刘洋", "陈静"],
    "phone": ["13800000001", "13800000002", "13800000003", "13800000004", "13800000005"],
    "skills": ["理发", "维修", "", "助老;维修", "理发"],
    "lon": [at(100 * i, 0)[0] for i in range(5)],
    "lat": [at(100 * i, 0)[1] for i in range(5)],
})


def write_csv(frame, path):
    frame.to_csv(path, index=False)
    return path


def export(store, kind="volunteers"):
    """Every live record of ``kind`` as comparable rows: fields, then geometry as WKB hex, sorted."""
    frame = importer.export_frame(store, kind)
    rows = [tuple(str(v) for v in r) + (shapely.to_wkb(g, hex=True),)
            for r, g in zip(frame.drop(columns="geometry").itertuples(index=False), frame.geometry)]
    return sorted(rows)


def live(store, model=m.Volunteer):
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(model.retired_at.is_(None)),
                        execution_options=INCLUDE_RETIRED)


@pytest.fixture
def sqlite_store(sqlite_app):
    return sqlite_app.extensions["gridmap.store"]


def counts(summary):
    return summary.created, summary.updated, summary.unchanged, summary.retired


def test_reimport_edit_replace_and_undo_each_return_the_store_to_its_export(store, tmp_path):
    """One office's week, on each backend: every step's counts, and undo compared with full exports."""
    path = tmp_path / "volunteers.csv"
    first = importer.import_file(store, "volunteers", write_csv(VOLUNTEERS, path), user="office")
    assert counts(first) == (5, 0, 0, 0) and first.key_basis == "column 编号"
    original = export(store)
    # the same file again: nothing changes, nothing is written twice
    again = importer.import_file(store, "volunteers", path, user="office")
    assert counts(again) == (0, 0, 5, 0) and live(store) == 5 and export(store) == original
    # a phone corrected and a volunteer moved 20 m, saved under a new name: two updates
    edited = VOLUNTEERS.copy()
    edited.loc[2, "phone"] = "13999999999"
    edited.loc[3, "lon"] = at(350, 20)[0]
    fixed = importer.import_file(store, "volunteers", write_csv(edited, tmp_path / "volunteers-v2.csv"), user="office")
    assert counts(fixed) == (0, 2, 3, 0) and live(store) == 5
    with store.session() as s:
        assert s.scalar(select(m.Volunteer.phone).where(m.Volunteer.source_key == "V3")) == "13999999999"
        with pytest.raises(Conflict) as err:  # the first batch's records were changed since: newest first
            importer.undo_batch(s, first.batch_id, user="office")
        assert err.value.details["later"] == [fixed.batch_id] and f"undo batch {fixed.batch_id} first" in err.value.fix
    with store.transaction() as s:
        assert importer.undo_batch(s, fixed.batch_id, user="office")["restored"] == 2
    assert export(store) == original
    with store.session() as s:
        with pytest.raises(Conflict, match="undone already"):
            importer.undo_batch(s, fixed.batch_id, user="office")
    # two volunteers left the file: upsert keeps them, replace retires them
    shorter = write_csv(VOLUNTEERS.drop(index=[1, 4]), path)
    assert counts(importer.import_file(store, "volunteers", shorter)) == (0, 0, 3, 0) and live(store) == 5
    replace = importer.import_file(store, "volunteers", shorter, mode="replace")
    assert counts(replace) == (0, 0, 3, 2) and live(store) == 3
    # gone from every read: the export, the snapshot the maps and nearest-search use
    assert sorted(importer.export_frame(store, "volunteers")["name"]) == ["刘洋", "张伟", "王芳"]
    with store.session() as s:
        assert sorted(loaders.snapshot_frames(s)["volunteers"]["name"]) == ["刘洋", "张伟", "王芳"]
    with store.transaction() as s:
        assert importer.undo_batch(s, replace.batch_id, user="office")["returned"] == 2
    assert export(store) == original
    # a new volunteer: undo retires what the batch created
    more = VOLUNTEERS.copy()
    more.loc[5] = ["V6", "赵敏", "13800000006", "", at(500, 0)[0], at(500, 0)[1]]
    added = importer.import_file(store, "volunteers", write_csv(more, path))
    assert counts(added) == (1, 0, 5, 0)
    with store.transaction() as s:
        assert importer.undo_batch(s, added.batch_id, user="office")["retired"] == 1
    assert export(store) == original
    with store.session() as s:
        batches = importer.list_batches(s)
    assert [(b["id"], b["mode"], b["created"], b["updated"], b["unchanged"], b["retired"], b["undone_at"] is not None)
            for b in batches] == [
        (added.batch_id, "upsert", 1, 0, 5, 0, True), (replace.batch_id, "replace", 0, 0, 3, 2, True),
        (replace.batch_id - 1, "upsert", 0, 0, 3, 0, False), (fixed.batch_id, "upsert", 0, 2, 3, 0, True),
        (again.batch_id, "upsert", 0, 0, 5, 0, False), (first.batch_id, "upsert", 5, 0, 0, 0, False)]
    assert {b["user"] for b in batches[-3:]} == {"office"} and batches[-3]["source"] == "volunteers-v2.csv"


def test_append_adds_every_feature_again_and_content_keys_match_files_without_a_key(sqlite_store, tmp_path):
    store = sqlite_store
    no_key = VOLUNTEERS.drop(columns="编号")
    path = write_csv(no_key, tmp_path / "volunteers.csv")
    first = importer.import_file(store, "volunteers", path)
    assert first.key_basis.startswith("content")
    assert counts(importer.import_file(store, "volunteers", path)) == (0, 0, 5, 0)
    assert counts(importer.import_file(store, "volunteers", path, mode="append")) == (5, 0, 0, 0)
    assert live(store) == 10


def test_a_repeated_key_names_both_features_and_writes_nothing(sqlite_store, tmp_path):
    store = sqlite_store
    twice = VOLUNTEERS.copy()
    twice.loc[3, "编号"] = "V1"
    with pytest.raises(InvalidInput) as err:
        importer.import_file(store, "volunteers", write_csv(twice, tmp_path / "v.csv"))
    assert "the key 'V1' (column 编号) is also on feature 1" in err.value.message
    assert live(store) == 0
    with store.session() as s:
        assert importer.list_batches(s) == []


def test_key_names_a_column_even_one_renamed_to_a_field(sqlite_store, tmp_path):
    store = sqlite_store
    path = write_csv(VOLUNTEERS.drop(columns="编号").rename(columns={"name": "姓名"}), tmp_path / "v.csv")
    assert importer.import_file(store, "volunteers", path, key="姓名").key_basis == "column 姓名"
    assert counts(importer.import_file(store, "volunteers", path, key="姓名")) == (0, 0, 5, 0)
    with pytest.raises(InvalidInput, match="no column 'code'"):
        importer.import_file(store, "volunteers", path, key="code")


def test_workers_grids_follow_an_update_and_its_undo(sqlite_store, tmp_path):
    store = sqlite_store
    path = tmp_path / "workers.csv"
    path.write_text("编号,name,phone,grids\nW1,王芳,13812341234,210213013004001\n", encoding="utf-8")
    importer.import_file(store, "workers", path)
    path.write_text("编号,name,phone,grids\nW1,王芳,13812341234,210213013004001;210213013004002\n", encoding="utf-8")
    second = importer.import_file(store, "workers", path)
    assert counts(second) == (0, 1, 0, 0)
    with store.session() as s:
        assert sorted(loaders.grid_workers(s)) == ["210213013004001", "210213013004002"]
        importer.undo_batch(s, second.batch_id, user="office")
        s.commit()
    with store.session() as s:
        assert sorted(loaders.grid_workers(s)) == ["210213013004001"]


def test_a_record_corrected_by_hand_with_its_version(sqlite_store, tmp_path):
    store = sqlite_store
    importer.import_file(store, "volunteers", write_csv(VOLUNTEERS, tmp_path / "volunteers.csv"))
    before = export(store)
    with store.session() as s:
        vid = s.scalar(select(m.Volunteer.id).where(m.Volunteer.source_key == "V2"))
    with store.transaction() as s:
        out = importer.update_record(s, "volunteers", vid, {"phone": "13700000000", "available": "否"},
                                     version=1, user="admin")
    assert out["version"] == 2 and out["phone"] == "13700000000" and out["available"] is False
    with store.transaction() as s:
        with pytest.raises(Conflict) as err:
            importer.update_record(s, "volunteers", vid, {"phone": "1"}, version=1, user="admin")
        assert err.value.details == {"version": 2}
        with pytest.raises(InvalidInput, match="cannot be corrected"):
            importer.update_record(s, "volunteers", vid, {"geom": "x"}, version=2, user="admin")
        with pytest.raises(InvalidInput, match="phone is 40 characters, longer than the 32 it holds"):
            importer.update_record(s, "volunteers", vid, {"phone": "1" * 40}, version=2, user="admin")
    with store.transaction() as s:
        retired = importer.retire_record(s, "volunteers", vid, version=2, user="admin")
    assert live(store) == 4
    with store.transaction() as s:
        importer.undo_batch(s, retired["batch_id"], user="admin")
        importer.undo_batch(s, out["batch_id"], user="admin")
    assert export(store) == before


# ---- real data: the Helsinki extract --------------------------------------------------------------

@pytest.mark.slow
def test_helsinki_buildings_imported_twice_are_the_same_buildings(store, tmp_path):
    path = shared_data("helsinki", "Helsinki.osm.pbf")
    first = importer.import_file(store, "buildings", path, layer="buildings", skip_invalid=True)
    before = export(store, "buildings")
    again = importer.import_file(store, "buildings", path, layer="buildings", skip_invalid=True)
    assert first.key_basis == "OSM type and id" and first.created == first.imported > 400
    assert counts(again) == (0, 0, first.created, 0)
    assert live(store, m.Building) == first.created and export(store, "buildings") == before
    with store.session() as s:
        keys = s.scalars(select(m.Building.source_key)).all()
        importer.undo_batch(s, again.batch_id, user="office")
        importer.undo_batch(s, first.batch_id, user="office")
        s.commit()
    assert {k[0] for k in keys} == {"w", "r"} and live(store, m.Building) == 0
    # retired buildings are in no read: the address search, the buildings near a place, the export
    with store.session() as s:
        assert loaders.snapshot_frames(s)["addresses"] == []
        assert loaders.buildings_near(s, [(24.0, 60.0, 25.5, 60.5)]).empty
    assert export(store, "buildings") == []


def test_helsinki_clipped_road_runs_keep_distinct_keys(sqlite_app):
    store = sqlite_app.extensions["gridmap.store"]
    path = shared_data("helsinki", "Helsinki.osm.pbf")
    first = importer.import_file(store, "roads", path, layer="roads", skip_invalid=True)
    again = importer.import_file(store, "roads", path, layer="roads", skip_invalid=True)
    assert counts(again) == (0, 0, first.created, 0) and first.created == first.imported
    with store.session() as s:
        keys = s.scalars(select(m.Road.source_key)).all()
    assert len(keys) == len(set(keys)) and any("#2" in k for k in keys)


# ---- the API: admins only, a stale version is a 409 ------------------------------------------------

def _login(client, app, name, role):
    from gridmap import accounts
    with app.extensions["gridmap.store"].transaction() as s:
        accounts.create_user(s, name, "pw-" + name + "-long-enough", role)
    app.config["WTF_CSRF_ENABLED"] = False  # posted as a script would; the CSRF rule has its own tests
    r = client.post("/login", data={"username": name, "password": "pw-" + name + "-long-enough"})
    assert r.status_code == 302
    return {}


def test_api_corrects_a_record_for_admins_only_and_refuses_a_stale_version(sqlite_app, tmp_path):
    app = sqlite_app
    store = app.extensions["gridmap.store"]
    importer.import_file(store, "volunteers", write_csv(VOLUNTEERS, tmp_path / "volunteers.csv"))
    with store.session() as s:
        vid = s.scalar(select(m.Volunteer.id).where(m.Volunteer.source_key == "V1"))
    planner = app.test_client()
    token = _login(planner, app, "planner1", "planner")
    r = planner.patch(f"/api/v1/records/volunteers/{vid}", json={"version": 1, "values": {"phone": "1"}},
                      headers=token)
    assert r.status_code == 403 and "may not correct or retire imported records" in r.get_json()["message"]
    admin = app.test_client()
    token = _login(admin, app, "admin1", "admin")
    r = admin.patch(f"/api/v1/records/volunteers/{vid}", json={"version": 1, "values": {"name": "王芳芳"}},
                    headers=token)
    assert r.status_code == 200 and r.get_json()["version"] == 2
    r = admin.patch(f"/api/v1/records/volunteers/{vid}", json={"version": 1, "values": {"name": "X"}},
                    headers=token)
    assert r.status_code == 409 and r.get_json()["details"] == {"version": 2}
    r = admin.delete(f"/api/v1/records/volunteers/{vid}", json={"version": 2}, headers=token)
    assert r.status_code == 200 and r.get_json()["retired"] is True
    with store.session() as s:
        names = sorted(loaders.snapshot_frames(s)["volunteers"]["name"])
        assert names == ["刘洋", "张伟", "李强", "陈静"]
        assert s.scalar(select(m.Volunteer.name).where(m.Volunteer.id == vid),
                        execution_options=INCLUDE_RETIRED) == "王芳芳"


def test_replace_never_retires_a_record_whose_feature_was_rejected(sqlite_store, tmp_path):
    store = sqlite_store
    path = tmp_path / "volunteers.csv"
    importer.import_file(store, "volunteers", write_csv(VOLUNTEERS.assign(available="是"), path))
    bad = VOLUNTEERS.drop(index=[4]).assign(available=["是", "maybe", "是", "是"])
    out = importer.import_file(store, "volunteers", write_csv(bad, path), mode="replace", skip_invalid=True)
    # V2's row is unreadable, not gone: only V5, which the file no longer has, is retired
    assert counts(out) == (0, 0, 3, 1) and len(out.rejected) == 1
    assert sorted(importer.export_frame(store, "volunteers")["name"]) == ["刘洋", "张伟", "李强", "王芳"]
    no_key = write_csv(bad.drop(columns="编号"), tmp_path / "no-key.csv")
    with pytest.raises(InvalidInput, match="would retire the records of the features it could not read"):
        importer.import_file(store, "volunteers", no_key, mode="replace", skip_invalid=True)


def test_the_command_line_lists_undoes_and_corrects(sqlite_app, tmp_path):
    store = sqlite_app.extensions["gridmap.store"]
    runner = sqlite_app.test_cli_runner()
    path = str(write_csv(VOLUNTEERS, tmp_path / "volunteers.csv"))
    out = runner.invoke(args=["import", "volunteers", path, "--user", "office"])
    assert out.exit_code == 0 and "created 5, updated 0, unchanged 0, retired 0" in out.output
    out = runner.invoke(args=["import", "volunteers", path, "--mode", "replace"])
    assert "created 0, updated 0, unchanged 5, retired 0" in out.output
    listed = runner.invoke(args=["import", "list"]).output.splitlines()
    assert listed[0].split()[:4] == ["id", "kind", "source", "mode"]
    assert [line.split()[:4] for line in listed[1:]] == [["2", "volunteers", "volunteers.csv", "replace"],
                                                        ["1", "volunteers", "volunteers.csv", "upsert"]]
    with store.session() as s:
        vid = s.scalar(select(m.Volunteer.id).where(m.Volunteer.source_key == "V1"))
    out = runner.invoke(args=["record", "update", "volunteers", str(vid), "phone=13811112222", "--version", "1"])
    assert out.exit_code == 0 and "now version 2" in out.output
    out = runner.invoke(args=["record", "retire", "volunteers", str(vid), "--version", "1"])
    assert out.exit_code == 2 and "it is at version 2" in out.output
    out = runner.invoke(args=["import", "undo", "1"])
    assert out.exit_code == 2 and "undo batch 3 first" in out.output
    assert runner.invoke(args=["import", "undo", "3"]).exit_code == 0
    out = runner.invoke(args=["import", "undo", "1"])
    assert out.exit_code == 0 and "5 records it created retired" in out.output and live(store) == 0


def test_undo_of_a_replace_is_refused_once_its_keys_live_again(sqlite_store, tmp_path):
    store = sqlite_store
    path = tmp_path / "volunteers.csv"
    importer.import_file(store, "volunteers", write_csv(VOLUNTEERS, path))
    replace = importer.import_file(store, "volunteers", write_csv(VOLUNTEERS.drop(index=[4]), path), mode="replace")
    back = importer.import_file(store, "volunteers", write_csv(VOLUNTEERS, path))
    assert counts(replace) == (0, 0, 4, 1) and counts(back) == (1, 0, 4, 0)
    with store.session() as s:
        with pytest.raises(Conflict, match=r"have since taken the keys V5 "):
            importer.undo_batch(s, replace.batch_id, user="office")
    with store.transaction() as s:
        importer.undo_batch(s, back.batch_id, user="office")
        importer.undo_batch(s, replace.batch_id, user="office")
    assert live(store) == 5
