"""A dry run of one import: read and check a file exactly as the import would, write nothing, and say what it found.

:func:`inspect` takes the steps of :func:`gridmap.importer.layer.import_layer` up to the point
where it writes — the same reader, the same renaming, geometry checks, field conversions and
reference checks, in the same order — so the problems it lists are the ones ``gridmap import``
would reject the file with (a test holds the two equal). On top it keeps what a person choosing
a mapping needs to see: the file's own columns, its first rows, and every feature in WGS84 with
the bad ones marked, for the map.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import GridmapError, InvalidInput, N_, Said
from ..geo import validate as geo_validate
from ..geo.crs import datum_warnings, to_wgs84
from ..store import models as m
from .batches import source_keys
from .fields import check_required_columns, convert_fields
from .layer import _check_department, _kind, read_with_original

#: Rows shown in the preview table, and the most features drawn on the map (bad ones first).
PREVIEW_ROWS = 20
MAP_FEATURES = 5000


@dataclass
class Inspection:
    """What a dry run found. ``problems`` are the importer's Problem dicts (row, feature, field, value, message, fix)."""

    kind: str
    columns: list = field(default_factory=list)  # the file's own column names
    rows: list = field(default_factory=list)  # the first PREVIEW_ROWS rows, as text, by file column
    total: int = 0
    problems: list = field(default_factory=list)
    bad_rows: int = 0
    repaired: int = 0
    notes: list = field(default_factory=list)
    error: dict | None = None  # a refusal of the whole file (a missing column, an unknown CRS …)
    features: dict = field(default_factory=lambda: {"type": "FeatureCollection", "features": []})
    drawn: int = 0

    @property
    def importable(self):
        """Features that would be written (all of them when there is no problem)."""
        return 0 if self.error else self.total - self.bad_rows

    def to_dict(self):
        return {"kind": self.kind, "columns": self.columns, "rows": self.rows, "total": self.total,
                "problems": self.problems, "bad_rows": self.bad_rows, "repaired": self.repaired,
                "notes": [n.to_dict() if isinstance(n, Said) else n for n in self.notes], "error": self.error, "importable": self.importable, "drawn": self.drawn}


def inspect(session, kind, path, *, layer=None, crs=None, encoding=None, fields=None, department=None,
            max_area_change=0.01, mode="upsert", key=None, map_features=MAP_FEATURES):
    """Dry-run ``path`` as ``kind``: read and check it as :func:`~gridmap.importer.import_file` would, writing nothing.

    A refusal of the whole file (unreadable, unknown layer or CRS, a required column missing) is
    returned in ``error`` (message, fix, details) with as much of the preview as could be read,
    so the person can fix the mapping; only a bad ``kind`` or ``department`` raises.
    """
    spec = _kind(kind)
    department = _check_department(kind, department)
    out = Inspection(kind)
    try:
        raw, original = read_with_original(spec, path, layer=layer, crs=crs, encoding=encoding, fields=fields)
    except GridmapError as err:
        out.error = _error(err)
        return out
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        # pandas' first look at a CSV's header, before the readers that name these themselves
        fix = ("Choose the file's encoding (e.g. GBK)." if isinstance(err, UnicodeDecodeError)
               else "Save the table again as CSV (comma-separated, one header row).")
        out.error = _error(InvalidInput(f"{Path(path).name} could not be read as CSV: {err}.", fix=fix))
        return out
    out.columns = [str(c) for c in original.columns if c != original.geometry.name]
    out.total = len(raw.frame)
    out.rows = _head(original, out.columns)
    out.notes = list(raw.notes)
    try:
        check_required_columns(spec, raw)
    except GridmapError as err:
        out.error = _error(err)
        out.features, out.drawn = _features(raw, None, set(), map_features)
        return out
    if raw.frame.geometry.isna().all() and not spec.geometry_required:
        frame = raw.frame.copy()
        frame["_row"] = np.arange(1, len(frame) + 1)
        problems, repaired = [], []
        prepared_frame = None
    else:
        prepared = geo_validate.prepare(raw, allowed_types=set(spec.geometry), max_area_change=max_area_change)
        frame, problems, repaired = prepared.frame, list(prepared.problems), prepared.repaired
        prepared_frame = prepared.frame
    frame, field_problems = convert_fields(spec, frame)
    problems += field_problems
    frame, ref_problems = spec.check(session, frame, department=department)
    problems += ref_problems
    if key is not None and kind not in m.RECORD_MODELS:
        out.error = _error(InvalidInput(f"--key applies to {sorted(m.RECORD_MODELS)}, not {kind}.",
                                        fix="Leave --key out."))
        return out
    if spec.name in m.RECORD_MODELS and mode != "append":
        try:
            _, basis, key_problems = source_keys(spec, frame, raw, key)
        except GridmapError as err:
            out.error = _error(err)
            return out
        problems += key_problems
        out.notes.append(Said(N_("records are matched by their key: %(basis)s"), basis=basis))
    out.problems = [p.to_dict() for p in sorted(problems, key=lambda p: (p.row, p.field))]
    out.bad_rows = len({p.row for p in problems})
    out.repaired = len(repaired)
    out.notes += datum_warnings(raw.frame.geometry.values, raw.crs)
    out.features, out.drawn = _features(raw, prepared_frame, {p.row for p in problems}, map_features)
    return out


def _error(err):
    # the templates and params travel with the English, so the page can say it in its own language
    return {"message": err.message, "fix": err.fix, "details": _plain(err.details), "code": err.code,
            "template": err.template, "fix_template": err.fix_template, "params": _plain(err.params)}


def _head(frame, columns):
    head = frame.iloc[:PREVIEW_ROWS]
    return [[_cell(v) for v in row] for row in head[columns].itertuples(index=False, name=None)]


def _cell(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = str(value)
    return text if len(text) <= 200 else text[:199] + "…"


def _features(raw, prepared, bad, limit):
    """Every feature that has a place, in WGS84, as GeoJSON with ``row`` and ``bad``: bad ones first, at most ``limit``.

    Features the checks accepted are drawn as they would be stored (repaired, in WGS84); those
    rejected for their geometry as far as they can be (their raw coordinates converted, when
    finite and on the globe)."""
    n = len(raw.frame)
    geoms = np.full(n, None, dtype=object)
    if prepared is not None and len(prepared):
        geoms[prepared["_row"].to_numpy() - 1] = np.asarray(prepared.geometry.array, dtype=object)
    missing = np.flatnonzero(shapely.is_missing(geoms))
    if len(missing):
        geoms[missing] = _converted(raw, missing)
    order = sorted(range(n), key=lambda i: (i + 1 not in bad, i))
    features = []
    for i in order:
        g = geoms[i]
        if g is None or g.is_empty:
            continue
        if len(features) >= limit:
            break
        features.append({"type": "Feature", "geometry": shapely.geometry.mapping(g),
                         "properties": {"row": i + 1, "bad": i + 1 in bad}})
    return {"type": "FeatureCollection", "features": features}, len(features)


def _converted(raw, index):
    src = np.asarray(raw.frame.geometry.array, dtype=object)[index]
    ok = ~(shapely.is_missing(src) | shapely.is_empty(src))
    out = np.full(len(index), None, dtype=object)
    for j in np.flatnonzero(ok):
        g = src[j]
        xy = shapely.get_coordinates(g)
        if not len(xy) or not np.isfinite(xy).all():
            continue
        try:
            w = to_wgs84(gpd.GeoSeries([shapely.force_2d(g)], crs=None), raw.crs).iloc[0]
        except Exception:  # noqa: BLE001 - a geometry a CRS cannot take is simply not drawn
            continue
        wxy = shapely.get_coordinates(w)
        if np.isfinite(wxy).all() and (np.abs(wxy[:, 0]) <= 180).all() and (np.abs(wxy[:, 1]) <= 90).all():
            out[j] = w
    return out


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
