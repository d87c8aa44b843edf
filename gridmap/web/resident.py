"""The resident's page: find my grid worker by address, location or a tap on the map; report a problem there."""
from flask import Blueprint, current_app, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from ..dispatch.residents import MAX_DESCRIPTION, MAX_PHOTOS
from ..maps import resident as resident_maps
from ..pages import resident as resident_page
from . import params
from .common import snapshot
from .places import named
from .security import frameable, map_page

bp = Blueprint("resident", __name__)


@bp.get("/")
def index():
    """Show the find-my-grid-worker page, with its form to report a problem at the place found."""
    most = current_app.config["PHOTO_MAX_BYTES"]
    english = bool(get_locale()) and get_locale().language == "en"
    return render_template("resident/index.html", categories=resident_page.report_categories(english=english),
                           max_description=MAX_DESCRIPTION, max_photos=MAX_PHOTOS, max_photo_bytes=most,
                           max_photo_size=f"{most / (1024 * 1024):.0f} MB")


@bp.get("/map")
@frameable
def grid_map():
    """Render the resident's map of a community, its highlighted grid and a located point."""
    view = resident_page.map_view(snapshot(), **params.division_codes(request.args),
                                  point=params.optional_point(request.args))
    m = resident_maps.grid_map(named(view["grids"]), highlight=view["highlight"], point=view["point"],
                               communities=named(view["communities"]), tiles=current_app.config["MAP_TILES"],
                               attribution=current_app.config["MAP_TILES_ATTRIBUTION"],
                               assets=url_for("static", filename="vendor/leaflet").rstrip("/"),
                               labels={"grid": _("Grid"), "you_are_here": _("You are here")})
    return map_page(m)
