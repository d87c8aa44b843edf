"""Tests for gridmap.geo.codes: the one grid-code rule, numbered west→east, north→south (DB11/T 2157-2023), never reused."""

import geopandas
import numpy as np
import pytest
from shapely.geometry import Polygon, box

from gridmap.errors import InvalidInput
from gridmap.geo.codes import allocate, grid_code, grid_name, number_west_east_north_south, sequence_of


def three_by_three():
    """Nine unit squares, listed in a scrambled order; the expected numbers are drawn in.

    y=3 +---+---+---+
        | 1 | 2 | 3 |
    y=2 +---+---+---+
        | 4 | 5 | 6 |
    y=1 +---+---+---+
        | 7 | 8 | 9 |
    y=0 +---+---+---+
       x=0  1   2   3
    """
    cells = {}
    for row in range(3):
        for col in range(3):
            cells[row * 3 + col + 1] = box(col, 2 - row, col + 1, 3 - row)
    scrambled = [5, 9, 1, 7, 3, 8, 2, 6, 4]
    return [cells[k] for k in scrambled], np.array(scrambled)


def test_three_by_three_grid_is_numbered_west_to_east_then_north_to_south():
    geoms, expected = three_by_three()
    assert number_west_east_north_south(geoms).tolist() == expected.tolist()


def test_jittered_grid_keeps_its_rows():
    geoms, expected = three_by_three()
    rng = np.random.default_rng(42)
    # Shift each cell by up to 0.2 of its size: enough to reorder raw y values across a row.
    jittered = [
        Polygon(np.asarray(g.exterior.coords) + rng.uniform(-0.2, 0.2, size=2)) for g in geoms
    ]
    assert number_west_east_north_south(jittered).tolist() == expected.tolist()


def test_l_shaped_grid_is_placed_by_its_point_on_surface_not_its_centroid():
    """An L beside two squares; numbers drawn in.

    y=2 +---+---+
        | 1 | 2 |        the L's point on surface is (0.5, 1.5): top row, west
    y=1 +   +---+---+    (its centroid (0.83, 0.83) would drop it to the bottom row)
        | 1   1 | 3 |
    y=0 +---+---+---+
       x=0  1   2   3
    """
    l_shape = Polygon([(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)])
    right_top = box(1, 1, 2, 2)
    right_low = box(2, 0, 3, 1)
    numbers = number_west_east_north_south(geopandas.GeoSeries([right_low, l_shape, right_top]))
    assert numbers.tolist() == [3, 1, 2]


def test_ties_are_broken_by_input_order():
    same = box(0, 0, 1, 1)
    assert number_west_east_north_south([same, same, same]).tolist() == [1, 2, 3]


def test_no_geometries_give_no_numbers():
    assert number_west_east_north_south([]).tolist() == []


def test_a_geodataframe_is_accepted():
    geoms, expected = three_by_three()
    frame = geopandas.GeoDataFrame({"n": range(9)}, geometry=geoms)
    assert number_west_east_north_south(frame).tolist() == expected.tolist()


def test_new_grids_take_the_lowest_numbers_never_used_in_reading_order():
    """Three new grids in a row; 001 and 003 were used by earlier plans: they get 002, 004, 005, west to east."""
    geoms = [box(2, 0, 3, 1), box(0, 0, 1, 1), box(1, 0, 2, 1)]
    codes = allocate(geoms, taken=["210213013004001", 3], community_code="210213013004")
    assert codes == ["210213013004005", "210213013004002", "210213013004004"]
    assert allocate(geoms) == ["003", "001", "002"]


def test_a_new_grid_between_kept_ones_is_read_in_its_place():
    """Kept 001 (west) and 003 (east) in one row, a new grid between them and one below: the row is
    read as a whole, so the middle one takes the first free number.

        +-----+-----+-----+
        | 001 | new | 003 |
        +-----+-----+-----+
        |      new        |
        +-----------------+
    """
    geoms = [box(0, 1, 1, 2), box(1, 1, 2, 2), box(2, 1, 3, 2), box(0, 0, 3, 1)]
    codes = allocate(geoms, taken=["001", "003"], new=[False, True, False, True])
    assert codes == ["002", "004"]
    # locked codes of other shapes still take up their last three digits
    assert allocate([box(0, 0, 1, 1)], taken=["A-002", "X"]) == ["001"]
    assert allocate([box(0, 0, 1, 1)], taken=["A-001"]) == ["002"]


def test_a_community_that_used_999_numbers_gets_a_clear_refusal():
    with pytest.raises(InvalidInput, match="never reused"):
        allocate([box(0, 0, 1, 1)], taken=range(1, 1000), community_code="210213013004")
    with pytest.raises(InvalidInput, match="outside 1–999"):
        grid_code("210213013004", 1000)


def test_codes_names_and_sequences_agree():
    code = grid_code("210213013004", 7)
    assert code == "210213013004007" and sequence_of(code) == 7 and sequence_of("007") == 7
    assert sequence_of("21021301300400X") is None and sequence_of("") is None
    assert grid_name("城志社区", code) == "城志社区第7网格"
