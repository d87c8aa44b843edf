"""Import batches: each record's source key, the batch history, undo, and single-record corrections.

Every import is a batch (:class:`gridmap.store.models.ImportBatch`) written in the same transaction
as its records. A record is matched across imports by its source key: OSM type and id (``w123``,
``r45``; the second run of a way the extract cut, ``w123#2``), else the file's key column
(``source_key``, ``code``, ``编码``, ``编号``), else a column the user names (``--key``), else, as the
last resort, a digest of its geometry (rounded to 1e-7°) and its fields. Undo takes a batch back:
records it created are retired, records it changed get their previous values, records it retired
return. Hand corrections (``record update``/``record retire``, the API) are one-record batches, so
they are listed, audited and undone the same way.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import func, or_, select, update

from .. import coverage
from ..errors import Conflict, InvalidInput, N_, NotFound, Said
from ..store import loaders
from ..store import models as m
from ..store.generations import bump_generation
from ..store.retired import INCLUDE_RETIRED
from ..store.types import encode_many
from .fields import convert_fields, problem
from .kinds import KINDS
from .upsert import MODES, Batch, hex_digits, previous_values, retire

audit = logging.getLogger("gridmap.audit")

KEY_COLUMNS = ("source_key", "code", "编码", "编号")
# What a hand correction may change, per kind: plain fields of the record's own table. Geometry,
# community and courtyard are corrected by importing the record again (they move views and grids).
EDITABLE = {
    "buildings": ("address", "name", "households", "floors"),
    "party-members": ("name", "phone", "in_service", "employer"),
    "workers": ("name", "phone"),
    "volunteers": ("name", "phone", "skills", "available"),
    "responders": ("name", "kind", "phone", "skills", "available"),
    "cameras": ("name", "channel", "bearing", "fov", "range_m"),
    "roads": ("name", "kind"),
}
_FIELDS = ("id", "kind", "source", "mode", "user", "started_at", "finished_at", "created", "updated", "unchanged",
           "retired", "rejected", "undone_at")


def list_batches(session, *, limit=50):
    """The newest ``limit`` batches, newest first, as dicts (``id, kind, source, mode, user, started_at,
    finished_at, created, updated, unchanged, retired, rejected, undone_at``; times ISO 8601 UTC)."""
    limit = _limit(limit)
    rows = session.scalars(select(m.ImportBatch).order_by(m.ImportBatch.id.desc()).limit(limit)).all()
    return [batch_dict(b) for b in rows]


def batch_dict(b):
    out = {f: getattr(b, f) for f in _FIELDS}
    for f in ("started_at", "finished_at", "undone_at"):
        out[f] = out[f].isoformat(timespec="seconds") if out[f] else None
    out["undone_by"] = b.undone_by
    return out


def undo_batch(session, batch_id, *, user):
    """Take batch ``batch_id`` back: its created records retired, changed ones restored, retired ones returned.

    Refused (:class:`Conflict`) when it was undone already, when a later batch not undone changed any
    of its records (undo newest first), or when a record it retired has a live successor with the
    same key. Returns ``{"batch_id", "kind", "retired", "restored", "returned"}``.
    """
    b = session.get(m.ImportBatch, _batch_id(batch_id))
    if b is None:
        raise NotFound(N_("Import batch %(batch_id)s does not exist."),
                       fix=N_("See `gridmap import list` for the batches."),
                       params={"batch_id": batch_id})
    if b.undone_at is not None:
        raise Conflict(N_("Import batch %(id)s was undone already (%(undone_at)s UTC by %(undone_by)s)."),
                       fix=N_("Nothing to do; import the file again to redo it."), details={"batch_id": b.id},
                       params={"id": b.id, "undone_at": format(b.undone_at, '%Y-%m-%d %H:%M'),
                               "undone_by": b.undone_by})
    model = m.RECORD_MODELS.get(b.kind)
    if model is None:
        raise Conflict(N_("Import batch %(id)s imported %(kind)s, which cannot be undone."),
                       fix=N_("Batches of %(RECORD_MODELS)s can be undone; %(kind)s are replaced by importing a "
                              "corrected file (grids: a new plan)."), details={"batch_id": b.id},
                       params={"id": b.id, "kind": b.kind,
                               "RECORD_MODELS": ", ".join(map(str, sorted(m.RECORD_MODELS)))})
    table = model.__table__
    created = select(table.c.id).where(table.c.batch_id == b.id)
    changed = select(m.ImportChange.record_id).where(m.ImportChange.batch_id == b.id)
    later = session.execute(
        select(m.ImportBatch.id, func.count()).join(m.ImportChange, m.ImportChange.batch_id == m.ImportBatch.id)
        .where(m.ImportBatch.kind == b.kind, m.ImportBatch.id > b.id, m.ImportBatch.undone_at.is_(None),
               or_(m.ImportChange.record_id.in_(created), m.ImportChange.record_id.in_(changed)))
        .group_by(m.ImportBatch.id).order_by(m.ImportBatch.id.desc())).all()
    if later:
        ids = [r[0] for r in later]
        raise Conflict(N_("Import batch %(id)s cannot be undone: later batch(es) %(ids)s changed %(value)s of its "
                          "%(kind)s."),
                       fix=N_("Undo newest first: undo batch %(value2)s first."), details={"batch_id": b.id, "later": ids},
                       params={"id": b.id, "ids": ids, "value": sum(r[1] for r in later), "kind": b.kind,
                               "value2": ids[0]})
    changes = session.execute(select(m.ImportChange.record_id, m.ImportChange.action, m.ImportChange.previous)
                              .where(m.ImportChange.batch_id == b.id)).all()
    returning = [rid for rid, action, _ in changes if action == "retired"]
    _refuse_taken_keys(session, model, returning, b)
    now = m.utcnow()
    touched = session.execute(created, execution_options=INCLUDE_RETIRED).scalars().all() + [rid for rid, _, _ in changes]
    retired = session.execute(update(table).where(table.c.batch_id == b.id, table.c.retired_at.is_(None))
                              .values(retired_at=now, version=table.c.version + 1)).rowcount
    restored = 0
    for rid, action, previous in changes:
        if action == "updated":
            _restore(session, model, rid, json.loads(previous))
            restored += 1
    for start in range(0, len(returning), 500):
        session.execute(update(table).where(table.c.id.in_(returning[start:start + 500]))
                        .values(retired_at=None, version=table.c.version + 1))
    b.undone_at, b.undone_by = now, _user(user)
    _after_change(session, b.kind, touched)
    audit.info("import batch %s (%s from %s) undone by %s: %d retired, %d restored, %d returned",
               b.id, b.kind, b.source, b.undone_by, retired, restored, len(returning))
    return {"batch_id": b.id, "kind": b.kind, "retired": retired, "restored": restored, "returned": len(returning)}


def open_batch(session, kind, source, mode, user):
    """A new batch row (flushed: it has its id) for an import of ``kind`` from ``source``."""
    if mode not in MODES:
        raise InvalidInput(N_("--mode %(mode)s is not an import mode."), fix=N_("Use one of %(MODES)s."),
                           params={"mode": repr(mode), "MODES": ", ".join(map(str, list(MODES)))})
    if mode != "upsert" and kind not in m.RECORD_MODELS:
        raise InvalidInput(N_("--mode %(mode)s applies to %(RECORD_MODELS)s, not %(kind)s."),
                           fix=N_("Leave --mode out: communities are matched by code, grids become a new plan, a "
                                  "department's grids replace its earlier ones."),
                           params={"mode": mode, "RECORD_MODELS": ", ".join(map(str, sorted(m.RECORD_MODELS))),
                                   "kind": kind})
    row = m.ImportBatch(kind=kind, source=source[:256], mode=mode, user=_user(user), started_at=m.utcnow(),
                        created=0, updated=0, unchanged=0, retired=0, rejected=0)
    session.add(row)
    session.flush()
    return row


def close_batch(row, batch, *, rejected=0, imported=0):
    counts = batch.counts() if batch is not None else {"created": imported}
    for k, v in counts.items():
        setattr(row, k, int(v))
    row.rejected = int(rejected)
    row.finished_at = m.utcnow()


def source_of(raw, source=None):
    """The register records of ``raw`` are matched in: ``source``, else "osm" (OSM ids are one global
    register), else "file".

    Not the file's name: an office saves its corrected list as ``volunteers-v2.csv`` and still means
    the same volunteers. Two registers whose codes overlap (two districts' lists, both numbering
    from 1) are kept apart with ``--source``.
    """
    if source is not None:
        text = str(source).strip()
        if not text or len(text) > 256:
            raise InvalidInput(N_("--source %(source)s must name the source in 1–256 characters."),
                               fix=N_("Pass e.g. --source 金州区志愿者, or leave it out."),
                               params={"source": repr(source)})
        return text
    return "osm" if "osm_id" in raw.frame.columns else "file"


def file_name(raw):
    """The file a batch read, as its history shows it."""
    return Path(str(raw.source)).name or str(raw.source)


def source_keys(spec, frame, raw, key=None):
    """Each row of ``frame``'s source key, how they were found, and a Problem per empty or repeated key."""
    cols = raw.frame.columns
    pos = frame["_row"].to_numpy() - 1
    if key:
        col = key if key in cols else getattr(raw, "renamed", {}).get(key)
        if col is None or col not in cols:
            raise InvalidInput(N_("--key %(key)s: the file has no column %(key2)s."),
                               fix=N_("Its columns are %(value)s."),
                               params={"key": key, "key2": repr(key),
                                       "value": [c for c in cols if c != raw.frame.geometry.name]})
        keys, basis = _text(raw.frame[col].iloc[pos]), Said(N_("column %(column)s"), column=key)
    elif "osm_id" in cols:
        src = raw.frame.iloc[pos]
        kind = src["osm_type"].astype(str).str[0] if "osm_type" in cols else pd.Series("w", index=src.index)
        keys = kind + src["osm_id"].astype("int64").astype(str)
        if "osm_part" in cols:
            part = pd.to_numeric(src["osm_part"], errors="coerce").fillna(0).astype("int64")
            keys = keys.where(part <= 0, keys + "#" + part.astype(str))
        keys, basis = keys.to_numpy(dtype=object), Said(N_("OSM type and id"))
    else:
        col = next((c for c in KEY_COLUMNS if c in cols), None)
        if col is not None:
            keys, basis = _text(raw.frame[col].iloc[pos]), Said(N_("column %(column)s"), column=col)
        else:
            return _content_keys(spec, frame), Said(N_("content (no key column: name one with --key)")), []
    problems = []
    labels = frame["_row"].to_numpy()
    series = pd.Series(keys, dtype=object)
    empty = (series == "").to_numpy()
    long = (series.str.len() > 128).to_numpy()
    repeated = (series.duplicated() & ~empty & ~long).to_numpy()
    # flagged rows only go through Python: a million good keys cost a vectorised pass, not a loop
    first = dict(zip(series[~empty & ~long].drop_duplicates(), labels[~empty & ~long][
        ~series[~empty & ~long].duplicated().to_numpy()])) if repeated.any() else {}
    for i in np.flatnonzero(empty | long | repeated):
        k = keys[i]
        if empty[i]:
            problems.append(problem(labels[i], None, "key", "", N_("the key (%(basis)s) is empty"),
                                    N_("Give every feature its key, or name another column with --key."),
                                    code="key_empty", basis=basis))
        elif long[i]:
            problems.append(problem(labels[i], k[:40], "key", k[:40],
                                    N_("the key (%(basis)s) is longer than 128 characters"),
                                    N_("Name a shorter key column with --key."), code="key_too_long", basis=basis))
        else:
            problems.append(problem(labels[i], k, "key", k, N_("the key %(key)s (%(basis)s) is also on feature %(first)s"),
                                    N_("Each feature needs its own key: correct the repeated one or name another "
                                       "column with --key."), code="key_repeated", key=repr(k), basis=basis,
                                    first=first[k]))
    return keys, basis, problems


def update_record(session, kind, record_id, values, *, version, user):
    """Correct fields of one live record (optimistic locking on ``version``); a one-record batch.

    ``values`` maps field names of :data:`EDITABLE` to text or typed values, converted as an import
    converts them. Returns the record as :func:`record_dict` after the change.
    """
    model, rec = _live_record(session, kind, record_id, version)
    allowed = EDITABLE[kind]
    unknown = sorted(set(values) - set(allowed))
    if unknown or not values:
        raise InvalidInput(N_("%(kind)s field(s) %(value)s cannot be corrected here."),
                           fix=N_("Name one or more of %(allowed)s as field=value."),
                           params={"kind": kind, "value": unknown or '(none)',
                                   "allowed": ", ".join(map(str, list(allowed)))})
    spec = KINDS[kind]
    frame = pd.DataFrame({f: [values[f]] for f in values})
    frame["_row"] = 1
    converted, problems = convert_fields(type(spec)(spec.name, spec.geometry,
                                                    tuple(f for f in spec.fields if f.name in values),
                                                    spec.check, spec.write), frame)
    if problems:
        p = problems[0]
        raise InvalidInput(N_("%(kind)s %(id)s: %(message)s."), fix=p.fix, details={"field": p.field},
                           params={"kind": kind, "id": rec.id, "message": p.message})
    for f in values:
        v, limit = converted[f].iloc[0], getattr(model.__table__.c[f].type, "length", None)
        if limit and isinstance(v, str) and len(v) > limit:
            raise InvalidInput(N_("%(kind)s %(id)s: %(f)s is %(v)s characters, longer than the %(limit)s it holds."),
                               fix=N_("Shorten %(f)s to at most %(limit)s characters."), details={"field": f, "limit": limit},
                               params={"kind": kind, "id": rec.id, "f": f, "v": len(v), "limit": limit})
    batch = open_batch(session, kind, f"{kind} {rec.id} by hand", "upsert", user)
    batch.mode = "edit"
    session.add(m.ImportChange(batch_id=batch.id, record_id=rec.id, action="updated",
                               previous=json.dumps(previous_values(session, model, [rec.id])[rec.id],
                                                   ensure_ascii=False)))
    for f in values:
        v = converted[f].iloc[0]
        setattr(rec, f, v.item() if hasattr(v, "item") else v)
    # the next import of its source compares against the file, not this correction: it rewrites the record
    rec.row_hash = None
    rec.version += 1
    batch.updated, batch.finished_at = 1, m.utcnow()
    session.flush()
    _after_change(session, kind, [rec.id], moved=False)
    audit.info("%s %s corrected by %s (batch %s): %s", kind, rec.id, batch.user, batch.id, sorted(values))
    return record_dict(rec, batch_id=batch.id)


def retire_record(session, kind, record_id, *, version, user):
    """Retire one live record (optimistic locking on ``version``); a one-record batch an undo takes back."""
    model, rec = _live_record(session, kind, record_id, version)
    batch = open_batch(session, kind, f"{kind} {rec.id} by hand", "upsert", user)
    batch.mode = "retire"
    retire(session, model, [rec.id], Batch(id=batch.id, mode="retire", source=rec.source))
    batch.retired, batch.finished_at = 1, m.utcnow()
    session.flush()
    _after_change(session, kind, [rec.id])
    audit.info("%s %s retired by %s (batch %s)", kind, rec.id, batch.user, batch.id)
    return {"kind": kind, "id": rec.id, "retired": True, "batch_id": batch.id}


def record_dict(rec, *, batch_id=None):
    out = {"id": rec.id, "version": rec.version, "source": rec.source, "source_key": rec.source_key}
    kind = next(k for k, mod in m.RECORD_MODELS.items() if isinstance(rec, mod))
    out.update({f: getattr(rec, f) for f in EDITABLE[kind]})
    out["kind"] = kind
    if batch_id is not None:
        out["batch_id"] = batch_id
    return out


def _live_record(session, kind, record_id, version):
    model = m.RECORD_MODELS.get(kind)
    if model is None:
        raise InvalidInput(N_("Record kind %(kind)s is not known."), fix=N_("Use one of %(RECORD_MODELS)s."),
                           params={"kind": repr(kind), "RECORD_MODELS": ", ".join(map(str, sorted(m.RECORD_MODELS)))})
    try:
        rid, version = int(record_id), int(version)
    except (TypeError, ValueError):
        raise InvalidInput(N_("Record id %(record_id)s and version %(version)s must be whole numbers."),
                           fix=N_("Read the record first; send its id and version."),
                           params={"record_id": repr(record_id), "version": repr(version)}) from None
    rec = session.get(model, rid)
    if rec is None or rec.retired_at is not None:
        raise NotFound(N_("%(kind)s %(rid)s does not exist or was retired."),
                       fix=N_("See `gridmap export %(kind)s` for the live ones."),
                       params={"kind": kind, "rid": rid})
    if rec.version != version:
        raise Conflict(N_("%(kind)s %(rid)s was changed since version %(version)s: it is at version %(version2)s."),
                       fix=N_("Reload the record and apply your correction to its newest values."),
                       details={"version": rec.version},
                       params={"kind": kind, "rid": rid, "version": version, "version2": rec.version})
    return model, rec


def _restore(session, model, rid, previous):
    table = model.__table__
    grids = previous.pop("_grids", None)
    values = {}
    for name, v in previous.items():
        if isinstance(v, dict) and "wkb" in v:
            v = encode_many([shapely.from_wkb(v["wkb"])], session.bind.dialect.name)[0]
        values[name] = v
    session.execute(update(table).where(table.c.id == rid).values(version=table.c.version + 1, **values))
    if grids is not None:
        session.execute(m.grid_worker_grid.delete().where(m.grid_worker_grid.c.worker_id == rid))
        if grids:
            session.execute(m.grid_worker_grid.insert(), [{"worker_id": rid, "grid_code": c} for c in grids])


def _refuse_taken_keys(session, model, ids, b):
    """A record this batch retired may come back only if no live record took its key since."""
    table = model.__table__
    for start in range(0, len(ids), 500):
        mine = select(table.c.source, table.c.source_key).where(table.c.id.in_(ids[start:start + 500]),
                                                                  table.c.source_key.is_not(None)).subquery()
        taken = session.execute(
            select(table.c.source_key).join(mine, (table.c.source == mine.c.source)
                                            & (table.c.source_key == mine.c.source_key))
            .where(table.c.retired_at.is_(None)).limit(3), execution_options=INCLUDE_RETIRED).scalars().all()
        if taken:
            raise Conflict(N_("Import batch %(id)s cannot be undone: live %(kind)s have since taken the keys %(taken)s "
                              "of records it retired."), fix=N_("Retire or undo those records first."),
                           details={"batch_id": b.id, "keys": taken},
                           params={"id": b.id, "kind": b.kind, "taken": taken})


def _after_change(session, kind, ids, *, moved=True):
    """Views and snapshots after records ``ids`` of ``kind`` came, went or changed (``moved``: in space)."""
    ids = [int(i) for i in ids]
    if kind == "cameras" and ids:
        coverage.refresh_views(session, camera_ids=ids)
    elif kind == "buildings" and ids and moved:
        # a footprint coming or going changes what the cameras around it see; the lon/lat point lies
        # within MARGIN_DEG of its footprint
        box = session.execute(select(func.min(m.Building.lon), func.min(m.Building.lat), func.max(m.Building.lon),
                                     func.max(m.Building.lat)).where(m.Building.id.in_(ids[:30000])),
                              execution_options=INCLUDE_RETIRED).one()
        if box[0] is not None:
            d = loaders.MARGIN_DEG
            coverage.refresh_views(session, changed_bounds=(box[0] - d, box[1] - d, box[2] + d, box[3] + d))
    bump_generation(session)


def _content_keys(spec, frame):
    geoms = frame.geometry.values
    rounded = shapely.transform(np.asarray(geoms, dtype=object), lambda c: np.round(c, 7)) \
        if frame.geometry.notna().any() else np.array([None] * len(frame), dtype=object)
    values = pd.DataFrame({f.name: frame[f.name].astype(str).to_numpy() for f in spec.fields if f.name in frame})
    values["_geom"] = [b.hex() if b is not None else "" for b in shapely.to_wkb(rounded)]
    hashed = pd.util.hash_pandas_object(values, index=False, categorize=False).to_numpy()
    keys = "h" + pd.Series(hex_digits(hashed))
    # identical rows are distinct records: the second of them keeps its own key on every import
    nth = keys.groupby(keys).cumcount()
    return keys.where(nth == 0, keys + "#" + (nth + 1).astype(str)).to_numpy(dtype=object)


def _text(series):
    if series.dtype.kind == "f":
        series = series.map(lambda v: "" if pd.isna(v) else (str(int(v)) if float(v).is_integer() else str(v)))
    return series.fillna("").astype(str).str.strip().to_numpy(dtype=object)


def _user(user):
    return (str(user) if user else "")[:64]


def _batch_id(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput(N_("Import batch %(value)s is not a batch id."), fix=N_("See `gridmap import list`."),
                           params={"value": repr(value)}) from None


def _limit(limit):
    try:
        limit = int(limit)
    except (TypeError, ValueError):
        raise InvalidInput(N_("limit %(limit)s is not a whole number."), fix=N_("Pass a limit from 1 to 1000."),
                           params={"limit": repr(limit)}) from None
    if not 1 <= limit <= 1000:
        raise InvalidInput(N_("limit %(limit)s is out of range."), fix=N_("Pass a limit from 1 to 1000."),
                           params={"limit": limit})
    return limit
