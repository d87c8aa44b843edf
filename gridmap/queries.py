"""Read-only views of the store shaped for the API: communities, published grids as GeoJSON."""
import re

import shapely
from sqlalchemy import func, select

from . import plans
from .errors import InvalidInput, NotFound
from .store import models as m


def communities(session):
    rows = session.execute(
        select(m.Community.code, m.Community.name, m.Street.code, m.Street.name, m.District.code, m.District.name)
        .join(m.Street, m.Community.street_code == m.Street.code)
        .join(m.District, m.Street.district_code == m.District.code).order_by(m.Community.code)).all()
    return [{"code": c, "name": n, "street": {"code": sc, "name": sn}, "district": {"code": dc, "name": dn}}
            for c, n, sc, sn, dc, dn in rows]


def grids_geojson(session, community=None):
    """Published grids with ``code``, ``name``, ``households`` (buildings whose point lies inside)."""
    if community is not None:
        if not re.fullmatch(r"\d{12}", community):
            raise InvalidInput(f"community={community!r} is not a 12-digit community code.",
                               fix="Use a code from /api/v1/communities, e.g. 210213013004.")
        if session.get(m.Community, community) is None:
            raise NotFound(f"Community {community} is not known.", fix="See /api/v1/communities for the codes.")
    rows = plans.published_grids(session, community)
    households = _households_by_grid(session, rows)
    features = [{"type": "Feature", "id": g.code,
                 "properties": {"code": g.code, "name": g.name, "community": cc,
                                "households": households.get(g.code, 0), "plan": g.plan_id},
                 "geometry": shapely.geometry.mapping(g.geom)} for g, cc in rows]
    return {"type": "FeatureCollection", "features": features}


def _households_by_grid(session, rows):
    # Until assignment jobs store building → grid, count by each building's representative point.
    if not rows:
        return {}
    from .index import _Layer
    layer = _Layer.build([g.code for g, _ in rows], [g.geom for g, _ in rows])
    codes = sorted({cc for _, cc in rows})
    b = session.execute(select(m.Building.lon, m.Building.lat, m.Building.households)
                        .where(m.Building.community_code.in_(codes))).all()
    out = {}
    for lon, lat, hh in b:
        i = layer.pick(shapely.Point(lon, lat))
        if i >= 0:
            out[layer.codes[i]] = out.get(layer.codes[i], 0) + (hh or 0)
    return out


def parse_limit(raw, *, default, most):
    if raw in (None, ""):
        return default
    if not str(raw).isdigit() or not 1 <= int(raw) <= most:
        raise InvalidInput(f"limit={raw!r} is not a whole number between 1 and {most}.", fix=f"Use e.g. limit={default}.")
    return int(raw)
