"""Writers that meet: a row held for one transaction on both backends, and a lost race turned into a Conflict.

Two services changing the same record at once take :func:`lock` first, so the loser waits, then
reads what the winner committed and refuses with a precise :class:`~gridmap.errors.Conflict`
(the version it found). What locks cannot rule out — a version that no longer matches at a flush
nobody locked for, a unique key another writer took first, a deadlock or serialization failure
(PostgreSQL), a database busy for longer than a writer waits (SQLite) — is a lost race too, not
a bug: :func:`conflict_for` says which Conflict it means, and ``Store.transaction()`` raises that
instead, wherever the error surfaced (a flush inside a service or the commit at the end). Every
other database error is a bug and stays what it is.
"""
from __future__ import annotations

import re

from sqlalchemy import false, inspect, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from ..errors import Conflict

#: The exception classes a lost race arrives as; :func:`conflict_for` sorts races from bugs within them.
RACE_ERRORS = (StaleDataError, IntegrityError, OperationalError)

# PostgreSQL SQLSTATEs that mean "someone else at the same moment": class 40 is a transaction
# rolled back to break a cycle, 23505 a unique key taken. (Other 23xxx — NOT NULL, foreign key,
# check — are bugs in the caller.)
_PG_RACES = {"40001": "serialization", "40P01": "deadlock", "23505": "duplicate"}
# SQLite's result codes (Python ≥ 3.11 names them) for a key taken and for the one write lock held
# by another connection for longer than busy_timeout.
_SQLITE_DUPLICATE = ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")
_SQLITE_BUSY = ("SQLITE_BUSY", "SQLITE_LOCKED")
_STALE_TABLE = re.compile(r"on table '([^']+)'")

_FIX = "Reload and try again."


def lock(session, model, key):
    """Row ``key`` of ``model`` re-read and held until the transaction ends (None when there is none).

    PostgreSQL locks the row (SELECT … FOR UPDATE): a second writer of the row waits here, then
    reads what the first committed. SQLite has no row locks and one writer at a time: its write
    lock is taken here, by an UPDATE that matches nothing, instead of at the transaction's first
    real write — otherwise two writers would both read the old row, and the loser would learn
    only at its flush, after doing all its work. Either way what is read from here on is the
    newest, and stays so until the commit.
    """
    pk = inspect(model).primary_key[0]
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(model.__table__).where(false()).values({pk.name: pk}))
    return session.scalars(select(model).where(pk == key).with_for_update()
                           .execution_options(populate_existing=True)).one_or_none()


def race_kind(err):
    """What kind of lost race ``err`` is — "stale", "duplicate", "busy", "deadlock", "serialization" — or None for a bug."""
    if isinstance(err, StaleDataError):
        return "stale"
    if not isinstance(err, (IntegrityError, OperationalError)):
        return None
    orig = err.orig
    state = getattr(orig, "sqlstate", None)  # psycopg
    if state is not None:
        kind = _PG_RACES.get(state)
        return kind if (kind == "duplicate") == isinstance(err, IntegrityError) else None
    name = getattr(orig, "sqlite_errorname", "")
    if isinstance(err, IntegrityError):
        return "duplicate" if name in _SQLITE_DUPLICATE else None
    return "busy" if name in _SQLITE_BUSY else None


def conflict_for(err):
    """The :class:`Conflict` a lost race ``err`` means (nothing of the transaction was written), or None for a bug."""
    kind = race_kind(err)
    if kind is None:
        return None
    if kind == "stale":
        table = _STALE_TABLE.search(str(err))
        what = f"the same {table.group(1).replace('_', ' ')} record" if table else "the same record"
        message = f"Someone else saved a change to {what} first; nothing of this change was written."
    elif kind == "duplicate":
        message = f"Someone else wrote the same {_key(err)} at the same moment; nothing of this change was written."
    elif kind == "busy":
        message = "The database was busy with another change for longer than this one could wait; nothing was written."
    else:
        cause = "a deadlock" if kind == "deadlock" else "a serialization failure"
        message = (f"This change and another one made at the same moment got in each other's way ({cause} in "
                   "PostgreSQL); this one was undone, nothing of it was written.")
    return Conflict(message, fix=_FIX, details={"reason": kind})


def _key(err):
    """The unique key a duplicate broke, as the database names it."""
    diag = getattr(err.orig, "diag", None)  # psycopg
    if diag is not None and diag.constraint_name:
        return f"key ({diag.constraint_name})"
    found = re.search(r"UNIQUE constraint failed: (.+)$", str(err.orig))
    return f"key ({found.group(1)})" if found else "key"
