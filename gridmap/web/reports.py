"""Residents' reports: the resident page's form (with photos), a report's public status page, and its photos.

The form posts here (multipart: the photos are files), the report becomes an incident routed like
any other (:func:`gridmap.dispatch.resident_report`), and the resident is sent to
``/reports/<token>``. Refusals are said in the page's language: every service error of this path
carries ``details["reason"]`` and its values, and :data:`_MESSAGES` words each reason.
"""
from flask import Blueprint, current_app, jsonify, make_response, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError

from .. import catalog, dispatch, photos
from ..dispatch.residents import MAX_PHOTOS
from ..errors import GridmapError, InvalidInput, NotFound
from ..pages import dispatcher as dispatcher_page
from ..pages import resident as resident_page
from . import border, params
from .common import current_actor, current_area, current_role, requires, snapshot, store, wants_json
from .dispatch import _status_labels

bp = Blueprint("reports", __name__)

_TEXT_FIELDS = ("description", "contact_name", "contact_phone")


@bp.post("/reports")
def create():
    """Take a resident's report from the resident page's form: the spot, category, description, photos, contact."""
    args = _parse(request.form)
    limits = photos.PhotoLimits.from_config(current_app.config, max_count=MAX_PHOTOS)
    snap = snapshot()
    # the address is the building's at the spot, as the dispatcher's reports have it: never one the client names
    address = dispatcher_page.place_address(snap, args["lon"], args["lat"])
    with store().transaction() as session:
        inc, token = dispatch.resident_report(session, snap, **args, address=address,
                                              files=request.files.getlist("photos"), photo_limits=limits,
                                              actor=current_actor())
        out = {"id": inc.id, "status": inc.status, "grid": inc.grid_code}
    url = url_for("reports.status", token=token)
    if wants_json():
        return jsonify({**out, "token": token, "url": url}), 201
    return redirect(url, 303)


@bp.get("/reports/<token>")
def status(token):
    """Show a resident's report: its category, status and history, its grid and the grid's workers."""
    with store().session() as session:
        view = resident_page.report_status(session, snapshot(), token, english=_english())
    words = {"statuses": _status_labels(), "actions": _action_labels(),
             "levels": {lv: names[1] if _english() else names[0] for lv, names in catalog.LEVEL_NAMES.items()}}
    response = make_response(render_template("resident/report.html", report=view, token=token, **words))
    # the link is the resident's key to their report: not kept by shared caches, not indexed
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


@bp.get("/reports/<token>/photos/<int:photo_id>")
def report_photo(token, photo_id):
    """One photo of the report the token opens (to the resident who holds the link)."""
    with store().session() as session:
        return _image(*dispatch.report_photo(session, token, photo_id))


@bp.get("/photos/<int:photo_id>")
@requires("incident.read")
def staff_photo(photo_id):
    """One photo of an incident, for staff who may read that incident where it is."""
    with store().session() as session:
        return _image(*dispatch.incident_photo(session, photo_id, role=current_role(), area=current_area()))


def _image(data, mime):
    response = make_response(data)
    response.headers["Content-Type"] = mime
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response


def _parse(form):
    """The form's fields as :func:`gridmap.dispatch.resident_report` takes them; the spot checked here."""
    lon, lat = form.get("lon"), form.get("lat")
    try:
        lon, lat = params.parse_point(lon, lat)
    except InvalidInput as err:
        missing = not (lon or "").strip() or not (lat or "").strip()
        raise InvalidInput(err.message, fix=err.fix,
                           details={"reason": "spot_missing" if missing else "spot_invalid"}) from None
    return {"category": form.get("category", ""), "lon": lon, "lat": lat,
            **{name: form.get(name, "").strip() for name in _TEXT_FIELDS}}


def _english():
    locale = get_locale()
    return bool(locale) and locale.language == "en"


def _action_labels():
    """What each step of an incident is called on the status page."""
    return {"report": _("Report received"), "accept": _("Accepted"), "dispatch": _("Sent to someone who can fix it"),
            "start": _("Work started"), "resolve": _("Resolved"), "reopen": _("Reopened"),
            "escalate": _("Passed up to the next level"), "link_duplicate": _("Joined with an earlier report of the same problem"),
            "whistle": _("The community called in the responsible department"),
            "report_in": _("The department arrived")}


def _megabytes(n):
    return f"{n / (1024 * 1024):.1f} MB"


# --- refusals in the page's language ---------------------------------------------------------

def _messages(d):
    """reason → (message, what to do) in the page's language, filled from the error's ``details`` ``d``."""
    field_names = {"address": _("The address"), "contact_name": _("Your name"), "contact_phone": _("Your phone")}
    most_bytes = _megabytes(d.get("most", 0))
    return {
        "category_not_offered": (_("“%(category)s” is not a kind of problem residents can report here.",
                                   category=d.get("category", "")),
                                 _("Choose the kind of problem from the list.")),
        "description_missing": (_("Please describe the problem."), _("Say in a few words what is wrong there.")),
        "description_too_long": (_("The description has %(length)s characters; at most %(most)s fit.",
                                   length=d.get("length"), most=d.get("most")),
                                 _("Shorten it to %(most)s characters.", most=d.get("most"))),
        "field_too_long": (_("%(field)s has %(length)s characters; at most %(most)s fit.",
                             field=field_names.get(d.get("field"), d.get("field")), length=d.get("length"),
                             most=d.get("most")),
                           _("Shorten it to %(most)s characters.", most=d.get("most"))),
        "spot_missing": (_("No place is chosen for the report."),
                         _("Find the place first: type the address, use your location, or tap the map.")),
        "spot_invalid": (_("The place of the report cannot be used."),
                         _("Find the place again: type the address, use your location, or tap the map.")),
        "spot_outside": (_("This place is outside every community gridmap covers."),
                         _("Find the place again: type the address, use your location, or tap the map.")),
        "too_many_photos": (_("You chose %(count)s photos; at most %(most)s can be sent.",
                              count=d.get("count"), most=d.get("most")),
                            _("Remove photos until at most %(most)s are left.", most=d.get("most"))),
        "photo_too_large": (_("The photo “%(name)s” is larger than %(most)s.", name=d.get("name", ""), most=most_bytes),
                            _("Choose a smaller photo, or take it at a lower resolution.")),
        "photo_not_image": (_("“%(name)s” is not a JPEG, PNG or WebP photo.", name=d.get("name", "")),
                            _("Choose a photo taken by a phone or camera.")),
        "photo_unreadable": (_("The photo “%(name)s” cannot be read: it is damaged or incomplete.",
                               name=d.get("name", "")),
                             _("Choose it again, or take a new photo.")),
        "photo_too_many_pixels": (_("The photo “%(name)s” has too many pixels; at most %(most)s million fit.",
                                    name=d.get("name", ""), most=round(d.get("most", 0) / 1e6)),
                                  _("Choose a smaller photo, or take it at a lower resolution.")),
        "report_not_found": (_("No report has this link."),
                             _("Open the link you were given when you reported, in full.")),
        "photo_not_found": (_("This photo does not exist."), _("Open the photo from its report's page.")),
        "body_too_large": (_("The photos are too large together: at most %(most)s can be sent at once.",
                             most=most_bytes),
                           _("Send fewer or smaller photos.")),
        "csrf": (_("This page has expired."), _("Reload the page and send the report again.")),
    }


def _refuse(err, status, reason, details):
    worded = _messages(details).get(reason)
    if worded is None:  # an error of another layer without a reason: its own words
        message, fix = getattr(err, "message", None) or getattr(err, "description", ""), getattr(err, "fix", None)
    else:
        message, fix = worded
    if wants_json():
        return jsonify({"error": getattr(err, "code", status), "reason": reason, "message": message, "fix": fix,
                        "details": details}), status
    return render_template("error.html", error=GridmapError(message, fix=fix)), status


@bp.errorhandler(InvalidInput)
@bp.errorhandler(NotFound)
def _gridmap_error(err):
    return _refuse(err, err.status, (err.details or {}).get("reason"), err.details or {})


@bp.errorhandler(border.PayloadTooLarge)
def _too_large(err):
    return _refuse(err, 413, "body_too_large", {"most": err.limit, "setting": f"GRIDMAP_{err.setting}"})


@bp.errorhandler(CSRFError)
def _csrf(err):
    return _refuse(err, 400, "csrf", {})
