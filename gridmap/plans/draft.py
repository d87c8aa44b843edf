"""A draft plan from an automatic partition of a stored community's buildings."""
from __future__ import annotations

import math

import geopandas as gpd
from sqlalchemy import select

from .names import partition_name
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
    rows = session.execute(select(m.Building.geom, m.Building.households, m.Building.floors)
                           .where(m.Building.community_code == community_code)).all()
    if not rows:
        raise InvalidInput(N_("Community %(community_code)s has no buildings to partition."),
                           fix=N_("Import its buildings first: gridmap import buildings PATH."),
                           params={"community_code": community_code})
    # A community that records no household at all has no register yet (imports default to 0):
    # its households are unknown, and the partition estimates them rather than count buildings.
    unknown = not any(h for _, h, _ in rows)
    buildings = gpd.GeoDataFrame({"households": [None if unknown else (h or 0) for _, h, _ in rows],
                                  "floors": [f for _, _, f in rows]},
                                 geometry=[g for g, _, _ in rows], crs=4326)
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
    too_many = [f for f in report.get("infeasible", []) if f["kind"] == "more_grids_than_buildings"]
    if too_many:
        # a draft of one grid per building is no plan: refuse, writing nothing, and say what fits
        f = too_many[0]
        total = sum(report.get("grid_households") or [0])
        held = (f" holding {total:,.0f}" + (" estimated" if report.get("households_basis") == "estimated" else "")
                + " households" if total else "")
        raise InvalidInput(
            f"{f['n_grids']} grids need at least as many buildings, but community {community_code} has "
            f"{f['n_cells']} building sites (overlapping footprints count once){held}; no draft was made.",
            fix=f"Ask for at most {f['n_cells']} grids (--grids {f['n_cells']})"
                + (f", or at least {math.ceil(total / f['n_cells'])} households per grid" if total else "") + ".",
            details={k: f[k] for k in ("n_grids", "n_cells")})
    plan = create_plan(session, community_code, grids[["code", "geometry"]],
                       name=partition_name(seed, len(grids), estimated=report.get("households_basis") == "estimated"))
    return plan, report
