"""The tile layers, the zooms where each is legible, and the checks on a tile's address."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import N_, InvalidInput, NotFound

MAX_ZOOM = 22
EXTENT = 4096  # MVT units across a tile, as ST_AsMVT's default
BUFFER = 64  # MVT units drawn beyond each edge, so outlines do not stop short at tile seams
EARTH_HALF = math.pi * 6378137.0  # half the Web Mercator world, metres


@dataclass(frozen=True)
class Layer:
    name: str
    min_zoom: int  # below it the layer is an empty tile: thousands of outlines smaller than a pixel
    areas: bool = True  # polygons built per generation (tile_area) or incident points read live


# Each level becomes legible where its typical area is some 50 px across (a Dalian district
# ~20 km, a street office ~4 km, a community ~1 km, a grid ~300 m); the city map drills down through
# these bands: districts z8–9, streets z10–11, communities z12–13, grids from z14.
LAYERS = {layer.name: layer for layer in (
    Layer("districts", 8), Layer("streets", 10), Layer("communities", 12), Layer("grids", 14),
    Layer("incidents", 14, areas=False))}
AREA_LEVELS = tuple(name for name, layer in LAYERS.items() if layer.areas)


def layer_of(name):
    """The :class:`Layer` called ``name``; NotFound naming the catalogue otherwise."""
    layer = LAYERS.get(name)
    if layer is None:
        raise NotFound(N_("Tile layer %(value)s does not exist."),
                       fix=N_("Use one of: %(layers)s."), params={"value": name, "layers": ", ".join(LAYERS)})
    return layer


def tile_address(z, x, y):
    """``(z, x, y)`` as ints inside the tile pyramid (z ≤ 22); InvalidInput naming the bad value."""
    out = []
    for what, value in (("z", z), ("x", x), ("y", y)):
        try:
            v = int(str(value), 10)
        except (TypeError, ValueError):
            raise InvalidInput(N_("Tile %(what)s %(value)s is not a whole number."),
                               fix=N_("Ask for /tiles/LAYER/Z/X/Y.mvt with whole numbers, 0 ≤ Z ≤ %(max)s."),
                               params={"what": what, "value": str(value)[:32], "max": MAX_ZOOM}) from None
        out.append(v)
    z, x, y = out
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidInput(N_("Tile zoom %(value)s is outside 0–%(max)s."),
                           fix=N_("Ask for a zoom from 0 to %(max)s."), params={"value": z, "max": MAX_ZOOM})
    n = 1 << z
    for what, v in (("x", x), ("y", y)):
        if not 0 <= v < n:
            raise InvalidInput(N_("Tile %(what)s %(value)s is outside 0–%(last)s at zoom %(z)s."),
                               fix=N_("At zoom Z, X and Y run from 0 to 2^Z − 1."),
                               params={"what": what, "value": v, "last": n - 1, "z": z})
    return z, x, y


def tile_metres(z):
    """The width of a tile at zoom ``z`` in Web Mercator metres."""
    return 2 * EARTH_HALF / (1 << z)


def tolerance(z):
    """How far outlines may be simplified at zoom ``z``: half a screen pixel (256 px a tile), in
    metres, so generalised outlines look the same and weigh far less at low zoom."""
    return tile_metres(z) / 256 / 2


def mercator_bounds(z, x, y, *, buffer=0):
    """(minx, miny, maxx, maxy) of the tile in EPSG:3857 metres, widened by ``buffer`` MVT units."""
    size = tile_metres(z)
    pad = size * buffer / EXTENT
    minx = -EARTH_HALF + x * size
    maxy = EARTH_HALF - y * size
    return minx - pad, maxy - size - pad, minx + size + pad, maxy + pad


def lonlat_bounds(z, x, y, *, buffer=0):
    """The same box in WGS84 degrees (Web Mercator keeps boxes boxes), clamped to the Mercator world."""
    minx, miny, maxx, maxy = mercator_bounds(z, x, y, buffer=buffer)
    lon0, lat0 = to_lonlat(max(minx, -EARTH_HALF), max(miny, -EARTH_HALF))
    lon1, lat1 = to_lonlat(min(maxx, EARTH_HALF), min(maxy, EARTH_HALF))
    return lon0, lat0, lon1, lat1


def to_lonlat(mx, my):
    return (math.degrees(mx / 6378137.0),
            math.degrees(2 * math.atan(math.exp(my / 6378137.0)) - math.pi / 2))
