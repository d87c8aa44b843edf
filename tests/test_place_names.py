"""Places have English names — official from an import, else pinyin — and the names gridmap gives
plans are said in the reader's language; a name a person typed is shown as typed. Both backends
where the store holds them (migration 0016 fills the places stored before it).
"""
import json
import re

import pytest
import sqlalchemy as sa
from shapely.geometry import MultiPolygon, box

from conftest import store_at_revision, lonlat
from gridmap import importer, plans
from gridmap.cli.common import language, say
from gridmap.geo.names import english, pinyin_english
from gridmap.plans.names import generated
from gridmap.store import models as m

C1 = "210213013004"


@pytest.mark.parametrize("chinese,expected", [
    ("城志社区", "Chengzhi Community"), ("中山区", "Zhongshan District"), ("老虎滩街道", "Laohutan Subdistrict"),
    ("城志社区第7网格", "Chengzhi Community Grid 7"), ("金州镇", "Jinzhou Town"), ("七顶山乡", "Qidingshan Township"),
    ("西安村", "Xi'an Village"), ("和合街", "Hehe Street"), ("Dalian Road", "Dalian Road"), ("", ""),
])
def test_pinyin_forms_translate_the_generic_part_and_write_the_rest_as_one_word(chinese, expected):
    assert english(chinese) == expected


def test_an_official_name_wins_for_the_place_and_for_the_grids_named_after_it():
    known = {"城志社区": "Chengzhi Residential Community"}
    assert english("城志社区", known) == "Chengzhi Residential Community"
    assert english("城志社区第12网格", known) == "Chengzhi Residential Community Grid 12"
    assert english("林茂社区", known) == pinyin_english("林茂社区") == "Linmao Community"


def communities_geojson(path, *, name_en=None, column="name_en"):
    props = {"code": C1, "name": "城志社区", "street_name": "老虎滩街道", "district_name": "中山区"}
    if name_en:
        props[column] = name_en
    feature = {"type": "Feature", "geometry": lonlat(box(0, 0, 400, 300)).__geo_interface__, "properties": props}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}, ensure_ascii=False),
                    encoding="utf-8")
    return path


def names_en(store):
    with store.session() as s:
        c = s.get(m.Community, C1)
        return c.name_en, c.street.name_en, c.street.district.name_en


def test_an_import_without_english_names_gets_pinyin_ones(store, tmp_path):
    importer.import_file(store, "communities", communities_geojson(tmp_path / "c.geojson"))
    assert names_en(store) == ("Chengzhi Community", "Laohutan Subdistrict", "Zhongshan District")


@pytest.mark.parametrize("column", ["name_en", "english_name"])
def test_an_official_english_name_is_kept_and_a_later_file_without_one_does_not_overwrite_it(store, tmp_path, column):
    importer.import_file(store, "communities",
                         communities_geojson(tmp_path / "c.geojson", name_en="Chengzhi Neighbourhood", column=column))
    assert names_en(store)[0] == "Chengzhi Neighbourhood"
    importer.import_file(store, "communities", communities_geojson(tmp_path / "again.geojson"))
    assert names_en(store)[0] == "Chengzhi Neighbourhood"


@pytest.fixture(params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)])
def store_at_0015(request, tmp_path):
    """A store migrated up to 0015 only, as a deployment was before English names."""
    with store_at_revision(request.param, tmp_path, "0015") as store:
        yield store


def test_migration_0016_gives_every_stored_place_its_english_name(store_at_0015):
    store = store_at_0015
    with store.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO district (code, name) VALUES ('210202000000', '中山区')"))
        conn.execute(sa.text("INSERT INTO street (code, district_code, name) "
                             "VALUES ('210202013000', '210202000000', '老虎滩街道')"))
    with store.transaction() as s:  # the community through the model's geometry type, its name_en left out
        s.execute(sa.insert(m.Community.__table__).values(
            code=C1, street_code="210202013000", name="城志社区", service_centre="", service_address="",
            service_phone="", geom=MultiPolygon([lonlat(box(0, 0, 100, 100))])))
    store.upgrade()
    assert store.current_revision() >= "0016"
    with store.engine.connect() as conn:
        got = {t: conn.execute(sa.text(f"SELECT name_en FROM {t}")).scalar_one()
               for t in ("district", "street", "community")}
    assert got == {"district": "Zhongshan District", "street": "Laohutan Subdistrict",
                   "community": "Chengzhi Community"}


def test_generated_plan_names_are_read_back_as_templates_and_typed_ones_are_not():
    assert generated("copy of plan 7") == ("copy of plan %(id)s", {"id": "7"})
    assert generated("partition seed 3 (12 grids, estimated households)") == (
        "partition seed %(seed)s (%(grids)s grids, estimated households)", {"seed": "3", "grids": "12"})
    assert generated("import 2026-12-03") == ("import %(date)s", {"date": "2026-12-03"})
    assert generated("copy of plan 7 for the new estate") is None and generated("城志社区调整方案") is None


def test_a_copied_plans_summary_carries_its_template_and_a_renamed_one_does_not(store, tmp_path):
    importer.import_file(store, "communities", communities_geojson(tmp_path / "c.geojson"))
    grids = tmp_path / "g.geojson"
    grids.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": lonlat(box(0, 0, 400, 300)).__geo_interface__,
         "properties": {"community_code": C1}}]}), encoding="utf-8")
    importer.import_file(store, "grids", grids)
    with store.transaction() as s:
        [source] = plans.list_plans(s, C1)
        copy = plans.plan_summary(plans.copy_plan(s, source["id"]))
        typed = plans.plan_summary(plans.copy_plan(s, source["id"], name="copy of plan 7 (我的)"))
    assert source["name_template"] == "import %(date)s"
    assert (copy["name"], copy["name_template"], copy["name_params"]) == (
        f"copy of plan {source['id']}", "copy of plan %(id)s", {"id": str(source["id"])})
    assert "name_template" not in typed and typed["name"] == "copy of plan 7 (我的)"


@pytest.mark.parametrize("environ,lang", [
    ({"GRIDMAP_LANG": "zh", "LANG": "en_US.UTF-8"}, "zh"), ({"GRIDMAP_LANG": "en", "LANG": "zh_CN.UTF-8"}, "en"),
    ({"LC_ALL": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh"), ({"LANG": "zh_TW.UTF-8"}, "zh"),
    ({"LANG": "de_DE.UTF-8"}, "en"), ({"LANG": "C.UTF-8"}, "en"), ({}, "en"), ({"LC_ALL": "C", "LANG": "zh_CN"}, "zh"),
])
def test_the_command_lines_language_comes_from_gridmap_lang_then_the_locale(environ, lang):
    assert language(environ) == lang


def test_say_renders_a_template_from_the_compiled_catalogue_outside_a_request(monkeypatch):
    monkeypatch.setenv("GRIDMAP_LANG", "zh")
    assert say("copy of plan %(id)s", id=7) == "方案 7 的副本"
    assert say("Not a msgid of the catalogue: %(x)s", x=1) == "Not a msgid of the catalogue: 1"
    monkeypatch.setenv("GRIDMAP_LANG", "en")
    assert say("copy of plan %(id)s", id=7) == "copy of plan 7"


def plan_options(page):
    return re.findall(r"<option value=\"\d+\"(?: selected)?>(#[^<]*)</option>", page)


def test_the_planner_page_and_its_json_say_a_copys_name_in_the_pages_language_and_a_typed_one_as_typed(app, tmp_path):
    from gridmap import accounts
    store = app.extensions["gridmap.store"]
    importer.import_file(store, "communities", communities_geojson(tmp_path / "c.geojson"))
    grids = tmp_path / "g.geojson"
    grids.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": lonlat(box(0, 0, 400, 300)).__geo_interface__,
         "properties": {"community_code": C1}}]}), encoding="utf-8")
    importer.import_file(store, "grids", grids)
    with store.transaction() as s:
        accounts.create_user(s, "planner", "a-long-test-password", "planner")
        [source] = plans.list_plans(s, C1)
        plans.copy_plan(s, source["id"], name="城志社区调整方案")
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    assert client.post("/login", data={"username": "planner", "password": "a-long-test-password"}).status_code == 302
    copy = client.post(f"/api/v1/plans/{source['id']}/copy").get_json()
    assert copy["name"] == f"方案 {source['id']} 的副本"  # the page's language: Chinese by default
    zh = client.get(f"/planner?community={C1}").get_data(as_text=True)
    assert plan_options(zh)[:2] == [f"#{copy['id']} 方案 {source['id']} 的副本 · 草稿 · v1",
                                    f"#{copy['id'] - 1} 城志社区调整方案 · 草稿 · v1"]
    client.get("/?lang=en")
    en = client.get(f"/planner?community={C1}").get_data(as_text=True)
    assert plan_options(en)[:2] == [f"#{copy['id']} copy of plan {source['id']} · draft · v1",
                                    f"#{copy['id'] - 1} 城志社区调整方案 · draft · v1"]
    assert client.post(f"/api/v1/plans/{copy['id']}/copy").get_json()["name"] == f"copy of plan {copy['id']}"
