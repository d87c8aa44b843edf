"""Request-limit counters in the store: one atomic upsert a hit, shared by every process on the database.

A counter counts hits in a fixed window: the first hit after the window ended starts a new one
(``expires_at = now + expiry``) at the amount hit. One ``INSERT … ON CONFLICT DO UPDATE …
RETURNING`` does the read and the write, so two workers hitting the same key at once both count
(PostgreSQL locks the row for the statement; SQLite has one writer at a time). Both backends
speak this statement (SQLite since 3.35).
"""
from __future__ import annotations

import random

from sqlalchemy import delete, select, text

from . import models as m

_HIT = text(
    "INSERT INTO rate_counter (key, hits, expires_at) VALUES (:key, :amount, :expires) "
    "ON CONFLICT (key) DO UPDATE SET "
    "hits = CASE WHEN rate_counter.expires_at <= :now THEN :amount ELSE rate_counter.hits + :amount END, "
    "expires_at = CASE WHEN rate_counter.expires_at <= :now THEN :expires ELSE rate_counter.expires_at END "
    "RETURNING hits")

# Counters past their window are swept now and then by a hit, not by a timer: about one hit in this many.
_SWEEP_ONE_IN = 500


def hit(session, key, expiry, amount, now):
    """Add ``amount`` to ``key``'s counter (a new window of ``expiry`` seconds if the last one ended); the new count."""
    count = session.execute(_HIT, {"key": key, "amount": amount, "expires": now + expiry, "now": now}).scalar_one()
    if random.randrange(_SWEEP_ONE_IN) == 0:
        session.execute(delete(m.RateCounter).where(m.RateCounter.expires_at <= now))
    return count


def count(session, key, now):
    """Hits in ``key``'s current window (0 when its window has ended or it never was hit)."""
    row = session.execute(select(m.RateCounter.hits, m.RateCounter.expires_at).where(m.RateCounter.key == key)).first()
    return row.hits if row is not None and row.expires_at > now else 0


def expires_at(session, key, now):
    """Unix seconds at which ``key``'s window ends (``now`` when it has none)."""
    row = session.scalar(select(m.RateCounter.expires_at).where(m.RateCounter.key == key))
    return row if row is not None and row > now else now


def clear(session, key=None):
    """Forget one counter, or every counter; returns how many were removed."""
    stmt = delete(m.RateCounter)
    if key is not None:
        stmt = stmt.where(m.RateCounter.key == key)
    return session.execute(stmt).rowcount
