"""A draft plan from an automatic partition of a stored community's buildings."""
from __future__ import annotations

import geopandas as gpd
from sqlalchemy import select

from ..errors import InvalidInput, N_, NotFound
from ..partition import partition_community
from ..store import models as m
from .generations import create_plan, used_codes


def draft_from_partition(session, community_code, *, n_grids=None, target_households=None, tolerance=0.05,
                         seed=0, use_roads=True):
    """Partition a stored community's buildings into a new draft plan.

    Roads crossing the community are barriers the boundaries follow where they can. Returns
    ``(plan, report)`` where ``report`` is the partition's (deviation, compactness, tiling,
    infeasibility findings).
    """
    community = session.get(m.Community, community_code)
    if community is None:
        raise NotFound(N_("Community %(community_code)s is not in the store."),
                       fix=N_("See `gridmap export communities -` or /api/v1/communities for the codes."),
                       params={"community_code": community_code})
    rows = session.execute(select(m.Building.geom, m.Building.households)
                           .where(m.Building.community_code == community_code)).all()
    if not rows:
        raise InvalidInput(N_("Community %(community_code)s has no buildings to partition."),
                           fix=N_("Import its buildings first: gridmap import buildings PATH."),
                           params={"community_code": community_code})
    buildings = gpd.GeoDataFrame({"households": [h or 0 for _, h in rows]}, geometry=[g for g, _ in rows], crs=4326)
    barriers = None
    if use_roads:
        roads = session.scalars(select(m.Road.geom)).all()
        hits = [r for r in roads if r.intersects(community.geom)]
        barriers = gpd.GeoSeries(hits, crs=4326) if hits else None
    # numbered by the one grid-code rule past every code a published plan held, so a new partition
    # never takes the code (and so the worker) of another place, and its report names the draft's codes
    grids, _ = partition_community(buildings, community.geom, n_grids=n_grids, target_households=target_households,
                                   tolerance=tolerance, barriers=barriers, seed=seed, community_code=community_code,
                                   taken=used_codes(session, community_code))
    report = grids.attrs.get("report", {})
    plan = create_plan(session, community_code, grids[["code", "geometry"]],
                       name=f"partition seed {seed} ({len(grids)} grids)")
    return plan, report
