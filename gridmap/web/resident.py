"""The resident's page: find my grid worker by address, location or a tap on the map."""
import re

from flask import Blueprint, current_app, render_template, request, url_for
from flask_babel import gettext as _

from .. import lookup
from ..errors import InvalidInput
from ..maps import resident as resident_maps
from . import snapshot

bp = Blueprint("resident", __name__)

# Administrative division codes: 12 digits for a community, 15 for a grid (community + 3).
_CODE = re.compile(r"^\d{6,20}$")


@bp.get("/")
def index():
    """Show the find-my-grid-worker page."""
    return render_template("resident/index.html")


@bp.get("/map")
def grid_map():
    """Render the resident's map of a community, its highlighted grid and a located point."""
    snap = snapshot()
    grids, grid, point = _map_args(request.args, snap.grids)
    m = resident_maps.grid_map(grids, highlight=grid, point=point, communities=snap.communities,
                               tiles=current_app.config["MAP_TILES"],
                               attribution=current_app.config["MAP_TILES_ATTRIBUTION"],
                               assets=url_for("static", filename="vendor/leaflet").rstrip("/"),
                               labels={"grid": _("Grid"), "you_are_here": _("You are here")})
    return m.get_root().render(), 200, {"Content-Type": "text/html; charset=utf-8"}


def _map_args(args, grids):
    """Validate /map's query string against the published grids.

    Returns (grids to draw, grid code to highlight or None, (lon, lat) or None). Without
    ``community`` the grid's community is drawn, and without either every published grid.
    """
    community, grid = args.get("community", "").strip(), args.get("grid", "").strip()
    for name, value in (("community", community), ("grid", grid)):
        if value and not _CODE.match(value):
            raise InvalidInput(f"{name}={value!r} is not a division code.",
                               fix=f"Give the {name}'s numeric code, e.g. community=210213013004.")
    if grid:
        row = grids[grids["code"] == grid]
        if row.empty:
            raise InvalidInput(f"grid={grid!r} is not a published grid.",
                               fix="Take the grid code from /api/v1/locate or /api/v1/grids.")
        community = community or row.iloc[0]["community_code"]
    if community:
        if not (grids["community_code"] == community).any():
            raise InvalidInput(f"community={community!r} has no published grids.",
                               fix="Take the community code from /api/v1/communities.")
        if grid and grids.loc[grids["code"] == grid, "community_code"].iloc[0] != community:
            raise InvalidInput(f"grid={grid!r} is not in community={community!r}.",
                               fix="Leave out community, or give the grid's own community.")
        grids = grids[grids["community_code"] == community]
    point = None
    if args.get("lon") is not None or args.get("lat") is not None:
        point = lookup.parse_point(args.get("lon"), args.get("lat"), args.get("crs"))
    return grids, grid or None, point
