"""Snapshot: published grids and located entities in compact arrays: point → grid, nearest in metres, cameras."""
from __future__ import annotations

import datetime as dt
import math
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from scipy.spatial import cKDTree
from sqlalchemy import select

from .errors import InvalidInput, NotFound
from .geo.crs import local_metric_crs
from .geo.pointindex import PolygonIndex
from .store import models as m

EDGE_RULE = ("A point on an edge or vertex shared by several grids belongs to the one with the "
             "lowest grid code; the same rule picks the community.")

_COMMUNITY_COLUMNS = ("code", "name", "street_code", "street_name", "district_code", "district_name",
                      "service_centre", "service_address", "service_phone")
_DALIAN = (121.6, 38.9)  # centre of the metric CRS when the store holds no grid yet
# one point at a time costs the same at any raster size; a coarser raster halves the index's memory
_CELLS_PER_GRID_SIDE = 8
# Beyond ~1,000 km a city-centred transverse Mercator distorts distances by several per cent.
_MAX_METRIC_M = 1_000_000


class _Layer:
    """Coded polygons sorted by code; ``pick`` applies :data:`EDGE_RULE`.

    Kept for callers that locate one shapely point at a time; for many points use
    :func:`gridmap.geo.pointindex.points_to_grids`.
    """

    def __init__(self, codes, index):
        self.codes = codes
        self.index = index

    @classmethod
    def build(cls, codes, geoms):
        codes = np.asarray(codes, dtype=object)
        geoms = np.asarray(geoms, dtype=object)
        order = np.argsort(codes.astype(str), kind="stable")
        return cls(codes[order], PolygonIndex(geoms[order]))

    def covering(self, point):
        """Positions of every polygon covering ``point`` (boundary included), lowest code first."""
        return np.asarray(self.index.covering(point.x, point.y), dtype=int)

    def pick(self, point):
        return self.index.lookup_one(point.x, point.y)


def _located(target, frame, to_metric):
    """Set lon, lat, metric xy, ids and names of ``frame``'s points on ``target``; return the count."""
    n = len(frame)
    geom = frame.geometry.values
    target.lon, target.lat = shapely.get_x(geom), shapely.get_y(geom)
    x, y = to_metric.transform(target.lon, target.lat)
    target.xy = np.column_stack([x, y])
    target.ids = _column(frame, "id", np.arange(n))
    target.names = _column(frame, "name", [""] * n)
    return n


class _Entities:
    """Responders and volunteers as parallel arrays, with a k-d tree in metres per kind."""

    def __init__(self, frame, to_metric):
        n = _located(self, frame, to_metric)
        self.phones = _column(frame, "phone", [""] * n)
        kinds = np.asarray(_column(frame, "kind", ["responder"] * n), dtype=str)
        self.kinds, kind_code = np.unique(kinds, return_inverse=True)
        self.kind_code = kind_code.astype(np.int16)
        self.kind_names = [str(k) for k in self.kinds]
        self.available = _booleans(frame["available"]) if "available" in frame.columns else np.ones(n, bool)
        # parse each distinct skills value once: a city has a few hundred combinations, not 250,000
        raw = frame["skills"] if "skills" in frame.columns else None
        if raw is None:
            codes, distinct = np.zeros(n, dtype=np.int64), [()]
        else:
            try:
                codes, distinct = pd.factorize(raw, use_na_sentinel=False)
            except TypeError:  # lists are unhashable
                codes, distinct = pd.factorize(raw.map(lambda v: tuple(v) if isinstance(v, (list, np.ndarray)) else v),
                                               use_na_sentinel=False)
        lists = [_skill_list(v) for v in distinct]
        self.skill_names = sorted({s for lst in lists for s in lst})
        bit = {s: i for i, s in enumerate(self.skill_names)}
        words = max(1, (len(self.skill_names) + 63) // 64)
        masks = np.zeros((max(len(lists), 1), words), dtype=np.uint64)
        for i, lst in enumerate(lists):
            for s in lst:
                masks[i, bit[s] // 64] |= np.uint64(1 << (bit[s] % 64))
        self.skills = masks[np.asarray(codes, dtype=np.int64)]
        self.combo = np.asarray(codes, dtype=np.int32)  # which distinct skills value each row has
        self.combo_skills = lists or [[]]
        self._bit = bit
        self.tree = cKDTree(self.xy)
        self.by_kind = {}
        for c, name in enumerate(self.kind_names):
            members = np.flatnonzero(self.kind_code == c)
            self.by_kind[name] = (cKDTree(self.xy[members]), members)

    def __len__(self):
        return len(self.xy)

    def skill_mask(self, rows, skill):
        b = self._bit[skill]
        return (self.skills[rows, b // 64] & np.uint64(1 << (b % 64))) != 0

    def record(self, i, dist):
        i = int(i)
        return {"id": _py(self.ids[i]), "name": self.names[i], "kind": self.kind_names[self.kind_code[i]],
                "skills": list(self.combo_skills[self.combo[i]]), "available": bool(self.available[i]),
                "phone": self.phones[i], "lon": float(self.lon[i]), "lat": float(self.lat[i]),
                "distance_m": round(float(dist), 1)}

    def nbytes(self):
        trees = [self.tree] + [t for t, _ in self.by_kind.values()]
        return (self.lon.nbytes + self.lat.nbytes + self.xy.nbytes + self.kind_code.nbytes + self.available.nbytes
                + self.skills.nbytes + self.combo.nbytes + sum(_tree_nbytes(t) for t in trees)
                + sum(members.nbytes for _, members in self.by_kind.values())
                + _objects_nbytes(self.ids) + _objects_nbytes(self.names) + _objects_nbytes(self.phones))


# How far a stored view may reach past its camera's surveyed position plus range: the wall snap
# of gridmap.coverage (WALL_SNAP_M 0.5 m + APEX_OFFSET_M 0.05 m), with room to spare.
_VIEW_REACH_M = 0.6


class _Cameras:
    """Cameras as arrays (metres, bearing, field of view, range) with one k-d tree."""

    def __init__(self, frame, to_metric):
        n = _located(self, frame, to_metric)
        for col in ("bearing", "fov", "range_m"):
            if col not in frame.columns:
                raise InvalidInput(f"cameras lack the column {col!r}.",
                                   fix="Give every camera bearing (degrees clockwise from north), fov (degrees) "
                                       "and range_m (metres).")
        self.bearing = np.asarray(frame["bearing"], dtype=np.float64) % 360.0
        self.fov = np.asarray(frame["fov"], dtype=np.float64)
        self.range_m = np.asarray(frame["range_m"], dtype=np.float64)
        self.max_range = float(np.nanmax(self.range_m)) if n else 0.0
        self.tree = cKDTree(self.xy)
        # plain Python lists: a query touches a handful of cameras, where list indexing beats numpy
        self._x, self._y = self.xy[:, 0].tolist(), self.xy[:, 1].tolist()
        self._b, self._f, self._r = self.bearing.tolist(), self.fov.tolist(), self.range_m.tolist()
        self._views = self._metric_views(frame, to_metric, n)

    @staticmethod
    def _metric_views(frame, to_metric, n):
        """Stored view polygons (WGS84 column ``view``) in metres, prepared; None where a camera has none.

        The view is the sector minus what buildings hide, so a camera whose view is known sees a
        point only when the view holds it; one without (never computed, or stale) falls back to
        the plain sector.
        """
        if "view" not in frame.columns:
            return [None] * n
        geoms = np.asarray(frame["view"].to_numpy(), dtype=object)
        geoms = np.array([g if isinstance(g, shapely.Geometry) else None for g in geoms], dtype=object)
        have = np.flatnonzero(np.array([g is not None for g in geoms], dtype=bool))
        out = [None] * n
        if have.size:
            def project(xy):
                return np.column_stack(to_metric.transform(xy[:, 0], xy[:, 1]))
            metric = shapely.transform(geoms[have], project)
            shapely.prepare(metric)
            for i, g in zip(have.tolist(), metric):
                out[i] = g
        return out

    def seeing(self, x, y):
        out = []
        for i in self.tree.query_ball_point((x, y), self.max_range + _VIEW_REACH_M):
            dx, dy = x - self._x[i], y - self._y[i]
            d = math.hypot(dx, dy)
            view = self._views[i]
            if view is not None:
                # The stored view decides. It is not inside the surveyed sector: a camera surveyed
                # just inside its wall looks out from the wall, its apex moved up to half a metre.
                # The apex survives a round trip through lon/lat only to a nanometre: hence 1 cm.
                if view.is_empty or d > self._r[i] + _VIEW_REACH_M:
                    continue
                if d > 0.01 and not shapely.intersects_xy(view, x, y):
                    continue
                out.append((d, i))
                continue
            if d > self._r[i] + 1e-9:
                continue
            if d > 0 and self._f[i] < 360:
                off = abs((math.degrees(math.atan2(dx, dy)) - self._b[i] + 180.0) % 360.0 - 180.0)
                if off > self._f[i] / 2 + 1e-9:
                    continue
            out.append((d, i))
        out.sort()
        return [{"id": _py(self.ids[i]), "name": self.names[i], "distance_m": round(d, 1),
                 "bearing": self._b[i], "fov": self._f[i], "range_m": self._r[i]} for d, i in out]

    def nbytes(self):
        arrays = (self.lon, self.lat, self.xy, self.bearing, self.fov, self.range_m)
        views = sum(int(shapely.get_num_coordinates(v)) * 16 + 200 for v in self._views if v is not None)
        return (sum(a.nbytes for a in arrays) + _tree_nbytes(self.tree) + 5 * 8 * len(self._x) + views
                + _objects_nbytes(self.ids) + _objects_nbytes(self.names))


class Snapshot:
    """What lookups need, built once per published generation.

    Build with :meth:`from_store` (the web app) or :meth:`from_frames` (tools, tests, benchmarks).
    Grids and communities are sorted by code, so a point on a shared edge goes to the lowest code
    (:data:`EDGE_RULE`); distances are metres in a local transverse Mercator CRS.
    """

    def __init__(self, grids, communities=None, responders=None, cameras=None, generation=0):
        self.generation = generation
        self.built_at = dt.datetime.now()
        self.roads = None  # a routing.RoadGraph when roads are imported (from_store)
        self.addresses = None  # a geocode.AddressIndex over the building register (from_store)
        self.workers = {}  # grid code → [{id, name, phone}] (from_store)
        self.branches = {}  # grid code → party branch name (from_store)
        grids = _wgs84(grids)
        for col, default in (("name", None), ("community_code", None)):
            if col not in grids.columns:
                grids = grids.assign(**{col: grids["code"] if col == "name" else default})
        order = np.argsort(grids["code"].astype(str).to_numpy(), kind="stable")
        self.grids = grids.iloc[order].reset_index(drop=True)
        self._grid_index = PolygonIndex(self.grids.geometry.values, cells_per_side=_CELLS_PER_GRID_SIDE)
        self._grid_codes = self.grids["code"].tolist()
        self._grid_names = self.grids["name"].tolist()
        self._grid_community = self.grids["community_code"].tolist()

        if communities is not None:
            communities = _wgs84(communities)
            order = np.argsort(communities["code"].astype(str).to_numpy(), kind="stable")
            communities = communities.iloc[order].reset_index(drop=True)
        self.communities = communities
        self._community_index = None
        self._community_info = {}
        self._community_codes = []
        if communities is not None and len(communities):
            self._community_index = PolygonIndex(communities.geometry.values, cells_per_side=_CELLS_PER_GRID_SIDE)
            self._community_codes = communities["code"].tolist()
            self._community_info = {row["code"]: _community_parts(row) for row in
                                    communities.drop(columns=communities.geometry.name).to_dict("records")}

        centre = _centre(self.grids if len(self.grids) else communities)
        self.metric_crs = local_metric_crs(*centre)
        self._to_metric = Transformer.from_crs(4326, self.metric_crs, always_xy=True)
        responders = _wgs84(responders) if responders is not None and len(responders) else None
        cameras = _wgs84(cameras) if cameras is not None and len(cameras) else None
        self._entities = _Entities(responders, self._to_metric) if responders is not None else None
        self._cameras = _Cameras(cameras, self._to_metric) if cameras is not None else None

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def from_frames(cls, grids, *, responders=None, cameras=None, communities=None, volunteers=None,
                    generation=0):
        """A snapshot over GeoDataFrames in WGS84.

        Parameters
        ----------
        grids : GeoDataFrame
            ``code`` and optional ``name``, ``community_code``.
        responders : GeoDataFrame, optional
            Points with ``kind`` and optional ``id``, ``name``, ``phone``, ``skills`` (a ';'-separated
            string or a list) and ``available``.
        cameras : GeoDataFrame, optional
            Points with ``bearing`` (degrees clockwise from north), ``fov`` (degrees), ``range_m``
            and optionally ``view``: the camera's view polygon in WGS84 (``coverage.refresh_views``
            stores them), None where unknown.
        communities : GeoDataFrame, optional
            ``code``, ``name`` and optionally street, district and service-centre columns.
        volunteers : GeoDataFrame, optional
            Like ``responders``; their kind is ``"volunteer"``.
        """
        if volunteers is not None and len(volunteers):
            volunteers = _wgs84(volunteers).assign(kind="volunteer")
            responders = volunteers if responders is None or not len(responders) else \
                gpd.GeoDataFrame(_concat([_wgs84(responders), volunteers]), crs=4326)
        return cls(grids, communities=communities, responders=responders, cameras=cameras, generation=generation)

    @classmethod
    def from_store(cls, session, *, on=None):
        """The published grids (or those valid on ``on``) with their communities, responders, volunteers,
        cameras, grid workers and grid party branches."""
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
                                       columns=list(_COMMUNITY_COLUMNS),
                                       geometry=[r.geom for r in crows], crs=4326)
        responders = _frame(session.execute(select(
            m.Responder.id, m.Responder.name, m.Responder.kind, m.Responder.phone, m.Responder.skills,
            m.Responder.available, m.Responder.geom)).all())
        volunteers = _frame(session.execute(select(
            m.Volunteer.id, m.Volunteer.name, m.Volunteer.phone, m.Volunteer.skills, m.Volunteer.available,
            m.Volunteer.geom)).all())
        cameras = _frame(session.execute(select(
            m.Camera.id, m.Camera.name, m.Camera.bearing, m.Camera.fov, m.Camera.range_m, m.Camera.geom,
            m.CameraView.geom.label("view"))
            .outerjoin(m.CameraView, m.CameraView.camera_id == m.Camera.id)).all())
        snap = cls.from_frames(grids, responders=responders, volunteers=volunteers, cameras=cameras,
                               communities=communities, generation=gen)
        snap.workers = _workers(session)
        snap.branches = dict(session.execute(
            select(m.PartyOrganization.grid_code, m.PartyOrganization.name)
            .where(m.PartyOrganization.kind == "grid_branch")).all())
        snap.roads = _road_graph(session)
        snap.addresses = _address_index(session)
        return snap

    def _metric(self, lon, lat):
        """(lon, lat) in the snapshot's local metric CRS; NotFound where that CRS cannot reach.

        A transverse Mercator centred on the city diverges far from it (the other side of the
        globe projects to infinity), and a distance measured there would be meaningless anyway.
        """
        x, y = self._to_metric.transform(lon, lat)
        if not (math.isfinite(x) and math.isfinite(y)) or max(abs(x), abs(y)) > _MAX_METRIC_M:
            raise NotFound(f"({lon}, {lat}) is too far from the area this gridmap serves to measure distances.",
                               fix="Give a point within a few hundred kilometres of its communities.")
        return x, y

    # -- where a point lies -----------------------------------------------------------------
    def grid_at(self, lon, lat):
        """Position in :attr:`grids` of the grid containing (lon, lat) by :data:`EDGE_RULE`, or -1."""
        return self._grid_index.lookup_one(lon, lat)

    def grids_at(self, lon, lat):
        """Codes of every grid whose closure contains the point (more than one on a shared edge)."""
        return [self._grid_codes[i] for i in self._grid_index.covering(lon, lat)]

    def locate(self, lon, lat):
        """Where (lon, lat) lies: ``grid`` ({code, name} or None), ``community``, ``street``, ``district``,
        ``service_centre``, ``on_shared_edge``, ``lon``, ``lat``."""
        out = {"lon": float(lon), "lat": float(lat), "grid": None, "community": None, "street": None, "district": None,
               "service_centre": None, "on_shared_edge": False}
        cover = self._grid_index.covering(lon, lat)
        community = None
        if cover:
            gi = cover[0]
            out["grid"] = {"code": self._grid_codes[gi], "name": self._grid_names[gi]}
            out["on_shared_edge"] = len(cover) > 1
            community = self._grid_community[gi]
        if self._community_index is not None:
            ci = self._community_index.lookup_one(lon, lat)
            if ci >= 0:
                community = self._community_codes[ci]
        if community is not None:
            parts = self._community_info.get(community)
            if parts is None:
                out["community"] = {"code": community, "name": None}
            else:
                out.update({k: (dict(v) if v is not None else None) for k, v in parts.items()})
        return out

    def locate_full(self, lon, lat, k=5):
        """:meth:`locate` plus the ``k`` nearest responders (``nearest``) and the cameras seeing the
        point (``cameras``): what a dispatcher's click needs."""
        out = self.locate(lon, lat)
        x, y = self._metric(lon, lat)
        out["nearest"] = self._nearest_xy(x, y, k, None, None, None, None)
        out["cameras"] = self._cameras.seeing(x, y) if self._cameras is not None else []
        return out

    # -- who is near ------------------------------------------------------------------------
    def nearest(self, lon, lat, k=5, kind=None, skill=None, available=None, radius_m=None):
        """The ``k`` nearest responders or volunteers, in metres, optionally filtered.

        Parameters
        ----------
        lon, lat : float
            WGS84 degrees.
        k : int
            How many to return at most.
        kind, skill : str, optional
            Keep only this kind (``"police"``, ``"volunteer"`` …) / only those with this skill.
        available : bool, optional
            Keep only those available (True) or unavailable (False).
        radius_m : float, optional
            Keep only those within this many metres.

        Returns
        -------
        list of dict
            ``id``, ``name``, ``kind``, ``skills``, ``available``, ``phone`` (raw: the web layer masks it),
            ``lon``, ``lat``, ``distance_m`` (0.1 m), nearest first: exactly the k nearest that match.
        """
        if k is None or int(k) < 1:
            raise InvalidInput(f"k={k!r} is not a positive whole number.", fix="Use e.g. k=5.")
        x, y = self._metric(lon, lat)
        return self._nearest_xy(x, y, int(k), kind, skill, available, radius_m)

    def nearest_each(self, lon, lat, kinds, k=3):
        """``{kind: nearest(lon, lat, k, kind)}`` for each of ``kinds``, the point projected once.

        What the dispatcher's panel asks on every click: the point's projection cost as much as
        a kind's tree query, nine times over.
        """
        if k is None or int(k) < 1:
            raise InvalidInput(f"k={k!r} is not a positive whole number.", fix="Use e.g. k=5.")
        x, y = self._metric(lon, lat)
        return {kind: self._nearest_xy(x, y, int(k), kind, None, None, None) for kind in kinds}

    def within(self, lon, lat, radius_m, kind=None, skill=None, available=None, limit=None):
        """Every responder or volunteer within ``radius_m`` metres (filters as :meth:`nearest`), nearest first."""
        if radius_m is None or not radius_m >= 0:
            raise InvalidInput(f"radius_m={radius_m!r} is not a distance in metres.", fix="Use e.g. radius_m=500.")
        ents = self._entities
        if ents is None:
            return []
        x, y = self._metric(lon, lat)
        tree, members = self._tree_for(kind)
        if tree is None:
            return []
        found = np.asarray(tree.query_ball_point((x, y), float(radius_m)), dtype=np.int64)
        rows = members[found] if members is not None else found
        rows = rows[self._matches(rows, skill, available)]
        d = np.hypot(ents.xy[rows, 0] - x, ents.xy[rows, 1] - y)
        order = np.lexsort((rows, d))[:limit]
        return [ents.record(rows[i], d[i]) for i in order]

    def cameras_seeing(self, lon, lat):
        """Cameras that see the point, nearest first.

        A camera with a stored view (``view`` column: its sector minus what buildings hide,
        computed by ``coverage.refresh_views``) sees the point when the view holds it; one
        without, when its sector (apex at the camera, ``bearing`` ± ``fov``/2, out to
        ``range_m``) does.
        """
        if self._cameras is None:
            return []
        return self._cameras.seeing(*self._metric(lon, lat))

    def nbytes(self):
        """Estimated bytes held by the snapshot: indexes, arrays, trees and the grids frame."""
        total = self._grid_index.nbytes + _frame_nbytes(self.grids)
        if self._community_index is not None:
            total += self._community_index.nbytes + _frame_nbytes(self.communities)
        if self._entities is not None:
            total += self._entities.nbytes()
        if self._cameras is not None:
            total += self._cameras.nbytes()
        return int(total)

    # -- internals --------------------------------------------------------------------------
    def _tree_for(self, kind):
        ents = self._entities
        if kind is None:
            return ents.tree, None
        return ents.by_kind.get(kind, (None, None))

    def _matches(self, rows, skill, available):
        ents = self._entities
        keep = np.ones(len(rows), dtype=bool)
        if skill is not None:
            if skill not in ents._bit:
                return np.zeros(len(rows), dtype=bool)
            keep &= ents.skill_mask(rows, skill)
        if available is not None:
            keep &= ents.available[rows] == bool(available)
        return keep

    def _nearest_xy(self, x, y, k, kind, skill, available, radius_m):
        ents = self._entities
        if ents is None:
            return []
        tree, members = self._tree_for(kind)
        if tree is None:
            return []
        n = tree.n
        bound = float(radius_m) if radius_m is not None else np.inf
        filtered = skill is not None or available is not None
        kk = min(n, k if not filtered else max(4 * k, 32))
        while True:
            if kk >= n // 4 and filtered:
                # few matches far away: a scan of the (kind's) rows is cheaper than ever-larger queries
                rows = members if members is not None else np.arange(n)
                rows = rows[self._matches(rows, skill, available)]
                d = np.hypot(ents.xy[rows, 0] - x, ents.xy[rows, 1] - y)
                keep = d <= bound
                rows, d = rows[keep], d[keep]
                order = np.lexsort((rows, d))[:k]
                return [ents.record(rows[i], d[i]) for i in order]
            d, i = tree.query((x, y), k=kk, distance_upper_bound=bound)
            if not filtered:
                # the common case: plain lists beat numpy for a handful of rows
                pairs = [(dd, ii) for dd, ii in zip(np.atleast_1d(d).tolist(), np.atleast_1d(i).tolist())
                         if dd != math.inf]
                if members is not None:
                    pairs = [(dd, int(members[ii])) for dd, ii in pairs]
                pairs.sort()
                return [ents.record(ii, dd) for dd, ii in pairs]
            d, i = np.atleast_1d(d), np.atleast_1d(i)
            hit = np.isfinite(d)
            d, i = d[hit], i[hit]
            rows = members[i] if members is not None else i
            if filtered:
                keep = self._matches(rows, skill, available)
                enough = keep.sum() >= k or len(d) < kk or kk >= n
                if not enough:
                    kk = min(n, kk * 4)
                    continue
                rows, d = rows[keep], d[keep]
            order = np.lexsort((rows, d))[:k]
            return [ents.record(rows[j], d[j]) for j in order]


# -- helpers ------------------------------------------------------------------------------------
def _wgs84(frame):
    if frame.crs is None:
        return frame.set_crs(4326)
    return frame.to_crs(4326) if not frame.crs.equals(4326) else frame


def _concat(frames):
    return pd.concat(frames, ignore_index=True)


def _column(frame, name, default):
    if name in frame.columns:
        return frame[name].to_numpy(dtype=object if frame[name].dtype == object else None)
    return np.asarray(default, dtype=object) if not isinstance(default, np.ndarray) else default


def _booleans(series):
    if series.dtype == bool:
        return series.to_numpy()
    # missing means available: a volunteer nobody marked unavailable is available
    return np.array([True if v is None or v != v else bool(v) for v in series], dtype=bool)


def _skill_list(value):
    if value is None or (isinstance(value, float) and value != value):
        return []
    if isinstance(value, str):
        return [s.strip() for s in value.split(";") if s.strip()]
    return [str(s).strip() for s in value if str(s).strip()]


def _community_parts(row):
    def part(code, name):
        return {"code": row.get(code), "name": row.get(name)} if row.get(code) is not None else None
    centre = None
    if row.get("service_centre") is not None or row.get("service_phone") is not None:
        centre = {"name": row.get("service_centre"), "address": row.get("service_address"),
                  "phone": row.get("service_phone")}
    return {"community": {"code": row["code"], "name": row.get("name")}, "street": part("street_code", "street_name"),
            "district": part("district_code", "district_name"), "service_centre": centre}


def _centre(frame):
    if frame is None or not len(frame):
        return _DALIAN
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


def _tree_nbytes(tree):
    # cKDTree keeps a copy of the data, an index array and ~n / leafsize * 2 nodes of ~72 bytes
    return tree.data.nbytes + tree.indices.nbytes + (2 * tree.n // 16 + 1) * 72


def _objects_nbytes(values):
    values = np.asarray(values)
    if values.dtype != object:
        return values.nbytes
    if not len(values):
        return 0
    sample = values[:: max(1, len(values) // 1000)]
    return values.nbytes + int(np.mean([sys.getsizeof(v) for v in sample]) * len(values))


def _frame_nbytes(frame):
    if frame is None:
        return 0
    geom = frame.geometry.values
    attrs = frame.drop(columns=frame.geometry.name).memory_usage(deep=True).sum()
    return int(attrs + shapely.get_num_coordinates(geom).sum() * 16 + len(frame) * 200)


def _road_graph(session):
    # Built once per generation and reused by every request: rebuilding per query would cost seconds.
    from .routing import RoadGraph
    rows = session.execute(select(m.Road.name, m.Road.kind, m.Road.geom)).all()
    if not rows:
        return None
    roads = gpd.GeoDataFrame({"name": [r.name for r in rows], "kind": [r.kind for r in rows]},
                             geometry=[r.geom for r in rows], crs=4326)
    return RoadGraph.from_lines(roads)


def _address_index(session):
    from .geocode import AddressIndex
    rows = session.execute(select(m.Building.id, m.Building.address, m.Building.name, m.Building.lon,
                                  m.Building.lat, m.Building.community_code)).all()
    if not rows:
        return None
    return AddressIndex.from_records({"building_id": r.id, "address": r.address, "name": r.name, "lon": r.lon,
                                      "lat": r.lat, "community_code": r.community_code} for r in rows)
