"""The city dashboard (一网统管): the page and its JSON, KPIs of an area computed in the store."""
from urllib.parse import unquote

from flask import Blueprint, jsonify, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from .. import access
from ..dispatch import PERIODS, kpis
from ..pages import dashboard as dashboard_page
from .common import current_area, current_role, requires, store
from .tiles import city_map_parts

bp = Blueprint("dashboard", __name__)


def _query():
    return kpis.parse_query(request.args)


@bp.get("/api/v1/dashboard")
@requires("dashboard.read")
def api():
    """An area's KPIs, per child area, category, worker and period, as JSON."""
    q = _query()
    with store().session() as session:
        return jsonify(kpis.dashboard(session, q, role=current_role(), area=current_area()))


@bp.get("/dashboard")
@requires("dashboard.read")
def index():
    """Show the dashboard of the area the query string names (the city by default)."""
    q = _query()
    with store().session() as session:
        d = dashboard_page.page(session, q, role=current_role(), area=current_area())
    window = {"from": q["start"].isoformat(), "to": q["end"].isoformat(), "period": q["period"]}
    # the city map (gridmap.maps.city through the tiles page's parts), for the roles the permission table shows it
    city = city_map_parts() if access.can(current_role(), "city.read") else None
    return render_template("dashboard/index.html", d=d, q=q, window=window, labels=labels(),
                           periods=[(p, period_names()[p]) for p in PERIODS],
                           level_names=area_level_names(), map_kpis=dashboard_page.MAP_KPIS,
                           api_url=url_for("dashboard.api"), zh=_is_zh(), city=city,
                           bounds_url=unquote(url_for("tiles.bounds", level="{level}", code="{code}")))


def _is_zh():
    locale = get_locale()
    return locale is None or locale.language != "en"


def period_names():
    """The periods of a trend in the page's language (the statistics page's filter takes them too)."""
    return {"day": _("day"), "week": _("week"), "month": _("month")}


def area_level_names():
    return {"city": _("City"), "district": _("District"), "street": _("Street"), "community": _("Community"),
            "grid": _("Grid")}


def labels():
    """The KPIs' names in the page's language."""
    return {"reported": _("Reported"), "closed": _("Closed"), "closure_rate": _("Closure rate"),
            "on_time": _("Closed on time"), "on_time_rate": _("On-time closure rate"), "open": _("Open"),
            "overdue": _("Overdue"), "escalated": _("Escalated"), "whistled": _("Whistled"),
            "duplicates": _("Linked duplicates")}

