"""Snapshot: the published grids and located entities in memory, answering point → grid and nearest-in-metres."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Transformer
from sqlalchemy import select

from .geo.crs import local_metric_crs
from .store import models as m

EDGE_RULE = ("A point on an edge or vertex shared by several grids belongs to the one with the "
             "lowest grid code; the same rule picks the community.")


@dataclass
class _Layer:
    """Polygons with a spatial tree; ``pick`` applies the shared-edge rule."""
    codes: np.ndarray
    geoms: np.ndarray
    tree: shapely.STRtree

    @classmethod
    def build(cls, codes, geoms):
        codes = np.asarray(codes, dtype=object)
        geoms = np.asarray(geoms, dtype=object)
        order = np.argsort(codes.astype(str), kind="stable")
        codes, geoms = codes[order], geoms[order]
        shapely.prepare(geoms)
        return cls(codes, geoms, shapely.STRtree(geoms))

    def covering(self, point):
        """Positions of every polygon covering ``point`` (boundary included), lowest code first."""
        if not len(self.codes):
            return np.array([], dtype=int)
        return np.sort(self.tree.query(point, predicate="intersects"))

    def pick(self, point):
        hits = self.covering(point)
        return int(hits[0]) if len(hits) else -1


class Snapshot:
    """What lookups need, built once per published generation.

    Build with :meth:`from_store` (the web app) or :meth:`from_frames` (tools and tests).
    """

    def __init__(self, grids, communities=None, responders=None, cameras=None, generation=0):
        self.generation = generation
        self.grids = grids.reset_index(drop=True)
        self._grids = _Layer.build(self.grids["code"], self.grids.geometry.values)
        self._grid_row = {c: i for i, c in enumerate(self.grids["code"])}
        self.communities = communities.reset_index(drop=True) if communities is not None else None
        if self.communities is not None:
            self._communities = _Layer.build(self.communities["code"], self.communities.geometry.values)
            self._community_row = {c: i for i, c in enumerate(self.communities["code"])}
        centre = _centre(self.grids if len(self.grids) else communities)
        self.metric_crs = local_metric_crs(*centre)
        self._to_metric = Transformer.from_crs(4326, self.metric_crs, always_xy=True)
        self.responders = self._points(responders)
        self.cameras = self._points(cameras)

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def from_frames(cls, grids, *, responders=None, cameras=None, communities=None):
        """A snapshot over GeoDataFrames in WGS84: ``grids`` with ``code`` (and optional ``name``,
        ``community_code``); ``responders`` with ``kind`` and optional ``skills``, ``available``;
        ``cameras`` with ``bearing``, ``fov``, ``range_m``."""
        grids = grids.to_crs(4326) if grids.crs is not None else grids
        if "name" not in grids.columns:
            grids = grids.assign(name=grids["code"])
        return cls(grids, communities=communities, responders=responders, cameras=cameras)

    @classmethod
    def from_store(cls, session, *, on=None):
        """The published grids (or those valid on ``on``) with their communities, workers and branches."""
        from . import plans
        gen = plans.generation(session)
        q = select(m.Grid.code, m.Grid.name, m.Grid.geom, m.GridPlan.community_code).join(m.GridPlan)
        if on is None:
            q = q.where(m.GridPlan.status == "published")
        else:
            q = q.where(m.GridPlan.status.in_(("published", "retired")), m.GridPlan.valid_from <= on,
                        (m.GridPlan.valid_to.is_(None)) | (m.GridPlan.valid_to > on))
        rows = session.execute(q).all()
        grids = gpd.GeoDataFrame({"code": [r.code for r in rows], "name": [r.name for r in rows],
                                  "community_code": [r.community_code for r in rows]},
                                 geometry=[r.geom for r in rows], crs=4326)
        crows = session.execute(
            select(m.Community.code, m.Community.name, m.Community.geom, m.Community.service_centre,
                   m.Community.service_address, m.Community.service_phone,
                   m.Street.code.label("street_code"), m.Street.name.label("street_name"),
                   m.District.code.label("district_code"), m.District.name.label("district_name"))
            .join(m.Street, m.Community.street_code == m.Street.code)
            .join(m.District, m.Street.district_code == m.District.code)).all()
        communities = gpd.GeoDataFrame([{k: v for k, v in r._mapping.items() if k != "geom"} for r in crows],
                                       geometry=[r.geom for r in crows], crs=4326)
        if communities.empty:
            communities = gpd.GeoDataFrame({"code": []}, geometry=[], crs=4326)
        responders = _frame(session.execute(select(m.Responder.id, m.Responder.name, m.Responder.kind,
                                                   m.Responder.skills, m.Responder.available, m.Responder.geom)).all())
        snap = cls(grids, communities=communities, responders=responders, generation=gen)
        snap.workers = _workers(session)
        snap.branches = dict(session.execute(
            select(m.PartyOrganization.grid_code, m.PartyOrganization.name)
            .where(m.PartyOrganization.kind == "grid_branch")).all())
        snap.built_at = dt.datetime.now()
        return snap

    workers: dict = {}
    branches: dict = {}

    # -- questions --------------------------------------------------------------------------
    def grid_at(self, lon, lat):
        """Position of the grid containing (lon, lat) by :data:`EDGE_RULE`, or -1."""
        return self._grids.pick(shapely.Point(lon, lat))

    def grids_at(self, lon, lat):
        """Codes of every grid whose closure contains the point (more than one on a shared edge)."""
        return [self._grids.codes[i] for i in self._grids.covering(shapely.Point(lon, lat))]

    def locate(self, lon, lat):
        """Where (lon, lat) lies: ``grid`` (code, name) or None, ``community``, ``street``, ``district``."""
        point = shapely.Point(lon, lat)
        gi = self._grids.pick(point)
        out = {"lon": lon, "lat": lat, "grid": None, "community": None, "street": None, "district": None,
               "on_shared_edge": False}
        if gi >= 0:
            code = self._grids.codes[gi]
            row = self.grids.iloc[self._grid_row[code]]
            out["grid"] = {"code": code, "name": row["name"]}
            out["on_shared_edge"] = len(self._grids.covering(point)) > 1
        if self.communities is not None and len(self.communities):
            ci = self._communities.pick(point)
            if ci < 0 and gi >= 0 and "community_code" in self.grids.columns:
                code = self.grids.iloc[self._grid_row[out["grid"]["code"]]]["community_code"]
                ci = int(np.flatnonzero(self._communities.codes == code)[0]) if code in self._community_row else -1
            if ci >= 0:
                c = self.communities.iloc[self._community_row[self._communities.codes[ci]]]
                out["community"] = {"code": c["code"], "name": c.get("name")}
                if "street_code" in c:
                    out["street"] = {"code": c["street_code"], "name": c["street_name"]}
                    out["district"] = {"code": c["district_code"], "name": c["district_name"]}
                    out["service_centre"] = {"name": c["service_centre"], "address": c["service_address"],
                                             "phone": c["service_phone"]}
        return out

    def nearest(self, lon, lat, k=5, kind=None):
        """The ``k`` nearest responders (optionally of ``kind``), each with ``id`` and ``distance_m``."""
        pts = self.responders
        if pts is None or not len(pts["frame"]):
            return []
        mask = np.ones(len(pts["frame"]), bool) if kind is None else (pts["frame"]["kind"] == kind).to_numpy()
        idx = np.flatnonzero(mask)
        x, y = self._to_metric.transform(lon, lat)
        d = np.hypot(pts["x"][idx] - x, pts["y"][idx] - y)
        best = idx[np.argsort(d, kind="stable")[:k]]
        dist = np.hypot(pts["x"][best] - x, pts["y"][best] - y)
        frame = pts["frame"]
        cols = [c for c in frame.columns if c != frame.geometry.name]
        return [{**{c: _py(frame.iloc[i][c]) for c in cols}, "id": _py(frame.iloc[i].get("id", i)),
                 "distance_m": round(float(dd), 1)} for i, dd in zip(best, dist)]

    # -- helpers ----------------------------------------------------------------------------
    def _points(self, frame):
        if frame is None or not len(frame):
            return None
        frame = frame.to_crs(4326).reset_index(drop=True) if frame.crs is not None else frame.reset_index(drop=True)
        x, y = self._to_metric.transform(shapely.get_x(frame.geometry.values), shapely.get_y(frame.geometry.values))
        return {"frame": frame, "x": np.asarray(x), "y": np.asarray(y)}


def _centre(frame):
    if frame is None or not len(frame):
        return (121.6, 38.9)  # Dalian, for an empty store
    minx, miny, maxx, maxy = frame.total_bounds
    return ((minx + maxx) / 2, (miny + maxy) / 2)


def _frame(rows):
    if not rows:
        return None
    return gpd.GeoDataFrame([{k: v for k, v in r._mapping.items() if k != "geom"} for r in rows],
                            geometry=[r.geom for r in rows], crs=4326)


def _workers(session):
    rows = session.execute(select(m.grid_worker_grid.c.grid_code, m.GridWorker.id, m.GridWorker.name,
                                  m.GridWorker.phone)
                           .join(m.GridWorker, m.GridWorker.id == m.grid_worker_grid.c.worker_id)
                           .order_by(m.grid_worker_grid.c.grid_code, m.GridWorker.id)).all()
    out = {}
    for code, wid, name, phone in rows:
        out.setdefault(code, []).append({"id": wid, "name": name, "phone": phone})
    return out


def _py(v):
    return v.item() if isinstance(v, np.generic) else v
