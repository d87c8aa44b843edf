"""The import page (/admin/imports): uploads kept privately, dry runs and imports run in the background, as plain data.

An upload is its uploader's: to another planner it does not exist (an admin sees every one, to
clear up). The batches they import are the office's: whoever may import may undo any of them.
Uploads older than the IMPORT_UPLOAD_HOURS setting are deleted whenever the page is used, and an
upload's file (and the features drawn from it) as soon as it is imported.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from .. import importer
from ..errors import InvalidInput, NotFound, Said
from ..importer import jobs, preview, uploads
from ..importer.kinds import LABELS
from ..importer.upsert import MODES
from ..store import models as m

#: The kinds whose imports are batches of records that can be undone (the others are replaced by a new file).
RECORD_KINDS = tuple(m.RECORD_MODELS)

#: Text options longer than this are refused: no layer, CRS, encoding or column name is that long.
MAX_OPTION_CHARS = 100
#: Problems listed on the page; the rest are counted.
LISTED_PROBLEMS = 1000


@dataclass(frozen=True)
class Settings:
    """What the page needs from the app's settings."""

    root: Path  # the private folder of uploads
    limits: uploads.Limits = uploads.Limits()
    hours: float = 24.0
    max_area_change: float = 0.01


def kinds():
    """Each kind with its fields, for the form: ``[{name, help, fields: [{name, required, help}]}]``."""
    return [{"name": k.name, "label": LABELS.get(k.name, k.name), "help": k.help,
             "fields": [{"name": f.name, "required": f.required, "help": f.help} for f in k.fields]}
            for k in importer.KINDS.values()]


def receive(store, settings, stream, name, *, user, kind):
    """Check and keep an uploaded file, then start its first dry run with the options its type suggests; returns its id."""
    uploads.expire(settings.root, hours=settings.hours, busy=jobs.busy)
    kind = check_kind(kind)
    upload_id = uploads.save(settings.root, stream, name, user=user, kind=kind, limits=settings.limits)
    folder = uploads.folder_of(settings.root, upload_id)
    start_check(store, settings, folder, default_options(kind, uploads.meta(folder)["name"]))
    return upload_id


def default_options(kind, name):
    """The options of a first dry run: OpenStreetMap files read the layer named like the kind."""
    osm = name.lower().endswith((".osm", ".pbf"))
    return {"kind": kind, "layer": ("roads" if kind == "roads" else "buildings") if osm else "",
            "crs": "", "encoding": "", "department": "", "fields": {}, "skip_invalid": False, "mode": "upsert",
            "key": ""}


def options(kind, *, layer="", crs="", encoding="", department="", fields=None, skip_invalid=False, mode="upsert",
            key=""):
    """The options of a dry run or import, checked: a known kind and mode, short texts, field names of that kind."""
    kind = check_kind(kind)
    if mode not in MODES:
        raise InvalidInput(f"Mode {str(mode)[:40]!r} is not one of {', '.join(MODES)}.",
                           fix="Choose upsert (update and add), replace (also retire what the file no longer has) "
                               "or append (add all as new).", details={"code": "bad_mode", "mode": str(mode)[:40]})
    out = {"kind": kind, "skip_invalid": bool(skip_invalid), "mode": mode}
    for key_, value in (("layer", layer), ("crs", crs), ("encoding", encoding), ("department", department),
                        ("key", key)):
        value = (value or "").strip()
        if len(value) > MAX_OPTION_CHARS:
            raise InvalidInput(f"{key_} {value[:40]!r}… is longer than {MAX_OPTION_CHARS} characters.",
                               fix=f"Give a shorter {key_}.", details={"code": "option_long", "option": key_})
        out[key_] = value
    if out["key"] and kind not in RECORD_KINDS:
        raise InvalidInput(f"A key column applies to {', '.join(RECORD_KINDS)}, not {kind}.",
                           fix="Leave the key empty.", details={"code": "key_kind", "kind": kind})
    known = {f.name for f in importer.KINDS[kind].fields} | {"lon", "lat"}
    mapping = {}
    for ours, theirs in (fields or {}).items():
        theirs = (theirs or "").strip()
        if not theirs:
            continue  # automatic
        if ours not in known:
            raise InvalidInput(f"{ours!r} is not a field of {kind}.", fix=f"{kind} has the fields {sorted(known)}.",
                               details={"code": "unknown_field", "field": ours, "kind": kind})
        if len(theirs) > MAX_OPTION_CHARS:
            raise InvalidInput(f"The column name for {ours} is longer than {MAX_OPTION_CHARS} characters.",
                               fix="Choose one of the file's columns.", details={"code": "option_long", "option": ours})
        mapping[ours] = theirs
    out["fields"] = mapping
    return out


def check_kind(kind):
    if kind not in importer.KINDS:
        raise InvalidInput(f"Import kind {str(kind)[:40]!r} is not known.", fix=f"Choose one of {sorted(importer.KINDS)}.",
                           details={"code": "bad_kind", "kind": str(kind)[:40]})
    return kind


def folder_for(settings, upload_id, *, user, role):
    """The folder of an upload the user may work on: their own, or any for an admin (uploads are private files)."""
    folder = uploads.folder_of(settings.root, upload_id)
    if role != "admin" and uploads.meta(folder).get("user") != user:
        # the same answer as for no upload at all: another's file, its name included, is not for them to know of
        raise NotFound(f"Upload {upload_id} does not exist (it was imported or discarded, or it expired).",
                       fix="Upload the file again.", details={"code": "no_upload"})
    return folder


def start_check(store, settings, folder, opts):
    """Start a dry run of the upload in ``folder`` with ``opts`` in the background."""
    path = _data(folder)

    def work(report):
        report("checking", force=True)
        with store.session() as session:
            found = preview.inspect(session, opts["kind"], path, layer=opts["layer"] or None, crs=opts["crs"] or None,
                                    encoding=opts["encoding"] or None, fields=opts["fields"],
                                    department=opts["department"] or None if opts["kind"] == "department-grids" else None,
                                    max_area_change=settings.max_area_change, mode=opts["mode"],
                                    key=opts["key"] or None)
        uploads.write_json(Path(folder) / "features.json", found.features)
        return found.to_dict()

    jobs.start(folder, "check", work, options=opts)


def start_import(store, settings, folder, opts, *, user, expected=None):
    """Import the upload in ``folder`` with ``opts`` in the background; its file is deleted once imported."""
    path = _data(folder)
    source = uploads.meta(folder)["name"]

    def work(report):
        report("reading", force=True)
        written = [0]

        def progress(n):
            written[0] += n
            report("writing", written[0], expected)

        summary = importer.import_file(
            store, opts["kind"], path, layer=opts["layer"] or None, crs=opts["crs"] or None,
            encoding=opts["encoding"] or None, fields=opts["fields"], skip_invalid=opts["skip_invalid"],
            max_area_change=settings.max_area_change, progress=progress,
            department=opts["department"] or None if opts["kind"] == "department-grids" else None,
            mode=opts["mode"], key=opts["key"] or None, user=user)
        path.unlink(missing_ok=True)
        (Path(folder) / "features.json").unlink(missing_ok=True)  # the file's geometry, kept for the map only
        out = summary.to_dict()
        out["source"] = source  # not the private folder's path
        # the page says each note in its reader's language: keep what it was made of, not only its English
        out["notes"] = [n.to_dict() if isinstance(n, Said) else n for n in summary.notes]
        return out

    jobs.start(folder, "import", work, options=opts)


def upload_page(settings, folder):
    """What the page of one upload shows: the upload, its job's state and, after a dry run, what it found."""
    meta = uploads.meta(folder)
    state = jobs.state(folder)
    opts = {**default_options(meta["kind"], meta["name"]), **(state.get("options") or {})}
    found = state.get("result") if state.get("action") == "check" and state.get("status") == "done" else None
    imported = state.get("result") if state.get("action") == "import" and state.get("status") == "done" else None
    problems = (found or {}).get("problems") or []
    return {"upload": meta, "state": state, "options": opts, "found": found, "imported": imported,
            "problems": problems[:LISTED_PROBLEMS], "more_problems": max(0, len(problems) - LISTED_PROBLEMS),
            "has_file": uploads.data_path(folder) is not None, "kinds": kinds(),
            "error": _scrub_error(folder, state)}


def features(folder):
    """The last dry run's features (GeoJSON, ``row`` and ``bad`` per feature) and problems by row, for the map."""
    path = Path(folder) / "features.json"
    collection = json.loads(path.read_text()) if path.exists() else {"type": "FeatureCollection", "features": []}
    state = jobs.state(folder)
    problems = (state.get("result") or {}).get("problems") or [] if state.get("action") == "check" else []
    by_row = {}
    for p in problems:
        by_row.setdefault(p["row"], []).append(p)
    return collection, by_row


def problems_csv(folder, say=None):
    """Every problem of the last dry run as CSV text (row, feature, field, value, code, problem, fix), for a spreadsheet.

    ``say`` turns a problem into one with its message and fix in the reader's language (the web's
    page language); ``code`` stays the same in every language, for filters and scripts."""
    state = jobs.state(folder)
    problems = (state.get("result") or {}).get("problems") or [] if state.get("action") == "check" else []
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "feature", "field", "value", "code", "problem", "fix"])
    for p in problems:
        p = say(p) if say else p
        writer.writerow([p["row"], *(_cell(p.get(k)) for k in ("feature", "field", "value", "code", "message", "fix"))])
    return "\ufeff" + out.getvalue()  # Excel reads UTF-8 only behind a byte-order mark


def _cell(value):
    # a file's own text must not become a spreadsheet formula (=HYPERLINK(…) in an address)
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "@", "\t", "\r") or (text[:1] == "-" and not text[1:2].isdigit()) \
        else text


def my_uploads(settings, *, user, role):
    """The uploads the user may open, newest first, with their job's status (expired ones deleted first)."""
    uploads.expire(settings.root, hours=settings.hours, busy=jobs.busy)
    out = []
    for meta in uploads.listing(settings.root, user=None if role == "admin" else user):
        state = jobs.state(settings.root / meta["id"])
        out.append({**meta, "status": state.get("status"), "action": state.get("action")})
    return out


def history(session, *, limit=50):
    """The newest import batches, newest first (:func:`gridmap.importer.list_batches`), each with whether it can be undone."""
    return [{**b, "undoable": b["undone_at"] is None and b["kind"] in RECORD_KINDS}
            for b in importer.list_batches(session, limit=limit)]


def undo(session, batch_id, *, user):
    """Undo batch ``batch_id`` (:func:`gridmap.importer.undo_batch`), recorded as ``user``'s.

    Whoever may import may undo any batch, as the permission table says (``data.import``): an
    office corrects its register together, and the history names who imported and who undid."""
    return importer.undo_batch(session, batch_id, user=user)


def _data(folder):
    path = uploads.data_path(folder)
    if path is None:
        raise InvalidInput("This upload has been imported already; its file is gone.",
                           fix="Upload the file again to import it once more.", details={"code": "imported"})
    return path


def _scrub_error(folder, state):
    """The job's error or the dry run's refusal, with the private folder's path taken out of the text."""
    err = state.get("error") if state.get("status") == "failed" else ((state.get("result") or {}).get("error")
                                                                        if state.get("action") == "check" else None)
    if not err:
        return err
    prefix = str(Path(folder)) + "/"
    return {**err, "message": (err.get("message") or "").replace(prefix, ""),
            "fix": (err.get("fix") or "").replace(prefix, ""),
            "params": {k: v.replace(prefix, "") if isinstance(v, str) else v
                       for k, v in (err.get("params") or {}).items()}}
