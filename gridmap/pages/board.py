"""What a grid's printable notice board (网格公示牌) shows: its map, code, workers with their phones, branch, centre.

Communities hang one board per grid in each courtyard so residents know whom to call. The board
therefore shows each grid worker's phone in **full**: it is the worker's work phone, published on
purpose, unlike the masked numbers the public web lookup shows (a resident may be anyone there;
here the grid office chooses to post it). :mod:`gridmap.maps.board` draws it.
"""
from __future__ import annotations

import shapely
from sqlalchemy import select

from ..errors import NotFound
from ..plans import get_plan
from ..store import models as m


def board_data(session, grid_code, *, plan_id=None):
    """Everything a board shows, as plain data (WGS84 geometry).

    Returns
    -------
    dict
        ``code``, ``name``, ``geometry``; ``community`` (name, service centre name, address,
        phone); ``workers`` [(name, phone)] with full phones; ``branch``; ``neighbours``
        [(code, geometry)]; ``buildings`` and ``roads`` (geometries near the grid); ``plan``.
    """
    if plan_id is not None:
        plan = get_plan(session, plan_id)
    else:
        plan = session.scalars(select(m.GridPlan).join(m.Grid).where(
            m.Grid.code == grid_code, m.GridPlan.status == "published")).first()
        if plan is None:
            raise NotFound(f"Grid {grid_code} is in no published plan.",
                           fix="Publish the plan first, or give plan=ID to print a draft's board.",
                           details={"grid": grid_code})
    grids = {g.code: g for g in plan.grids}
    if grid_code not in grids:
        raise NotFound(f"Grid {grid_code} is not in plan {plan.id}.", fix="Check the code.",
                       details={"grid": grid_code, "plan": plan.id})
    grid = grids[grid_code]
    community = session.get(m.Community, plan.community_code)
    workers = session.execute(select(m.GridWorker.name, m.GridWorker.phone)
                              .join(m.grid_worker_grid, m.grid_worker_grid.c.worker_id == m.GridWorker.id)
                              .where(m.grid_worker_grid.c.grid_code == grid_code).order_by(m.GridWorker.id)).all()
    branch = session.scalar(select(m.PartyOrganization.name).where(
        m.PartyOrganization.kind == "grid_branch", m.PartyOrganization.grid_code == grid_code)
        .order_by(m.PartyOrganization.id))
    x0, y0, x1, y1 = grid.geom.bounds
    pad = max(x1 - x0, y1 - y0) * 0.35
    box = shapely.box(x0 - pad, y0 - pad, x1 + pad, y1 + pad)
    buildings = session.scalars(select(m.Building.geom).where(
        m.Building.lon.between(box.bounds[0], box.bounds[2]), m.Building.lat.between(box.bounds[1], box.bounds[3]))).all()
    roads = [r for r in session.scalars(select(m.Road.geom)).all() if r.intersects(box)]
    return {"code": grid_code, "name": grid.name, "geometry": grid.geom, "plan": plan.id,
            "community": {"name": community.name, "centre": community.service_centre,
                          "address": community.service_address, "phone": community.service_phone,
                          "geometry": community.geom},
            "workers": [(w.name, w.phone) for w in workers], "branch": branch or "",
            "neighbours": [(c, g.geom) for c, g in sorted(grids.items()) if c != grid_code and g.geom.intersects(box)],
            "buildings": list(buildings), "roads": roads, "box": box}
