"""Households estimated for buildings that record none: floors × footprint ÷ floor area per household.

A community imported from a map (OpenStreetMap, a survey's footprints) often has buildings but no
household register yet. Balancing its grids by building count would put a tower and a garden shed
on the same footing, so each building without a count gets an estimate from what the map does
hold: its footprint (m², in the local metric CRS), its floors (``floors``; the median of the
buildings that have floors when it has none, :data:`DEFAULT_FLOORS` when none has) and its type
(``building``, OpenStreetMap's values; :data:`DEFAULT_TYPE` when absent). The estimate is rounded
to whole households, stated in the report and marked ``estimated`` wherever it shows.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

#: Gross floor area per household (m²) by building type: a flat of ~70 m² of living space plus
#: its share of stairs, walls and corridors (住宅 gross area ≈ 1.25 × living area), larger for
#: houses. Types missing here count as :data:`DEFAULT_TYPE`.
AREA_PER_HOUSEHOLD_M2 = {
    "residential": 90.0,
    "apartments": 85.0,
    "dormitory": 40.0,
    "house": 140.0,
    "detached": 160.0,
    "semidetached_house": 130.0,
    "terrace": 110.0,
    "bungalow": 110.0,
}
#: Types nobody lives in: their estimate is 0 households.
NON_RESIDENTIAL = frozenset({
    "commercial", "retail", "office", "industrial", "warehouse", "supermarket", "kiosk", "school",
    "kindergarten", "university", "college", "hospital", "church", "mosque", "temple", "chapel",
    "cathedral", "civic", "government", "public", "train_station", "transportation", "garage", "garages",
    "parking", "carport", "shed", "roof", "hut", "service", "transformer_tower", "greenhouse", "barn",
    "farm_auxiliary", "sports_hall", "stadium", "hotel", "construction", "bunker", "toilets",
})
DEFAULT_TYPE = "residential"
#: Floors assumed when no building of the community records any.
DEFAULT_FLOORS = 3


def _estimate(buildings, unknown, work):
    """Whole-household estimates for the rows ``unknown`` (a boolean mask) and what was assumed.

    Returns ``(households, note)``: an array for every row (0 where not unknown) and a JSON-ready
    dict for the report (``count``, ``floors_assumed``, ``floors_assumed_for``, ``no_footprint``,
    ``area_per_household_m2``), or ``(None, None)`` when no unknown row has a footprint to go on.
    """
    n = len(buildings)
    geoms = np.asarray(buildings.geometry.array, dtype=object)
    area = np.zeros(n)
    poly = np.isin(shapely.get_type_id(geoms), [3, 6])
    if poly.any():
        area[poly] = shapely.area(work.metric(geoms[poly]))
    floors = pd.to_numeric(buildings["floors"], errors="coerce").to_numpy(dtype=float) \
        if "floors" in buildings.columns else np.full(n, np.nan)
    floors = np.where(floors > 0, floors, np.nan)
    known = floors[np.isfinite(floors)]
    assumed = float(np.median(known)) if len(known) else float(DEFAULT_FLOORS)
    missing_floors = unknown & poly & ~np.isfinite(floors)
    floors = np.where(np.isfinite(floors), floors, assumed)
    kinds = buildings["building"].astype("string").fillna(DEFAULT_TYPE).str.lower().to_numpy(dtype=object) \
        if "building" in buildings.columns else np.full(n, DEFAULT_TYPE, dtype=object)
    kinds = np.where(kinds == "yes", DEFAULT_TYPE, kinds)
    per = np.array([0.0 if k in NON_RESIDENTIAL else AREA_PER_HOUSEHOLD_M2.get(k, AREA_PER_HOUSEHOLD_M2[DEFAULT_TYPE])
                    for k in kinds])
    est = np.where(per > 0, np.round(floors * area / np.maximum(per, 1e-9)), 0.0)
    with_fp = unknown & poly
    if not with_fp.any():
        return None, None
    # A building known only by a point gets the typical estimate of those with footprints.
    no_fp = unknown & ~poly
    if no_fp.any():
        est[no_fp] = float(np.median(est[with_fp]))
    out = np.where(unknown, est, 0.0)
    note = {"count": int(unknown.sum()), "floors_assumed": assumed, "floors_assumed_for": int(missing_floors.sum()),
            "no_footprint": int(no_fp.sum()), "area_per_household_m2": AREA_PER_HOUSEHOLD_M2[DEFAULT_TYPE],
            "households": float(out.sum())}
    return out, note
