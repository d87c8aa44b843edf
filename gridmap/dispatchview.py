"""What the dispatcher's panel shows for a point, and the incident heat layer, computed in metres."""
from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Transformer

from . import catalog, lookup

NEAR_GRID_RADIUS_M = 30.0  # closer than this to another grid, a dispatcher should check which grid answers
_M_PER_DEG_LAT = 110_574.0  # the smallest metres per degree of latitude: a box that is never too small


def near_other_grids(snapshot, lon, lat, radius_m=NEAR_GRID_RADIUS_M):
    """Grids other than the point's own that lie within ``radius_m`` metres of a WGS84 point.

    Distances are measured in the snapshot's local metric CRS, never in degrees. The point's own
    grid is the one :meth:`Snapshot.grid_at` picks (on a shared edge, the lowest code), so a point
    on a shared edge lists the neighbour at 0 m.

    Returns
    -------
    list of dict
        ``code``, ``name``, ``community_code``, ``distance_m`` (0.1 m), nearest first.
    """
    grids = snapshot.grids
    if not len(grids):
        return []
    own = snapshot.grid_at(lon, lat)
    # A lon/lat box a little larger than the circle picks candidates; metres decide.
    dlat = radius_m / _M_PER_DEG_LAT * 1.01
    dlon = dlat / max(math.cos(math.radians(abs(lat) + dlat)), 1e-6)
    box = shapely.box(lon - dlon, lat - dlat, lon + dlon, lat + dlat)
    hits = grids.sindex.query(box, predicate="intersects")
    hits = [int(i) for i in hits if int(i) != own]
    if not hits:
        return []
    to_metric = Transformer.from_crs(4326, snapshot.metric_crs, always_xy=True)
    point = shapely.Point(*to_metric.transform(lon, lat))
    out = []
    for i in hits:
        row = grids.iloc[i]
        d = shapely.transform(row.geometry, lambda xy: np.column_stack(to_metric.transform(xy[:, 0], xy[:, 1])))
        dist = float(d.distance(point))
        if dist <= radius_m:
            out.append({"code": row["code"], "name": row.get("name") or row["code"],
                        "community_code": row.get("community_code"), "distance_m": round(dist, 1)})
    return sorted(out, key=lambda g: (g["distance_m"], g["code"]))


def panel(snapshot, lon, lat, *, role=None, k=3, mode="car"):
    """Everything the dispatcher's side panel shows about a WGS84 point.

    ``lookup.locate`` (district › street › community › grid, workers with phones as ``role`` may
    see them, party branch), the cameras that see the point, the ``k`` nearest of each responder
    kind and of volunteers with straight-line and, where roads exist, road distance and ETA, and
    the grids within :data:`NEAR_GRID_RADIUS_M` of the point besides its own.

    Raises NotFound when the point lies in no community gridmap knows.
    """
    out = lookup.locate(snapshot, lon, lat, role=role)
    out["cameras"] = [{key: c.get(key) for key in ("id", "name", "distance_m", "bearing")}
                      for c in snapshot.cameras_seeing(lon, lat)]
    kinds = list(catalog.RESPONDER_KINDS) + ["volunteer"]
    out["responders"] = {}
    basis = "straight line"
    for kind in kinds:
        found = lookup.nearest(snapshot, lon=lon, lat=lat, kind=kind, k=k, by="road", mode=mode, role=role)
        out["responders"][kind] = found["results"]
        if found["distance_basis"] == "road":
            basis = "road"
    out["distance_basis"] = basis
    out["near_other_grids"] = near_other_grids(snapshot, lon, lat)
    return out


def heat_cells(heatmap, metric_crs, *, cell_m=100.0):
    """Incident counts on a square grid of ``cell_m`` metres, as WGS84 polygons.

    Parameters
    ----------
    heatmap : list of [lat, lon, weight]
        As ``dispatch.statistics(...)["heatmap"]`` gives them.
    metric_crs : pyproj CRS
        The local metric CRS the cells are square in (``Snapshot.metric_crs``).

    Returns
    -------
    GeoDataFrame
        ``count`` (summed weights) per non-empty cell, WGS84, largest count first.
    """
    if not len(heatmap):
        return gpd.GeoDataFrame({"count": []}, geometry=[], crs=4326)
    pts = np.asarray(heatmap, dtype=float)
    x, y = Transformer.from_crs(4326, metric_crs, always_xy=True).transform(pts[:, 1], pts[:, 0])
    ix, iy = np.floor(np.asarray(x) / cell_m).astype(np.int64), np.floor(np.asarray(y) / cell_m).astype(np.int64)
    keys, inverse = np.unique(np.column_stack([ix, iy]), axis=0, return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=pts[:, 2])
    boxes = shapely.box(keys[:, 0] * cell_m, keys[:, 1] * cell_m, (keys[:, 0] + 1) * cell_m, (keys[:, 1] + 1) * cell_m)
    cells = gpd.GeoDataFrame({"count": counts}, geometry=boxes, crs=metric_crs).to_crs(4326)
    return cells.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)
