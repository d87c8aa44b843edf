"""What a publish will do, shown to the planner before it is done.

Blocking errors, warnings to accept, the earliest effective date, and who moves to which grid worker.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from ..store import models as m
from .changes import diff
from .records import get_plan, plan_summary
from .rules import validate


def publish_preview(session, plan_id, *, limits=None, today=None):
    """The confirmation a planner reads before publishing plan ``plan_id``.

    Returns
    -------
    dict
        ``plan`` (summary); ``errors`` and ``warnings`` (findings as dicts, each with its ``key``
        to accept); ``publishable`` (no errors and a draft); ``earliest`` (the first allowed
        effective date: the current plan's ``valid_from``, or None) and ``today``; ``replaces``
        (the published plan's summary or None); ``moves``: per pair of grids, the buildings and
        households moving and the grid workers of each side; ``summary``: the diff's counts.
    """
    plan = get_plan(session, plan_id)
    findings = validate(session, plan, limits=limits)
    current = session.scalars(select(m.GridPlan).where(m.GridPlan.community_code == plan.community_code,
                                                       m.GridPlan.status == "published")).first()
    out = {"plan": plan_summary(plan),
           "errors": [f.to_dict() for f in findings if f.severity == "error"],
           "warnings": [f.to_dict() for f in findings if f.severity != "error"],
           "today": (today or dt.date.today()).isoformat(),
           "earliest": current.valid_from.isoformat() if current is not None and current.valid_from else None,
           "replaces": plan_summary(current) if current is not None else None,
           "moves": [], "summary": None}
    out["publishable"] = plan.status == "draft" and not out["errors"]
    if current is not None and current.id != plan.id:
        changes = diff(session, current.id, plan.id)  # counts and buildings only: no one's name leaves here
        out["summary"] = changes["summary"]
        out["moves"] = worker_moves(session, changes)
    return out


def worker_moves(session, changes):
    """A diff's moved buildings grouped by (from grid, to grid), with each side's grid workers by name.

    A grid worker's name is public (the resident page shows every household its worker); their
    phones and the households' people are not, and are not here.
    """
    pairs = {}
    for b in changes["buildings"]:
        key = (b["from"] or "", b["to"] or "")
        row = pairs.setdefault(key, {"from": key[0], "to": key[1], "buildings": 0, "households": 0})
        row["buildings"] += 1
        row["households"] += int(b["households"])
    codes = sorted({c for pair in pairs for c in pair if c})
    staff = {}
    if codes:
        for name, code in session.execute(
                select(m.GridWorker.name, m.grid_worker_grid.c.grid_code)
                .join(m.grid_worker_grid, m.grid_worker_grid.c.worker_id == m.GridWorker.id)
                .where(m.grid_worker_grid.c.grid_code.in_(codes)).order_by(m.GridWorker.name)):
            staff.setdefault(code, []).append(name)
    rows = []
    for (src, dst), row in sorted(pairs.items()):
        for side, code in (("from", src), ("to", dst)):
            row[f"{side}_workers"] = staff.get(code, [])
        rows.append(row)
    return sorted(rows, key=lambda r: (-r["households"], r["from"], r["to"]))
