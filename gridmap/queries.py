"""Read-only views of the store shaped for the API: communities, published grids as GeoJSON."""
import re

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import func, select

from .geo.pointindex import points_to_grids

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
    """Households per grid code: from the stored assignment where a plan has one, else by point.

    The assignment puts a building cut by a boundary where most of its footprint lies;
    before a plan is assigned, each building's representative point decides.
    """
    if not rows:
        return {}
    out = {}
    plan_ids = {g.plan_id for g, _ in rows}
    assigned = set(session.scalars(select(m.AssignmentRun.plan_id).where(m.AssignmentRun.plan_id.in_(plan_ids))))
    for code, hh in session.execute(
            select(m.BuildingGrid.grid_code, func.sum(m.Building.households))
            .join(m.Building, m.Building.id == m.BuildingGrid.building_id)
            .where(m.BuildingGrid.plan_id.in_(assigned)).group_by(m.BuildingGrid.grid_code)):
        out[code] = int(hh or 0)
    pending = [(g, cc) for g, cc in rows if g.plan_id not in assigned]
    if pending:
        grids = gpd.GeoDataFrame({"code": [g.code for g, _ in pending]}, geometry=[g.geom for g, _ in pending], crs=4326)
        b = session.execute(select(m.Building.lon, m.Building.lat, m.Building.households)
                            .where(m.Building.community_code.in_(sorted({cc for _, cc in pending})))).all()
        if b:
            xy = np.array([(lon, lat) for lon, lat, _ in b], dtype=float)
            hh = np.array([h or 0 for _, _, h in b], dtype=np.int64)
            pos = points_to_grids(xy, grids)
            sums = np.bincount(pos[pos >= 0], weights=hh[pos >= 0], minlength=len(grids))
            for code, total in zip(grids["code"], sums):
                out[code] = int(total)
    return out


def parse_limit(raw, *, default, most):
    if raw in (None, ""):
        return default
    if not str(raw).isdigit() or not 1 <= int(raw) <= most:
        raise InvalidInput(f"limit={raw!r} is not a whole number between 1 and {most}.", fix=f"Use e.g. limit={default}.")
    return int(raw)
