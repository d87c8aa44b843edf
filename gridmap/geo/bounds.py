"""How much geometry one file may hold: size, nesting and vertices, checked on the text before GDAL or GEOS parse it.

GEOS reads WKT (and WKB) recursively: a ``GEOMETRYCOLLECTION(GEOMETRYCOLLECTION(…`` some
20,000 levels deep overflows the C stack and kills the process (a segfault, not an exception),
so the text is measured first, by counting brackets, and only bounded text reaches a parser.
GDAL bounds what it parses itself (WKB at 32 levels, JSON at about 1,000), but the GeoJSON text is
still measured here, so that the refusal names our limit and its fix rather than GDAL's internals.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import shapely

from .errors import InvalidInput, N_

__all__ = [
    "MAX_DEPTH",
    "MAX_JSON_DEPTH",
    "MAX_TEXT_BYTES",
    "MAX_VERTICES",
    "check_json",
    "check_text_size",
    "geometry_problems",
    "wkt_problem",
]

# Real features nest at most 4 deep (a GEOMETRYCOLLECTION of MULTIPOLYGONs: GC → polygon → ring →
# coordinates); GEOS's recursive readers crash at about 20,000 on an 8 MiB stack, fewer on a
# worker thread's smaller one. 64 refuses nothing real and stays far below any stack.
MAX_DEPTH = 64
# The largest real feature in ../shared/data has 11,000 vertices (Dalian's city outline); a whole
# Chinese province drawn at 1:10,000 stays under a million. More is a data error or an attack.
MAX_VERTICES = 1_000_000
# CSV and GeoJSON are parsed whole in memory (pandas; GDAL's GeoJSON reader). 512 MiB holds
# about a million building footprints; anything larger belongs in a GeoPackage, read row by row.
MAX_TEXT_BYTES = 512 * 2**20
# A GeoJSON file nests FeatureCollection › features › Feature › geometry (4) around the geometry,
# and a geometry level costs two JSON levels (an object and its "geometries" or coordinates
# array); the slack of 8 covers nested objects in "properties".
MAX_JSON_DEPTH = 4 + 2 * MAX_DEPTH + 8

_SIZE_FIX = "Split the file, or convert it to a GeoPackage (ogr2ogr out.gpkg in.geojson), which is read row by row."
_DEPTH_FIX = N_("Give each feature a flat geometry (Polygon, MultiPolygon, LineString or Point), "
                "not collections inside collections")
_VERTICES_FIX = N_("Simplify the geometry (QGIS Simplify, or ogr2ogr -simplify 0.5) or split the feature into "
                   "smaller ones")

_CHUNK = 1 << 20  # bytes scanned at a time: bounded memory whatever the size of the text

# The step each byte makes in nesting depth, for WKT (parentheses) and JSON (brackets, braces).
_WKT_STEP = np.zeros(256, dtype=np.int8)
_WKT_STEP[ord("(")], _WKT_STEP[ord(")")] = 1, -1
_JSON_STEP = np.zeros(256, dtype=np.int8)
_JSON_STEP[[ord("["), ord("{")]], _JSON_STEP[[ord("]"), ord("}")]] = 1, -1
# A coordinate tuple is a number right after "(" or "," (GC members start with a letter instead).
_OPENS_TUPLE = np.zeros(256, dtype=bool)
_OPENS_TUPLE[[ord("("), ord(",")]] = True
_STARTS_NUMBER = np.zeros(256, dtype=bool)
_STARTS_NUMBER[[ord(c) for c in "0123456789+-.NnIi"]] = True  # NaN and inf are numbers to GEOS
_SPACE = np.zeros(256, dtype=bool)
_SPACE[[ord(c) for c in " \t\r\n"]] = True
# JSON strings may hold any bracket; they are blanked before counting. The pattern matches at
# every opening quote, a string this chunk does not close included (it runs to the end, group 1
# holding a backslash that escapes the next chunk's first byte): a pattern that could fail there
# would be retried at every escaped quote inside, quadratic time on a string of \" \" \" …
# Possessive quantifiers keep it linear: ~20 MB/s, five times the speed of GDAL reading GeoJSON.
_JSON_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|(\\?)\Z)', re.DOTALL)


def check_text_size(path, source: str) -> None:
    """Refuse a CSV or GeoJSON file larger than :data:`MAX_TEXT_BYTES` before it is read."""
    size = Path(path).stat().st_size
    if size > MAX_TEXT_BYTES:
        raise InvalidInput(
            N_('"%(source)s" is %(size)s; text files (CSV, GeoJSON) may be at most %(MAX_TEXT_BYTES)s.'),
            fix=_SIZE_FIX,
            details={"path": source, "bytes": size, "limit": MAX_TEXT_BYTES},
            params={"source": source, "size": _mib(size), "MAX_TEXT_BYTES": _mib(MAX_TEXT_BYTES)},
        )


def wkt_problem(text: str, column: str) -> tuple[str, str, str, dict] | None:
    """Why the WKT ``text`` must not reach GEOS (message and fix templates, code, params), or None when it is within bounds.

    Depth is the deepest parenthesis nesting (``POLYGON((…))`` is 2); vertices are the
    coordinate tuples. Both are counted on the text in linear time and bounded memory.
    """
    opens = text.count("(")
    if opens <= MAX_DEPTH and opens + text.count(",") < MAX_VERTICES:
        return None  # too few brackets to nest deeper, too few separators for more vertices
    data = text.encode("ascii", "replace")  # WKT is ASCII; anything else fails to parse anyway
    _, depth = _depth(data, _WKT_STEP)
    if depth > MAX_DEPTH:
        return (N_("%(column)s nests %(depth)s levels deep, more than the limit of %(limit)s"), _DEPTH_FIX,
                "too_deep", {"column": column, "depth": f"{depth:,}", "limit": MAX_DEPTH})
    vertices = _count_tuples(np.frombuffer(data, dtype=np.uint8))
    if vertices > MAX_VERTICES:
        return (N_("%(column)s has %(vertices)s vertices, more than the limit of %(limit)s per feature"),
                _VERTICES_FIX, "too_many_vertices",
                {"column": column, "vertices": f"{vertices:,}", "limit": f"{MAX_VERTICES:,}"})
    return None


def check_json(stream, source: str) -> None:
    """Refuse JSON text (a binary stream) nested deeper than :data:`MAX_JSON_DEPTH` or longer than the size limit.

    Reads at most ``MAX_TEXT_BYTES + 1`` bytes, a megabyte at a time, so a file that lies about
    its size (a zip member, a pipe) is still bounded.
    """
    depth, carry, read = 0, b"", 0
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        read += len(chunk)
        if read > MAX_TEXT_BYTES:
            raise InvalidInput(
                N_('"%(source)s" is larger than %(MAX_TEXT_BYTES)s, the limit for GeoJSON.'),
                fix=_SIZE_FIX,
                details={"path": source, "limit": MAX_TEXT_BYTES},
                params={"source": source, "MAX_TEXT_BYTES": _mib(MAX_TEXT_BYTES)},
            )
        unclosed: list[bytes] = []
        blanked = _JSON_STRING.sub(functools.partial(_blank, unclosed=unclosed), carry + chunk)
        # only the opening quote of an unclosed string, and a pending escape, matter to what follows
        carry = b'"' + unclosed[0] if unclosed else b""
        depth, peak = _depth(blanked, _JSON_STEP, depth)
        if peak > MAX_JSON_DEPTH:
            raise InvalidInput(
                N_('"%(source)s" nests its JSON more than %(MAX_JSON_DEPTH)s levels deep (at least %(peak)s '
                   "within its first %(read)s); geometries may nest at most %(MAX_DEPTH)s deep."),
                fix=N_("Give each feature a flat geometry (Polygon, MultiPolygon, LineString or Point), "
                       "not collections inside collections."),
                details={"path": source, "limit": MAX_JSON_DEPTH},
                params={"source": source, "MAX_JSON_DEPTH": MAX_JSON_DEPTH, "peak": format(peak, ','),
                        "read": _mib(read), "MAX_DEPTH": MAX_DEPTH},
            )


def _blank(match: re.Match, unclosed: list) -> bytes:
    if match.group(1) is not None:
        unclosed.append(match.group(1))
    return b"0"


def geometry_problems(geoms) -> list[tuple[int, str, str, str]]:
    """(index, value, message, fix, code, params) for every parsed geometry deeper or larger than the limits.

    For geometries that GDAL parsed under its own bounds (GeoPackage, Shapefile, GeoJSON):
    their depth is measured level by level with ``shapely.get_parts``, never by recursion.
    """
    geoms = np.asarray(geoms, dtype=object)
    out = []
    vertices = shapely.get_num_coordinates(geoms)
    for i in np.flatnonzero(vertices > MAX_VERTICES):
        n = int(vertices[i])
        message = N_("the geometry has %(vertices)s vertices, more than the limit of %(limit)s per feature")
        out.append((int(i), f"{n:,} vertices", message, _VERTICES_FIX, "too_many_vertices",
                    {"vertices": f"{n:,}", "limit": f"{MAX_VERTICES:,}"}))
    depth = _geometry_depth(geoms)
    for i in np.flatnonzero(depth > MAX_DEPTH):
        out.append((int(i), f"more than {MAX_DEPTH} levels",
                    N_("the geometry nests more than %(limit)s levels deep"), _DEPTH_FIX, "too_deep",
                    {"limit": MAX_DEPTH}))
    return sorted(out, key=lambda p: p[:4])


def _geometry_depth(geoms: np.ndarray) -> np.ndarray:
    """WKT parenthesis depth of each geometry, capped at ``MAX_DEPTH + 1``."""
    depth = np.zeros(len(geoms), dtype=np.int64)
    present = np.flatnonzero(~shapely.is_missing(geoms))
    current, owner, level = geoms[present], present, 1
    while len(current) and level <= MAX_DEPTH + 1:
        types = shapely.get_type_id(current)
        # a Polygon's rings are one more level of parentheses than a LineString's coordinates
        leaf = np.where(types == 3, level + 1, level)
        np.maximum.at(depth, owner, np.where(np.isin(types, (4, 5, 6, 7)), level, leaf))
        collection = np.isin(types, (4, 5, 6, 7))
        parts, index = shapely.get_parts(current[collection], return_index=True)
        current, owner, level = parts, owner[collection][index], level + 1
    if len(current):
        depth[np.unique(owner)] = MAX_DEPTH + 1
    return depth


def _count_tuples(codes: np.ndarray) -> int:
    """Number of coordinate tuples in WKT bytes: separators whose next non-blank byte starts a number."""
    solid = np.flatnonzero(~_SPACE[codes])
    separators = np.flatnonzero(_OPENS_TUPLE[codes])
    after = np.searchsorted(solid, separators + 1)
    after = after[after < len(solid)]
    return int(np.count_nonzero(_STARTS_NUMBER[codes[solid[after]]]))


def _depth(data: bytes, step: np.ndarray, depth: int = 0) -> tuple[int, int]:
    """(depth at the end, deepest point) of bracket nesting in ``data``, starting at ``depth``."""
    peak = depth
    for start in range(0, len(data), _CHUNK):
        codes = np.frombuffer(data, dtype=np.uint8, count=min(_CHUNK, len(data) - start), offset=start)
        running = np.cumsum(step[codes], dtype=np.int64) + depth
        peak = max(peak, int(running.max()))
        depth = int(running[-1])
    return depth, peak


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB" if n >= 2**20 else f"{n:,} bytes"
