"""`gridmap coverage NAME --place`: suggested cameras printed and written for `gridmap import cameras`.

The figures printed are checked against the file written and against an independent recount of the
coverage (gridmap.coverage.coverage over the demo generator's own frames plus the written sites).
"""
import re

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from gridmap import coverage as cv
from test_coverage import _hehe_metric

SITE_LINE = re.compile(r"^\s+(\d+)\s+(-?\d+\.\d{6}), (-?\d+\.\d{6})\s+bearing\s+(\d+\.\d)°\s+(.+?)$", re.M)


def test_place_prints_the_current_coverage_the_new_cameras_and_what_they_reach(demo_app, demo_frames, tmp_path):
    out = tmp_path / "sites.csv"
    result = demo_app.test_cli_runner().invoke(
        args=["coverage", "和合大院", "--place", "--target", "90", "--fov", "90", "--range", "40", "--bearings", "8",
              "--output", str(out)])
    print(result.output)
    assert result.exit_code == 0, result.output
    before = float(re.search(r"25 cameras, public area \d+ m², coverage ([\d.]+) %", result.output).group(1))
    n = int(re.search(r"(\d+) new cameras \(fov 90°, range 40 m\)", result.output).group(1))
    reached = float(re.search(r"coverage reached ([\d.]+) % \(target 90 % reached", result.output).group(1))
    assert before < 90 <= reached and n > 0
    assert re.search(r"method (ilp: optimal for the cells|greedy: at most H\(Δ\))", result.output)
    sites = SITE_LINE.findall(result.output)
    assert [int(s[0]) for s in sites] == list(range(1, n + 1))
    assert {s[4].split("  ")[0] for s in sites} <= set(cv.SITE_KINDS.values())

    # the file holds the printed cameras, with the importer's columns
    table = pd.read_csv(out)
    assert {"name", "lon", "lat", "bearing", "fov", "range_m", "courtyard"} <= set(table.columns)
    assert len(table) == n and set(table["courtyard"]) == {"和合大院"}
    assert [(f"{lo:.6f}", f"{la:.6f}", f"{b:.1f}") for lo, la, b in zip(table["lon"], table["lat"], table["bearing"])] \
        == [s[1:4] for s in sites]

    # an independent recount: the generator's cameras and footprints plus the written sites
    crs, area, footprints, cams = _hehe_metric(demo_frames)
    new = gpd.GeoDataFrame(table[["bearing", "fov", "range_m"]],
                           geometry=shapely.points(table[["lon", "lat"]].to_numpy()), crs=4326).to_crs(crs)
    both = gpd.GeoDataFrame(pd.concat([cams, new], ignore_index=True), geometry="geometry", crs=crs)
    assert cv.coverage(cams, area, footprints)["percent"] == pytest.approx(before, abs=0.051)
    assert cv.coverage(both, area, footprints)["percent"] == pytest.approx(reached, abs=0.051)


def test_the_written_geojson_imports_through_the_import_command(demo_app, tmp_path):
    from gridmap import importer
    out = tmp_path / "sites.geojson"
    result = demo_app.test_cli_runner().invoke(args=["coverage", "和合大院", "--place", "--target", "80",
                                                     "--output", str(out)])
    assert result.exit_code == 0, result.output
    n = int(re.search(r"(\d+) new cameras", result.output).group(1))
    assert f"written to {out}" in result.output
    raw = importer.read("cameras", out)
    assert len(raw.frame) == n and raw.frame.geometry.geom_type.eq("Point").all()
    with demo_app.extensions["gridmap.store"].session() as s:
        try:
            summary = importer.import_layer(s, "cameras", raw)
            assert summary.imported == n and not summary.rejected
            assert cv.report_for(s, "和合大院")["percent"] >= 80
        finally:
            s.rollback()


@pytest.mark.parametrize("options, says, fix", [
    (["--target", "0"], "target was 0.0", "--target 95"),
    (["--target", "120"], "target was 120.0", "--target 95"),
    (["--target", "nan"], "target was nan", "--target 95"),
    (["--fov", "0"], "fov was 0.0", "--fov 90"),
    (["--fov", "400"], "fov was 400.0", "--fov 90"),
    (["--range", "-5"], "range was -5.0", "--range 40"),
    (["--range", "0"], "range was 0.0", "--range 40"),
    (["--range", "5000"], "range was 5000.0", "--range 40"),  # the importer would refuse the sites file
    (["--fov", "0.5"], "fov was 0.5", "--fov 90"),
    (["--bearings", "0"], "bearings was 0", "--bearings 8"),
    (["--time-limit", "-1"], "--time-limit was -1", "--time-limit 20"),
    (["--output", "sites.txt"], "ends in '.txt'", ".geojson or .csv"),
    (["--output", "no/such/dir/sites.csv"], "does not exist", "Create the folder"),
])
def test_place_refuses_a_bad_option_naming_it_and_the_fix(demo_app, tmp_path, monkeypatch, options, says, fix):
    monkeypatch.chdir(tmp_path)
    result = demo_app.test_cli_runner().invoke(args=["coverage", "和合大院", "--place", *options])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # a message, not a traceback
    assert "Traceback" not in result.output
    assert "Error: " in result.output and says in result.output
    assert "Fix:" in result.output and fix in result.output
    # refused before any work: nothing computed, printed or written
    assert "placement to" not in result.output and not list(tmp_path.rglob("sites.*"))


def test_placement_options_without_place_are_refused(demo_app):
    result = demo_app.test_cli_runner().invoke(args=["coverage", "和合大院", "--target", "95", "--output", "x.csv"])
    assert result.exit_code == 2
    assert "--target, --output only apply to a placement" in result.output and "Add --place" in result.output


def test_a_non_number_is_refused_by_the_option_parser(demo_app):
    result = demo_app.test_cli_runner().invoke(args=["coverage", "和合大院", "--place", "--range", "far"])
    assert result.exit_code == 2 and "'far' is not a valid float" in result.output


def test_an_unreachable_target_is_said_with_what_to_change(demo_app):
    # 10 m cameras, two directions a site: all the candidates together see far less than everything
    result = demo_app.test_cli_runner().invoke(args=["coverage", "和合大院", "--place", "--target", "100",
                                                     "--fov", "30", "--range", "10", "--bearings", "2"])
    assert result.exit_code == 3, result.output  # a missed target fails, for scripts too
    reached = float(re.search(r"coverage reached ([\d.]+) % \(target 100 % NOT reached", result.output).group(1))
    assert 55.9 < reached < 100
    assert "Error: target 100 % NOT reached" in result.output
    assert "every candidate site at every bearing that adds any public space is used" in result.output
    assert "widen --fov or --range" in result.output
    assert "method greedy: at most H(Δ)" in result.output


def test_a_zero_time_limit_takes_the_greedy_answer_with_its_bound(demo_app):
    result = demo_app.test_cli_runner().invoke(args=["coverage", "和合大院", "--place", "--target", "90",
                                                     "--time-limit", "0"])
    assert result.exit_code == 0, result.output
    assert "method greedy: at most H(Δ)" in result.output and "target 90 % reached" in result.output
    exact = demo_app.test_cli_runner().invoke(args=["coverage", "和合大院", "--place", "--target", "90"])
    n = lambda out: int(re.search(r"(\d+) new cameras", out).group(1))  # noqa: E731
    assert "method ilp" in exact.output and n(exact.output) <= n(result.output)
