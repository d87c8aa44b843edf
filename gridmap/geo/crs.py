"""Parse coordinate systems and convert between WGS84, CGCS2000, local metres, GCJ-02 and BD-09."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import geopandas
import numpy as np
import pyproj
import shapely
from pyproj.crs import GeographicCRS, ProjectedCRS
from pyproj.crs.coordinate_operation import TransverseMercatorConversion
from pyproj.exceptions import CRSError

from .errors import InvalidInput, N_, Said

__all__ = [
    "CrsSpec",
    "WGS84",
    "parse_crs",
    "wgs84_to_gcj02",
    "gcj02_to_wgs84",
    "gcj02_to_bd09",
    "bd09_to_gcj02",
    "wgs84_to_bd09",
    "bd09_to_wgs84",
    "to_wgs84",
    "local_metric_crs",
    "local_metric_transformers",
    "transform_geometries",
    "Metric",
    "metric_for",
]

ACCEPTED_FORMS = (
    "Use an EPSG code such as 4326 (WGS84) or 4490 (CGCS2000), "
    "or gcj02 / bd09 for Chinese web-map coordinates."
)


@dataclass(frozen=True)
class CrsSpec:
    """A resolved coordinate reference system.

    Attributes
    ----------
    kind : str
        ``"epsg"`` for anything pyproj understands, ``"gcj02"`` or ``"bd09"`` for the
        Chinese web-map datums pyproj does not model.
    crs : pyproj.CRS
        The CRS itself; for ``gcj02``/``bd09`` the geographic base EPSG:4326, so that
        code asking "is this lon/lat?" gets the right answer.
    name : str
        A human label used in messages, e.g. ``"EPSG:4490"`` or ``"gcj02"``.
    """

    kind: str
    crs: pyproj.CRS
    name: str

    @property
    def is_geographic(self) -> bool:
        """True when coordinates are longitude/latitude in degrees."""
        return bool(self.crs.is_geographic)

    def __str__(self) -> str:
        return self.name


_EPSG_4326 = pyproj.CRS.from_epsg(4326)
WGS84 = CrsSpec("epsg", _EPSG_4326, "EPSG:4326")

# Aliases people type; keys are lower-case with "-", "_" and spaces removed.
_ALIASES = {
    "wgs84": 4326,
    "wgs1984": 4326,
    "gps": 4326,
    "crs84": 4326,
    "cgcs2000": 4490,
    "webmercator": 3857,
}
_CHINA_DATUMS = {"gcj02": "gcj02", "gcj": "gcj02", "bd09": "bd09", "bd09ll": "bd09"}
_EPSG_RE = re.compile(r"^\s*epsg\s*:\s*(\d+)\s*$", re.IGNORECASE)


def parse_crs(spec) -> CrsSpec:
    """Resolve what a user or a file says about coordinates into a :class:`CrsSpec`.

    Parameters
    ----------
    spec : int, str, pyproj.CRS or CrsSpec
        ``4490``, ``"4490"``, ``"EPSG:4546"``, ``"wgs84"``, ``"cgcs2000"``,
        ``"gcj02"``/``"GCJ-02"``, ``"bd09"``/``"BD-09"``, a :class:`pyproj.CRS`,
        or any WKT / PROJ string pyproj understands.

    Returns
    -------
    CrsSpec

    Raises
    ------
    InvalidInput
        When the value names no coordinate system pyproj knows.
    """
    if isinstance(spec, CrsSpec):
        return spec
    if isinstance(spec, pyproj.CRS):
        return _from_pyproj(spec)
    if isinstance(spec, (bool, np.bool_)) or spec is None:
        raise _unknown(spec)
    if isinstance(spec, (int, np.integer)):
        return _from_epsg(int(spec), spec)
    if not isinstance(spec, str):
        raise _unknown(spec)

    text = spec.strip()
    key = re.sub(r"[\s_\-]", "", text).lower()
    if key in _CHINA_DATUMS:
        kind = _CHINA_DATUMS[key]
        return CrsSpec(kind, _EPSG_4326, kind)
    if key in _ALIASES:
        return _from_epsg(_ALIASES[key], spec)
    if text.isdigit():
        return _from_epsg(int(text), spec)
    match = _EPSG_RE.match(text)
    if match:
        return _from_epsg(int(match.group(1)), spec)
    try:
        crs = pyproj.CRS.from_user_input(text)
    except CRSError:
        raise _unknown(spec) from None
    return _from_pyproj(crs)


def _from_epsg(code: int, original) -> CrsSpec:
    try:
        crs = _epsg_crs(code)
    except CRSError:
        raise _unknown(f"EPSG:{code}" if not isinstance(original, str) else original) from None
    return CrsSpec("epsg", crs, f"EPSG:{code}")


@lru_cache(maxsize=256)
def _epsg_crs(code: int) -> pyproj.CRS:
    # CRS construction hits the PROJ database; files and requests repeat the same few codes.
    return pyproj.CRS.from_epsg(code)


def _from_pyproj(crs: pyproj.CRS) -> CrsSpec:
    # min_confidence=70 accepts the usual WKT1 round trips while not inventing a code.
    code = crs.to_epsg(min_confidence=70)
    name = f"EPSG:{code}" if code else (crs.name or "custom CRS")
    return CrsSpec("epsg", crs, name)


def _unknown(value) -> InvalidInput:
    shown = value if isinstance(value, str) else repr(value)
    return InvalidInput(
        f'CRS "{shown}" is not known.',
        fix=ACCEPTED_FORMS,
        details={"value": str(value)},
    )


# --- GCJ-02 / BD-09 ---------------------------------------------------------------
# The published algorithm (e.g. wandergis/coordtransform, eviltransform): an obfuscation
# on the Krasovsky 1940 ellipsoid. Constants must match it bit for bit, including the
# odd-looking x_pi, because every Chinese map provider uses exactly these.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = 3.14159265358979324 * 3000.0 / 180.0
_PI = np.pi
# The usual out_of_china box (eviltransform); inside it the offset applies, outside GCJ-02 == WGS84.
_CHINA_LON = (72.004, 137.8347)
_CHINA_LAT = (0.8293, 55.8271)
_INVERSE_TOL_DEG = 1e-10  # ~0.01 mm, far inside the 1e-7 deg requirement
_INVERSE_MAX_ITER = 30


def _as_arrays(lon, lat):
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    lon, lat = np.broadcast_arrays(lon, lat)
    return lon, lat


def _shape_back(x, scalar):
    return float(x) if scalar else x


def _in_china(lon, lat):
    return (
        (lon > _CHINA_LON[0]) & (lon < _CHINA_LON[1]) & (lat > _CHINA_LAT[0]) & (lat < _CHINA_LAT[1])
    )


def _gcj_offset(lon, lat):
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * _PI) + 20.0 * np.sin(2.0 * x * _PI)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
    dlat += common
    dlat += (20.0 * np.sin(y * _PI) + 40.0 * np.sin(y / 3.0 * _PI)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * _PI) + 320 * np.sin(y * _PI / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
    dlon += common
    dlon += (20.0 * np.sin(x * _PI) + 40.0 * np.sin(x / 3.0 * _PI)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * _PI) + 300.0 * np.sin(x / 30.0 * _PI)) * 2.0 / 3.0
    radlat = lat / 180.0 * _PI
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * _PI)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * _PI)
    inside = _in_china(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def wgs84_to_gcj02(lon, lat):
    """Convert WGS84 longitude/latitude to GCJ-02 (AMap, Tencent).

    Parameters
    ----------
    lon, lat : float or array_like
        WGS84 degrees. Points outside the China box are returned unchanged.

    Returns
    -------
    tuple of float or numpy.ndarray
        GCJ-02 ``(lon, lat)`` with the input's shape.
    """
    scalar = np.ndim(lon) == 0 and np.ndim(lat) == 0
    lon, lat = _as_arrays(lon, lat)
    dlon, dlat = _gcj_offset(lon, lat)
    return _shape_back(lon + dlon, scalar), _shape_back(lat + dlat, scalar)


def gcj02_to_wgs84(lon, lat):
    """Convert GCJ-02 longitude/latitude back to WGS84.

    The forward offset has no closed-form inverse; this iterates
    ``w <- w - (gcj(w) - g)`` until every point agrees to 1e-10 degrees, so a
    round trip is exact to well under a millimetre (the one-step inverse many
    libraries publish is off by up to a few metres).

    Parameters
    ----------
    lon, lat : float or array_like
        GCJ-02 degrees.

    Returns
    -------
    tuple of float or numpy.ndarray
        WGS84 ``(lon, lat)`` with the input's shape.
    """
    glon, glat = _as_arrays(lon, lat)
    return _invert(wgs84_to_gcj02, lon, lat, glon.copy(), glat.copy())


def gcj02_to_bd09(lon, lat):
    """Convert GCJ-02 longitude/latitude to BD-09 (Baidu).

    Parameters
    ----------
    lon, lat : float or array_like
        GCJ-02 degrees.

    Returns
    -------
    tuple of float or numpy.ndarray
        BD-09 ``(lon, lat)``.
    """
    scalar = np.ndim(lon) == 0 and np.ndim(lat) == 0
    lon, lat = _as_arrays(lon, lat)
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return (
        _shape_back(z * np.cos(theta) + 0.0065, scalar),
        _shape_back(z * np.sin(theta) + 0.006, scalar),
    )


def bd09_to_gcj02(lon, lat):
    """Convert BD-09 longitude/latitude to GCJ-02.

    Starts from Baidu's widely copied closed-form inverse (off by up to ~0.2 m)
    and refines it by fixed-point iteration so that a GCJ-02 -> BD-09 -> GCJ-02
    round trip is exact; results differ from the closed form by centimetres.

    Parameters
    ----------
    lon, lat : float or array_like
        BD-09 degrees.

    Returns
    -------
    tuple of float or numpy.ndarray
        GCJ-02 ``(lon, lat)``.
    """
    blon, blat = _as_arrays(lon, lat)
    return _invert(gcj02_to_bd09, lon, lat, *_bd09_to_gcj02_closed_form(blon, blat))


def _invert(forward, lon, lat, x, y):
    """Solve forward(x, y) == (lon, lat) by fixed-point iteration from the guess (x, y).

    The offsets are smooth and tiny, so each step shrinks the error by orders of magnitude:
    a few iterations reach 1e-10°, far below the published one-step inverses' metres.
    """
    scalar = np.ndim(lon) == 0 and np.ndim(lat) == 0
    tlon, tlat = _as_arrays(lon, lat)
    for _ in range(_INVERSE_MAX_ITER):
        flon, flat = forward(x, y)
        elon, elat = flon - tlon, flat - tlat
        x, y = x - elon, y - elat
        if _max_abs(elon, elat) < _INVERSE_TOL_DEG:
            break
    return _shape_back(x, scalar), _shape_back(y, scalar)


def _bd09_to_gcj02_closed_form(lon, lat):
    x = lon - 0.0065
    y = lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _max_abs(a, b):
    # NaNs never converge; they pass through for validation to report.
    both = np.abs(np.concatenate([np.ravel(a), np.ravel(b)]))
    both = both[np.isfinite(both)]
    return float(both.max()) if both.size else 0.0


def wgs84_to_bd09(lon, lat):
    """Convert WGS84 longitude/latitude to BD-09 (through GCJ-02).

    Parameters
    ----------
    lon, lat : float or array_like
        WGS84 degrees.

    Returns
    -------
    tuple of float or numpy.ndarray
        BD-09 ``(lon, lat)``.
    """
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon, lat):
    """Convert BD-09 longitude/latitude to WGS84 (through GCJ-02).

    Parameters
    ----------
    lon, lat : float or array_like
        BD-09 degrees.

    Returns
    -------
    tuple of float or numpy.ndarray
        WGS84 ``(lon, lat)``.
    """
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


_TO_WGS84 = {"gcj02": gcj02_to_wgs84, "bd09": bd09_to_wgs84}


def datum_warnings(geoms, src):
    """Warnings for a GCJ-02 or BD-09 ``src`` that cannot be right for some of ``geoms``.

    GCJ-02's offset exists only inside China (the usual out_of_china box): there the conversion is
    the identity, so ``--crs gcj02`` on data outside China changes nothing and says nothing unless
    told. A feature counts as outside when every one of its vertices is.

    Parameters
    ----------
    geoms : array_like of shapely geometries
        The features in ``src`` coordinates (None and empty ones are skipped).
    src : CrsSpec or anything :func:`parse_crs` accepts

    Returns
    -------
    list of str
        Empty for any other CRS or when every feature lies in China.
    """
    spec = parse_crs(src)
    if spec.kind not in _TO_WGS84:
        return []
    geoms = np.asarray(getattr(geoms, "array", geoms), dtype=object)
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))] if len(geoms) else geoms
    if not len(geoms):
        return []
    xy, owner = shapely.get_coordinates(geoms, return_index=True)
    inside = np.zeros(len(geoms), dtype=bool)
    np.logical_or.at(inside, owner, _in_china(xy[:, 0], xy[:, 1]))
    n_out = int((~inside).sum())
    if not n_out:
        return []
    if spec.kind == "gcj02":
        return [Said(N_("warning: %(outside)s of %(total)s features lie outside China, where GCJ-02 does not "
                        "apply: --crs %(crs)s changed nothing there (their coordinates were left as they were). "
                        "If the file is WGS84, import it with --crs 4326."),
                     outside=n_out, total=len(geoms), crs=spec.name)]
    return [Said(N_("warning: %(outside)s of %(total)s features lie outside China, where GCJ-02 does not apply: "
                    "--crs %(crs)s changed nothing there (only Baidu's BD-09 step was undone). If the file is "
                    "WGS84, import it with --crs 4326."), outside=n_out, total=len(geoms), crs=spec.name)]


# --- generic transforms ------------------------------------------------------------


@lru_cache(maxsize=128)
def _transformer(src: pyproj.CRS, dst: pyproj.CRS) -> pyproj.Transformer:
    # Building a Transformer costs milliseconds (PROJ database lookups); reuse them.
    return pyproj.Transformer.from_crs(src, dst, always_xy=True)


def to_wgs84(data, src=None):
    """Return a GeoDataFrame or GeoSeries converted to WGS84 (EPSG:4326).

    Parameters
    ----------
    data : geopandas.GeoDataFrame or geopandas.GeoSeries
        Geometries whose coordinates are in ``src``.
    src : CrsSpec or anything :func:`parse_crs` accepts, optional
        The coordinates' real CRS; it wins over ``data.crs`` because files lie
        (GCJ-02 files routinely claim EPSG:4326). Defaults to ``data.crs``.

    Returns
    -------
    same type as ``data``
        A new object with ``crs`` EPSG:4326.

    Raises
    ------
    InvalidInput
        When neither ``src`` nor ``data.crs`` says what the coordinates are.
    """
    if src is None:
        if data.crs is None:
            raise InvalidInput(
                N_("The coordinates have no coordinate system."),
                fix=N_("Pass --crs, e.g. --crs 4490 or --crs EPSG:4547."),
            )
        src = data.crs
    spec = parse_crs(src)
    if spec.kind == "epsg":
        out = data.set_crs(spec.crs, allow_override=True)
        if spec.crs.equals(_EPSG_4326):
            return out.set_crs(_EPSG_4326, allow_override=True)
        return out.to_crs(_EPSG_4326)
    func = _TO_WGS84[spec.kind]
    # interleaved=False hands whole x and y arrays to the vectorised datum function.
    geoms = shapely.transform(np.asarray(data.geometry.array, dtype=object), func, interleaved=False)
    if isinstance(data, geopandas.GeoDataFrame):
        series = geopandas.GeoSeries(geoms, index=data.index, crs=_EPSG_4326)
        return data.set_geometry(series.rename(data.geometry.name), crs=_EPSG_4326)
    return geopandas.GeoSeries(geoms, index=data.index, crs=_EPSG_4326, name=data.name)


def local_metric_crs(lon: float, lat: float) -> pyproj.CRS:
    """Return a transverse Mercator CRS in metres centred on a WGS84 point.

    Within a few tens of kilometres of the centre (a district or a community)
    distances and areas are true to better than 1 part in 10,000.

    Parameters
    ----------
    lon, lat : float
        Centre in WGS84 degrees.

    Returns
    -------
    pyproj.CRS
        A projected CRS with easting/northing in metres on the WGS84 datum.
    """
    if not (np.isfinite(lon) and np.isfinite(lat) and abs(lon) <= 180 and abs(lat) <= 90):
        raise InvalidInput(
            N_("Cannot centre a metric CRS on lon=%(lon)s, lat=%(lat)s."),
            fix=N_("Give WGS84 degrees: longitude in -180..180, latitude in -90..90."),
            params={"lon": lon, "lat": lat},
        )
    # Rounding to ~100 m makes repeated calls for one community hit the cache.
    return _local_tm(round(float(lon), 3), round(float(lat), 3))


@lru_cache(maxsize=256)
def _local_tm(lon: float, lat: float) -> pyproj.CRS:
    conversion = TransverseMercatorConversion(
        latitude_natural_origin=lat,
        longitude_natural_origin=lon,
        scale_factor_natural_origin=1.0,
        false_easting=0.0,
        false_northing=0.0,
    )
    return ProjectedCRS(
        conversion=conversion,
        geodetic_crs=_wgs84_geographic(),
        name=f"Local transverse Mercator at {lon:.3f}E {lat:.3f}N",
    )


@lru_cache(maxsize=1)
def _wgs84_geographic() -> GeographicCRS:
    # Resolving the datum costs ~10 ms of PROJ database look-ups: nearly all of a local CRS's
    # construction. Every local CRS has this same base, so it is built once.
    return GeographicCRS(datum="WGS84")


# The operations PROJ itself picks between EPSG:4326 (always_xy) and a local_metric_crs; written
# out, a Transformer is built from them in ~0.1 ms instead of ~12 ms of database look-ups.
# _pipelines_match() checks once per process that this PROJ still picks exactly these.
_TM_PARAMS = "+lat_0={lat} +lon_0={lon} +k=1 +x_0=0 +y_0=0 +ellps=WGS84"
_TM_FORWARD = "+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad +step +proj=tmerc {tm}"
_TM_INVERSE = "+proj=pipeline +step +inv +proj=tmerc {tm} +step +proj=unitconvert +xy_in=rad +xy_out=deg"


def local_metric_transformers(crs: pyproj.CRS) -> tuple[pyproj.Transformer, pyproj.Transformer]:
    """Transformers from WGS84 lon/lat to ``crs`` and back, for per-community work.

    They give exactly what ``GeoDataFrame.to_crs(crs)`` and ``.to_crs(4326)`` give (the same
    PROJ operations), but a CRS made by :func:`local_metric_crs` gets them in a fraction of a
    millisecond rather than ~25 ms; any other CRS gets ``Transformer.from_crs`` (cached).

    Parameters
    ----------
    crs : pyproj.CRS
        Usually a CRS returned by :func:`local_metric_crs`.

    Returns
    -------
    (pyproj.Transformer, pyproj.Transformer)
        ``(to_metric, to_wgs84)``, both ``always_xy`` (longitude first).
    """
    return _local_transformers(crs)


@lru_cache(maxsize=256)
def _local_transformers(crs: pyproj.CRS):
    centre = _local_tm_centre(crs)
    if centre is None or not _pipelines_match():
        return _transformer(_EPSG_4326, crs), _transformer(crs, _EPSG_4326)
    return _tm_transformers(*centre)


def _tm_transformers(lon: str, lat: str):
    tm = _TM_PARAMS.format(lat=lat, lon=lon)
    return (pyproj.Transformer.from_pipeline(_TM_FORWARD.format(tm=tm)),
            pyproj.Transformer.from_pipeline(_TM_INVERSE.format(tm=tm)))


def _local_tm_centre(crs: pyproj.CRS):
    """The (lon, lat) of a CRS of the form :func:`_local_tm` makes, as PROJ writes them; else None."""
    op = crs.coordinate_operation if crs.is_projected else None
    if op is None or op.method_code != "9807":
        return None
    params = {p.code: p.value for p in op.params}
    if "8801" not in params or "8802" not in params:
        return None
    lon, lat = float(params["8802"]), float(params["8801"])
    # Anything else (another datum, scale, offset, axis order or unit) takes the slow, general path.
    if not crs.equals(_local_tm(lon, lat)):
        return None
    # PROJ writes pipeline parameters with 15 significant digits (as it stores them in the CRS).
    return format(lon, ".15g"), format(lat, ".15g")


@lru_cache(maxsize=1)
def _pipelines_match() -> bool:
    crs = _local_tm(121.6, 38.9)
    fwd, inv = _tm_transformers("121.6", "38.9")
    return (fwd.definition == _transformer(_EPSG_4326, crs).definition
            and inv.definition == _transformer(crs, _EPSG_4326).definition)


def transform_geometries(geoms, transformer: pyproj.Transformer) -> np.ndarray:
    """Apply ``transformer`` to every vertex of ``geoms``, as GeoPandas' ``to_crs`` does.

    Parameters
    ----------
    geoms : array_like of shapely geometries (None allowed)
    transformer : pyproj.Transformer
        E.g. one of :func:`local_metric_transformers`.

    Returns
    -------
    numpy.ndarray
        New geometries (object array), Z kept where there is one.
    """
    geoms = np.asarray(geoms, dtype=object)
    out = np.empty_like(geoms)
    has_z = shapely.has_z(geoms)
    for mask, include_z in ((~has_z, False), (has_z, True)):
        part = geoms[mask]
        coords = shapely.get_coordinates(part, include_z=include_z)
        moved = transformer.transform(*(coords[:, k] for k in range(coords.shape[1])))
        out[mask] = shapely.set_coordinates(part.copy(), np.array(moved).T)
    return out


# --- the one metric frame ------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A local metric frame: a transverse Mercator ``crs`` in metres and the transformers to it and back.

    Get one with :func:`metric_for`; every distance, area and buffer gridmap measures is measured
    in one of these, never in degrees.
    """

    crs: pyproj.CRS
    to_metric: pyproj.Transformer
    to_wgs84: pyproj.Transformer

    def xy(self, lon, lat):
        """WGS84 lon/lat (scalars or arrays) → metric x, y."""
        return self.to_metric.transform(lon, lat)

    def lonlat(self, x, y):
        """Metric x, y → WGS84 lon, lat."""
        return self.to_wgs84.transform(x, y)

    def project(self, geoms) -> np.ndarray:
        """WGS84 geometries → metric geometries (an object array; None stays None)."""
        return transform_geometries(geoms, self.to_metric)

    def unproject(self, geoms) -> np.ndarray:
        """Metric geometries → WGS84 geometries."""
        return transform_geometries(geoms, self.to_wgs84)

    def frame(self, gdf):
        """A WGS84 GeoDataFrame or GeoSeries in this frame's CRS (what ``.to_crs(self.crs)`` gives)."""
        geoms = geopandas.GeoSeries(self.project(gdf.geometry.array), index=gdf.index, crs=self.crs)
        if isinstance(gdf, geopandas.GeoDataFrame):
            return gdf.set_geometry(geoms.rename(gdf.geometry.name), crs=self.crs)
        return geoms.rename(gdf.name)

    def back(self, gdf):
        """A GeoDataFrame or GeoSeries in this frame's CRS, back in WGS84."""
        geoms = geopandas.GeoSeries(self.unproject(gdf.geometry.array), index=gdf.index, crs=_EPSG_4326)
        if isinstance(gdf, geopandas.GeoDataFrame):
            return gdf.set_geometry(geoms.rename(gdf.geometry.name), crs=_EPSG_4326)
        return geoms.rename(gdf.name)


def metric_for(where) -> Metric:
    """The local metric frame centred on ``where``: the one CRS every metre is measured in.

    Parameters
    ----------
    where : (lon, lat), (minx, miny, maxx, maxy), shapely geometry, array of geometries, GeoSeries
        or GeoDataFrame
        WGS84 positions; the frame is centred on the middle of their bounds. A GeoSeries or
        GeoDataFrame in another CRS is measured by its bounds converted to WGS84.

    Returns
    -------
    Metric
        Frames for the same neighbourhood (to ~100 m) are the same object, transformers included.

    Raises
    ------
    InvalidInput
        For an empty extent or one that is not WGS84 degrees.
    """
    x0, y0, x1, y1 = _bounds_of(where)
    return _metric(local_metric_crs((x0 + x1) / 2, (y0 + y1) / 2))


def _bounds_of(where):
    if isinstance(where, (geopandas.GeoSeries, geopandas.GeoDataFrame)):
        if where.crs is not None and not where.crs.equals(_EPSG_4326):
            where = where.to_crs(_EPSG_4326)
        bounds = where.total_bounds
    elif isinstance(where, shapely.Geometry):
        bounds = where.bounds
    else:
        arr = np.asarray(where, dtype=object)
        if arr.ndim == 1 and len(arr) in (2, 4) and all(isinstance(v, (int, float, np.number)) for v in arr):
            values = [float(v) for v in arr]
            bounds = values * 2 if len(values) == 2 else values
        else:
            geoms = arr.ravel()
            bounds = shapely.total_bounds(geoms[~shapely.is_missing(geoms)]) if geoms.size else (np.nan,) * 4
    bounds = tuple(float(v) for v in bounds)
    if not all(np.isfinite(bounds)):
        raise InvalidInput(N_("There is nothing to measure: the extent is empty."),
                           fix=N_("Give WGS84 coordinates or geometries with at least one point."))
    return bounds


@lru_cache(maxsize=256)
def _metric(crs: pyproj.CRS) -> Metric:
    return Metric(crs, *local_metric_transformers(crs))
