"""One file through the import border: read, check every feature and field, write all of it in one transaction or nothing."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from .. import coverage
from ..errors import InvalidInput, N_, Said
from ..geo import bounds as geo_bounds
from ..geo import io as geo_io
from ..geo import validate as geo_validate
from ..geo.crs import datum_warnings, parse_crs
from ..store import models as m
from ..store.generations import bump_generation
from .batches import close_batch, file_name, open_batch, source_keys, source_of
from .fields import check_required_columns, convert_fields, rejection, rename
from .kinds import KINDS
from .upsert import Batch


@dataclass
class Summary:
    kind: str
    source: str
    imported: int = 0
    repaired: list = field(default_factory=list)
    rejected: list = field(default_factory=list)  # Problem dicts
    seconds: float = 0.0
    notes: list = field(default_factory=list)
    # what an OSM reader read per kind of source object (gridmap.geo.osm.SourceCount), before
    # validation: its kept whole + clipped parts are the features that imported + rejected count
    read: list = field(default_factory=list)
    # the batch it was (gridmap.importer.batches) and what it did to the kind's live records
    batch_id: int | None = None
    mode: str = "upsert"
    key_basis: str = ""
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    retired: int = 0

    def to_dict(self):
        return {"kind": self.kind, "source": self.source, "imported": self.imported,
                "batch_id": self.batch_id, "mode": self.mode, "key_basis": self.key_basis,
                "created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "retired": self.retired,
                "repaired": len(self.repaired), "rejected": len(self.rejected),
                "problems": self.rejected[:50], "seconds": round(self.seconds, 3), "notes": self.notes,
                "read": [c.to_dict() for c in self.read]}


def read(kind, path, *, layer=None, crs=None, encoding=None, fields=None):
    """Read ``path`` for ``kind`` and return the raw layer, columns renamed to our field names."""
    return read_with_original(_kind(kind), path, layer=layer, crs=crs, encoding=encoding, fields=fields)[0]


def read_with_original(spec, path, *, layer=None, crs=None, encoding=None, fields=None):
    """:func:`read` for the kind ``spec``, and the frame as the file names its columns (the dry run shows both)."""
    fields = dict(fields or {})
    unknown = set(fields) - {f.name for f in spec.fields} - {"lon", "lat"}
    if unknown:
        raise InvalidInput(
            N_("--field names %(unknown)s are not fields of %(kind)s."),
            fix=N_("%(kind)s has the fields %(value)s."),
            params={"unknown": ", ".join(map(str, sorted(unknown))), "kind": spec.name,
                    "value": [f.name for f in spec.fields]})
    path = Path(path)
    if not spec.geometry_required and path.suffix.lower() == ".csv" and not _csv_has_coordinates(path, fields, encoding):
        frame = _read_plain_csv(path, encoding)
        raw = geo_io.RawLayer(frame=frame, crs=parse_crs(crs or 4326), source=str(path))
    else:
        raw = geo_io.read_layer(path, layer=layer, crs=crs, encoding=encoding,
                                lon=fields.pop("lon", None), lat=fields.pop("lat", None))
    fields.pop("lon", None)
    fields.pop("lat", None)
    original = raw.frame
    raw.frame = rename(raw.frame, spec, fields)
    # --key names a column of the file, which may now carry one of our field names
    raw.renamed = {a: b for a, b in zip(original.columns, raw.frame.columns) if a != b} \
        if len(original.columns) == len(raw.frame.columns) else {}
    return raw, original


def import_file(store, kind, path, *, layer=None, crs=None, encoding=None, fields=None,
                skip_invalid=False, publish=False, max_area_change=0.01, progress=None, department=None,
                limits=None, mode="upsert", key=None, user=None, source=None):
    """Import one file. Raises InvalidInput listing every bad feature unless ``skip_invalid``.

    ``department`` names the department whose grids a ``department-grids`` file holds;
    ``limits`` (:class:`gridmap.plans.Limits`) are what ``publish`` validates grids against.
    ``mode`` (upsert, replace, append), ``key`` (a column of the file), ``user`` and ``source``
    (default: the file's name, "osm" for OSM files) are the batch's, see :func:`import_layer`.
    """
    t0 = time.perf_counter()
    _check_department(kind, department)
    raw = read(kind, path, layer=layer, crs=crs, encoding=encoding, fields=fields)
    with store.transaction() as session:
        summary = import_layer(session, kind, raw, skip_invalid=skip_invalid, publish=publish,
                               max_area_change=max_area_change, progress=progress, department=department,
                               limits=limits, mode=mode, key=key, user=user, source=source)
    summary.seconds = time.perf_counter() - t0
    return summary


def import_layer(session, kind, raw, *, skip_invalid=False, publish=False, max_area_change=0.01, progress=None,
                 department=None, limits=None, mode="upsert", key=None, user=None, source=None):
    """Validate ``raw`` (a RawLayer) as ``kind`` and write it with ``session`` (the caller commits).

    One batch (:mod:`.batches`) in the same transaction: ``upsert`` updates the records whose source
    key the file has again and adds the new ones; ``replace`` also retires the live records of the
    source the file no longer has; ``append`` adds every feature as a new record. The Summary carries
    ``batch_id`` and the counts created, updated, unchanged, retired.
    """
    spec = _kind(kind)
    department = _check_department(kind, department)
    if key is not None and kind not in m.RECORD_MODELS:
        raise InvalidInput(N_("--key applies to %(RECORD_MODELS)s, not %(kind)s."), fix=N_("Leave --key out."),
                           params={"RECORD_MODELS": ", ".join(map(str, sorted(m.RECORD_MODELS))), "kind": kind})
    t0 = time.perf_counter()
    check_required_columns(spec, raw)
    summary = Summary(kind, raw.source, read=list(getattr(raw, "counts", [])))
    if raw.frame.geometry.isna().all() and not spec.geometry_required:
        frame = raw.frame.copy()
        frame["_row"] = np.arange(1, len(frame) + 1)
        problems, repaired = [], []
    else:
        prepared = geo_validate.prepare(raw, allowed_types=set(spec.geometry), max_area_change=max_area_change)
        frame, problems, repaired = prepared.frame, list(prepared.problems), prepared.repaired
    frame, field_problems = convert_fields(spec, frame)
    problems += field_problems
    frame, ref_problems = spec.check(session, frame, department=department)
    problems += ref_problems
    keys = None
    if spec.name in m.RECORD_MODELS and mode != "append":
        keys, summary.key_basis, key_problems = source_keys(spec, frame, raw, key)
        problems += key_problems
    summary.repaired = list(repaired)
    summary.rejected = [p.to_dict() for p in sorted(problems, key=lambda p: (p.row, p.field))]
    if problems and not skip_invalid:
        raise rejection(spec, raw.source, problems, len(raw.frame))
    bad_rows = {p.row for p in problems}
    frame_rows = frame["_row"].to_numpy()
    if bad_rows:
        frame = frame[~frame["_row"].isin(bad_rows)]
    if frame.empty and len(raw.frame):
        raise InvalidInput(N_("No feature of %(source)s could be imported as %(kind)s."),
                           fix=N_("See the listed problems."), details={"problems": summary.rejected[:50]},
                           params={"source": raw.source, "kind": kind})
    keep = ()
    if keys is not None and bad_rows:
        keys = keys[~np.isin(frame_rows, list(bad_rows))]
        if mode == "replace":
            keep = _rejected_keys(spec, raw, bad_rows, key, summary.key_basis)
    register = source_of(raw, source)
    shown = file_name(raw) if source is None else f"{file_name(raw)} ({register})"
    row = open_batch(session, spec.name, shown, mode, user)
    batch = Batch(id=row.id, mode=mode, source=register, keys=keys, keep=keep) if spec.name in m.RECORD_MODELS else None
    notes = spec.write(session, frame, publish=publish, progress=progress, department=department, limits=limits,
                       batch=batch)
    close_batch(row, batch, rejected=len({p["row"] for p in summary.rejected}), imported=len(frame))
    summary.batch_id, summary.mode = row.id, mode
    summary.created, summary.updated, summary.unchanged, summary.retired = \
        row.created, row.updated, row.unchanged, row.retired
    changed = batch is None or batch.created or batch.updated or batch.retired
    if spec.name in ("cameras", "buildings") and len(frame) and changed:
        # a camera's view is cut by the footprints around it: new cameras need theirs, new buildings
        # may hide what nearby cameras saw; computed here so views and footprints commit together
        bounds = tuple(frame.total_bounds) if spec.name == "buildings" else None
        views = coverage.refresh_views(session, changed_bounds=bounds)
        if views:
            notes = list(notes or []) + [Said(N_("%(count)s camera views computed"), count=views)]
    bump_generation(session)  # web processes rebuild their snapshots with the new data
    summary.imported = len(frame)
    # the reader's decisions first (e.g. which text encoding a Shapefile was read in, and why)
    summary.notes = list(raw.notes) + datum_warnings(raw.frame.geometry.values, raw.crs) + list(notes or [])
    summary.seconds = time.perf_counter() - t0
    return summary


def _rejected_keys(spec, raw, bad_rows, key, basis):
    """The keys of the features ``--skip-invalid`` left out: a replace must not retire their records."""
    if basis.startswith("content"):
        raise InvalidInput(N_("--mode replace with %(bad_rows)s rejected feature(s) and no key column would retire the "
                              "records of the features it could not read; nothing was written."),
                           fix=N_("Fix the listed features, name a key column with --key, or import with --mode upsert."),
                           params={"bad_rows": len(bad_rows)})
    rows = pd.DataFrame({"_row": sorted(bad_rows)})
    return set(source_keys(spec, rows, raw, key)[0])


def _check_department(kind, department):
    """The department name a department-grids import needs (stripped), and None for every other kind."""
    if kind != "department-grids":
        if department is not None:
            raise InvalidInput(N_("--department %(department)s applies only to department-grids, not %(kind)s."),
                               fix=N_("Leave --department out, or import department-grids."),
                               params={"department": repr(department), "kind": kind})
        return None
    name = (department or "").strip()
    if not name or len(name) > 64:
        raise InvalidInput(N_("--department %(department)s must name the department in 1–64 characters."),
                           fix=N_("Pass e.g. --department 综治 (or 公安, 民政, 城管 …)."),
                           params={"department": repr(department)})
    return name


def _kind(kind):
    try:
        return KINDS[kind]
    except KeyError:
        raise InvalidInput(N_("Import kind %(kind)s is not known."), fix=N_("Use one of %(KINDS)s."),
                           params={"kind": repr(kind), "KINDS": ", ".join(map(str, sorted(KINDS)))}) from None


def _csv_has_coordinates(path, fields, encoding):
    cols = {c.strip().lower() for c in pd.read_csv(path, nrows=0, encoding=encoding or "utf-8-sig").columns}
    wanted = {fields.get("lon", "").lower(), "lon", "lng", "longitude", "x", "经度", "wkt", "geometry"}
    return bool(cols & wanted)


def _read_plain_csv(path, encoding):
    geo_bounds.check_text_size(path, str(path))
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding or "utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(N_("%(path)s is not UTF-8 text."), fix=N_("Pass --encoding GBK (or the file's encoding)."),
                           params={"path": path}) from None
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries([None] * len(df), crs=4326), crs=4326)
