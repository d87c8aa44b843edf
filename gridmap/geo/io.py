"""Read and write vector files (GeoJSON, GeoPackage, Shapefile/zip, CSV, OSM) as GeoDataFrames."""

from __future__ import annotations

import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import geopandas
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError

from . import bounds, dbf, osm
from .errors import InvalidInput, N_
from .crs import WGS84, CrsSpec, parse_crs, to_wgs84

__all__ = ["RawLayer", "read_layer", "write_layer", "SUPPORTED_READ", "SUPPORTED_WRITE"]

try:  # pyogrio reads several times faster through Arrow, but it is optional.
    import pyarrow  # noqa: F401

    _USE_ARROW = True
except ImportError:  # pragma: no cover - depends on the environment
    _USE_ARROW = False

SUPPORTED_READ = (".geojson", ".json", ".gpkg", ".shp", ".zip", ".csv", ".osm", ".osm.pbf", ".pbf")
SUPPORTED_WRITE = (".geojson", ".json", ".gpkg", ".shp", ".zip", ".csv")

_CRS_FIX = "Pass --crs, e.g. --crs 4490 or --crs EPSG:4547."
_ENCODING_FIX = "Pass --encoding GBK (most Chinese GIS exports) or the file's real encoding."

# Column names recognised for CSV coordinates, compared case-insensitively.
_LON_NAMES = ("lon", "lng", "long", "longitude", "x", "经度")
_LAT_NAMES = ("lat", "latitude", "y", "纬度")
_WKT_NAMES = ("wkt", "geometry", "geom", "the_geom")
# Identifier-like columns stay text: "0101" must not become 101.
_TEXT_COLUMN_HINTS = ("code", "id", "adcode", "编码", "代码", "编号")

@dataclass
class RawLayer:
    """A layer as read from a file, before validation.

    Attributes
    ----------
    frame : geopandas.GeoDataFrame
        Coordinates exactly as in the file; ``frame.crs`` may be None or wrong.
    crs : CrsSpec
        The resolved source CRS (the caller's ``crs`` wins over the file's claim).
    source : str
        The path, as shown in messages.
    notes : list of str
        What the reader decided on the caller's behalf (e.g. a Shapefile's text encoding and
        why), for the import report.
    counts : list of gridmap.geo.osm.SourceCount
        For OSM files: per kind of source object, how many were read, kept whole, kept clipped
        and rejected (with reasons) before any feature is validated.
    """

    frame: geopandas.GeoDataFrame
    crs: CrsSpec
    source: str
    notes: list = field(default_factory=list)
    counts: list = field(default_factory=list)


def read_layer(path, *, layer=None, crs=None, encoding=None, lon=None, lat=None) -> RawLayer:
    """Read one layer of a vector file.

    Parameters
    ----------
    path : str or os.PathLike
        ``.geojson``/``.json``, ``.gpkg``, ``.shp``, ``.zip`` (zipped Shapefile),
        ``.csv`` (lon/lat or WKT columns), ``.osm``, ``.osm.pbf``/``.pbf``.
    layer : str, optional
        Layer of a GeoPackage or a zip with several Shapefiles; for OSM files
        ``"buildings"`` or ``"roads"``.
    crs : optional
        Anything :func:`~gridmap.geo.crs.parse_crs` accepts. Overrides what the file
        claims (cnmaps/AMap files claim EPSG:4326 but hold GCJ-02).
    encoding : str, optional
        Text encoding of attributes, e.g. ``"GBK"``; overrides a Shapefile's ``.cpg``. Without
        it a Shapefile's encoding is chosen by :mod:`gridmap.geo.dbf` and named in ``notes``.
    lon, lat : str, optional
        CSV column names of the coordinates when auto-detection is not enough.

    Returns
    -------
    RawLayer

    Raises
    ------
    InvalidInput
        Missing or unreadable file, unsupported extension, unknown layer, undecodable
        text, no way to know the coordinate system, or a CSV/GeoJSON beyond the limits of
        :mod:`gridmap.geo.bounds` (size, nesting depth).
    """
    source = str(path)
    path = Path(path)
    kind = _kind(path)
    if not path.exists():
        raise InvalidInput(
            N_('"%(source)s" does not exist.'), fix=N_("Check the path and file name."), details={"path": source}
        ,
                           params={"source": source})
    user_crs = parse_crs(crs) if crs is not None else None
    notes: list[str] = []
    counts: list = []
    try:
        if kind == "csv":
            frame = _read_csv(path, source, encoding=encoding, lon=lon, lat=lat)
            file_crs = None
            default_crs = WGS84
        elif kind == "osm":
            frame = _read_osm(path, source, layer, counts, notes)
            file_crs, default_crs = None, WGS84
        else:
            if kind == "geojson":
                # measured before GDAL parses it, so that GEOS never sees deep nesting
                bounds.check_text_size(path, source)
                with open(path, "rb") as stream:
                    bounds.check_json(stream, source)
            frame, file_crs = _read_ogr(path, source, kind, layer, encoding, notes)
            # RFC 7946: GeoJSON without a crs member is WGS84.
            default_crs = WGS84 if kind == "geojson" else None
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            N_('"%(source)s" has text that is not valid %(encoding)s (%(reason)s at byte %(start)s).'),
            fix=_ENCODING_FIX,
            details={"path": source},
            params={"source": source, "encoding": exc.encoding, "reason": exc.reason, "start": exc.start},
        ) from None

    if user_crs is not None:
        spec = user_crs
    elif file_crs is not None:
        spec = parse_crs(file_crs)
    elif default_crs is not None:
        spec = default_crs
    elif kind == "shp":
        raise InvalidInput(
            N_('"%(name)s" has no .prj file, so its coordinate system is unknown.'),
            fix=_CRS_FIX,
            details={"path": source},
            params={"name": path.name},
        )
    else:
        raise InvalidInput(
            N_('"%(name)s" does not say which coordinate system it uses.'),
            fix=_CRS_FIX,
            details={"path": source},
            params={"name": path.name},
        )
    return RawLayer(frame=frame, crs=spec, source=source, notes=notes, counts=counts)


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".osm.pbf", ".pbf", ".osm")):
        return "osm"
    kinds = {".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg", ".shp": "shp", ".zip": "zip", ".csv": "csv"}
    suffix = path.suffix.lower()
    if suffix not in kinds:
        raise InvalidInput(
            N_('"%(path)s" has the unsupported extension "%(value)s".'),
            fix="Use one of " + ", ".join(SUPPORTED_READ) + ".",
            details={"path": str(path), "supported": list(SUPPORTED_READ)},
            params={"path": path, "value": suffix or "(none)"},
        )
    return kinds[suffix]


# --- GDAL formats -----------------------------------------------------------------


def _read_ogr(path: Path, source: str, kind: str, layer, encoding, notes: list):
    try:
        layers = [str(name) for name in pyogrio.list_layers(path)[:, 0]]
    except DataSourceError as exc:
        raise _unreadable(source, kind, exc) from None
    if layer is None:
        if len(layers) > 1:
            raise InvalidInput(
                N_('"%(source)s" has %(layers)s layers: %(value)s.'),
                fix="Choose one with --layer, e.g. --layer " + layers[0] + ".",
                details={"path": source, "layers": layers},
                params={"source": source, "layers": len(layers), "value": ", ".join(layers)},
            )
        layer = layers[0] if layers else None
    elif layer not in layers:
        raise InvalidInput(
            N_('"%(source)s" has no layer "%(layer)s"; it has %(value)s.'),
            fix=N_("Choose one of those with --layer."),
            details={"path": source, "layers": layers},
            params={"source": source, "layer": layer, "value": ", ".join(layers) or "none"},
        )
    kwargs = {"layer": layer, "use_arrow": _USE_ARROW}
    # A Shapefile's text is decoded by dbf, not by GDAL (whose default for a DBF without a
    # .cpg is ISO-8859-1, mojibake for Chinese): GDAL hands over the bytes, one per character.
    text = dbf.find(path, kind, layer) if kind in ("shp", "zip") else None
    if text is not None or encoding:
        kwargs["encoding"] = dbf.TRANSPORT if text is not None else encoding
        kwargs["use_arrow"] = False  # pyogrio decodes custom encodings itself, not through Arrow
    try:
        info = pyogrio.read_info(path, layer=layer, encoding=kwargs.get("encoding"))
        try:
            frame = pyogrio.read_dataframe(path, **kwargs)
        except shapely.errors.GEOSException:
            # Through Arrow the blobs reach Shapely as they are, and Shapely ≥ 2.2 refuses a malformed
            # one for the whole layer; GDAL's own reader bounds WKB and hands such a row over without
            # geometry, which the checks then name as that row's problem.
            frame = pyogrio.read_dataframe(path, **{**kwargs, "use_arrow": False})
    except (DataSourceError, DataLayerError) as exc:
        raise _unreadable(source, kind, exc) from None
    except LookupError:  # unknown codec name
        raise InvalidInput(
            N_('Encoding "%(encoding)s" is not known.'), fix=_ENCODING_FIX, details={"path": source}
        ,
                           params={"encoding": encoding}) from None
    if not isinstance(frame, geopandas.GeoDataFrame):
        raise InvalidInput(
            N_('"%(source)s" has no geometry column.'),
            fix=N_("Export the layer with its geometry, or use a CSV with lon/lat columns."),
            details={"path": source},
            params={"source": source},
        )
    if text is not None:
        frame, note = dbf.decode_frame(frame, text, encoding=encoding)
        notes.append(note)
    return frame, info["crs"]


def _unreadable(source, kind, exc) -> InvalidInput:
    return InvalidInput(
        f'"{source}" could not be read as a {kind} file: {exc}',
        fix="Check that the file is complete and really is that format; re-export it from your GIS if needed.",
        details={"path": source},
    )


# --- CSV --------------------------------------------------------------------------


def _read_csv(path: Path, source: str, *, encoding, lon, lat) -> geopandas.GeoDataFrame:
    bounds.check_text_size(path, source)
    # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark.
    enc = encoding or "utf-8-sig"
    try:
        header = pd.read_csv(path, nrows=0, encoding=enc).columns
    except LookupError:
        raise InvalidInput(N_('Encoding "%(encoding)s" is not known.'), fix=_ENCODING_FIX,
                           params={"encoding": encoding}) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InvalidInput(
            N_('"%(source)s" could not be read as CSV: %(exc)s'),
            fix=N_("Save it as comma-separated text with one header row."),
            details={"path": source},
            params={"source": source, "exc": exc},
        ) from None
    columns = [str(c) for c in header]
    lon_col = _pick_column(columns, lon, _LON_NAMES, "lon", source)
    lat_col = _pick_column(columns, lat, _LAT_NAMES, "lat", source)
    wkt_col = None
    if lon_col is None or lat_col is None:
        wkt_col = next((c for c in columns if c.strip().lower() in _WKT_NAMES), None)
        if wkt_col is None:
            raise InvalidInput(
                N_('"%(source)s" has no coordinate columns; its columns are %(value)s.'),
                fix=N_("Name them lon and lat (or 经度 and 纬度), add a wkt column, or pass --field lon=<column> "
                       "--field lat=<column>."),
                details={"path": source, "columns": columns},
                params={"source": source, "value": ", ".join(columns)},
            )
    text_cols = {c: str for c in columns if c not in (lon_col, lat_col) and _is_identifier_column(c)}
    if wkt_col:
        text_cols[wkt_col] = str
    try:
        df = pd.read_csv(path, encoding=enc, dtype=text_cols)
    except pd.errors.ParserError as exc:
        raise InvalidInput(
            N_('"%(source)s" could not be read as CSV: %(exc)s'),
            fix=N_("Save it as comma-separated text with one header row."),
            details={"path": source},
            params={"source": source, "exc": exc},
        ) from None

    bad_rows: list[tuple[int, str, object]] = []  # cells that did not parse: validate words why
    refused: list[tuple] = []  # cells never parsed: (row, column, value, message, fix, code, params)
    if wkt_col is not None:
        text = df[wkt_col]
        cells = text.to_numpy(dtype=object, na_value=None, copy=True)  # a view would let None into the column
        # GEOS parses WKT recursively: text nested too deep must never reach it (a segfault)
        unparsed = np.zeros(len(cells), dtype=bool)
        for i, cell in enumerate(cells):
            problem = bounds.wkt_problem(cell, wkt_col) if isinstance(cell, str) else None
            if problem is not None:
                refused.append((i + 1, wkt_col, _short(cell), *problem))
                unparsed[i] = True
        cells[unparsed] = None
        geoms = shapely.from_wkt(cells, on_invalid="ignore")
        failed = np.flatnonzero(text.notna().to_numpy() & ~unparsed & shapely.is_missing(geoms))
        bad_rows.extend((int(i) + 1, wkt_col, text.iat[i]) for i in failed)
        df = df.drop(columns=[wkt_col])
    else:
        xs = _numeric(df, lon_col, bad_rows)
        ys = _numeric(df, lat_col, bad_rows)
        geoms = geopandas.points_from_xy(xs, ys)
        # A point with a NaN coordinate is meaningless: store no geometry, report the cell.
        missing = np.isnan(xs) | np.isnan(ys)
        if missing.any():
            geoms = np.asarray(geoms, dtype=object)
            geoms[missing] = None
        bad_rows.sort()
    frame = geopandas.GeoDataFrame(df, geometry=geopandas.GeoSeries(geoms, index=df.index))
    frame.attrs["bad_rows"] = bad_rows
    frame.attrs["refused"] = refused
    return frame


def _is_identifier_column(name: str) -> bool:
    # Whole words only, so "width" is not mistaken for an "id" column.
    words = re.split(r"[^0-9a-z]+", name.strip().lower())
    return any(h in words for h in _TEXT_COLUMN_HINTS if h.isascii()) or any(
        h in name for h in _TEXT_COLUMN_HINTS if not h.isascii()
    )


def _pick_column(columns, explicit, names, what, source):
    if explicit is not None:
        if explicit not in columns:
            raise InvalidInput(
                N_('"%(source)s" has no column "%(explicit)s" for %(what)s; its columns are %(value)s.'),
                fix=N_("Pass --field %(what)s=<one of those columns>."),
                details={"path": source, "columns": columns},
                params={"source": source, "explicit": explicit, "what": what, "value": ", ".join(columns)},
            )
        return explicit
    for name in names:
        for c in columns:
            if c.strip().lower() == name:
                return c
    return None


def _numeric(df: pd.DataFrame, column: str, bad_rows: list) -> np.ndarray:
    raw = df[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if raw.dtype.kind != "f":
        # Only non-float columns can hold text that failed to parse; finding them is vectorised.
        for i in np.flatnonzero(np.isnan(values)):
            cell = raw.iat[i]
            bad_rows.append((int(i) + 1, column, "" if pd.isna(cell) else cell))
    else:
        bad_rows.extend((int(i) + 1, column, "") for i in np.flatnonzero(np.isnan(values)))
    return values


def _short(text: str, limit: int = 60) -> str:
    """The start of a cell too big to repeat in a report."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- OpenStreetMap ----------------------------------------------------------------


def _read_osm(path: Path, source: str, layer, counts: list, notes: list) -> geopandas.GeoDataFrame:
    if layer not in osm.LAYERS:
        raise InvalidInput(
            f'"{source}" is an OpenStreetMap file; say which layer to read'
            + (f' ("{layer}" is not one).' if layer is not None else "."),
            fix="Choose --layer buildings or --layer roads.",
            details={"path": source, "layers": list(osm.LAYERS)},
        )
    try:
        if layer == "roads":
            df, found = osm.read_roads(str(path))
        else:
            df, found, said = osm.read_buildings(str(path))
            notes.extend(said)
    except RuntimeError as exc:
        raise InvalidInput(
            N_('"%(source)s" could not be read as an OpenStreetMap file: %(exc)s'),
            fix=N_("Check that the download is complete (.osm XML or .osm.pbf)."),
            details={"path": source},
            params={"source": source, "exc": exc},
        ) from None
    counts.extend(found)
    geoms = df.pop("geometry").to_numpy(dtype=object) if len(df) else np.array([], dtype=object)
    df["osm_id"] = df["osm_id"].astype("int64")
    return geopandas.GeoDataFrame(df, geometry=geopandas.GeoSeries(geoms, index=df.index, crs=4326), crs=4326)


# --- writing ----------------------------------------------------------------------


def write_layer(gdf: geopandas.GeoDataFrame, path, *, layer=None) -> None:
    """Write a WGS84 GeoDataFrame to a file, chosen by extension.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        Features in WGS84 (a frame without a CRS is taken to be WGS84; another
        CRS is converted).
    path : str or os.PathLike
        ``.geojson``/``.json``, ``.gpkg``, ``.shp``, ``.zip`` (zipped Shapefile, UTF-8
        ``.cpg``) or ``.csv`` (``lon``/``lat`` columns for points, else ``wkt``).
    layer : str, optional
        Layer name in a GeoPackage or zip; defaults to the file name.

    Raises
    ------
    InvalidInput
        For an extension that cannot be written.
    """
    path = Path(path)
    name = path.name.lower()
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_WRITE or name.endswith(".osm.pbf"):
        raise InvalidInput(
            N_('Cannot write "%(path)s": unsupported extension "%(value)s".'),
            fix="Use one of " + ", ".join(SUPPORTED_WRITE) + ".",
            params={"path": path, "value": suffix or "(none)"},
        )
    gdf = to_wgs84(gdf, gdf.crs if gdf.crs is not None else WGS84)
    layer = layer or path.stem
    if suffix == ".csv":
        _write_csv(gdf, path)
    elif suffix == ".zip":
        _write_zip(gdf, path, layer)
    elif suffix in (".geojson", ".json"):
        _replace(path)
        pyogrio.write_dataframe(gdf, path, driver="GeoJSON")
    elif suffix == ".gpkg":
        pyogrio.write_dataframe(gdf, path, layer=layer, driver="GPKG")
    else:
        pyogrio.write_dataframe(gdf, path, driver="ESRI Shapefile", encoding="UTF-8")


def _replace(path: Path) -> None:
    # GDAL refuses to overwrite some formats in place; writing is always a full replace here.
    if path.exists():
        path.unlink()


def _write_csv(gdf: geopandas.GeoDataFrame, path: Path) -> None:
    geoms = np.asarray(gdf.geometry.array, dtype=object)
    df = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    present = ~shapely.is_missing(geoms)
    if present.any() and (shapely.get_type_id(geoms[present]) == 0).all():
        df["lon"] = shapely.get_x(geoms)
        df["lat"] = shapely.get_y(geoms)
    else:
        df["wkt"] = shapely.to_wkt(geoms, rounding_precision=-1)
    # utf-8-sig so that Excel, which most offices open CSVs with, shows Chinese correctly.
    df.to_csv(path, index=False, encoding="utf-8-sig")


def _write_zip(gdf: geopandas.GeoDataFrame, path: Path, layer: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        shp = Path(tmp) / f"{layer}.shp"
        pyogrio.write_dataframe(gdf, shp, driver="ESRI Shapefile", encoding="UTF-8")
        cpg = shp.with_suffix(".cpg")
        if not cpg.exists():  # older GDAL versions do not write one
            cpg.write_text("UTF-8")
        _replace(path)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for member in sorted(os.listdir(tmp)):
                zf.write(Path(tmp) / member, arcname=member)
