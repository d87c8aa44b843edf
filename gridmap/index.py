"""Snapshot: published grids and located entities in compact arrays: point → grid, nearest in metres, cameras.

One snapshot holds a published generation; :class:`SnapshotCache` keeps one per process and
rebuilds it when the store's generation moves on, :func:`snapshot_on` the snapshots of past days.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import os
import pickle
import sys
import threading
import time
from collections import OrderedDict

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from . import snapfile
from .geo.addresses import AddressIndex
from .geo.crs import metric_for
from .geo.errors import InvalidInput, NotFound
from .geo.pointindex import PolygonIndex
from .geo.roads import RoadGraph
from .geo.viewshed import VIEW_REACH_M, sees
from .store.generations import generation
from .store.loaders import snapshot_frames

log = logging.getLogger(__name__)

EDGE_RULE = ("A point on an edge or vertex shared by several grids belongs to the one with the "
             "lowest grid code; the same rule picks the community.")

_DALIAN = (121.6, 38.9)  # centre of the metric CRS when the store holds no grid yet
# one point at a time costs the same at any raster size; a coarser raster halves the index's memory
_CELLS_PER_GRID_SIDE = 8
# Beyond ~1,000 km a city-centred transverse Mercator distorts distances by several per cent.
_MAX_METRIC_M = 1_000_000


def _located(target, frame, metric):
    """Set lon, lat, metric xy, ids and names of ``frame``'s points on ``target``; return the count."""
    n = len(frame)
    geom = frame.geometry.values
    target.lon, target.lat = shapely.get_x(geom), shapely.get_y(geom)
    x, y = metric.xy(target.lon, target.lat)
    target.xy = np.column_stack([x, y])
    target.ids = _column(frame, "id", np.arange(n))
    target.names = _column(frame, "name", [""] * n)
    return n


class _Entities:
    """Responders and volunteers as parallel arrays, with a k-d tree in metres per kind."""

    def __init__(self, frame, metric):
        n = _located(self, frame, metric)
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
        self._trees()

    def __len__(self):
        return len(self.xy)

    def to_arrays(self, prefix):
        arrays = {"lon": self.lon, "lat": self.lat, "xy": self.xy, "kind_code": self.kind_code,
                  "available": np.asarray(self.available, dtype=bool), "skills": self.skills, "combo": self.combo}
        _put_values(arrays, "ids", self.ids)
        _put_values(arrays, "names", self.names)
        _put_values(arrays, "phones", self.phones)
        meta = {"kind_names": self.kind_names, "skill_names": self.skill_names,
                "combo_skills": [list(c) for c in self.combo_skills]}
        return {f"{prefix}.{k}": v for k, v in arrays.items()}, meta

    @classmethod
    def from_arrays(cls, f, prefix, meta, trees_of=None):
        """The entities of :meth:`to_arrays`; ``trees_of``: entities with the same arrays, whose trees serve."""
        self = cls.__new__(cls)
        a = _prefixed(f, prefix)
        self.lon, self.lat, self.xy = a["lon"], a["lat"], a["xy"]
        self.kind_code, self.available, self.skills, self.combo = a["kind_code"], a["available"], a["skills"], a["combo"]
        self.ids, self.names, self.phones = _get_values(a, "ids"), _get_values(a, "names"), _get_values(a, "phones")
        self.kind_names = list(meta["kind_names"])
        self.kinds = np.asarray(self.kind_names, dtype=str)
        self.skill_names = list(meta["skill_names"])
        self.combo_skills = [list(c) for c in meta["combo_skills"]]
        self._bit = {s: i for i, s in enumerate(self.skill_names)}
        if trees_of is not None:
            self.tree, self.by_kind = trees_of.tree, trees_of.by_kind
        else:
            self._trees()
        return self

    def _trees(self):
        # rebuilt in every process that maps a file (~0.1 s for 250,000 points): a k-d tree is
        # not flat arrays, and pickling one copies it into each process anyway
        self.tree = cKDTree(self.xy)
        self.by_kind = {}
        for c, name in enumerate(self.kind_names):
            members = np.flatnonzero(self.kind_code == c)
            self.by_kind[name] = (cKDTree(self.xy[members]), members)

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


class _Cameras:
    """Cameras as arrays (metres, bearing, field of view, range) with one k-d tree."""

    def __init__(self, frame, metric):
        n = _located(self, frame, metric)
        for col in ("bearing", "fov", "range_m"):
            if col not in frame.columns:
                raise InvalidInput(f"cameras lack the column {col!r}.",
                                   fix="Give every camera bearing (degrees clockwise from north), fov (degrees) "
                                       "and range_m (metres).")
        self.bearing = np.asarray(frame["bearing"], dtype=np.float64) % 360.0
        self.fov = np.asarray(frame["fov"], dtype=np.float64)
        self.range_m = np.asarray(frame["range_m"], dtype=np.float64)
        self.max_range = float(np.nanmax(self.range_m)) if n else 0.0
        self._views = self._metric_views(frame, metric, n)
        self._scalars()

    def _scalars(self):
        self.tree = cKDTree(self.xy)
        # memoryviews index to plain Python floats: a query touches a handful of cameras, where
        # this beats numpy scalars, and a mapped file's pages stay shared (lists would copy them)
        self._x, self._y = memoryview(self.xy[:, 0].copy()), memoryview(self.xy[:, 1].copy())
        self._b, self._f, self._r = (memoryview(np.ascontiguousarray(a)) for a in (self.bearing, self.fov,
                                                                                   self.range_m))

    def to_arrays(self, prefix):
        arrays = {"lon": self.lon, "lat": self.lat, "xy": self.xy, "bearing": self.bearing, "fov": self.fov,
                  "range_m": self.range_m}
        _put_values(arrays, "ids", self.ids)
        _put_values(arrays, "names", self.names)
        arrays["views.o"], arrays["views.b"] = snapfile.pack_bytes(
            [shapely.to_wkb(v) if v is not None else None for v in self._views])
        return {f"{prefix}.{k}": v for k, v in arrays.items()}, {"max_range": self.max_range}

    @classmethod
    def from_arrays(cls, f, prefix, meta, tree_of=None):
        """The cameras of :meth:`to_arrays`; ``tree_of``: cameras with the same arrays, whose tree and views serve."""
        self = cls.__new__(cls)
        a = _prefixed(f, prefix)
        self.lon, self.lat, self.xy = a["lon"], a["lat"], a["xy"]
        self.bearing, self.fov, self.range_m = a["bearing"], a["fov"], a["range_m"]
        self.ids, self.names = _get_values(a, "ids"), _get_values(a, "names")
        self.max_range = float(meta["max_range"])
        if tree_of is not None:
            self._views = tree_of._views
            self.tree, self._x, self._y, self._b, self._f, self._r = (tree_of.tree, tree_of._x, tree_of._y, tree_of._b,
                                                                     tree_of._f, tree_of._r)
        else:
            self._views = _MappedViews(a["views.o"], a["views.b"])
            self._scalars()
        return self

    @staticmethod
    def _metric_views(frame, metric, n):
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
            views = metric.project(geoms[have])
            shapely.prepare(views)
            for i, g in zip(have.tolist(), views):
                out[i] = g
        return out

    def seeing(self, x, y):
        out = []
        for i in self.tree.query_ball_point((x, y), self.max_range + VIEW_REACH_M):
            d = sees(self._views[i], (self._x[i], self._y[i]), self._b[i], self._f[i], self._r[i], x, y)
            if d is not None:
                out.append((d, i))
        out.sort()
        return [{"id": _py(self.ids[i]), "name": self.names[i], "distance_m": round(d, 1),
                 "bearing": self._b[i], "fov": self._f[i], "range_m": self._r[i]} for d, i in out]

    def nbytes(self):
        arrays = (self.lon, self.lat, self.xy, self.bearing, self.fov, self.range_m)
        views = self._views.nbytes if isinstance(self._views, _MappedViews) else \
            sum(int(shapely.get_num_coordinates(v)) * 16 + 200 for v in self._views if v is not None)
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
        self._lazy = {}  # attribute → loader, for what a mapped snapshot makes on first use (from_file)
        self._lazy_lock = threading.Lock()
        self.roads = None  # a geo.roads.RoadGraph when roads are imported (from_store)
        self.addresses = None  # a geo.addresses.AddressIndex over the building register (from_store)
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

        extent = self.grids if len(self.grids) else communities
        self.metric = metric_for(extent if extent is not None and len(extent) else _DALIAN)
        self.metric_crs = self.metric.crs
        responders = _wgs84(responders) if responders is not None and len(responders) else None
        cameras = _wgs84(cameras) if cameras is not None and len(cameras) else None
        self._entities = _Entities(responders, self.metric) if responders is not None else None
        self._cameras = _Cameras(cameras, self.metric) if cameras is not None else None
        self._metric_grids = None  # the grids in metres with an STRtree, made on the first grids_near
        self._metric_grids_lock = threading.Lock()
        self.source = None  # the snapshot file this one maps, when it maps one (from_file)

    @property
    def grids(self):
        """The grids as a GeoDataFrame (``code``, ``name``, ``community_code``, geometry), sorted by code."""
        if self._grids is None:  # a mapped snapshot decodes its grids on first use: most lookups never do
            with self._metric_grids_lock:
                if self._grids is None:
                    self._grids = self._grids_loader()
        return self._grids

    @grids.setter
    def grids(self, frame):
        self._grids = frame

    # -- one file per generation, mapped by every process -------------------------------------
    def to_file(self, directory):
        """Write this snapshot as ``directory``/gen-<generation>.snap (see :mod:`gridmap.snapfile`); its path."""
        arrays, meta = {}, {"format": 1, "generation": self.generation, "built_at": self.built_at.isoformat(),
                            "metric": _metric_centre(self.metric)}
        grid_arrays, meta["grid_index"] = self._grid_index.to_arrays()
        arrays.update({f"grid_index.{k}": v for k, v in grid_arrays.items()})
        meta["grid_columns"] = _put_frame(arrays, "grids", self.grids)
        geoms, _ = self._grids_in_metres()
        arrays["grids.metric.o"], arrays["grids.metric.b"] = snapfile.pack_bytes(shapely.to_wkb(geoms).tolist())
        if self.communities is not None:
            meta["community_columns"] = _put_frame(arrays, "communities", self.communities)
        if self._community_index is not None:
            community_arrays, meta["community_index"] = self._community_index.to_arrays()
            arrays.update({f"community_index.{k}": v for k, v in community_arrays.items()})
        for name, part in (("entities", self._entities), ("cameras", self._cameras)):
            if part is not None:
                part_arrays, meta[name] = part.to_arrays(name)
                arrays.update(part_arrays)
        meta["workers"], meta["branches"] = self.workers, self.branches
        if self.roads is not None:
            meta["roads"] = _put_roads(arrays, self.roads)
        if self.addresses is not None:
            # flat arrays searched in place: unpickled, a city's register was ~190 MB per process
            address_arrays, meta["addresses"] = self.addresses.to_arrays()
            arrays.update({f"addresses.{k}": v for k, v in address_arrays.items()})
        return snapfile.write(directory, self.generation, arrays, meta)

    @classmethod
    def from_file(cls, path, *, verify=True, previous=None):
        """The snapshot in the file :meth:`to_file` wrote, its arrays mapped read-only (not copied).

        ``previous``: the mapped snapshot this one replaces. What it made per process (k-d trees,
        road graphs, the address index, grids in metres) is reused where the file holds the same
        arrays (equal checksums): publishing a plan changes no road, so no road graph is rebuilt.

        Raises :class:`gridmap.snapfile.BadSnapshotFile` for a partial or corrupt file.
        """
        f = snapfile.Mapped(path, verify=verify)
        old = previous._file if previous is not None and getattr(previous, "source", None) is not None else None

        def same(prefix):
            return old is not None and old.key(prefix) == f.key(prefix) and old.meta.get(prefix) == f.meta.get(prefix)
        meta = f.meta
        self = cls.__new__(cls)
        self.generation = int(meta["generation"])
        self.built_at = dt.datetime.fromisoformat(meta["built_at"])
        self.source = f.path
        self._file = f  # keeps the mapping open as long as the snapshot lives
        self.metric = metric_for(tuple(meta["metric"]))
        self.metric_crs = self.metric.crs
        self._metric_grids_lock = threading.Lock()
        self._metric_grids = None
        grid_arrays = _prefixed(f, "grid_index")
        self._grids = None
        self._grids_loader = lambda: _get_frame(f, "grids", meta["grid_columns"])
        self._grid_index = PolygonIndex.from_arrays(grid_arrays, meta["grid_index"], lambda: self.grids.geometry.values)
        self._grid_codes = _get_values(_prefixed(f, "grids"), "col.code")
        self._grid_names = _get_values(_prefixed(f, "grids"), "col.name")
        self._grid_community = _get_values(_prefixed(f, "grids"), "col.community_code")
        self.communities = _get_frame(f, "communities", meta["community_columns"]) \
            if "community_columns" in meta else None
        self._community_index, self._community_info, self._community_codes = None, {}, []
        if "community_index" in meta:
            self._community_index = PolygonIndex.from_arrays(_prefixed(f, "community_index"), meta["community_index"],
                                                             self.communities.geometry.values)
            self._community_codes = self.communities["code"].tolist()
            self._community_info = {row["code"]: _community_parts(row) for row in
                                    self.communities.drop(columns=self.communities.geometry.name).to_dict("records")}
        reuse = {"entities": previous._entities, "cameras": previous._cameras} if old is not None else {}
        self._entities = _Entities.from_arrays(f, "entities", meta["entities"],
                                               trees_of=reuse["entities"] if same("entities") else None) \
            if "entities" in meta else None
        self._cameras = _Cameras.from_arrays(f, "cameras", meta["cameras"],
                                             tree_of=reuse["cameras"] if same("cameras") else None) \
            if "cameras" in meta else None
        self.workers, self.branches = meta["workers"], meta["branches"]
        if same("grids.metric") and previous._metric_grids is not None:
            self._metric_grids = previous._metric_grids
        # the road graphs (CSR per mode, an STRtree) and the address index are made on first use, or
        # by warm() in the cache's background thread: a new process answers its first locate sooner
        self._lazy_lock = threading.Lock()
        self._lazy = {"roads": (lambda: _get_roads(f, meta["roads"])) if "roads" in meta else (lambda: None),
                      "addresses": lambda: _get_addresses(f)}
        if same("roads") and "roads" not in previous._lazy:
            self.roads = previous.roads
        if same("addresses") and "addresses" not in previous._lazy:
            self.addresses = previous.addresses
        return self

    def warm(self):
        """Make now what a mapped snapshot would otherwise make on first use (roads, addresses, grids in metres)."""
        _ = self.roads, self.addresses
        if len(self._grid_codes):
            self._grids_in_metres()
        return self

    def _lazy_get(self, name):
        if name in self._lazy:
            with self._lazy_lock:
                if name in self._lazy:
                    self.__dict__["_" + name] = self._lazy[name]()
                    del self._lazy[name]
        return self.__dict__["_" + name]

    @property
    def roads(self):
        """The road graph of every travel mode (:class:`~gridmap.geo.roads.RoadGraph`), None without roads."""
        return self._lazy_get("roads")

    @roads.setter
    def roads(self, graph):
        self._lazy.pop("roads", None)
        self._roads = graph

    @property
    def addresses(self):
        """The fuzzy address index over the building register, None without buildings."""
        return self._lazy_get("addresses")

    @addresses.setter
    def addresses(self, index):
        self._lazy.pop("addresses", None)
        self._addresses = index

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
        cameras (with their stored views), grid workers, grid party branches, roads and addresses."""
        gen = generation(session)
        f = snapshot_frames(session, on=on)
        snap = cls.from_frames(f["grids"], responders=f["responders"], volunteers=f["volunteers"],
                               cameras=f["cameras"], communities=f["communities"], generation=gen)
        snap.workers = f["workers"]
        snap.branches = f["branches"]
        # Built once per generation and reused by every request: rebuilding per query would cost seconds.
        # every mode's graph too: the first car query must not pay for building the car network
        snap.roads = RoadGraph.from_lines(f["roads"]).prepare() if f["roads"] is not None else None
        snap.addresses = AddressIndex.from_records(f["addresses"]) if f["addresses"] else None
        return snap

    def _metric(self, lon, lat):
        """(lon, lat) in the snapshot's local metric CRS; NotFound where that CRS cannot reach.

        A transverse Mercator centred on the city diverges far from it (the other side of the
        globe projects to infinity), and a distance measured there would be meaningless anyway.
        """
        x, y = self.metric.xy(lon, lat)
        if not (math.isfinite(x) and math.isfinite(y)) or max(abs(x), abs(y)) > _MAX_METRIC_M:
            raise NotFound(f"({lon}, {lat}) is too far from the area this gridmap serves to measure distances.",
                               fix="Give a point within a few hundred kilometres of its communities.")
        return x, y

    # -- where a point lies -----------------------------------------------------------------
    def grid_at(self, lon, lat):
        """Position in :attr:`grids` of the grid containing (lon, lat) by :data:`EDGE_RULE`, or -1."""
        return self._grid_index.lookup_one(lon, lat)

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

    def grids_near(self, lon, lat, radius_m):
        """Grids other than the point's own within ``radius_m`` metres of a WGS84 point, nearest first.

        The point's own grid is the one :meth:`grid_at` picks (on a shared edge, the lowest code),
        so a point on a shared edge lists the neighbour at 0 m. Returns dicts ``code``, ``name``,
        ``community_code``, ``distance_m`` (0.1 m).
        """
        if not len(self._grid_codes):
            return []
        x, y = self.metric.xy(lon, lat)
        if not (math.isfinite(x) and math.isfinite(y)):
            return []  # a transverse Mercator cannot reach the point: no grid is anywhere near it
        geoms, tree = self._grids_in_metres()
        point = shapely.Point(x, y)
        hits = tree.query(point, predicate="dwithin", distance=radius_m)
        hits = hits[hits != self.grid_at(lon, lat)]
        if not len(hits):
            return []
        dist = shapely.distance(geoms[hits], point)
        out = [{"code": self._grid_codes[i], "name": self._grid_names[i] or self._grid_codes[i],
                "community_code": self._grid_community[i], "distance_m": round(d, 1)}
               for i, d in zip(hits.tolist(), dist.tolist()) if d <= radius_m]
        return sorted(out, key=lambda g: (g["distance_m"], g["code"]))

    def _grids_in_metres(self):
        # projected once per snapshot (a generation), not per request: a city's grids take a second;
        # a mapped snapshot reads them projected from its file (~0.05 s) instead
        if self._metric_grids is None:
            grids = self.grids if self.source is None else None
            with self._metric_grids_lock:
                if self._metric_grids is None:
                    if self.source is None:
                        geoms = self.metric.project(grids.geometry.values)
                    else:
                        a = _prefixed(self._file, "grids.metric")
                        geoms = shapely.from_wkb(_unpack_bytes(a["o"], a["b"]))
                    self._metric_grids = (geoms, shapely.STRtree(geoms))
        return self._metric_grids

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


# -- to and from a snapshot file -----------------------------------------------------------------

def _prefixed(f, prefix):
    """The arrays of ``f`` named ``prefix.*``, keyed without the prefix."""
    cut = len(prefix) + 1
    return {k[cut:]: v for k, v in f.arrays.items() if k.startswith(prefix + ".")}


def _put_values(arrays, name, values):
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        arrays[name] = values
    else:
        arrays[name + ".o"], arrays[name + ".b"] = snapfile.pack_values(values)


def _get_values(a, name):
    return a[name] if name in a else snapfile.PackedValues(a[name + ".o"], a[name + ".b"])


def _unpack_bytes(offsets, blob):
    return [blob[offsets[i]:offsets[i + 1]].tobytes() or None for i in range(len(offsets) - 1)]


def _put_frame(arrays, prefix, frame):
    """A small GeoDataFrame's columns as JSON values and its geometry as WKB; returns the column order."""
    geom = frame.geometry.name
    for col in frame.columns:
        if col != geom:
            arrays[f"{prefix}.col.{col}.o"], arrays[f"{prefix}.col.{col}.b"] = snapfile.pack_values(
                frame[col].tolist())
    wkb = [shapely.to_wkb(g) if g is not None else None for g in frame.geometry.values]
    arrays[f"{prefix}.geom.o"], arrays[f"{prefix}.geom.b"] = snapfile.pack_bytes(wkb)
    return {"columns": [str(c) for c in frame.columns], "geometry": geom}


def _get_frame(f, prefix, spec):
    a = _prefixed(f, prefix)
    geoms = shapely.from_wkb(_unpack_bytes(a["geom.o"], a["geom.b"]))
    data = {c: _get_values(a, f"col.{c}").tolist() for c in spec["columns"] if c != spec["geometry"]}
    frame = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=4326), crs=4326)
    frame = frame.rename_geometry(spec["geometry"]) if spec["geometry"] != "geometry" else frame
    return frame[spec["columns"]]


class _MappedViews:
    """Camera view polygons (metres) read from a file's WKB one at a time, prepared and kept once read."""

    def __init__(self, offsets, blob):
        self._o, self._blob = offsets, blob
        self._seen = {}
        self._lock = threading.Lock()

    def __len__(self):
        return len(self._o) - 1

    def __getitem__(self, i):
        try:
            return self._seen[i]
        except KeyError:
            pass
        with self._lock:  # shapely.prepare is not documented as thread-safe
            raw = self._blob[self._o[i]:self._o[i + 1]].tobytes()
            g = shapely.from_wkb(raw) if raw else None
            if g is not None:
                shapely.prepare(g)
            self._seen[i] = g
        return g

    @property
    def nbytes(self):
        return self._blob.nbytes + self._o.nbytes


def _metric_centre(metric):
    params = {p.name: p.value for p in metric.crs.coordinate_operation.params}
    return [params["Longitude of natural origin"], params["Latitude of natural origin"]]


def _put_roads(arrays, roads):
    # every mode's finished graph goes in the file: workers map it rather than build it
    parts, meta = roads.to_arrays()
    arrays.update({f"roads.{k}": v for k, v in parts.items()})
    return {**meta, "metric": _metric_centre(roads.metric)}


def _get_addresses(f):
    if "addresses" in f.meta:
        return AddressIndex.from_arrays(_prefixed(f, "addresses"), f.meta["addresses"])
    pickled = f.get("addresses.pickle")  # a file of an older build
    return pickle.loads(pickled) if pickled is not None else None


def _get_roads(f, meta):
    graph = RoadGraph.from_arrays(metric_for(tuple(meta["metric"])), _prefixed(f, "roads"), meta)
    return graph.prepare()  # a file of an older build may lack a mode's graph: build it now


# -- one snapshot per process, and the snapshots of past days ----------------------------------

class SnapshotCache:
    """The current generation's Snapshot for this process.

    With a ``directory`` (the web app's ``SNAPSHOT_DIR``) every generation is built once into a
    file of flat arrays (:mod:`gridmap.snapfile`) that every process maps read-only:

    * the first process to see a new generation builds the file under a lock in the store
      (``pg_try_advisory_lock`` on PostgreSQL, ``flock`` on SQLite); the others keep answering
      from the generation they have and map the file when it appears;
    * a process that has a snapshot never builds or maps inside a request: a background thread
      does, and requests keep the previous generation until the new one is ready; only the
      first request of a process with none waits;
    * on PostgreSQL a listener thread (``LISTEN``) hears each publish at once; the generation
      counter is polled every ``check_seconds`` on both backends (a lost notification or SQLite);
    * a partial or corrupt file is refused and rebuilt; the two newest files are kept.

    ``check_seconds=0`` (tests, one-off commands) checks and loads in the calling thread on
    every call, so a publish is visible to the next call. Without a ``directory`` each process
    builds its own snapshot from the store, as before files.
    """

    #: how long a process without a snapshot waits for another's build before building its own
    WAIT_FOR_BUILD_SECONDS = 900.0
    KEEP_FILES = 2

    def __init__(self, store, check_seconds=2.0, directory=None, listen=None):
        self.store = store
        self.check_seconds = check_seconds
        self.directory = snapfile.folder_for(directory, store) if directory is not None else None
        self.listen = (store.is_postgis and directory is not None and check_seconds > 0) if listen is None else listen
        self._snapshot = None
        self._checked = 0.0
        self._lock = threading.Lock()  # one loader at a time in this process
        self._wake = threading.Event()
        self._stale = False
        self._pid = None
        self._worker = None
        self._listener = None
        self._closing = False
        self.builds = 0  # snapshots this process built from the store (tests and benchmarks read it)

    def get(self):
        """The snapshot to answer with now: the newest loaded (see the class docstring)."""
        background = self.directory is not None and self.check_seconds > 0
        if background:
            self._start_threads()  # once per process (a pid check): the listener must run from the start
        snap = self._snapshot
        if snap is not None and not self._stale and time.monotonic() - self._checked < self.check_seconds:
            return snap
        if snap is None or not background:
            return self.refresh()
        self._wake.set()
        return snap

    def refresh(self, *, warm=False):
        """Check the generation and load it here and now (mapping, building or waiting); the snapshot.

        With ``warm`` the new snapshot's road graphs and address index are made before it is
        answered from (the background thread); otherwise a thread makes them meanwhile.
        """
        with self._lock:
            self._stale = False
            with self.store.session() as session:
                gen = generation(session)
                if self._snapshot is None or self._snapshot.generation != gen:
                    if self.directory is None:
                        self.builds += 1
                        self._snapshot = Snapshot.from_store(session)
                    else:
                        session.close()  # a build may take a while: hold no connection meanwhile
                        snap = self._load(gen)
                        if warm:
                            snap.warm()
                        else:
                            threading.Thread(target=snap.warm, name="gridmap-snapshot-warm", daemon=True).start()
                        self._snapshot = snap
            self._checked = time.monotonic()
            return self._snapshot

    def invalidate(self):
        """The store changed here: check the generation at the next :meth:`get`."""
        self._stale = True

    def close(self):
        """Stop this process's background threads and wait for them (tests; a web process just exits)."""
        self._pid = None
        self._closing = True
        self._wake.set()
        for thread, stop in ((self._listener and self._listener.thread, self._listener and self._listener.stop),
                             (self._worker, None)):
            if stop is not None:
                stop()
            if thread is not None and thread is not threading.current_thread() and thread.is_alive():
                thread.join(30)

    # -- loading ----------------------------------------------------------------------------
    def _load(self, gen):
        """The snapshot of generation ``gen`` (or newer): its file mapped, built first if nobody has."""
        waited_since = time.monotonic()
        while True:
            snap = self._map(gen)
            if snap is not None:
                return snap
            with snapfile.build_lock(self.store, self.directory, gen) as mine:
                if mine:
                    # whoever held the lock before may have finished while we looked
                    return self._map(gen) or self._build()
            if time.monotonic() - waited_since > self.WAIT_FOR_BUILD_SECONDS:
                log.warning("no snapshot file for generation %s after %.0f s: building one here", gen,
                            self.WAIT_FOR_BUILD_SECONDS)
                return self._build(write=False)
            if self._closing:
                raise _Closed()
            time.sleep(0.05)  # another process is building it: its file appears when done

    def _map(self, gen):
        """The newest file of generation ``gen`` or later, mapped; None when there is none sound.

        Later too: a build that started just before a publish reads the newer generation and
        writes that file, never the one we asked for.
        """
        for g in reversed(snapfile.generations_in(self.directory)):
            if g < gen:
                return None
            try:
                return Snapshot.from_file(snapfile.path_for(self.directory, g), previous=self._snapshot)
            except FileNotFoundError:
                continue
            except snapfile.BadSnapshotFile as err:
                log.warning("snapshot file refused, rebuilding it: %s", err)
                if g == gen:
                    return None
        return None

    def _build(self, write=True):
        self.builds += 1
        with self.store.session() as session:
            snap = Snapshot.from_store(session)
        if not write:
            return snap
        path = snap.to_file(self.directory)
        gens = snapfile.generations_in(self.directory)
        keep = set([g for g in gens if g <= snap.generation][-self.KEEP_FILES:]) | {g for g in gens if g > snap.generation}
        snapfile.remove_old(self.directory, keep)
        # answer from the file too, so the builder shares its pages with everyone else
        return Snapshot.from_file(path, verify=False, previous=self._snapshot)

    # -- background -------------------------------------------------------------------------
    def _start_threads(self):
        if self._pid == os.getpid():
            return
        # threads do not survive gunicorn's fork: each worker starts its own on its first request
        self._pid = os.getpid()
        self._wake = threading.Event()
        self._worker = threading.Thread(target=self._background, name="gridmap-snapshot", daemon=True)
        self._worker.start()
        if self.listen:
            self._listener = snapfile.Listener(self.store, self._wake.set).start()

    def _background(self):
        pid = os.getpid()
        while self._pid == pid:
            self._wake.wait(max(self.check_seconds, 0.05))
            self._wake.clear()
            if self._pid != pid:
                return
            try:
                self.refresh(warm=True)
            except _Closed:
                return
            except Exception:  # a store that is down: keep serving what we have, try again later
                log.exception("snapshot refresh failed; still serving generation %s",
                              getattr(self._snapshot, "generation", None))

class _Closed(Exception):
    """The cache was closed while waiting for another process's build."""


SNAPSHOT_CACHE_SIZE = 8
_snapshots = OrderedDict()
_snapshots_lock = threading.Lock()


def snapshot_on(session, day):
    """The :class:`Snapshot` of the plans valid on ``day``, cached.

    Keyed by (database, published generation, day): a publish moves the generation on, so a
    cached day is never answered from plans that have since been superseded. A few days are
    kept (least recently used go first): as-of questions cluster around a handful of dates.
    """
    key = (session.get_bind().url.render_as_string(hide_password=True), generation(session), day)
    with _snapshots_lock:
        if key in _snapshots:
            _snapshots.move_to_end(key)
            return _snapshots[key]
        snap = Snapshot.from_store(session, on=day)
        _snapshots[key] = snap
        while len(_snapshots) > SNAPSHOT_CACHE_SIZE:
            _snapshots.popitem(last=False)
        return snap
