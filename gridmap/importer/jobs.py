"""Import work outside the request: one background thread per process runs dry runs and imports, their state on disk.

Why a thread and a file, not a process pool or a job table: the work is the importer itself
(GDAL, GEOS and the database driver release the GIL for most of it), it needs the process's
store and nothing else, and one worker thread keeps a long import from taking both cores from
the pages. Its state is ``state.json`` in the upload's own private folder, written whole with
each step, so any web process on the host answers the page's progress poll, whichever one runs
the work; no migration is needed for something that lives a few minutes. A state whose
heartbeat stops (the process died or was restarted) is reported as interrupted; nothing was
written then, since an import commits in one transaction at its end.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import Conflict, GridmapError, N_
from .uploads import write_json

log = logging.getLogger("gridmap.importer.jobs")

#: Seconds without a heartbeat after which a queued or running job counts as interrupted.
STALE_SECONDS = 120.0
_BEAT_SECONDS = 0.5  # progress is written at most this often

_EXECUTOR = None
_LOCK = threading.Lock()


def _executor():
    global _EXECUTOR
    with _LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gridmap-import")
        return _EXECUTOR


def state(folder):
    """The job state of the upload in ``folder``: ``{"status": "idle"}`` when none has run.

    ``status`` is queued, running, done, failed or interrupted; ``action`` check or import;
    ``stage``, ``done`` and ``total`` the progress; ``result`` or ``error`` when finished."""
    path = Path(folder) / "state.json"
    try:
        s = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"status": "idle"}
    if s.get("status") in ("queued", "running") and time.time() - s.get("heartbeat", 0) > STALE_SECONDS:
        s = {**s, "status": "interrupted"}
    return s


def busy(folder):
    return state(folder).get("status") in ("queued", "running")


def start(folder, action, work, *, options):
    """Queue ``work(report)`` for the upload in ``folder``; Conflict when a job of it is still queued or running.

    ``work`` receives ``report(stage, done=None, total=None)`` to say how far it is and returns
    a JSON-ready result; a GridmapError it raises becomes the job's ``error`` (message, fix,
    details), anything else a logged failure without a traceback on the page."""
    folder = Path(folder)
    with _LOCK:
        now = state(folder)
        if now.get("status") in ("queued", "running"):
            raise Conflict(N_("This upload is already being worked on (%(value)s)."),
                           fix=N_("Wait until it finishes; the page shows its progress."),
                           details={"code": "job_running", "action": now.get("action")},
                           params={"value": now.get('action')})
        base = {"action": action, "options": options, "started": time.time()}
        write_json(folder / "state.json", {**base, "status": "queued", "stage": "queued", "heartbeat": time.time()})
    _executor().submit(_run, folder, base, work)


def _run(folder, base, work):
    last = [0.0]

    def report(stage, done=None, total=None, *, force=False):
        t = time.time()
        if force or t - last[0] >= _BEAT_SECONDS:
            last[0] = t
            write_json(folder / "state.json", {**base, "status": "running", "stage": stage, "done": done,
                                               "total": total, "heartbeat": t})

    report("started", force=True)
    try:
        result = work(report)
        final = {"status": "done", "result": result}
    except GridmapError as err:
        final = {"status": "failed", "error": {"message": err.message, "fix": err.fix, "status": err.status,
                                               "details": json.loads(json.dumps(err.details, default=str))}}
    except Exception:  # noqa: BLE001 - a bug in the work: logged, and the page says so
        log.error("import job failed:\n%s", traceback.format_exc())
        final = {"status": "failed", "error": None}
    if not folder.exists():  # discarded while it ran
        return
    write_json(folder / "state.json", {**base, **final, "finished": time.time(), "heartbeat": time.time()})


def wait(folder, timeout=30.0):
    """Block until the job of ``folder`` is no longer queued or running (for tests and the command line)."""
    end = time.time() + timeout
    while busy(folder) and time.time() < end:
        time.sleep(0.05)
    return state(folder)
