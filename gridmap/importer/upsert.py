"""Records matched by source key: a file's rows created, updated, left unchanged or retired, in bulk.

A writer hands its rows (the model's columns, geometry already encoded) to :func:`write_rows` with
the import's :class:`Batch`. Matching is by ``(source, source_key)`` among live rows; a row's
``row_hash`` (a 64-bit digest of the values it was written with) tells unchanged from updated
without reading a geometry back, so re-importing a million unchanged points reads two short
columns and writes nothing. What an update or a retirement overwrites is kept in
``import_change`` (JSON, geometry as WKB hex) so the batch can be undone.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import bindparam, delete, insert, select, update

from ..store import models as m
from ..store.bulk import bulk_insert
from ..store.retired import INCLUDE_RETIRED

MODES = ("upsert", "replace", "append")
# columns of a record that are bookkeeping, not the record's values: never restored by an undo
BOOKKEEPING = ("id", "source", "source_key", "batch_id", "retired_at", "version")
_CHUNK = 500
# lengths checked where they were made (batches.source_of, batches.source_keys)
_CHECKED = ("source", "source_key")


@dataclass
class Batch:
    """One import's bookkeeping while it writes: its id, mode, source, keys (aligned with the rows)."""
    id: int
    mode: str
    source: str
    keys: np.ndarray | None = None
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    retired: int = 0
    keep: frozenset | set | tuple = ()  # keys of rejected features: never retired by a replace
    ids: dict = field(default_factory=dict)  # source key → record id of rows created or updated

    def counts(self):
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "retired": self.retired}


def digest(rows):
    """A signed 64-bit digest per row of ``rows`` (vectorised), the same for the same values.

    The rows come out of the same conversion on every import of a kind, so equal values have
    equal types and bytes (geometry as encoded WKB): pandas' row hash needs no normalising.
    """
    if rows.empty:
        return np.array([], dtype=np.int64)
    return pd.util.hash_pandas_object(rows, index=False, categorize=False).to_numpy().view(np.int64)


def hex_digits(hashes):
    """64-bit hashes as 16 hex digits each, vectorised (a Python format per row costs seconds a million)."""
    hashes = np.ascontiguousarray(np.asarray(hashes).view(np.uint64).astype(">u8"))
    return np.frombuffer(hashes.tobytes().hex().encode(), dtype="S16").astype("U16").astype(object)


def write_rows(session, model, rows, batch, progress=None, *, want_ids=False, extra=()):
    """Write ``rows`` (a DataFrame of ``model``'s columns) as ``batch`` says; count into ``batch``.

    ``append`` inserts every row without a key (the records are never matched later); ``upsert``
    inserts rows with new keys, rewrites rows whose values changed and leaves the rest;
    ``replace`` also retires the live records of the source that the rows do not have.
    ``want_ids`` fills ``batch.ids`` with the record id of each created or updated key; ``extra``
    columns count in the comparison but are not the model's (the writer stores them elsewhere).
    """
    rows = rows.reset_index(drop=True).copy()
    hashes = digest(rows)
    rows = rows.drop(columns=list(extra))
    if batch is None:  # a writer called on its own, outside an import: plain rows
        bulk_insert(session, model, rows, progress)
        return
    rows["row_hash"] = hashes
    rows["source"] = batch.source
    rows["batch_id"] = batch.id
    if batch.mode == "append" or batch.keys is None:
        rows["source_key"] = None
        bulk_insert(session, model, rows, progress, checked=_CHECKED)
        batch.created += len(rows)
        if want_ids:
            _created_ids(session, model, batch, rows)
        return
    rows["source_key"] = np.asarray(batch.keys, dtype=object)
    table = model.__table__
    have = session.execute(
        select(table.c.id, table.c.source_key, table.c.row_hash)
        .where(table.c.source == batch.source, table.c.retired_at.is_(None)),
        execution_options=INCLUDE_RETIRED).all()
    # nullable integers: a 64-bit hash through float64 (what a left join's gaps make) loses its low bits
    existing = pd.DataFrame(have, columns=["id", "source_key", "old_hash"]).astype({"id": "Int64", "old_hash": "Int64"})
    merged = rows[["source_key", "row_hash"]].reset_index().merge(existing, on="source_key", how="left")
    is_new = merged["id"].isna().to_numpy()
    is_same = ~is_new & (merged["row_hash"] == merged["old_hash"]).fillna(False).to_numpy(dtype=bool)
    is_changed = ~is_new & ~is_same
    new_rows = rows[is_new]
    bulk_insert(session, model, new_rows, progress, checked=_CHECKED)
    batch.created += len(new_rows)
    batch.unchanged += int(is_same.sum())
    changed = merged[is_changed]
    if len(changed):
        ids = changed["id"].astype("int64").to_numpy()
        _keep_previous(session, model, ids, batch, "updated")
        values = rows.loc[changed["index"].to_numpy()].drop(columns=["source", "source_key", "batch_id"])
        values = values.astype(object).where(values.notna(), None)
        cols = list(values.columns)
        # bind names must differ from the column names in an UPDATE's SET
        values = values.rename(columns={c: f"v_{c}" for c in cols})
        values["v__id"] = ids
        stmt = (update(table).where(table.c.id == bindparam("v__id"))
                .values({**{c: bindparam(f"v_{c}") for c in cols}, "version": table.c.version + 1}))
        records = values.to_dict("records")
        for start in range(0, len(records), 5000):
            session.connection().execute(stmt, records[start:start + 5000])
        batch.updated += len(ids)
        if model is m.Camera:  # a moved or turned camera sees something else: its view is computed anew
            session.execute(delete(m.CameraView).where(m.CameraView.camera_id.in_([int(i) for i in ids])))
    if batch.mode == "replace":
        kept = existing["source_key"].isin(rows["source_key"]) | existing["source_key"].isin(list(batch.keep))
        gone = existing.loc[~kept, "id"].astype("int64").to_numpy()
        retire(session, model, gone, batch)
    if want_ids:
        batch.ids.update(dict(zip(changed["source_key"], changed["id"].astype("int64"))))
        _created_ids(session, model, batch, new_rows)


def retire(session, model, ids, batch):
    """Retire the records ``ids`` in ``batch`` (kept, hidden, restorable)."""
    if not len(ids):
        return
    _keep_previous(session, model, ids, batch, "retired")
    table = model.__table__
    now = m.utcnow()
    for start in range(0, len(ids), _CHUNK):
        chunk = [int(i) for i in ids[start:start + _CHUNK]]
        session.execute(update(table).where(table.c.id.in_(chunk)).values(retired_at=now, version=table.c.version + 1))
    batch.retired += len(ids)


def previous_values(session, model, ids):
    """Record id → its values now (JSON-ready; geometry as WKB hex), bookkeeping columns left out."""
    table = model.__table__
    cols = [c for c in table.c if c.name not in BOOKKEEPING]
    out = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = [int(i) for i in ids[start:start + _CHUNK]]
        for row in session.execute(select(table.c.id, *cols).where(table.c.id.in_(chunk)),
                                   execution_options=INCLUDE_RETIRED):
            out[row[0]] = {c.name: _jsonable(v) for c, v in zip(cols, row[1:])}
    if model is m.GridWorker and out:
        links = session.execute(select(m.grid_worker_grid.c.worker_id, m.grid_worker_grid.c.grid_code)
                                .where(m.grid_worker_grid.c.worker_id.in_(list(out)))).all()
        for v in out.values():
            v["_grids"] = []
        for wid, code in links:
            out[wid]["_grids"].append(code)
    return out


def _keep_previous(session, model, ids, batch, action):
    before = previous_values(session, model, ids)
    session.execute(insert(m.ImportChange), [
        {"batch_id": batch.id, "record_id": rid, "action": action, "previous": json.dumps(values, ensure_ascii=False)}
        for rid, values in before.items()])


def _created_ids(session, model, batch, rows):
    if rows.empty:
        return
    table = model.__table__
    got = session.execute(select(table.c.source_key, table.c.id).where(table.c.batch_id == batch.id,
                                                                       table.c.retired_at.is_(None)),
                          execution_options=INCLUDE_RETIRED).all()
    if batch.mode == "append" or batch.keys is None:
        # no keys: ids in insertion order, which is the rows' order
        batch.ids.update({i: rid for i, (_, rid) in enumerate(sorted(got, key=lambda r: r[1]))})
    else:
        batch.ids.update({k: rid for k, rid in got})


def _jsonable(v):
    if isinstance(v, shapely.Geometry):
        return {"wkb": shapely.to_wkb(v, hex=True)}
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v
