"""Validate a layer once at the border: report every bad feature, repair small polygon faults, convert to WGS84."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field as dc_field

import geopandas
import numpy as np
import pandas as pd
import shapely

from .bounds import geometry_problems
from .crs import metric_for, to_wgs84
from .errors import N_, fill

__all__ = ["Problem", "Prepared", "prepare", "GEOMETRY_TYPES"]

# shapely type ids -> names; GeometryCollection/LinearRing are never accepted as features.
GEOMETRY_TYPES = {
    0: "Point",
    1: "LineString",
    2: "LinearRing",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}
_WKT_COLUMNS = ("wkt", "geometry", "geom", "the_geom")
_FIELD_FIX = N_("swap the columns or pass --field lon=... --field lat=...")


@dataclass
class Problem:
    """One reason a feature was rejected.

    Attributes
    ----------
    row : int
        1-based feature number in the file (for CSV, the data row under the header).
    feature : str or None
        A label such as the feature's code, name or address, when it has one.
    field : str
        ``"geometry"`` or the column at fault.
    value : object
        The offending value, JSON-friendly (text or numbers).
    message : str
        What is wrong: an English catalogue template (marked ``N_``), filled from ``params`` on
        construction; the template itself stays in ``template`` for the page's language.
    fix : str
        What to do about it (template in ``fix_template``).
    code : str
        A stable name of the kind of problem, for programs and the problems CSV.
    params : dict
        What fills the templates' ``%(name)s`` placeholders.
    """

    row: int
    feature: str | None
    field: str
    value: object
    message: str
    fix: str
    code: str = "problem"
    params: dict = dc_field(default_factory=dict)
    template: str | None = None
    fix_template: str | None = None

    def __post_init__(self):
        # the templates are kept as given and the English filled once, so a Problem reads as before
        self.params = {k: _plain(v) for k, v in (self.params or {}).items()}
        if self.template is None:
            self.template, self.message = self.message, fill(self.message, self.params)
        if self.fix_template is None:
            self.fix_template, self.fix = self.fix, fill(self.fix, self.params)

    def to_dict(self) -> dict:
        """Return a JSON-ready dict."""
        out = asdict(self)
        if not isinstance(out["value"], (str, int, float, bool, type(None))):
            out["value"] = str(out["value"])
        return out


@dataclass
class Prepared:
    """The accepted part of a layer.

    Attributes
    ----------
    frame : geopandas.GeoDataFrame
        WGS84 (EPSG:4326), 2-D, only the accepted rows, with an int column ``_row``
        (the 1-based source feature number).
    problems : list of Problem
        Every problem found, ordered by row.
    repaired : list of int
        ``_row`` numbers whose polygons were repaired within the area tolerance.
    """

    frame: geopandas.GeoDataFrame
    problems: list = dc_field(default_factory=list)
    repaired: list = dc_field(default_factory=list)


def prepare(
    raw,
    *,
    allowed_types,
    label_columns=("code", "name", "address", "id"),
    max_area_change=0.01,
) -> Prepared:
    """Check every feature of a raw layer and return the good ones in WGS84.

    Checks, in order: missing/empty geometry (and CSV cells the reader refused to
    parse); more vertices or deeper nesting than :mod:`.bounds` allows; NaN or
    infinite coordinates; longitude/latitude out of range (with a hint when they look swapped);
    geometry type; conversion to WGS84; polygon validity. Problems are collected
    for all features, never raised; features with a problem are left out.
    3-D geometries are silently flattened to 2-D.

    Polygon repair uses :func:`shapely.make_valid`, keeping only polygonal parts,
    and accepts the repair only if the area changes by less than
    ``max_area_change``. The area before is the *declared* area: the shoelace
    area of the outline as drawn (|shell| minus |holes|, summed over parts), which
    is what the author's coordinates say. A bow-tie declares ~0 (its lobes cancel)
    while make_valid yields two triangles, so it is rejected as ambiguous; a tiny
    self-touching spike declares almost exactly what the repair yields, so it is
    accepted. The change is ``|after - before| / max(before, after)``: symmetric,
    bounded to 0-100 %, and defined even when the declared area is zero. Both
    areas are measured in metres in a transverse Mercator centred on the feature.

    Parameters
    ----------
    raw : RawLayer
        From :func:`gridmap.geo.io.read_layer` (anything with ``frame``, ``crs`` and
        ``source``).
    allowed_types : set of str
        Accepted geometry types, e.g. ``{"Polygon", "MultiPolygon"}``.
    label_columns : sequence of str
        Columns tried in order to label a feature in problem reports.
    max_area_change : float
        Largest accepted relative area change of a repair (0.01 = 1 %).

    Returns
    -------
    Prepared
    """
    frame = raw.frame
    n = len(frame)
    allowed = set(allowed_types)
    geoms = np.asarray(frame.geometry.array, dtype=object).copy()
    if n and shapely.has_z(geoms).any():
        geoms = shapely.force_2d(geoms)
    problems: dict[int, list[Problem]] = {}
    ok = np.ones(n, dtype=bool)
    labels = _Labeler(frame, label_columns)

    def report(i, field, value, message, fix, code, /, **params):
        problems.setdefault(int(i), []).append(
            Problem(int(i) + 1, labels(i), field, _plain(value), message, fix, code=code, params=params)
        )
        ok[i] = False

    # 1. missing or empty geometry; for CSV rows the reader recorded which cell failed, and
    # which it refused to parse at all (too deep or too large for GEOS) and why
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        bad_cells: dict[int, list] = {}
        for row, column, value in frame.attrs.get("bad_rows", ()):
            bad_cells.setdefault(row - 1, []).append((column, value, *_cell_problem(column, value)))
        for row, column, value, message, fix, code, params in frame.attrs.get("refused", ()):
            bad_cells.setdefault(row - 1, []).append((column, value, message, fix, code, params))
        for i in np.flatnonzero(missing):
            cells = bad_cells.get(int(i))
            if not cells:
                report(i, "geometry", None, N_("the feature has no geometry"), N_("draw the feature or delete it"),
                       "geometry_missing")
            for column, value, message, fix, code, params in cells or ():
                report(i, column, value, message, fix, code, **params)

    # 1b. bounded size, for what GDAL parsed under its own limits (the readers keep deep text from GEOS)
    for i, value, message, fix, code, params in geometry_problems(np.where(ok, geoms, None)):
        report(i, "geometry", value, message, fix, code, **params)

    # 2-3. coordinates: finite, and in range for lon/lat sources
    present = np.flatnonzero(ok)
    coords, owner = shapely.get_coordinates(geoms[present], return_index=True)
    owner = present[owner]
    finite = np.isfinite(coords).all(axis=1)
    if not finite.all():
        for i, k in _first_per_feature(owner, ~finite):
            report(i, "geometry", f"{coords[k, 0]}, {coords[k, 1]}",
                   N_("the geometry has a non-finite coordinate (%(x)s, %(y)s)"),
                   N_("correct the coordinate in the source data or delete the feature"), "coordinate_not_finite",
                   x=str(coords[k, 0]), y=str(coords[k, 1]))
    if raw.crs.is_geographic:
        x, y = coords[:, 0], coords[:, 1]
        out = finite & ((np.abs(x) > 180) | (np.abs(y) > 90))
        for i, k in _first_per_feature(owner, out & ok[owner]):
            _report_out_of_range(report, i, x[k], y[k], raw.crs.name)

    # 4. geometry type
    type_ids = shapely.get_type_id(geoms)
    allowed_ids = [t for t, name in GEOMETRY_TYPES.items() if name in allowed]
    wrong = ok & ~np.isin(type_ids, allowed_ids)
    expected = " or ".join(sorted(allowed))
    for i in np.flatnonzero(wrong):
        found = GEOMETRY_TYPES.get(int(type_ids[i]), "unknown geometry")
        report(i, "geometry", found, N_("the geometry is a %(found)s, but this layer expects %(expected)s"),
               N_("give %(expected)s features, or load this file into the layer meant for %(found)s features"),
               "wrong_geometry_type", found=found, expected=expected)

    # 5. to WGS84
    keep = np.flatnonzero(ok)
    series = geopandas.GeoSeries(geoms[keep], index=frame.index[keep], crs=raw.crs.crs)
    wgs = np.asarray(to_wgs84(series, raw.crs).array, dtype=object)
    if not raw.crs.is_geographic and len(keep):
        wcoords, wowner = shapely.get_coordinates(wgs, return_index=True)
        bad = ~np.isfinite(wcoords).all(axis=1) | (np.abs(wcoords[:, 0]) > 180) | (np.abs(wcoords[:, 1]) > 90)
        if bad.any():
            src = shapely.get_coordinates(geoms[keep])
            for j, k in _first_per_feature(wowner, bad):
                report(keep[j], "geometry", f"{src[k, 0]}, {src[k, 1]}",
                       N_("the coordinates (%(x)s, %(y)s) lie outside the area where %(crs)s is defined"),
                       N_("check the coordinate system: pass --crs with the right EPSG code, "
                          "e.g. --crs 4547 for CGCS2000 / 3-degree Gauss-Kruger CM 114E"),
                       "outside_crs_area", x=str(src[k, 0]), y=str(src[k, 1]), crs=raw.crs.name)
    geoms_wgs = np.empty(n, dtype=object)
    geoms_wgs[keep] = wgs

    # 6. polygon validity, repair with an area check
    repaired = []
    poly = ok & np.isin(type_ids, [3, 6])
    idx = np.flatnonzero(poly)
    invalid = idx[~shapely.is_valid(geoms_wgs[idx])] if len(idx) else idx
    for i in invalid:
        result = _repair(geoms_wgs[i], max_area_change)
        if result.geometry is not None:
            geoms_wgs[i] = result.geometry
            repaired.append(int(i) + 1)
        else:
            report(i, "geometry", shapely.is_valid_reason(geoms_wgs[i]), result.message, result.fix,
                   "invalid_polygon", **result.params)

    accepted = np.flatnonzero(ok)
    out = frame.iloc[accepted].drop(columns=frame.geometry.name)
    out = geopandas.GeoDataFrame(
        out,
        geometry=geopandas.GeoSeries(geoms_wgs[accepted], index=out.index),
        crs="EPSG:4326",
    )
    out["_row"] = (accepted + 1).astype("int64")
    out.attrs = {}
    flat = [p for i in sorted(problems) for p in problems[i]]
    return Prepared(frame=out, problems=flat, repaired=repaired)


def _first_per_feature(owner, mask):
    """Yield (feature, coordinate index) for the first flagged coordinate of each feature."""
    hits = np.flatnonzero(mask)
    if not len(hits):
        return
    features, first = np.unique(owner[hits], return_index=True)
    for f, k in zip(features, hits[first]):
        yield int(f), int(k)


def _report_out_of_range(report, i, x, y, crs_name):
    x, y = float(x), float(y)
    value = f"lon={_num(x)}, lat={_num(y)}"
    swapped = (abs(x) <= 90 and 90 < abs(y) <= 180) or (18 <= x <= 54 and 73 <= y <= 135)
    if swapped:
        report(i, "geometry", value, N_("longitude and latitude look swapped (got lon=%(x)s, lat=%(y)s)"),
               _FIELD_FIX, "lonlat_swapped", x=_num(x), y=_num(y))
    elif abs(x) > 1000 or abs(y) > 1000:
        # Metre-sized numbers in a lon/lat file: the projection was lost or never declared.
        report(i, "geometry", value, N_("coordinates (x=%(x)s, y=%(y)s) look like metres, not %(crs)s degrees"),
               N_("pass the file's projected CRS with --crs, e.g. --crs 4547 or --crs EPSG:3857"),
               "metres_not_degrees", x=_num(x), y=_num(y), crs=crs_name)
    else:
        report(i, "geometry", value,
               N_("longitude/latitude out of range (got lon=%(x)s, lat=%(y)s); "
                  "longitude must be within -180..180 and latitude within -90..90"),
               N_("correct the coordinates in the source data or delete the feature"),
               "lonlat_out_of_range", x=_num(x), y=_num(y))


def _cell_problem(column, value):
    """Message and fix templates, code and params for a CSV cell that gave no geometry."""
    if value is None or value == "":
        return N_("%(column)s is empty"), N_("fill in %(column)s or delete the row"), "cell_empty", {"column": column}
    if column.strip().lower() in _WKT_COLUMNS:
        return (N_('%(column)s is not readable WKT: "%(text)s"'),
                N_("write the geometry as WKT, e.g. POINT (121.6445 38.9209)"), "wkt_unreadable",
                {"column": column, "text": _short(value)})
    return (N_('%(column)s is "%(value)s", which is not a number'),
            N_("write %(column)s in decimal degrees such as 121.6445, or delete the row"), "not_a_number",
            {"column": column, "value": str(value)})


@dataclass
class _Repair:
    geometry: object
    message: str = ""
    fix: str = ""
    params: dict = dc_field(default_factory=dict)


def _repair(geom, max_change) -> _Repair:
    fixed = _polygonal(shapely.make_valid(geom))
    centre = shapely.get_coordinates(geom).mean(axis=0)
    metric = metric_for((float(centre[0]), float(centre[1])))
    before = _declared_area(metric.project([geom])[0])
    after = float(shapely.area(metric.project([fixed])[0])) if fixed is not None else 0.0
    largest = max(before, after)
    change = abs(after - before) / largest if largest > 0 else 1.0
    reason = shapely.is_valid_reason(geom).split("[")[0].strip().lower()
    if fixed is None or after == 0:
        return _Repair(None, N_("invalid polygon (%(reason)s) with no area left after repair"),
                       N_("redraw the outline in a GIS"), {"reason": reason})
    if change < max_change:
        return _Repair(fixed)
    return _Repair(
        None,
        N_("invalid polygon (%(reason)s); repairing it would change its area by "
           "%(change)s (from %(before)s m² to %(after)s m²; limit %(limit)s)"),
        N_("fix the outline in a GIS (e.g. QGIS 'Fix geometries' after checking the result)"),
        {"reason": reason, "change": _pct(change), "before": f"{before:,.0f}", "after": f"{after:,.0f}",
         "limit": _pct(max_change)},
    )


def _polygonal(geom):
    """Keep only the polygonal parts of make_valid's output (it may add lines or points)."""
    type_id = shapely.get_type_id(geom)
    if type_id in (3, 6):
        return geom
    if type_id == 7:
        parts = shapely.get_parts(geom)
        parts = parts[np.isin(shapely.get_type_id(parts), [3, 6])]
        if len(parts):
            return shapely.union_all(parts)
    return None


def _declared_area(geom) -> float:
    """Shoelace area of the outline as drawn: sum over parts of |shell| - sum |holes|."""
    total = 0.0
    for part in shapely.get_parts(geom):
        total += abs(_ring_area(part.exterior))
        total -= sum(abs(_ring_area(r)) for r in part.interiors)
    return total


def _ring_area(ring) -> float:
    xy = shapely.get_coordinates(ring)
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]))


class _Labeler:
    """Label a feature by the first non-empty label column, looked up only for bad rows."""

    def __init__(self, frame, columns):
        lower = {str(c).lower(): c for c in frame.columns}
        self.frame = frame
        self.columns = [lower[c.lower()] for c in columns if c.lower() in lower]

    def __call__(self, i):
        for c in self.columns:
            value = self.frame[c].iat[i]
            if not pd.api.types.is_scalar(value) or pd.isna(value):
                continue
            text = str(value).strip()
            if text:
                return text
        return None


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


def _num(v: float) -> str:
    return f"{v:.6f}".rstrip("0").rstrip(".")


def _pct(v: float) -> str:
    return f"{v * 100:.0f} %" if v >= 0.01 else f"{v * 100:.2g} %"


def _short(text, limit=60) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
