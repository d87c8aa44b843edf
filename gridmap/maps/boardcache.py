"""Notice boards rendered once per content: files under a folder, named by a digest of all a board shows.

A board takes 2–4 s to draw (Matplotlib, embedded CJK fonts) and its data ~10 ms to load, so the
data is loaded on every request and the drawing only when the digest of that data is new. The
digest covers everything the board prints — the plan and grid, its outline and neighbours, the
workers and their phones, the branch, the buildings and roads, the labels' language and the
printed date — so publishing, editing a draft, importing workers or a new day all give a new
name, and a stale board is never served. One file is kept per grid, plan, language and format: a
new one replaces the older ones.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
from pathlib import Path

import shapely

from . import board as board_maps

FORMATS = {"png": board_maps.board_png, "pdf": board_maps.board_pdf}


def cached_board(data, fmt, folder, *, language="zh", labels=None):
    """The board of ``data`` (:func:`gridmap.pages.board.board_data`) as ``fmt`` bytes, drawn only if
    ``folder`` holds none for this exact content."""
    folder = Path(folder)
    stem = f"{data['code']}-p{data['plan']}-{language}"
    path = folder / f"{stem}.{digest(data, fmt, language, labels)}.{fmt}"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    out = FORMATS[fmt](data, labels)
    folder.mkdir(parents=True, exist_ok=True)
    # written aside then renamed: another worker reading at the same moment sees all or nothing
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".board-")
    with os.fdopen(fd, "wb") as f:
        f.write(out)
    os.replace(tmp, path)
    for old in folder.glob(f"{stem}.*.{fmt}"):
        if old != path:
            old.unlink(missing_ok=True)
    return out


def digest(data, fmt, language, labels=None, *, day=None):
    """A hex digest of everything the board of ``data`` prints in ``fmt`` and ``language`` on ``day``."""
    h = hashlib.sha256()
    _feed(h, [fmt, language, sorted((labels or {}).items()), (day or dt.date.today()).isoformat(), data])
    return h.hexdigest()[:32]


def _feed(h, value):
    if isinstance(value, shapely.Geometry):
        h.update(b"G")
        h.update(shapely.to_wkb(value))
    elif isinstance(value, dict):
        h.update(b"{")
        for key in sorted(value, key=str):
            _feed(h, key)
            _feed(h, value[key])
        h.update(b"}")
    elif isinstance(value, (list, tuple)):
        h.update(b"[")
        for item in value:
            _feed(h, item)
        h.update(b"]")
    else:  # str, numbers, None: their repr tells them apart ("1" from 1)
        h.update(repr(value).encode())
        h.update(b"\0")
