"""Department grids: importing each department's legacy grids, and the crosswalk to the unified grids."""
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import MultiPolygon, box
from sqlalchemy import func, select

from gridmap import demo, plans
from gridmap.plans import departments
from gridmap.errors import NotFound
from gridmap.geo.crs import local_metric_crs
from gridmap.store import models as m

from test_plans import CODE, add_buildings, community, g, grids, lonlat

CHENGZHI = "210213013004"


def department_file(tmp_path, geoms, codes, name="police.geojson", **extra):
    path = tmp_path / name
    gpd.GeoDataFrame({"code": codes, "name": [f"警格{c}" for c in codes], **extra},
                     geometry=[lonlat(x) for x in geoms], crs=4326).to_file(path)
    return path


def hand_made(session):
    """Unified grids 001 | 002 and the police's grids P1 | P2, drawn across them::

        unified  +-----------+-----------+        police  +-----------------+-----+
                 |    001    |    002    |                |       P1        | P2  |
                 | [b1]      | [b2] [b3] |                | [b1]      [b2]  |[b3] |
                 +-----------+-----------+                +-----------------+-----+
                 0          100         200               0                150   200

    b1 10 households, b2 20, b3 30.
    """
    community(session, box(0, 0, 200, 100))
    add_buildings(session, [(box(20, 40, 30, 50), 10), (box(120, 40, 130, 50), 20), (box(170, 40, 180, 50), 30)])
    return plans.publish(session, plans.create_plan(session, CODE, grids(box(0, 0, 100, 100),
                                                                         box(100, 0, 200, 100))))


@pytest.fixture
def police(app, tmp_path):
    store = app.extensions["gridmap.store"]
    with store.transaction() as s:
        hand_made(s)
    path = department_file(tmp_path, [box(0, 0, 150, 100), box(150, 0, 200, 100)], ["P1", "P2"])
    out = app.test_cli_runner().invoke(args=["import", "department-grids", str(path), "--department", "公安"])
    assert out.exit_code == 0, out.output
    assert "公安: 2 grids in 210213013099" in out.output
    return store


def test_the_crosswalk_gives_area_and_household_shares_both_ways(police):
    with police.session() as s:
        cw = plans.crosswalk(s, CODE)
    got = [(r["department_code"], r["grid_code"], r["area_m2"], r["area_share_of_department_grid"],
            r["area_share_of_grid"], r["households"], r["household_share_of_department_grid"],
            r["household_share_of_grid"]) for r in cw["rows"]]
    approx = pytest.approx
    assert got == [
        ("P1", g(1), approx(10000, rel=1e-3), approx(2 / 3, abs=1e-4), approx(1.0, abs=1e-4), 10, approx(1 / 3),
         approx(1.0)),
        ("P1", g(2), approx(5000, rel=1e-3), approx(1 / 3, abs=1e-4), approx(0.5, abs=1e-4), 20, approx(2 / 3),
         approx(0.4)),
        ("P2", g(2), approx(5000, rel=1e-3), approx(1.0, abs=1e-4), approx(0.5, abs=1e-4), 30, approx(1.0),
         approx(0.6)),
    ]
    assert [(d["code"], d["households"], d["grids"]) for d in cw["department_grids"]] == \
        [("P1", 30, [g(1), g(2)]), ("P2", 30, [g(2)])]


def test_shares_sum_to_one_over_each_department_grid_and_each_unified_grid(police):
    with police.session() as s:
        cw = plans.crosswalk(s, CODE)
    rows = pd.DataFrame(cw["rows"])
    for column, by in [("area_share_of_department_grid", "department_grid_id"),
                       ("household_share_of_department_grid", "department_grid_id"),
                       ("area_share_of_grid", "grid_code"), ("household_share_of_grid", "grid_code")]:
        assert rows.groupby(by)[column].sum().to_numpy() == pytest.approx(1.0, abs=1e-5), column
    assert [(d["covered_area_share"], d["covered_household_share"]) for d in cw["department_grids"]] == \
        [(pytest.approx(1.0, abs=1e-5), pytest.approx(1.0))] * 2
    assert [(u["grid_code"], u["department"], u["department_grids"]) for u in cw["grids"]] == \
        [(g(1), "公安", ["P1"]), (g(2), "公安", ["P1", "P2"])]
    assert [u["covered_household_share"] for u in cw["grids"]] == [pytest.approx(1.0)] * 2


def test_a_department_grid_reaching_past_the_unified_grids_is_covered_only_in_part(app, tmp_path):
    """The civil affairs grid M1 runs 50 m east beyond the community (x 100..250): a third of it
    lies in no unified grid, so its area shares sum to 2/3, not 1; its households (b2, b3) are all inside."""
    with app.extensions["gridmap.store"].transaction() as s:
        hand_made(s)
    path = department_file(tmp_path, [box(100, 0, 250, 100)], ["M1"], name="civil.geojson")
    assert app.test_cli_runner().invoke(
        args=["import", "department-grids", str(path), "--department", "民政"]).exit_code == 0
    with app.extensions["gridmap.store"].session() as s:
        (m1,) = plans.crosswalk(s, CODE)["department_grids"]
    assert m1["covered_area_share"] == pytest.approx(2 / 3, abs=1e-4)
    assert (m1["households"], m1["covered_household_share"]) == (50, pytest.approx(1.0))


def test_the_crosswalk_csv_has_its_columns_and_one_row_per_overlap(app, police, tmp_path):
    path = tmp_path / "cw.csv"
    out = app.test_cli_runner().invoke(args=["crosswalk", CODE, "--out", str(path)])
    assert out.exit_code == 0 and "Wrote 3 rows" in out.output
    back = pd.read_csv(path, encoding="utf-8-sig", dtype={"grid_code": str})
    assert list(back.columns) == departments.COLUMNS
    assert back[["department", "department_code", "grid_code", "households"]].values.tolist() == \
        [["公安", "P1", g(1), 10], ["公安", "P1", g(2), 20], ["公安", "P2", g(2), 30]]


def test_the_crosswalk_api_answers_json_and_names_bad_input(app, police):
    c = app.test_client()
    body = c.get(f"/api/v1/crosswalk?community={CODE}").get_json()
    assert len(body["rows"]) == 3 and body["plan"]["status"] == "published"
    assert [f["properties"]["code"] for f in body["department_features"]["features"]] == ["P1", "P2"]
    r = c.get("/api/v1/crosswalk")
    assert r.status_code == 400 and "community=None" in r.get_json()["message"]
    r = c.get("/api/v1/crosswalk?community=21021301309x")
    assert r.status_code == 400 and "'21021301309x'" in r.get_json()["message"]
    assert c.get(f"/api/v1/crosswalk?community={CODE}&plan=nope").status_code == 400


def test_a_community_without_department_grids_is_told_how_to_import_them(app):
    with app.extensions["gridmap.store"].transaction() as s:
        hand_made(s)
        with pytest.raises(NotFound, match="gridmap import department-grids"):
            plans.crosswalk(s, CODE)


# --- the import border --------------------------------------------------------------------------

def test_a_second_import_of_a_department_replaces_its_grids_and_keeps_the_others(app, police, tmp_path):
    run = app.test_cli_runner().invoke
    civil = department_file(tmp_path, [box(0, 0, 200, 100)], ["M1"], name="civil.geojson")
    assert run(args=["import", "department-grids", str(civil), "--department", "民政"]).exit_code == 0
    again = department_file(tmp_path, [box(0, 0, 100, 100), box(100, 0, 200, 100)], ["P7", "P8"], name="p2.geojson")
    out = run(args=["import", "department-grids", str(again), "--department", "公安"])
    assert out.exit_code == 0 and "replaced 2 earlier 公安 grids" in out.output
    with police.session() as s:
        rows = s.execute(select(m.DepartmentGrid.department, m.DepartmentGrid.code, m.DepartmentGrid.community_code)
                         .order_by(m.DepartmentGrid.department, m.DepartmentGrid.code)).all()
    assert [tuple(r) for r in rows] == [("公安", "P7", CODE), ("公安", "P8", CODE), ("民政", "M1", CODE)]


def test_department_grids_need_a_department_and_a_community_and_write_nothing_otherwise(app, tmp_path):
    with app.extensions["gridmap.store"].transaction() as s:
        hand_made(s)
    run = app.test_cli_runner().invoke
    path = department_file(tmp_path, [box(0, 0, 150, 100)], ["P1"])
    missing = run(args=["import", "department-grids", str(path)])
    assert missing.exit_code == 2 and "--department None" in missing.output
    wrong_kind = run(args=["import", "roads", str(path), "--department", "公安"])
    assert wrong_kind.exit_code == 2 and "applies only to department-grids" in wrong_kind.output
    far = department_file(tmp_path, [box(0, 0, 150, 100), box(5000, 5000, 5100, 5100)], ["P1", "P9"],
                          name="far.geojson")
    nowhere = run(args=["import", "department-grids", str(far), "--department", "公安"])
    assert nowhere.exit_code == 2 and "feature 2 (P9)" in nowhere.output and "no imported community" in nowhere.output
    with app.extensions["gridmap.store"].session() as s:
        assert s.scalar(select(func.count()).select_from(m.DepartmentGrid)) == 0


def test_department_grids_export_like_any_kind(app, police, tmp_path):
    path = tmp_path / "dept.csv"
    out = app.test_cli_runner().invoke(args=["export", "department-grids", str(path)])
    assert out.exit_code == 0
    back = pd.read_csv(path, encoding="utf-8-sig", dtype=str)
    assert back[["department", "community_code", "code"]].values.tolist() == [["公安", CODE, "P1"], ["公安", CODE, "P2"]]


# --- the demo: synthetic department layers made from 城志社区's 18 grids ----------------------------

@pytest.mark.slow
def test_on_the_demo_merged_and_shifted_department_layers_have_shares_summing_to_one(app, demo_frames, tmp_path):
    """民政 (civil affairs) drew 9 grids, each two unified grids merged (001+002, 003+004, …);
    公安 (police) drew the 18 grids shifted 30 m east. Every 民政 grid lies wholly in the unified grids,
    so both its share sums are 1; a shifted 公安 grid sums to the part of it inside the community."""
    store = app.extensions["gridmap.store"]
    demo.build(store, frames=demo_frames)
    unified = demo_frames["grids"][demo_frames["grids"]["community_code"] == CHENGZHI].sort_values("code")
    merged = [shapely.union_all(unified.geometry.values[i:i + 2]) for i in range(0, len(unified), 2)]
    crs = local_metric_crs(*np.asarray(unified.union_all().centroid.coords[0]))
    shifted = gpd.GeoSeries(unified.geometry.values, crs=4326).to_crs(crs).translate(30, 0).to_crs(4326)
    civil, police_path = tmp_path / "civil.gpkg", tmp_path / "police.gpkg"
    gpd.GeoDataFrame({"code": [f"M{i + 1}" for i in range(len(merged))]},
                     geometry=[x if x.geom_type == "MultiPolygon" else MultiPolygon([x]) for x in merged],
                     crs=4326).to_file(civil)
    gpd.GeoDataFrame({"code": [f"P{c[-3:]}" for c in unified["code"]]}, geometry=shifted.values,
                     crs=4326).to_file(police_path)
    run = app.test_cli_runner().invoke
    for path, dept in ((civil, "民政"), (police_path, "公安")):
        out = run(args=["import", "department-grids", str(path), "--department", dept])
        assert out.exit_code == 0, out.output
    with store.session() as s:
        cw = plans.crosswalk(s, CHENGZHI)
    rows = pd.DataFrame(cw["rows"])
    civ = rows[rows["department"] == "民政"]
    assert civ["department_code"].nunique() == 9
    for column in ("area_share_of_department_grid", "household_share_of_department_grid"):
        assert civ.groupby("department_grid_id")[column].sum().to_numpy() == pytest.approx(1.0, abs=1e-4)
    for column in ("area_share_of_grid", "household_share_of_grid"):
        assert civ.groupby("grid_code")[column].sum().to_numpy() == pytest.approx(1.0, abs=1e-4)
        # the police cover every unified grid but a 30 m strip along the community's west edge
    community = demo_frames["communities"].set_index("code").geometry[CHENGZHI]
    for d in cw["department_grids"]:
        if d["department"] != "公安":
            continue
        geom = gpd.GeoSeries([shifted.values[[f"P{c[-3:]}" for c in unified["code"]].index(d["code"])]], crs=4326)
        inside = geom.intersection(community).to_crs(crs).area.iloc[0] / geom.to_crs(crs).area.iloc[0]
        assert d["covered_area_share"] == pytest.approx(inside, abs=1e-4), d["code"]
        if d["households"]:
            assert d["covered_household_share"] == pytest.approx(1.0)  # every demo building lies in a unified grid
    police_rows = rows[rows["department"] == "公安"]
    assert police_rows["households"].sum() == \
        sum(d["households"] for d in cw["department_grids"] if d["department"] == "公安")
    assert [u["covered_household_share"] for u in cw["grids"] if u["department"] == "民政"] == \
        [pytest.approx(1.0)] * 18
