"""Where a map label sits and how much room its polygon leaves it (maps/labels.py; the browser decides the rest)."""
import json
import re

import geopandas as gpd
import pytest
import shapely

from gridmap.maps import labels


def test_a_rectangles_label_sits_in_its_middle_with_the_whole_rectangle_as_its_room():
    item = labels.label_item("009", shapely.box(0, 0, 2, 1), key="grid:210213013004009")
    assert (item["lng"], item["lat"]) == (1.0, 0.5)
    assert item["room"] == [0.0, 2.0, 0.0, 1.0]
    assert item["key"] == "grid:210213013004009" and item["text"] == "009"


def test_a_u_shaped_grids_label_sits_in_one_arm_and_its_room_is_that_arm_not_the_whole_width():
    """
        +--+   +--+ 3
        |  |   |  |
        |  +---+  | 1
        |         |
        +---------+ 0
        0  1   2  3
    """
    u = shapely.Polygon([(0, 0), (3, 0), (3, 3), (2, 3), (2, 1), (1, 1), (1, 3), (0, 3)])
    item = labels.label_item("u", u)
    anchor = shapely.Point(item["lng"], item["lat"])
    assert u.contains(anchor)
    west, east, south, north = item["room"]
    # the runs through the anchor lie inside the polygon and end on its boundary (an independent check)
    assert u.buffer(1e-9).contains(shapely.LineString([(west, item["lat"]), (east, item["lat"])]))
    assert u.buffer(1e-9).contains(shapely.LineString([(item["lng"], south), (item["lng"], north)]))
    for x, y in [(west, item["lat"]), (east, item["lat"]), (item["lng"], south), (item["lng"], north)]:
        assert u.exterior.distance(shapely.Point(x, y)) == pytest.approx(0, abs=1e-9)
    assert east - west < 3  # not the width of the whole U across its gap
    assert item["lng"] == pytest.approx((west + east) / 2)


def test_a_point_has_no_room_and_is_only_ever_hidden_by_a_collision():
    item = labels.label_item("城志社区", shapely.Point(121.6, 38.9), kind="community", priority=labels.COMMUNITY,
                             zoom_to=[[38.8, 121.5], [39.0, 121.7]], side="right")
    assert item["room"] is None and item["zoomTo"] == [[38.8, 121.5], [39.0, 121.7]] and item["side"] == "right"


@pytest.mark.parametrize("code,number", [("210213013004009", "009"), ("210213013004018", "018"), ("7", "7")])
def test_a_grid_is_numbered_by_the_last_three_digits_of_its_code(code, number):
    assert labels.short_number(code) == number


def test_the_map_carries_one_label_per_grid_the_focus_first_and_loads_the_script_from_the_apps_static_folder():
    from gridmap.maps import resident
    grids = gpd.GeoDataFrame({"code": ["210213013004001", "210213013004002"], "name": ["一", "二"]},
                             geometry=[shapely.box(121.60, 38.90, 121.61, 38.91), shapely.box(121.61, 38.90, 121.62, 38.91)],
                             crs=4326)
    html = resident.grid_map(grids, highlight="210213013004002", assets="/prefix/static/vendor/leaflet").get_root().render()
    assert '<script src="/prefix/static/labels.js"></script>' in html
    items = json.loads(re.search(r"window\.gridmapLabels\.add\(\w+, (\[.*?\])\);", html, re.S).group(1))
    assert [(i["text"], i["priority"]) for i in items] == [("001", labels.GRID), ("002", labels.FOCUS)]
