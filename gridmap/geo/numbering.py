"""Number grids west to east within rows, rows north to south (Beijing DB11/T 2157-2023)."""

from __future__ import annotations

import numpy as np
import shapely

__all__ = ["number_west_east_north_south"]


def number_west_east_north_south(geoms) -> np.ndarray:
    """Give each grid its 1-based sequence number, reading the map like a page.

    Grids are grouped into rows from north to south and numbered west to east
    within a row, as DB11/T 2157-2023 numbers grid cells. A 3×3 block of unit
    squares (y grows northwards) is numbered::

        y=3 +---+---+---+
            | 1 | 2 | 3 |
        y=2 +---+---+---+
            | 4 | 5 | 6 |
        y=1 +---+---+---+
            | 7 | 8 | 9 |
        y=0 +---+---+---+
           x=0  1   2   3

    Each geometry is represented by :func:`shapely.point_on_surface` (inside even
    an L-shaped grid, unlike a centroid). Points are sorted by y descending; a new
    row starts when a point lies lower than the first point of the current row by
    more than half the median bounding-box height of all geometries, so small
    jitter does not split a row. Within a row points are sorted by x ascending.
    Ties break by y descending and then by input order, so the result is
    deterministic.

    Parameters
    ----------
    geoms : array_like of shapely geometries or geopandas.GeoSeries
        Grid outlines (or any geometries) in a CRS whose y axis points north,
        e.g. WGS84 lon/lat or a local metric CRS.

    Returns
    -------
    numpy.ndarray of int64
        ``out[i]`` is the sequence number of ``geoms[i]``.
    """
    if hasattr(geoms, "geometry"):
        geoms = geoms.geometry.array
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    points = shapely.point_on_surface(geoms)
    x = shapely.get_x(points)
    y = shapely.get_y(points)
    bounds = shapely.bounds(geoms)
    heights = bounds[:, 3] - bounds[:, 1]
    tolerance = 0.5 * float(np.median(heights)) if n else 0.0

    # lexsort: last key is primary -> y descending, then x, then input order.
    order = np.lexsort((np.arange(n), x, -y))
    row_of = np.empty(n, dtype=np.int64)
    row, row_top = 0, y[order[0]]
    for i in order:  # one pass over sorted points; rows depend on the previous row's start
        if row_top - y[i] > tolerance:
            row += 1
            row_top = y[i]
        row_of[i] = row
    final = np.lexsort((np.arange(n), -y, x, row_of))
    numbers = np.empty(n, dtype=np.int64)
    numbers[final] = np.arange(1, n + 1)
    return numbers
