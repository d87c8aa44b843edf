"""Failed sign-ins per username: after a run of failures the name is locked for a while, twice as long each time.

The state is a row of ``login_lock`` per username, so every web process (and every host on the
database) sees the same lock. Unknown usernames get rows and locks exactly like known ones: the
answer to a sign-in never tells whether a name exists. A successful sign-in deletes the row.
Every failure, lock and refusal is written to the ``gridmap.audit`` logger.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .errors import GridmapError
from .store import models as m

audit = logging.getLogger("gridmap.audit")

#: Where "now" comes from; tests replace it to let a lock run out without waiting.
clock = m.utcnow

# Rows of names that failed and then went quiet are swept after this long (the longest lock is shorter).
_FORGET_AFTER = dt.timedelta(days=1)


class LockedOut(GridmapError):
    """Too many failed sign-ins for one username: refused, right password or not, until the lock runs out."""

    status = 429
    code = "too_many_requests"

    @property
    def retry_after(self):
        return self.details["retry_after"]


@dataclass(frozen=True)
class Policy:
    """How many consecutive failures lock a name (0: never), the first lock's seconds and the longest."""

    failures: int = 5
    seconds: float = 60.0
    max_seconds: float = 3600.0

    @classmethod
    def from_config(cls, config):
        return cls(int(config["LOGIN_LOCKOUT_FAILURES"]), float(config["LOGIN_LOCKOUT_SECONDS"]),
                   float(config["LOGIN_LOCKOUT_MAX_SECONDS"]))

    def lock_seconds(self, lockouts):
        """Seconds of the ``lockouts``-th lock (1, 2, …): the first lock's length, doubled each time, capped."""
        return min(self.max_seconds, self.seconds * 2 ** min(lockouts - 1, 60))


def check(session, username, *, client="", now=None):
    """Raise :class:`LockedOut` (with the seconds left) if ``username`` is locked now; otherwise nothing."""
    now = now or clock()
    name = _name(username)
    until = session.scalar(select(m.LoginLock.locked_until).where(m.LoginLock.username == name))
    if until is not None and until > now:
        left = max(1, math.ceil((until - now).total_seconds()))
        audit.warning("login refused: username %r is locked for %d s more (client %s)", name, left, client)
        raise LockedOut("Too many failed sign-ins for this username: it is locked for now.",
                        fix=f"Try again in {left} s. If you have forgotten the password, ask an administrator.",
                        details={"retry_after": left})


def failed(session, username, policy, *, client="", now=None):
    """Count a failed sign-in for ``username``; lock it when the run reaches ``policy.failures``.

    Returns the lock's seconds when this failure locked the name, else None."""
    now = now or clock()
    name = _name(username)
    insert = (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert
    stmt = insert(m.LoginLock).values(username=name, failures=1, lockouts=0, last_failure_at=now)
    stmt = stmt.on_conflict_do_update(index_elements=["username"],
                                      set_={"failures": m.LoginLock.failures + 1, "last_failure_at": now})
    # the upsert holds the row's lock (PostgreSQL) or the database's (SQLite) until commit: two
    # workers failing the same name at once count two failures, and only one of them locks it
    failures, lockouts = session.execute(stmt.returning(m.LoginLock.failures, m.LoginLock.lockouts)).one()
    # names that failed and went quiet: forgotten, so guessed names cannot fill the table (indexed, cheap)
    session.execute(delete(m.LoginLock).where(m.LoginLock.last_failure_at < now - _FORGET_AFTER,
                                              (m.LoginLock.locked_until.is_(None)) | (m.LoginLock.locked_until < now)))
    if policy.failures <= 0 or failures < policy.failures:
        audit.info("login failed: username %r, failure %d in a row (client %s)", name, failures, client)
        return None
    seconds = policy.lock_seconds(lockouts + 1)
    session.execute(update(m.LoginLock).where(m.LoginLock.username == name).values(
        failures=0, lockouts=lockouts + 1, locked_until=now + dt.timedelta(seconds=seconds)))
    audit.warning("login locked: username %r after %d failures in a row, lock %d for %g s (client %s)",
                  name, failures, lockouts + 1, seconds, client)
    return seconds


def succeeded(session, username, *, client=""):
    """A successful sign-in: forget the name's failures and locks."""
    name = _name(username)
    if session.execute(delete(m.LoginLock).where(m.LoginLock.username == name)).rowcount:
        audit.info("login succeeded after failures: username %r, its count reset (client %s)", name, client)


def _name(username):
    return (username or "").strip()[:64]
