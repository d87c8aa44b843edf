"""partition_community's arguments: checked, and read into arrays and the count of grids to draw."""
from __future__ import annotations

import re

import geopandas
import numpy as np
import pandas as pd
import shapely

from ..errors import InvalidInput


def _check(buildings, boundary, n_grids, target_households, tolerance, community_code, cells):
    if (n_grids is None) == (target_households is None):
        raise InvalidInput("Pass exactly one of `n_grids` and `target_households`.",
                           fix="E.g. n_grids=12, or target_households=400 to let the count follow.",
                           details={"n_grids": n_grids, "target_households": target_households})
    if n_grids is not None and (isinstance(n_grids, bool) or not isinstance(n_grids, (int, np.integer))
                                or n_grids < 1):
        raise InvalidInput(f"`n_grids` was {n_grids!r} but must be a whole number ≥ 1.", fix="Pass e.g. n_grids=12.")
    if target_households is not None and not (np.isfinite(target_households) and target_households > 0):
        raise InvalidInput(f"`target_households` was {target_households!r} but must be > 0.",
                           fix="Pass e.g. target_households=400.")
    if not (0 <= tolerance < 1):
        raise InvalidInput(f"`tolerance` was {tolerance!r} but must be in [0, 1).", fix="Pass e.g. 0.05 for ±5 %.")
    if cells not in ("auto", "voronoi", "polygons"):
        raise InvalidInput(f'`cells` was "{cells}" but is expected to be in ["auto", "voronoi", "polygons"].',
                           fix='Leave it "auto" unless you know the buildings tile the area.')
    if community_code is not None and not re.fullmatch(r"\d{12}", str(community_code)):
        raise InvalidInput(f"`community_code` was {community_code!r} but must be 12 digits.",
                           fix="Pass the community's 12-digit statistical division code, e.g. 210202003001.")
    if not isinstance(buildings, geopandas.GeoDataFrame) or "households" not in buildings.columns:
        raise InvalidInput("`buildings` must be a GeoDataFrame with a `households` column.",
                           fix="Add households per building (0 where none live).")
    if not isinstance(boundary, (shapely.Polygon, shapely.MultiPolygon)) or boundary.is_empty:
        raise InvalidInput(f"`boundary` was a {type(boundary).__name__} but must be a non-empty (Multi)Polygon.",
                           fix="Pass the community outline as one shapely Polygon or MultiPolygon.")
    if not boundary.is_valid:
        raise InvalidInput(f"`boundary` is not a valid polygon: {shapely.is_valid_reason(boundary)}.",
                           fix="Repair it first (shapely.make_valid) and check its area.")
    # A missing count (None / NaN) means unknown: estimated from the footprint (see .estimate).
    missing = buildings["households"].isna().to_numpy()
    hh = pd.to_numeric(buildings["households"], errors="coerce").to_numpy(dtype=float, copy=True)
    ok = missing | (np.isfinite(hh) & (hh >= 0))
    if not ok.all():
        bad = buildings.index[~ok][:5].tolist()
        raise InvalidInput(f"`households` must be a number ≥ 0 (or missing, to be estimated) for every "
                           f"building; rows {bad} are not.",
                           fix="Put 0 where nobody lives.", details={"rows": [str(b) for b in bad]})
    hh[missing] = np.nan
    geom = buildings.geometry.array
    kinds = set(shapely.get_type_id(np.asarray(geom, dtype=object)).tolist()) if len(buildings) else set()
    if not kinds <= {0, 3, 6} or buildings.geometry.isna().any() or buildings.geometry.is_empty.any():
        raise InvalidInput("`buildings` must hold non-empty points or polygons.",
                           fix="Drop rows without a geometry; use footprints or entrance points.")
    return hh


def _locked(locked, crs):
    if locked is None or len(locked) == 0:
        return np.array([], dtype=object), []
    series = locked.geometry if hasattr(locked, "geometry") else locked
    if crs is not None and series.crs is not None and series.crs != crs:
        raise InvalidInput("`locked` is in another CRS than the buildings.", fix=f"Convert it with .to_crs({crs!r}).")
    geoms = np.asarray(series.array if hasattr(series, "array") else series, dtype=object)
    if not np.isin(shapely.get_type_id(geoms), [3, 6]).all():
        raise InvalidInput("`locked` must hold polygons.", fix="Pass the grids to keep as (Multi)Polygons.")
    codes = [str(c) if isinstance(c, str) and c else None for c in locked["code"]] \
        if isinstance(locked, geopandas.GeoDataFrame) and "code" in locked.columns else [None] * len(geoms)
    return geoms, codes


def _in_crs(frame_or_series, crs):
    """The geometries of a GeoDataFrame, GeoSeries or sequence as an object array in ``crs``."""
    series = frame_or_series.geometry if hasattr(frame_or_series, "geometry") else frame_or_series
    if crs is not None and getattr(series, "crs", None) is not None and series.crs != crs:
        series = series.to_crs(crs)
    return np.asarray(series.array if hasattr(series, "array") else series, dtype=object)


def _lines(barriers, crs):
    if barriers is None or len(barriers) == 0:
        return np.array([], dtype=object)
    geoms = _in_crs(barriers, crs)
    return geoms[~shapely.is_empty(geoms) & ~shapely.is_missing(geoms)]


def _points(seeds, crs, name):
    if seeds is None or len(seeds) == 0:
        return np.array([], dtype=object)
    geoms = _in_crs(seeds, crs)
    if not (shapely.get_type_id(geoms) == 0).all():
        raise InvalidInput(f"`{name}` must hold points.", fix="Pass e.g. service stations as a GeoSeries of points.")
    return geoms


def _grid_count(n_grids, target_households, households, n_locked, findings):
    if n_grids is not None:
        return max(int(n_grids) - n_locked, 0)
    if households <= 0:
        return 1
    low = max(int(households // target_households), 1)
    # The count whose ideal is nearest to the target in relative terms: 5,300 at 1,000 → 5 (1,060).
    return min((low, low + 1), key=lambda k: (abs(households / k / target_households - 1), k))
