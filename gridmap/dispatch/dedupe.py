"""Possible duplicates: reports of the same category close by in place and time."""
from __future__ import annotations

import math

import numpy as np
from sqlalchemy import or_, select

from .. import catalog
from ..geo.crs import metric_for
from ..store import models as m
from .areas import clause, visible
from .incidents import get_incident, incident_dict
from .rules import DUPLICATE_RADIUS_M, DUPLICATE_WINDOW

_M_PER_DEG_LAT = 110_574.0  # the smallest metres per degree of latitude: a box that is never too small


def duplicates(session, incident_id, *, radius_m=DUPLICATE_RADIUS_M, window=DUPLICATE_WINDOW, role=None, area=None,
               own=False):
    """Other reports of the same category within ``radius_m`` metres and ``window`` of this one, nearest first.

    Candidates come from a lon/lat box a little larger than the circle (an index range scan on
    either backend); the distance that decides is measured in metres in the incident's local frame.
    Reports that are themselves linked duplicates are left out: link to the first report. The
    incident must lie in ``role``'s ``area`` (else NotFound) and so must the duplicates listed;
    reporters are masked here. ``own`` is for the one who has just reported the incident: it is
    theirs, and reports of a public category show wherever they are (Open311 lists them to all).
    """
    inc = get_incident(session, incident_id)
    if not own:
        visible(inc, role, area)
    mine = clause(role, "incident.read", area, grid_col=m.Incident.grid_code, community_col=m.Incident.community_code)
    if own and mine is not None:
        mine = or_(mine, m.Incident.category.in_([c.code for c in catalog.INCIDENT_CATEGORIES if c.public]))
    return [{**incident_dict(o), "distance_m": round(d, 1)}
            for d, o in _near_same_category(session, inc.category, inc.lon, inc.lat, inc.reported_at,
                                            radius_m=radius_m, window=window, exclude=inc.id, where=mine)]


def _near_same_category(session, category, lon, lat, at, *, radius_m, window, exclude=None, where=None):
    dlat = radius_m / _M_PER_DEG_LAT * 1.01
    dlon = dlat / max(math.cos(math.radians(abs(lat) + dlat)), 1e-6)
    q = select(m.Incident).where(
        m.Incident.category == category, m.Incident.duplicate_of.is_(None),
        m.Incident.reported_at >= at - window, m.Incident.reported_at <= at + window,
        m.Incident.lon.between(lon - dlon, lon + dlon), m.Incident.lat.between(lat - dlat, lat + dlat))
    if exclude is not None:
        q = q.where(m.Incident.id != exclude)
    if where is not None:
        q = q.where(where)
    rows = session.scalars(q).all()
    if not rows:
        return []
    metric = metric_for((lon, lat))
    x0, y0 = metric.xy(lon, lat)
    x, y = metric.xy(np.array([r.lon for r in rows]), np.array([r.lat for r in rows]))
    d = np.hypot(np.asarray(x) - x0, np.asarray(y) - y0)
    found = sorted((float(dd), r.reported_at, r.id, r) for dd, r in zip(d, rows) if dd <= radius_m)
    return [(dd, r) for dd, _, _, r in found]
