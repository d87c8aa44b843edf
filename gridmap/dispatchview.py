"""What the dispatcher's panel shows for a point, and the incident heat layer, computed in metres."""
from __future__ import annotations

import math
import threading
import weakref

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Transformer

from . import catalog, lookup

NEAR_GRID_RADIUS_M = 30.0  # closer than this to another grid, a dispatcher should check which grid answers


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
    if not len(snapshot.grids):
        return []
    grids = _metric_grids(snapshot)
    x, y = grids.to_metric.transform(lon, lat)
    if not (math.isfinite(x) and math.isfinite(y)):
        return []  # a transverse Mercator cannot reach the point: no grid is anywhere near it
    point = shapely.Point(x, y)
    hits = grids.tree.query(point, predicate="dwithin", distance=radius_m)
    own = snapshot.grid_at(lon, lat)
    hits = hits[hits != own]
    if not len(hits):
        return []
    dist = shapely.distance(grids.geoms[hits], point)
    out = [{"code": grids.codes[i], "name": grids.names[i] or grids.codes[i],
            "community_code": grids.communities[i], "distance_m": round(d, 1)}
           for i, d in zip(hits.tolist(), dist.tolist()) if d <= radius_m]
    return sorted(out, key=lambda g: (g["distance_m"], g["code"]))


class _MetricGrids:
    """The snapshot's grids projected once into its metric CRS, with an STRtree in metres.

    Projecting the candidates per request cost a pyproj ``Transformer`` (~20 ms to build) and a
    pandas row each; a snapshot lives for a whole published generation, so this is built once.
    """

    def __init__(self, snapshot):
        self.to_metric = Transformer.from_crs(4326, snapshot.metric_crs, always_xy=True)
        grids = snapshot.grids
        wgs = np.asarray(grids.geometry.values, dtype=object)
        self.geoms = shapely.transform(wgs, lambda xy: np.column_stack(self.to_metric.transform(xy[:, 0], xy[:, 1])))
        self.tree = shapely.STRtree(self.geoms)
        self.codes = grids["code"].tolist()
        self.names = grids["name"].tolist()
        self.communities = grids["community_code"].tolist()


# Keyed by the snapshot itself: a new published generation is a new snapshot, and the old one's
# entry goes with it.
_METRIC_GRIDS = weakref.WeakKeyDictionary()
_METRIC_GRIDS_LOCK = threading.Lock()


def _metric_grids(snapshot):
    found = _METRIC_GRIDS.get(snapshot)
    if found is None:
        with _METRIC_GRIDS_LOCK:
            found = _METRIC_GRIDS.get(snapshot)
            if found is None:
                found = _METRIC_GRIDS[snapshot] = _MetricGrids(snapshot)
    return found


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
    # one road search from the point serves every kind's candidates (not one search a kind)
    out["responders"], basis = lookup.nearest_by_kind(snapshot, lon=lon, lat=lat, kinds=kinds, k=k, by="road",
                                                      mode=mode, role=role)
    out["distance_basis"] = basis
    out["near_other_grids"] = near_other_grids(snapshot, lon, lat)
    return out


def cameras_at(session, snapshot, lon, lat, *, min_blind_m2=None):
    """The camera layer of the community a spot lies in, and the ids of the cameras that see the spot.

    The layer is ``coverage.report_for(..., geometries=True)`` of the spot's community, plus any
    camera of a neighbouring community that sees across the boundary. A community's report costs
    about 0.05 s: it is made for a map of one spot (a click), never for the map of all incidents.

    Returns
    -------
    (dict or None, list of int)
        The report (None outside every community) and the seeing cameras' ids, nearest first.
    """
    from . import coverage
    where = snapshot.locate(lon, lat)
    if where["community"] is None:
        return None, []
    report = coverage.report_for(session, where["community"]["code"], min_blind_m2=min_blind_m2, geometries=True)
    seeing = [c["id"] for c in snapshot.cameras_seeing(lon, lat)]
    drawn = {v["id"] for v in report["views"]}
    report["views"] = report["views"] + coverage.camera_views_of(session, [i for i in seeing if i not in drawn])
    return report, seeing


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
