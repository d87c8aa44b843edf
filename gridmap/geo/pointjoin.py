"""A user's own point file (Parquet, GeoParquet, CSV) joined to grids a chunk at a time, in bounded memory.

The file is read in chunks (Parquet row groups, read in batches of at most ``rows``; CSV by
``pandas.read_csv(chunksize=…)``), each chunk's points are looked up with
:func:`~gridmap.geo.pointindex.points_to_grids` and the chunk is written on with one more
column, so memory holds a few chunks whatever the file's size. The answers are those of
``points_to_grids(points, grids)`` on the whole file: the grids move into the points' CRS
once, as ``points_to_grids`` moves them, and the points are looked up in their own CRS.

Where the points are:

* a GeoParquet ``geometry`` column (WKB points; the CRS from the file's ``geo`` metadata);
* ``lon``/``lat`` (or ``lng``, ``longitude``/``latitude``) columns: WGS84 unless ``crs`` says otherwise;
* ``x``/``y`` columns: ``crs`` must say which CRS (there is no safe guess for metres).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from .errors import InvalidInput, NotFound, N_
from .pointindex import PolygonIndex

__all__ = ["PointSource", "open_points", "read_chunks", "prepare_grids", "join_chunk", "locate_chunk", "with_codes",
           "FORMATS", "CHUNK_ROWS"]

FORMATS = (".parquet", ".geoparquet", ".pq", ".csv")
CHUNK_ROWS = 1_000_000  # points per chunk: ~40 MB of a chunk in flight, ~0.1 s to look up
_LON = ("lon", "lng", "longitude", "long")
_LAT = ("lat", "latitude")
_GRID_COLUMN = "grid_code"


@dataclass
class PointSource:
    """Where the points of a file are: its path, format, columns, and their CRS (a pyproj CRS)."""
    path: str
    kind: str            # "parquet" | "csv"
    x: str | None        # coordinate columns, or None when the points are a WKB geometry column
    y: str | None
    geometry: str | None
    crs: object
    columns: list
    rows: int | None     # known for Parquet
    geo_metadata: bytes | None = None

    def chunks(self, rows=CHUNK_ROWS):
        """(row group, its rows) of a Parquet file: the units of work on a cluster."""
        import pyarrow.parquet as pq
        meta = pq.ParquetFile(self.path).metadata
        return [(g, meta.row_group(g).num_rows) for g in range(meta.num_row_groups)]


def open_points(path, *, crs=None):
    """Check a point file and find its points and CRS, reading no more than its head.

    Raises
    ------
    NotFound
        When the file does not exist.
    InvalidInput
        Unknown format, no geometry and no coordinate columns, or a CRS that is not known.
    """
    p = Path(path)
    if not p.is_file():
        raise NotFound(N_("Point file %(path)s does not exist."),
                       fix=N_("Give the path of a Parquet, GeoParquet or CSV file of points."),
                       params={"path": str(path)})
    suffix = p.suffix.lower()
    if suffix not in FORMATS:
        raise InvalidInput(N_("Point file %(path)s is a %(suffix)s file; gridmap join reads %(formats)s."),
                           fix=N_("Convert it to Parquet or CSV first (e.g. with ogr2ogr or GeoPandas)."),
                           params={"path": str(path), "suffix": suffix or "(no extension)",
                                   "formats": ", ".join(FORMATS)})
    geo_meta = None
    if suffix == ".csv":
        try:
            head = pd.read_csv(p, nrows=5)
        except (ValueError, UnicodeDecodeError) as err:
            raise InvalidInput(N_("Point file %(path)s cannot be read as CSV: %(reason)s"),
                               fix=N_("Save it as UTF-8 CSV with a header row."),
                               params={"path": str(path), "reason": str(err)[:200]}) from None
        columns, rows, kind = list(head.columns), None, "csv"
    else:
        import pyarrow.parquet as pq
        try:
            pf = pq.ParquetFile(p)
        except Exception as err:  # pyarrow raises several types for a file that is not Parquet
            raise InvalidInput(N_("Point file %(path)s cannot be read as Parquet: %(reason)s"),
                               fix=N_("Give a Parquet file (e.g. GeoDataFrame.to_parquet)."),
                               params={"path": str(path), "reason": str(err)[:200]}) from None
        columns, rows, kind = list(pf.schema_arrow.names), pf.metadata.num_rows, "parquet"
        geo_meta = (pf.schema_arrow.metadata or {}).get(b"geo")
    lower = {c.lower(): c for c in columns}
    geometry = x = y = None
    file_crs = None
    if geo_meta is not None:
        info = json.loads(geo_meta)
        geometry = info.get("primary_column", "geometry")
        col = info.get("columns", {}).get(geometry, {})
        # GeoParquet: a missing "crs" key means OGC:CRS84 (lon/lat); an explicit null means unknown
        file_crs = col.get("crs", "OGC:CRS84")
    elif any(c in lower for c in _LON) and any(c in lower for c in _LAT):
        x = lower[next(c for c in _LON if c in lower)]
        y = lower[next(c for c in _LAT if c in lower)]
        file_crs = "EPSG:4326"
    elif "x" in lower and "y" in lower:
        x, y = lower["x"], lower["y"]
    else:
        raise InvalidInput(N_("Point file %(path)s has no geometry and no coordinate columns (it has %(columns)s)."),
                           fix=N_("Name the coordinate columns lon and lat (WGS84) or x and y (with --crs), "
                                  "or write a GeoParquet file."),
                           params={"path": str(path), "columns": ", ".join(map(str, columns[:12]))})
    chosen = crs if crs is not None else file_crs
    if chosen is None:
        raise InvalidInput(N_("The CRS of the points in %(path)s is unknown."),
                           fix=N_("Say which it is with --crs (e.g. --crs EPSG:32651)."),
                           params={"path": str(path)})
    return PointSource(path=str(p), kind=kind, x=x, y=y, geometry=geometry, crs=_crs(chosen), columns=columns,
                       rows=rows, geo_metadata=geo_meta)


def _crs(spec):
    import pyproj
    try:
        return pyproj.CRS.from_user_input(spec)
    except pyproj.exceptions.CRSError:
        raise InvalidInput(N_("CRS %(value)s is not a coordinate system gridmap knows."),
                           fix=N_("Give an EPSG code such as EPSG:4326 or EPSG:32651."),
                           params={"value": json.dumps(spec) if isinstance(spec, dict) else str(spec)}) from None


def read_chunks(source, *, rows=CHUNK_ROWS, row_group=None):
    """The file's rows as pandas DataFrames of at most ``rows`` rows, in file order.

    ``row_group`` reads one Parquet row group only (the unit of work of a cluster's task).
    """
    if source.kind == "csv":
        yield from pd.read_csv(source.path, chunksize=rows)
        return
    import pyarrow.parquet as pq
    pf = pq.ParquetFile(source.path)
    groups = None if row_group is None else [row_group]
    for batch in pf.iter_batches(batch_size=rows, row_groups=groups):
        yield batch.to_pandas()


def prepare_grids(grids, crs):
    """(grids' WKB moved into ``crs``, their codes): small, pickled once to every worker."""
    series = grids.geometry
    if series.crs is not None and crs is not None and not series.crs.equals(crs):
        series = series.to_crs(crs)  # as points_to_grids moves them: answers equal to it
    codes = (grids["code"].astype(str).to_numpy(dtype=object) if "code" in grids
             else np.arange(len(grids)).astype(str).astype(object))
    return shapely.to_wkb(np.asarray(series.values, dtype=object)), codes


_INDEX = {}  # one PolygonIndex per grids payload per process: workers join many chunks against it


def _index(grids_payload):
    key = id(grids_payload[0])
    got = _INDEX.get(key)
    if got is None or got[0] is not grids_payload[0]:
        _INDEX.clear()
        index = PolygonIndex(shapely.from_wkb(grids_payload[0]), cells_per_side=8)
        got = _INDEX[key] = (grids_payload[0], index)
    return got[1]


def join_chunk(frame, source, grids_payload, offset=0):
    """``frame`` with a ``grid_code`` column: the code of the grid holding each point, None outside.

    ``offset`` numbers the chunk's rows in the file for errors.
    """
    return with_codes(frame, locate_chunk(frame, source, grids_payload, offset), grids_payload)


def locate_chunk(frame, source, grids_payload, offset=0):
    """Position in the grids of the grid holding each point of ``frame`` (int32), -1 outside."""
    if source.geometry is not None:
        values = shapely.from_wkb(frame[source.geometry].to_numpy())
        kinds = shapely.get_type_id(values)
        bad = np.flatnonzero((kinds != 0) & (kinds != -1) & ~shapely.is_empty(values))
        if len(bad):
            i = int(bad[0])
            raise InvalidInput(N_("points holds a %(geom_type)s at position %(value)s, not a point."),
                               fix=N_("Pass points, e.g. frame.geometry.representative_point()."),
                               params={"geom_type": values[i].geom_type, "value": offset + i})
        ok = (kinds == 0) & ~shapely.is_empty(values)
        x = np.full(len(values), np.nan)
        y = np.full(len(values), np.nan)
        x[ok], y[ok] = shapely.get_x(values[ok]), shapely.get_y(values[ok])
    else:
        x = pd.to_numeric(frame[source.x], errors="coerce").to_numpy(dtype=np.float64)
        y = pd.to_numeric(frame[source.y], errors="coerce").to_numpy(dtype=np.float64)
    return _index(grids_payload).lookup(x, y)


def with_codes(frame, positions, grids_payload):
    """``frame`` and its ``grid_code`` column from the positions :func:`locate_chunk` found."""
    codes = grids_payload[1]
    col = np.full(len(positions), None, dtype=object)
    hit = positions >= 0
    col[hit] = codes[positions[hit]]
    out = frame.copy()
    out[_GRID_COLUMN] = col
    return out
