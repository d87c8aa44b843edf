"""Imports from the browser (/admin/imports): upload, dry run, background import, batch history and undo."""
from pathlib import Path

from flask import Blueprint, Response, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from ..errors import GridmapError, InvalidInput, N_
from ..importer import uploads
from ..importer.kinds import LABELS
from ..maps import imports as import_maps
from ..pages import imports as imports_page
from . import params
from .common import current_role, localized, requires, store, wants_json
from .security import frameable, map_page

bp = Blueprint("admin", __name__, url_prefix="/admin")

#: The page's words for the refusals that carry a code (their English stays in the API's JSON).
REFUSALS = {
    "bad_extension": (_l('"%(name)s" has the extension "%(extension)s", which is not a file gridmap imports.'),
                      _l("Upload one of %(allowed)s.")),
    "shapefile_unzipped": (_l('"%(name)s" is one part of a Shapefile; its .dbf, .shx and .prj are needed too.'),
                           _l("Zip the .shp, .shx, .dbf, .prj (and .cpg) files together and upload the .zip.")),
    "wrong_type": (_l('"%(name)s" is named as a %(format)s file, but its content is %(looks)s.'),
                   _l("Upload the %(format)s file itself, or give the file the extension of what it really is.")),
    "upload_size": (_l('"%(name)s" is larger than %(limit)s bytes, the most an upload may be.'),
                    _l("Split the file, or import it on the server with `gridmap import`; or ask the operator to "
                       "raise %(setting)s.")),
    "zip_members": (_l('"%(name)s" holds %(members)s files; an uploaded zip may hold at most %(limit)s.'),
                    _l("Zip only the Shapefile's own files (.shp, .shx, .dbf, .prj, .cpg), or ask the operator to "
                       "raise %(setting)s.")),
    "zip_unzipped": (_l('"%(name)s" unpacks to more than %(limit)s bytes (at least %(bytes)s).'),
                     _l("Upload a smaller extract, or convert it to a GeoPackage; or ask the operator to raise "
                        "%(setting)s.")),
    "zip_encrypted": (_l('"%(name)s" is encrypted (%(member)s needs a password).'),
                      _l("Zip the files again without a password.")),
    "zip_damaged": (_l('"%(name)s" is a damaged or unsupported zip archive (%(reason)s).'),
                    _l("Zip the files again (plain ZIP, deflate) and upload the new archive.")),
    "empty": (_l('"%(name)s" is empty.'), _l("Choose the file again; it has no bytes.")),
    "no_file": (_l("No file was sent."), _l("Choose a file to upload.")),
    "bad_kind": (_l('Import kind "%(kind)s" is not known.'), _l("Choose a kind from the list.")),
    "job_running": (_l("This upload is already being worked on."), _l("Wait until it finishes; the page shows its progress.")),
    "bad_mode": (_l('Mode "%(mode)s" is not upsert, replace or append.'), _l("Choose a mode from the list.")),
    "imported": (_l("This upload has been imported already; its file is gone."),
                 _l("Upload the file again to import it once more.")),
}


def _settings():
    cfg = current_app.config
    return imports_page.Settings(
        root=Path(current_app.instance_path) / "uploads",
        limits=uploads.Limits(cfg["IMPORT_MAX_UPLOAD_BYTES"], cfg["IMPORT_MAX_UNZIPPED_BYTES"],
                              cfg["IMPORT_MAX_ZIP_MEMBERS"]),
        hours=cfg["IMPORT_UPLOAD_HOURS"], max_area_change=cfg["IMPORT_MAX_AREA_CHANGE"])


def _user():
    return current_user.username


@bp.get("/imports")
@requires("data.import")
def imports():
    """Show the upload form, the user's uploads and the batch history."""
    return _index()


@bp.post("/imports")
@requires("data.import")
def upload():
    """Check and keep an uploaded file and start its dry run; 400/413 naming what is wrong, nothing kept."""
    try:
        sent = request.files.get("file")
        if sent is None or not sent.filename:
            raise InvalidInput(N_("No file was sent."), fix=N_("Choose a file to upload."), details={"code": "no_file"})
        upload_id = imports_page.receive(store(), _settings(), sent.stream, sent.filename, user=_user(),
                                         kind=request.form.get("kind", ""))
    except GridmapError as err:
        if wants_json():
            raise
        return _index(error=err), err.status
    if wants_json():
        return jsonify({"id": upload_id, "url": url_for(".upload_page", upload_id=upload_id)}), 201
    return redirect(url_for(".upload_page", upload_id=upload_id), 303)


@bp.get("/imports/<upload_id>")
@requires("data.import")
def upload_page(upload_id):
    """Show an upload: options and field mapping, progress, the preview, the dry run's problems and map, the import."""
    folder = _folder(upload_id)
    page = imports_page.upload_page(_settings(), folder)
    page["problems"] = [_in_page_language(p) for p in page["problems"]]
    return render_template("admin/upload.html", **page, say=_say)


@bp.get("/imports/<upload_id>/status")
@requires("data.import")
def status(upload_id):
    """The upload's job state, polled by the page for its progress bar."""
    state = imports_page.jobs.state(_folder(upload_id))
    return jsonify({k: state.get(k) for k in ("status", "action", "stage", "done", "total")})


@bp.post("/imports/<upload_id>/check")
@requires("data.import")
def check(upload_id):
    """Start a dry run with the options of the form."""
    folder = _folder(upload_id)
    imports_page.start_check(store(), _settings(), folder, _form_options())
    return _after(upload_id)


@bp.post("/imports/<upload_id>/import")
@requires("data.import")
def run_import(upload_id):
    """Start the import with the options of the form (those of the last dry run)."""
    folder = _folder(upload_id)
    found = imports_page.jobs.state(folder).get("result") or {}
    imports_page.start_import(store(), _settings(), folder, _form_options(), user=_user(),
                              expected=found.get("importable"))
    return _after(upload_id)


@bp.post("/imports/<upload_id>/discard")
@requires("data.import")
def discard(upload_id):
    """Delete an upload and its file."""
    folder = _folder(upload_id)
    if imports_page.jobs.busy(folder):
        raise InvalidInput(N_("This upload is being worked on."), fix=N_("Wait until it finishes."),
                           details={"code": "job_running"})
    uploads.discard(folder)
    return redirect(url_for(".imports"), 303)


@bp.get("/imports/<upload_id>/problems.csv")
@requires("data.import")
def problems_csv(upload_id):
    """Every problem of the last dry run as a CSV file."""
    text = imports_page.problems_csv(_folder(upload_id), say=_in_page_language)
    return Response(text, mimetype="text/csv", headers={"Content-Disposition": 'attachment; filename="problems.csv"'})


@bp.post("/imports/batches/<batch_id>/undo")
@requires("data.import")
def undo(batch_id):
    """Undo one import batch; 404/409 naming why not (unknown, undone already, a later batch changed its records)."""
    try:
        with store().transaction() as session:
            done = imports_page.undo(session, params.record_id(batch_id, what="Import batch"), user=_user())
    except GridmapError as err:
        if wants_json():
            raise
        return _index(error=err), err.status
    if wants_json():
        return jsonify(done)
    flash(_("Batch %(id)s undone: %(retired)s records retired, %(restored)s restored, %(returned)s returned.",
            id=done["batch_id"], retired=done["retired"], restored=done["restored"], returned=done["returned"]),
          "ok")
    return redirect(url_for(".imports") + "#history", 303)


@bp.get("/imports/<upload_id>/map")
@frameable
@requires("data.import")
def upload_map(upload_id):
    """Render the last dry run's features, the rejected ones in red with their problems."""
    collection, by_row = imports_page.features(_folder(upload_id))
    by_row = {row: [_in_page_language(p) for p in ps] for row, ps in by_row.items()}
    m = import_maps.dry_run_map(collection, by_row, tiles=current_app.config["MAP_TILES"],
                                attribution=current_app.config["MAP_TILES_ATTRIBUTION"],
                                assets=url_for("static", filename="vendor/leaflet").rstrip("/"),
                                labels={"feature": _("Feature %(row)s"), "good": _("Features"),
                                        "bad": _("Rejected features")})
    return map_page(m)


#: An import's mode and its job's action and status as the page says them (the codes stay in JSON).
_MODE_LABELS = {"upsert": _l("update and add"), "replace": _l("replace"), "append": _l("append")}
_JOB_LABELS = {"check": _l("dry run"), "import": _l("import"), "idle": _l("not started"), "queued": _l("queued"),
               "running": _l("running"), "done": _l("done"), "failed": _l("failed"), "interrupted": _l("interrupted")}


def _index(error=None):
    settings = _settings()
    with store().session() as session:
        history = imports_page.history(session)
    return render_template("admin/imports.html", kinds=imports_page.kinds(), error=error, say=_say,
                           kind_labels=LABELS, mode_labels=_MODE_LABELS, job_labels=_JOB_LABELS,
                           uploads=imports_page.my_uploads(settings, user=_user(), role=current_role()),
                           max_bytes=settings.limits.upload_bytes, formats=", ".join(uploads.FORMATS),
                           history=history)


def _folder(upload_id):
    return imports_page.folder_for(_settings(), upload_id, user=_user(), role=current_role())


def _form_options():
    form = request.form
    fields = {key[len("field."):]: value for key, value in form.items() if key.startswith("field.")}
    return imports_page.options(form.get("kind", ""), layer=form.get("layer", ""), crs=form.get("crs", ""),
                                encoding=form.get("encoding", ""), department=form.get("department", ""),
                                fields=fields, skip_invalid=form.get("skip_invalid") == "1",
                                mode=form.get("mode", "upsert"), key=form.get("key", ""))


def _after(upload_id):
    if wants_json():
        return jsonify({"id": upload_id, "status": url_for(".status", upload_id=upload_id)}), 202
    return redirect(url_for(".upload_page", upload_id=upload_id), 303)


def _in_page_language(problem):
    """A dry run's problem with its message and fix in the page's language (from its template and params).

    Problems stored before they carried templates keep their English."""
    if not problem.get("template"):
        return problem
    params = problem.get("params") or {}
    return {**problem, "message": localized(problem["template"], params),
            "fix": localized(problem.get("fix_template"), params)}


def _say(err):
    """(message, fix) of an error in the page's language when its code has words here, else as the service said."""
    if err is None:
        return None
    details = err.details if isinstance(err, GridmapError) else (err.get("details") or {})
    message = err.message if isinstance(err, GridmapError) else err.get("message")
    fix = err.fix if isinstance(err, GridmapError) else err.get("fix")
    if not isinstance(err, GridmapError) and err.get("template"):  # a dry run's refusal of the whole file
        message = localized(err["template"], err.get("params")) or message
        fix = localized(err.get("fix_template"), err.get("params")) or fix
    words = REFUSALS.get(details.get("code"))
    if words:
        params = {k: (f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in details.items()}
        try:
            return words[0] % params, words[1] % params
        except (KeyError, TypeError, ValueError):
            pass
    return message, fix
