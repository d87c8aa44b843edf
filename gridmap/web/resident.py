"""The resident's page: find my grid worker by address, location or a tap on the map."""
from flask import Blueprint, current_app, render_template, request, url_for
from flask_babel import gettext as _

from ..maps import resident as resident_maps
from ..pages import resident as resident_page
from . import params
from .common import snapshot
from .security import frameable, map_page

bp = Blueprint("resident", __name__)


@bp.get("/")
def index():
    """Show the find-my-grid-worker page."""
    return render_template("resident/index.html")


@bp.get("/map")
@frameable
def grid_map():
    """Render the resident's map of a community, its highlighted grid and a located point."""
    view = resident_page.map_view(snapshot(), **params.division_codes(request.args),
                                  point=params.optional_point(request.args))
    m = resident_maps.grid_map(view["grids"], highlight=view["highlight"], point=view["point"],
                               communities=view["communities"], tiles=current_app.config["MAP_TILES"],
                               attribution=current_app.config["MAP_TILES_ATTRIBUTION"],
                               assets=url_for("static", filename="vendor/leaflet").rstrip("/"),
                               labels={"grid": _("Grid"), "you_are_here": _("You are here")})
    return map_page(m)
