"""The one grid-code rule: 15 digits, numbered west→east along rows north→south, never reused.

A grid's code is its community's 12-digit statistical code and a 3-digit sequence number.
Grid workers and party branches follow codes from one plan generation to the next, so a code
means one place for as long as anyone remembers it: a new grid takes the lowest sequence number
its community has never used, however it was made (an imported file without codes, an automatic
partition, a split). Codes a file or a planner gives are kept as given.
"""

from __future__ import annotations

import re

import numpy as np
import shapely

from .errors import InvalidInput, N_

__all__ = ["MAX_SEQUENCE", "grid_code", "grid_name", "sequence_of", "allocate", "number_west_east_north_south"]

#: Three digits: a community holds at most 999 grids over its whole history.
MAX_SEQUENCE = 999
_CODE15 = re.compile(r"\d{15}")


def grid_code(community_code, seq):
    """The 15-digit code of grid ``seq`` (1–999) of a community with a 12-digit code."""
    if not (1 <= int(seq) <= MAX_SEQUENCE):
        raise InvalidInput(N_("Grid sequence %(seq)s is outside 1–%(MAX_SEQUENCE)s."),
                           fix=N_("A community holds at most %(MAX_SEQUENCE)s grids over its history."),
                           params={"seq": seq, "MAX_SEQUENCE": MAX_SEQUENCE})
    return f"{str(community_code)[:12]}{int(seq):03d}"


def grid_name(community_name, code):
    """The name a new grid gets until someone names it: 城志社区第7网格."""
    return f"{community_name}第{int(str(code)[-3:])}网格"


def sequence_of(code):
    """The sequence number a code takes up: its last three characters when they are ASCII digits
    (a 15-digit grid code, a bare "007", a department's "A-007"), None for anything else."""
    text = str(code or "")
    tail = text[-3:]
    return int(tail) if len(tail) == 3 and tail.isascii() and tail.isdigit() else None


def allocate(geoms, *, taken=(), community_code=None, new=None):
    """Codes for new grids: west→east, north→south, each the lowest sequence not in ``taken``.

    Parameters
    ----------
    geoms : array_like of shapely geometries
        The grids of the plan (or only the new ones), in any CRS whose y axis points north. The
        reading order is that of all of them, so a new grid between kept ones is read in its place.
    taken : iterable of str or int
        Codes (or sequence numbers) that may not be used: those kept in the plan and every code
        the community's published plans have ever used.
    community_code : str, optional
        12-digit community code; without it the codes are bare sequences ("001").
    new : array_like of bool, optional
        Which of ``geoms`` get a code; default all.

    Returns
    -------
    list of str
        One code per new geometry, in the order of ``geoms``.

    Raises
    ------
    InvalidInput
        When the community would need a sequence number above 999 (bare sequences, without a
        community, have no such limit).
    """
    geoms = np.asarray(geoms.geometry.array if hasattr(geoms, "geometry") else geoms, dtype=object)
    new = np.ones(len(geoms), dtype=bool) if new is None else np.asarray(new, dtype=bool)
    order = [i for i in np.argsort(number_west_east_north_south(geoms), kind="stable") if new[i]]
    used = {s for s in (t if isinstance(t, (int, np.integer)) else sequence_of(t) for t in taken) if s}
    last = MAX_SEQUENCE if community_code else MAX_SEQUENCE + len(order) + len(used)
    free = (s for s in range(1, last + 1) if s not in used)
    codes = {}
    for i in order:
        seq = next(free, None)
        if seq is None:
            raise InvalidInput(N_("%(order)s new grids need more sequence numbers than the %(value)s that are left "
                                  "(1–%(MAX_SEQUENCE)s, never reused)."),
                               fix=N_("Make fewer grids, or keep the codes of grids that continue earlier ones."),
                               details={"new_grids": len(order), "used": len(used)},
                               params={"order": len(order), "value": MAX_SEQUENCE - len(used),
                                       "MAX_SEQUENCE": MAX_SEQUENCE})
        codes[i] = grid_code(community_code, seq) if community_code else f"{seq:03d}"
    return [codes[i] for i in sorted(codes)]


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
    tolerance = 0.5 * float(np.median(heights))

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
