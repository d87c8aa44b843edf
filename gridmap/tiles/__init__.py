"""The city map as vector tiles: districts, streets, communities, grids and incident points.

``tile(store, layer, z, x, y, role=…, area=…)`` answers the MVT bytes of one tile and its ETag.
PostGIS draws them with ``ST_AsMVT`` (:mod:`.postgis`), SQLite in Python (:mod:`.python`), from
the same per-generation areas (:mod:`.areas`). Who sees what is the permission table's: the
areas are public like the resident map (outlines, names and counts of the plan that is posted in
every courtyard), with open incidents counted only in the categories public in statistics unless
the role may see private statistics everywhere; the incident points only for the roles that may
read incidents, and only where they may (:mod:`gridmap.access`).
"""
from __future__ import annotations

import hashlib
import time

import numpy as np
from sqlalchemy import false, or_, select

from .. import access
from ..errors import N_, NotFound
from ..store import models as m
from ..store.generations import generation as published_generation
from . import areas, postgis, python
from .cache import DEFAULT_BYTES, TileCache
from .layers import AREA_LEVELS, LAYERS, MAX_ZOOM, layer_of, lonlat_bounds, tile_address

__all__ = ["AREA_LEVELS", "DEFAULT_BYTES", "LAYERS", "MAX_ZOOM", "PROPERTIES", "Tile", "TileCache", "area_bounds", "overview", "tile",
           "tile_address", "layer_of", "lonlat_bounds"]

#: Incident points change without a publish: their tiles are kept this many seconds at most.
INCIDENT_SECONDS = 30


class Tile:
    """One answer: ``data`` (MVT bytes, b"" when the tile is empty), ``etag`` and whether a shared
    cache may keep it (``public``)."""

    __slots__ = ("data", "etag", "public")

    def __init__(self, data, etag, public):
        self.data, self.etag, self.public = data, etag, public


def visibility(layer, role, area):
    """What of ``layer`` the role may see, as a short key: tiles differ only between keys.

    Raises Unauthenticated/Forbidden for the incident points when the role may not read incidents."""
    if LAYERS[layer].areas:
        return "all" if access.bounds(role, "stats.private", area) is None else "public"
    access.check(role, "incident.read")
    bound = access.bounds(role, "incident.read", area)
    if bound is None:
        return "all"
    scope, where = bound
    places = sorted(where.grids) if scope == access.SERVED else sorted(where.communities)
    return f"{scope}:" + hashlib.sha1(",".join(places).encode()).hexdigest()[:16]


def incident_clause(role, area):
    """The incidents ``role`` may read within ``area`` as a SQL condition (None: all of them)."""
    bound = access.bounds(role, "incident.read", area)
    if bound is None:
        return None
    scope, area = bound
    grid, community = m.Incident.grid_code, m.Incident.community_code
    if scope == access.SERVED:
        if not area.grids:
            return false()
        return or_(grid.in_(sorted(area.grids)), grid.is_(None) & community.in_(sorted(area.served_communities)))
    if scope == access.COVERED:
        return community.in_(sorted(area.communities)) if area.communities else false()
    return false()


def _read_generation(store):
    with store.session() as session:
        return published_generation(session)


def tile(store, layer, z, x, y, *, role=None, area=None, cache=None, now=None, check_seconds=0.0):
    """The tile ``layer``/z/x/y as the role sees it (a :class:`Tile`).

    Bad addresses raise InvalidInput, an unknown layer NotFound naming the layers; below a layer's
    minimum zoom the tile is empty. Tiles are cached per generation in ``cache`` when given, which
    then reads the generation at most every ``check_seconds`` (a publish shows that much later)."""
    spec = layer_of(layer)
    z, x, y = tile_address(z, x, y)
    seen = visibility(layer, role, area)
    if cache is not None:
        gen = cache.generation(lambda: _read_generation(store), check_seconds)
    else:
        gen = _read_generation(store)
    epoch = gen if spec.areas else f"{gen}.{int((now or time.time()) // INCIDENT_SECONDS)}"
    key = (layer, z, x, y, gen, seen, epoch)
    etag = hashlib.sha1(repr(key).encode()).hexdigest()[:24]
    public = spec.areas and seen == "public"
    if z < spec.min_zoom:
        return Tile(b"", etag, public)
    hit = cache.get(key) if cache is not None else None
    if hit is not None:
        return Tile(hit[0], hit[1], public)
    data = _draw(store, spec, z, x, y, gen, seen, role, area)
    if cache is not None:
        cache.put(key, (data, etag))
    return Tile(data, etag, public)


def _draw(store, spec, z, x, y, gen, seen, role, area):
    if spec.areas:
        held = areas.ensure_built(store, gen)
        with store.session() as session:
            if store.is_postgis:
                return postgis.area_tile(session, held, spec.name, z, x, y, private=seen == "all")
            return python.area_tile(python.areas_in_memory(session, held, str(store.url)), spec.name, z, x, y,
                                    private=seen == "all")
    with store.session() as session:
        where = incident_clause(role, area)
        if store.is_postgis:
            return postgis.incident_tile(session, z, x, y, where)
        return python.incident_tile(session, z, x, y, where)


def area_bounds(store, level, code):
    """(minlon, minlat, maxlon, maxlat) of the area ``code`` of ``level``; NotFound otherwise."""
    if level not in AREA_LEVELS:
        layer_of(level)
        raise NotFound(N_("Tile layer %(value)s does not exist."), fix=N_("Use one of: %(layers)s."),
                       params={"value": level, "layers": ", ".join(AREA_LEVELS)})
    with store.session() as session:
        gen = published_generation(session)
    held = areas.ensure_built(store, gen)
    with store.session() as session:
        row = session.get(m.TileArea, (held, level, str(code)[:15]))
    if row is None:
        raise NotFound(N_("There is no %(level)s area with code %(value)s."),
                       fix=N_("Use a code shown on the city map."), params={"level": level, "value": str(code)[:32]})
    return tuple(float(v) for v in row.geom.bounds)


PROPERTIES = ("households", "workers", "open_incidents")
_overviews = {}  # (database, generation, private) → overview


def overview(store, *, role=None, area=None):
    """What a city map needs before its first tile: the bounds of every area and, per level and
    property, the class breaks of its colours (quintiles of the values, as the role sees them)."""
    private = visibility("grids", role, area) == "all"
    with store.session() as session:
        gen = published_generation(session)
    key = (str(store.url), gen, private)
    if key in _overviews:
        return _overviews[key]
    gen = areas.ensure_built(store, gen)
    opened = m.TileArea.open_all if private else m.TileArea.open_public
    with store.session() as session:
        rows = session.execute(select(m.TileArea.level, m.TileArea.households, m.TileArea.workers, opened)
                               .where(m.TileArea.generation == gen)).all()
        bounds = None
        for row in session.execute(select(m.TileArea.geom).where(m.TileArea.generation == gen,
                                                                 m.TileArea.level == "districts")):
            b = row.geom.bounds
            bounds = b if bounds is None else (min(bounds[0], b[0]), min(bounds[1], b[1]),
                                               max(bounds[2], b[2]), max(bounds[3], b[3]))
    breaks = {}
    for level in AREA_LEVELS:
        values = np.array([r[1:] for r in rows if r[0] == level], dtype=float).reshape(-1, 3)
        breaks[level] = {p: _quintiles(values[:, i]) for i, p in enumerate(PROPERTIES)}
    out = {"generation": gen, "bounds": bounds, "breaks": breaks}
    for k in [k for k in _overviews if k[0] == key[0]]:
        del _overviews[k]
    _overviews[key] = out
    return out


def _quintiles(values):
    """Up to four rising class breaks splitting ``values`` into fifths (fewer when values repeat)."""
    if not len(values):
        return []
    qs = np.quantile(values, [0.2, 0.4, 0.6, 0.8])
    out = []
    for q in qs:
        q = float(np.ceil(q))
        if q > 0 and (not out or q > out[-1]):
            out.append(q)
    return out
