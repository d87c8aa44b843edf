"""Offline fuzzy address search: loosely typed Chinese addresses find their building, and the house number matters."""
import json

import pytest
import shapely

from conftest import shared_data
from gridmap.errors import InvalidInput
from gridmap.geo.addresses import MAX_QUERY_CHARS, AddressIndex, normalise, parse_numbers

TARGET = "大连市金州区湾里街道湾里路15号3栋"


@pytest.fixture(scope="module")
def demo_index(demo_frames):
    b = demo_frames["buildings"]
    points = b.geometry.representative_point()
    records = [{"building_id": i, "address": a, "name": n, "lon": p.x, "lat": p.y, "community_code": c}
               for i, (a, n, p, c) in enumerate(zip(b["address"], b["name"], points, b["community_code"]))]
    return AddressIndex.from_records(records), records


def top(index, q, **kw):
    return index.search(q, **kw)[0]


@pytest.mark.parametrize("typed", [
    "湾里路15号3栋",                  # no city, district or street prefix
    "金州区湾里路15号3栋",            # some of the prefix
    "大連市金州區灣里路15號3棟",      # traditional characters
    "湾里路１５号３栋",                # full-width digits
    "湾里路十五号三栋",                # Chinese numerals
    "湾里路 15号, 3栋",                # spaces and punctuation
    "湾里路15号3号楼",                 # 3号楼 for 3栋
    "湾里路15#3栋",                    # "#" typed for 号
])
def test_a_demo_address_typed_loosely_is_found_exactly(demo_index, typed):
    index, _ = demo_index
    best = top(index, typed)
    assert best["address"] == TARGET
    assert best["score"] == 100.0


def test_a_one_character_typo_still_finds_the_building_first_but_not_exactly(demo_index):
    index, _ = demo_index
    best, second = index.search("湾理路15号3栋")[:2]
    assert best["address"] == TARGET
    assert 80 <= best["score"] < 100
    assert second["score"] < best["score"] - 10


def test_a_query_with_an_unspaced_prefix_scores_just_below_exact(demo_index):
    index, _ = demo_index
    best = top(index, "大连金州湾里路15号3栋")
    assert best["address"] == TARGET and best["score"] == 99.0


def test_every_demo_address_is_found_without_its_administrative_prefix(demo_index):
    index, records = demo_index
    for r in records:
        tail = r["address"].split("街道", 1)[1]
        hits = index.search(tail, limit=5)
        exact = {h["building_id"] for h in hits if h["score"] == 100.0}
        assert r["building_id"] in exact, (tail, hits[:2])
        assert hits[0]["lon"] == pytest.approx(r["lon"]) or hits[0]["score"] == 100.0


def test_a_house_number_without_the_building_lists_that_number_s_buildings_first(demo_index):
    index, _ = demo_index
    hits = index.search("湾里路1号", limit=10)
    assert [h["address"] for h in hits[:6]] == [f"大连市金州区湾里街道湾里路1号{k}栋" for k in range(1, 7)]
    assert all("湾里路1号" in h["address"] for h in hits[:6])
    assert hits[0]["score"] > hits[6]["score"]


def test_the_house_number_beats_a_near_spelling_of_it():
    records = [{"building_id": k, "address": f"大连市金州区湾里街道湾里路{a}", "lon": 121.7, "lat": 39.0}
               for k, a in enumerate(["21号3栋", "1号3栋", "12号3栋", "2号", "12号", "112号"])]
    index = AddressIndex.from_records(records)
    hits = index.search("湾里路12号")
    prefix = "大连市金州区湾里街道"
    assert [h["address"].removeprefix(prefix) for h in hits[:2]] == ["湾里路12号", "湾里路12号3栋"]
    assert hits[0]["score"] == 100.0
    ranked = [h["address"] for h in hits]
    for worse in ("湾里路21号3栋", "湾里路1号3栋"):
        assert ranked.index(prefix + worse) > ranked.index(prefix + "湾里路12号3栋")
    # a bare number is the house number
    assert top(index, "湾里路12")["address"].endswith("湾里路12号")


def test_the_community_filter_keeps_only_that_community(demo_index):
    index, records = demo_index
    target = next(r for r in records if r["address"] == TARGET)
    other = next(r["community_code"] for r in records if r["community_code"] != target["community_code"])
    hits = index.search("湾里路15号3栋", community=target["community_code"])
    assert hits[0]["building_id"] == target["building_id"]
    assert {h["community_code"] for h in hits} == {target["community_code"]}
    assert all("湾里路15号3栋" not in h["address"] for h in index.search("湾里路15号3栋", community=other))


def test_a_building_is_found_by_its_name(demo_index):
    index, _ = demo_index
    best = top(index, "城志小學")
    assert best["address"] == "大连市金州区湾里街道湾里路9号" and best["score"] == 100.0


def test_normalisation_merges_the_spellings_of_one_address():
    assert normalise("大連市金州區 灣里路十二號３棟") == "大连市金州区湾里路12号3栋"
    assert normalise("Ａ座") == "a栋"
    assert [normalise(f"{cn}号") for cn in ("十", "十二", "二十", "二十一", "九十九", "一百零五", "一〇二")] == [
        "10号", "12号", "20号", "21号", "99号", "105号", "102号"]
    # a numeral that is part of a road's name stays
    assert normalise("中山东一路") == "中山东一路"
    assert parse_numbers("张杨路628弄4-7号") == {"弄": (628, 628, ""), "号": (4, 7, "")}


def test_bad_queries_are_refused_naming_the_limit(demo_index):
    index, _ = demo_index
    with pytest.raises(InvalidInput, match="empty"):
        index.search("   ")
    with pytest.raises(InvalidInput, match=str(MAX_QUERY_CHARS)):
        index.search("湾" * (MAX_QUERY_CHARS + 1))
    with pytest.raises(InvalidInput, match="limit"):
        index.search("湾里路", limit=0)
    with pytest.raises(InvalidInput, match="address"):
        AddressIndex.from_records([{"building_id": 1, "address": ""}])


# -- real addresses: Shanghai's Bund ------------------------------------------------------------

@pytest.fixture(scope="module")
def bund():
    data = json.loads(shared_data("shanghai_bund", "buildings.geojson").read_text(encoding="utf-8"))
    records = []
    for k, f in enumerate(data["features"]):
        p = f["properties"]
        street, number = p.get("addr_street"), p.get("addr_housenumber")
        if not street or not number:
            continue
        point = shapely.geometry.shape(f["geometry"]).representative_point()
        address = f"上海市黄浦区{street}{number}" + ("" if str(number).endswith("号") else "号")
        records.append({"building_id": k, "address": address, "name": p.get("name") or "",
                        "lon": point.x, "lat": point.y})
    assert len(records) > 100
    return AddressIndex.from_records(records), records


def test_every_bund_address_is_found_from_its_street_and_number(bund):
    index, records = bund
    for r in records:
        typed = r["address"].removeprefix("上海市黄浦区")
        hits = index.search(typed, limit=5)
        assert r["building_id"] in {h["building_id"] for h in hits if h["score"] == 100.0}, typed


def test_bund_addresses_typed_in_traditional_full_width_and_numerals(bund):
    index, _ = bund
    assert top(index, "中山東一路１８號")["address"] == "上海市黄浦区中山东一路18号"
    assert top(index, "中山东一路十八号")["address"] == "上海市黄浦区中山东一路18号"
    assert top(index, "中山东一路15甲号")["address"] == "上海市黄浦区中山东一路15甲号"
    typo = top(index, "中山东二路18号")
    assert typo["address"] == "上海市黄浦区中山东一路18号" and typo["score"] < 100


def test_bund_house_numbers_rank_the_exact_number_first_and_ranges_contain_theirs(bund):
    index, _ = bund
    hits = index.search("中山东一路1号")
    assert hits[0]["address"] == "上海市黄浦区中山东一路1号"
    assert hits[0]["score"] > max(h["score"] for h in hits[1:])
    assert top(index, "中山东一路11号")["address"] == "上海市黄浦区中山东一路10-12号"
    assert top(index, "外滩18号")["name"] == "外滩18号"
