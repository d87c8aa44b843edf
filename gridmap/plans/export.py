"""What each grid of a plan holds, for exports, the API and the planner: households, workers, branch, area."""
from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import func, select

from ..errors import N_, NotFound
from ..geo.io import write_layer
from ..geo.pointindex import points_to_grids
from ..store import models as m
from ..store.loaders import published_grids
from .records import get_plan, plan_summary
from .rules import Limits, load, plan_data

GRID_TABLE_COLUMNS = ["code", "name", "households", "buildings", "workers", "party_branch", "area_m2"]


def grid_table(session, plan_id, *, limits=None):
    """One row per grid of the plan: GRID_TABLE_COLUMNS and the WGS84 boundary (a GeoDataFrame).

    ``workers`` are the names of the grid's workers joined by '；' (no phones: exports leave the
    office); households come from buildings by largest overlap, as in :func:`validate`.
    """
    plan = get_plan(session, plan_id)
    community, grids, buildings, people = load(session, plan)
    data = plan_data(community, grids, buildings, people["workers"], people["branches"],
                     limits or Limits.from_config())
    out = gpd.GeoDataFrame({
        "code": grids["code"].to_numpy(dtype=object), "name": grids["name"].to_numpy(dtype=object),
        "households": data.grids["households"].to_numpy(), "buildings": data.grids["buildings"].to_numpy(),
        "workers": ["；".join(people["workers"].get(c, [])) for c in grids["code"]],
        "party_branch": [people["branches"].get(c, "") for c in grids["code"]],
        "area_m2": np.round(data.grids.area.to_numpy(), 1)}, geometry=grids.geometry.values, crs=4326)
    return out


# Shapefile field names stop at 10 characters; these are renamed rather than silently truncated.
_SHAPEFILE_NAMES = {"party_branch": "branch"}


def export_plan(session, plan_id, path):
    """Write the plan's grid table to ``path`` (.geojson .gpkg .shp .zip .csv). Returns the number of grids."""
    table = grid_table(session, plan_id)
    if Path(path).suffix.lower() in (".shp", ".zip"):
        table = table.rename(columns=_SHAPEFILE_NAMES)
    write_layer(table, path)
    return len(table)


def _feature_collection(table):
    props = [c for c in table.columns if c != table.geometry.name]
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": row["code"], "properties": {c: _json(row[c]) for c in props},
         "geometry": shapely.geometry.mapping(row.geometry)} for _, row in table.iterrows()]}


def _json(v):
    return v.item() if isinstance(v, np.generic) else v


def plan_detail(session, plan_id, *, limits=None):
    """A plan's facts and its grids as GeoJSON with households, workers and party branch per grid."""
    plan = get_plan(session, plan_id)
    table = grid_table(session, plan, limits=limits)
    out = plan_summary(plan)
    out["households"] = int(table["households"].sum()) if len(table) else 0
    out["grid_features"] = _feature_collection(table)
    return out


def grids_geojson(session, community=None):
    """Published grids with ``code``, ``name``, ``households`` (buildings whose point lies inside)."""
    if community is not None:
        if session.get(m.Community, community) is None:
            raise NotFound(N_("Community %(community)s is not known."),
                           fix=N_("See /api/v1/communities for the codes."),
                           params={"community": community})
    rows = published_grids(session, community)
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
