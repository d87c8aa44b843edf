"""The grid worker's workbench: my grids, inbox, people and patrol; check-ins and reports the phone may send late."""
import hashlib
import hmac
import os

from flask import Blueprint, current_app, jsonify, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from .. import catalog, dispatch, photos
from ..dispatch import patrol
from ..errors import Forbidden, InvalidInput, N_
from ..maps import worker as worker_maps
from ..pages import worker as worker_page
from . import border, params
from .common import current_actor, current_area, current_role, requires, snapshot, store
from .places import named
from .security import frameable, map_page
from .worker_bodies import parse_checkin, parse_points, parse_worker_report

bp = Blueprint("worker", __name__, url_prefix="/worker")


def _worker_id():
    return getattr(current_user, "worker_id", None)


def account_tag():
    """An opaque name of the signed-in account for the phone: the outbox files entries under it and the
    service worker keeps pages under it, so a second worker signing in on the same phone neither sends
    the first one's queued entries nor opens their cached pages. Keyed with SECRET_KEY: it names the
    account to this server only."""
    if not current_user.is_authenticated:
        return ""
    key = current_app.config["SECRET_KEY"]
    key = key.encode() if isinstance(key, str) else key
    return hmac.new(key, f"worker-account:{current_user.id}".encode(), hashlib.sha256).hexdigest()[:24]


@bp.after_request
def _name_the_account(response):
    # read by sw.js: a page is cached under the account it was drawn for, and a page answered for
    # another account (or none) drops what the phone had cached for the last one
    tag = account_tag()
    if tag:
        response.headers["X-Gridmap-Account"] = tag
    return response


def _same_owner(body):
    """Refuse an outbox entry typed under another account (a shared phone), before anything is stored."""
    owner = body.get("owner") if isinstance(body, dict) else None
    if owner is not None and owner != account_tag():
        raise Forbidden(N_("This entry was typed on this phone by another account; it is not sent under yours."),
                        fix=N_("Let the worker who typed it sign in on this phone to send it."),
                        code="other_account")
    return body


def status_labels():
    """Status names in the page's language (the same words as the dispatcher's page)."""
    return {"reported": _("reported"), "accepted": _("accepted"), "dispatched": _("dispatched"),
            "in_progress": _("in progress"), "resolved": _("resolved"), "merged": _("merged as duplicate")}


def _level_names():
    en = (get_locale().language if get_locale() else "zh") == "en"
    return {code: names[1] if en else names[0] for code, names in catalog.LEVEL_NAMES.items()}


@bp.get("/")
@requires("worker.use")
def index():
    """Show the grid worker's workbench."""
    with store().session() as session:
        view = worker_page.workbench(session, snapshot(), role=current_role(), area=current_area(),
                                     worker_id=_worker_id())
    return render_template("worker/index.html", view=view, status_labels=status_labels(), levels=catalog.LEVELS,
                           level_names=_level_names(), categories=catalog.INCIDENT_CATEGORIES,
                           legend=worker_maps.LEGEND, account=account_tag(),
                           limits={"batch": 50, "accuracy": patrol.MAX_ACCURACY_M, "photos": patrol.MAX_RESOLVE_PHOTOS})


@bp.get("/map")
@frameable
@requires("worker.use")
def worker_map():
    """Render my grids, today's track and check-ins, buildings unvisited this month and my open incidents."""
    with store().session() as session:
        layers = worker_page.map_layers(session, snapshot(), role=current_role(), area=current_area(),
                                        worker_id=_worker_id())
    layers = {k: named(v) for k, v in layers.items()}
    m = worker_maps.worker_map(**layers, tiles=current_app.config["MAP_TILES"],
                               attribution=current_app.config["MAP_TILES_ATTRIBUTION"],
                               assets=url_for("static", filename="vendor/leaflet").rstrip("/"),
                               status_labels=status_labels(),
                               labels={"grid": _("Grid"), "track": _("Today's patrol"), "checkin": _("Check-in"),
                                       "unvisited": _("Not visited this month"), "incident": _("Incident"),
                                       "status": _("Status"), "overdue": _("Overdue")})
    return map_page(m)


@bp.get("/sw.js")
def service_worker():
    """The workbench's service worker, served from /worker/ so that its scope is the workbench."""
    # read whole, not streamed: a client that never reads the body leaves no open file behind
    with open(os.path.join(current_app.static_folder, "sw.js"), "rb") as f:
        body = f.read()
    # no-cache: a new version reaches phones at their next visit
    return body, 200, {"Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "no-cache"}


@bp.post("/api/patrols")
@requires("patrol.use")
def patrol_start():
    """Start a patrol (or answer the one already open)."""
    with store().transaction() as session:
        p, created = patrol.start_patrol(session, actor=current_actor(), worker_id=_worker_id())
        out = patrol.patrol_dict(p)
    return jsonify(out), 201 if created else 200


@bp.post(f"/api/patrols/<int(max={params.MAX_ID}):patrol_id>/stop")
@requires("patrol.use")
def patrol_stop(patrol_id):
    """Stop my patrol; 409 when it is stopped already."""
    with store().transaction() as session:
        out = patrol.patrol_dict(patrol.stop_patrol(session, patrol_id, actor=current_actor(), worker_id=_worker_id()))
    return jsonify(out)


@bp.post(f"/api/patrols/<int(max={params.MAX_ID}):patrol_id>/points")
@requires("patrol.use")
def patrol_points(patrol_id):
    """Add a batch of positions {points: [{lon, lat, accuracy, time}]}; the implausible ones come back with a reason."""
    points = parse_points(border.json_body())
    with store().transaction() as session:
        out = patrol.add_points(session, snapshot(), patrol_id, points, actor=current_actor(), worker_id=_worker_id())
    return jsonify(out)


@bp.post("/api/checkins")
@requires("patrol.use")
def checkin():
    """Check in at a building of my grids {key, building_id, note?, time?, lon?, lat?}; a replayed key answers the first."""
    args = parse_checkin(_same_owner(border.json_body()))
    with store().transaction() as session:
        out, created = patrol.check_in(session, snapshot(), actor=current_actor(), worker_id=_worker_id(), **args)
    return jsonify({**out, "replayed": not created}), 201 if created else 200


@bp.post("/api/reports")
@requires("patrol.use")
def report():
    """Report an incident from my grids {key, category, lon, lat, description?}; a replayed key answers the first."""
    args = parse_worker_report(_same_owner(border.json_body()))
    with store().transaction() as session:
        out, created = patrol.report_once(session, snapshot(), actor=current_actor(), **args)
    return jsonify({"incident": out, "replayed": not created}), 201 if created else 200


@bp.post(f"/api/incidents/<int(max={params.MAX_ID}):incident_id>/resolve")
@requires("incident.resolve")
def resolve(incident_id):
    """Resolve an incident of my grids with a note and photos (multipart: version, note, photos, show_photos).

    ``show_photos`` ("1") lets the resident who reported the incident see the photos on its status page."""
    version, note = _form_version(request.form.get("version")), (request.form.get("note") or "").strip()
    if len(note) > 2000:
        raise InvalidInput("note is longer than 2000 characters.", fix="Shorten note.", details={"field": "note"})
    limits = photos.PhotoLimits.from_config(current_app.config, max_count=patrol.MAX_RESOLVE_PHOTOS)
    actor = current_actor()
    try:
        with store().transaction() as session:
            inc, ids = patrol.resolve(session, incident_id, actor=actor, version=version, note=note,
                                      files=request.files.getlist("photos"), photo_limits=limits,
                                      show_photos=_form_flag(request.form.get("show_photos")))
            out = {**dispatch.incident_dict(inc, role=actor.role, area=actor.area), "photos": ids}
    except InvalidInput as err:
        raise _in_page_language(err) from None
    return jsonify(out)


def _form_flag(raw):
    if raw in (None, "", "0"):
        return False
    if raw == "1":
        return True
    raise InvalidInput(N_("show_photos=%(raw)s is neither 1 nor 0."), fix=N_("Send 1 to show the photos to the "
                       "resident who reported the incident, 0 (or nothing) to keep them for staff."),
                       details={"field": "show_photos"}, params={"raw": repr(raw[:20])})


def _form_version(raw):
    if not (raw or "").isdigit() or not 1 <= int(raw) <= params.MAX_ID:
        raise InvalidInput(f"version={(raw or '')[:20]!r} is not a positive whole number.",
                           fix="Send the version of the incident as the page loaded it.", details={"field": "version"})
    return int(raw)


def _in_page_language(err):
    """A photo refusal worded in the page's language (the page shows ``message``); others as they are."""
    d = err.details or {}
    words = {"too_many_photos": lambda: _("You chose %(count)s photos; at most %(most)s can be sent.",
                                          count=d.get("count"), most=d.get("most")),
             "photo_too_large": lambda: _("The photo “%(name)s” is larger than %(most)s.", name=d.get("name", ""),
                                          most=f"{(d.get('most') or 0) / 1048576:.0f} MB"),
             "photo_not_image": lambda: _("“%(name)s” is not a JPEG, PNG or WebP photo.", name=d.get("name", "")),
             "photo_unreadable": lambda: _("The photo “%(name)s” cannot be read: it is damaged or incomplete.",
                                           name=d.get("name", "")),
             "photo_too_many_pixels": lambda: _("The photo “%(name)s” has too many pixels; at most %(most)s million fit.",
                                                name=d.get("name", ""), most=(d.get("most") or 0) // 1_000_000)}
    word = words.get(d.get("reason"))
    return err if word is None else InvalidInput(word(), fix=err.fix, details=d)
