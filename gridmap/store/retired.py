"""Retired records vanish from every read: one rule on every ORM select, not a filter per query.

A record retired by an import (``--mode replace``, an undo, ``gridmap record retire``) keeps its
row, so what refers to it (households, a volunteer's ledger, assignments) survives and an undo can
bring it back. Every loader, export, lookup and assignment reads through the ORM, so one
``do_orm_execute`` hook adding ``retired_at IS NULL`` for each record table (joins included)
reaches all of them, today's and tomorrow's. The importer's own bookkeeping, which must see
retired rows to restore them, asks with ``execution_options(include_retired=True)``.
"""
from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import with_loader_criteria

from .models import RECORD_MODELS

INCLUDE_RETIRED = {"include_retired": True}


def hide_retired(sessions):
    """Install the rule on a sessionmaker (every Store does)."""
    event.listen(sessions, "do_orm_execute", _live_only)


def _live_only(state):
    if not state.is_select or state.is_column_load or state.is_relationship_load:
        return
    if state.execution_options.get("include_retired", False):
        return
    state.statement = state.statement.options(*_CRITERIA)


_CRITERIA = tuple(with_loader_criteria(model, model.retired_at.is_(None), include_aliases=True)
                  for model in RECORD_MODELS.values())
