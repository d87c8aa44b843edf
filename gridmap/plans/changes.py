"""What changes grid between any two plans: buildings, households, party members, grid workers, areas."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import select

from ..assign import buildings_to_grids, members_to_grids
from ..errors import InvalidInput, N_
from ..geo.crs import metric_for
from ..store import models as m
from ..store.loaders import MARGIN_DEG, branch_ids, buildings_near
from .records import get_plan, plan_summary
from .rules import _area, grids_frame

def diff(session, plan_a, plan_b, *, personal=False):
    """What changes grid between plan ``plan_a`` and plan ``plan_b`` (any two plans, any status).

    Buildings go to the grid holding most of their footprint
    (:func:`gridmap.assign.buildings_to_grids`), party members to their building's grid or else their
    home point's (:func:`gridmap.assign.members_to_grids`), grid workers keep their grid codes and
    so change the buildings and households they serve. A grid is its code: workers and branches
    follow codes across generations.

    Parameters
    ----------
    personal : bool or callable
        Include party members' and workers' names (roles that may see personal data); a callable
        ``personal(grid_code)`` shows a name only when it holds for the grid moved from or to (a
        grid worker: the grids it serves).

    Returns
    -------
    dict
        ``a``, ``b`` (plan summaries); ``summary`` (counts: buildings, households, members,
        workers); tables ``buildings`` (id, address, households, from, to), ``members`` (id,
        from, to[, name]), ``workers`` (id, grids_from, grids_to, households_from,
        households_to, buildings_gained, buildings_lost[, name]); ``areas`` (from, to, area_m2)
        and ``geojson``: a FeatureCollection of changed areas, buildings and member homes.
    """
    a, b = get_plan(session, plan_a), get_plan(session, plan_b)
    named = personal if callable(personal) else (lambda _grid, _all=bool(personal): _all)
    ga, gb = grids_frame(a), grids_frame(b)
    codes = sorted(set(ga["code"]) | set(gb["code"]))
    branches = branch_ids(session, codes)
    for g, plan in ((ga, a), (gb, b)):
        g["community_code"] = plan.community_code
        g["branch_id"] = pd.array([branches.get(c) for c in g["code"]], dtype="Int64")
    boxes = [g.total_bounds for g in (ga, gb) if len(g)]
    if not boxes:
        raise InvalidInput(N_("Plans %(id)s and %(id2)s hold no grids."), fix=N_("Compare plans that have grids."),
                           params={"id": a.id, "id2": b.id})
    buildings = buildings_near(session, boxes)
    ba = buildings_to_grids(buildings, ga) if len(ga) else None
    bb = buildings_to_grids(buildings, gb) if len(gb) else None
    code_a = ba["grid_code"] if ba is not None else pd.Series(None, index=buildings.index, dtype=object)
    code_b = bb["grid_code"] if bb is not None else pd.Series(None, index=buildings.index, dtype=object)
    moved = _differs(code_a, code_b)
    bt = buildings[moved]
    building_rows = [{"id": int(i), "address": r["address"], "households": int(r["households"]),
                      "from": code_a[i], "to": code_b[i]} for i, r in bt.iterrows()]

    members = _members_near(session, buildings.index, boxes)
    ma = _member_codes(members, ga, ba, members_to_grids)
    mb = _member_codes(members, gb, bb, members_to_grids)
    m_moved = _differs(ma, mb)
    member_rows = []
    for i in members.index[m_moved]:
        row = {"id": int(i), "from": ma[i], "to": mb[i]}
        if named(ma[i]) or named(mb[i]):
            row["name"] = members.at[i, "name"]
        member_rows.append(row)

    worker_rows = _worker_changes(session, codes, set(ga["code"]), set(gb["code"]), buildings, code_a, code_b,
                                  named)
    areas, area_geoms = _changed_areas(ga, gb)
    features = (
        [{"type": "Feature", "properties": {"kind": "area", **r}, "geometry": shapely.geometry.mapping(g)}
         for r, g in zip(areas, area_geoms)]
        + [{"type": "Feature", "properties": {"kind": "building", **r},
            "geometry": shapely.geometry.mapping(bt.geometry[r["id"]])} for r in building_rows]
        + [{"type": "Feature", "properties": {"kind": "member", "id": r["id"], "from": r["from"], "to": r["to"]},
            "geometry": shapely.geometry.mapping(members.geometry[r["id"]])}
           for r in member_rows if members.geometry[r["id"]] is not None])
    return {
        "a": plan_summary(a), "b": plan_summary(b),
        "summary": {"buildings": len(building_rows), "households": int(sum(r["households"] for r in building_rows)),
                    "members": len(member_rows), "workers": len(worker_rows),
                    "grids_only_in_a": sorted(set(ga["code"]) - set(gb["code"])),
                    "grids_only_in_b": sorted(set(gb["code"]) - set(ga["code"]))},
        "buildings": building_rows, "members": member_rows, "workers": worker_rows, "areas": areas,
        "geojson": {"type": "FeatureCollection", "features": features},
    }


def diff_rows(result):
    """A diff as one flat table (kind, id, label, households, from, to) for the CLI and CSV."""
    rows = [{"kind": "building", "id": r["id"], "label": r["address"], "households": r["households"],
             "from": r["from"] or "", "to": r["to"] or ""} for r in result["buildings"]]
    rows += [{"kind": "member", "id": r["id"], "label": r.get("name", ""), "households": "",
              "from": r["from"] or "", "to": r["to"] or ""} for r in result["members"]]
    rows += [{"kind": "worker", "id": r["id"], "label": r.get("name", ""),
              "households": f"{r['households_from']}→{r['households_to']}",
              "from": ";".join(r["grids_from"]), "to": ";".join(r["grids_to"])} for r in result["workers"]]
    return rows


def _differs(a, b):
    a = a.astype(object).where(a.notna(), "")
    b = b.astype(object).where(b.notna(), "")
    return (a != b).to_numpy()


def _members_near(session, building_ids, boxes):
    """Party members living in one of ``building_ids`` or with a home point near the plans."""
    x0, y0 = min(b[0] for b in boxes) - MARGIN_DEG, min(b[1] for b in boxes) - MARGIN_DEG
    x1, y1 = max(b[2] for b in boxes) + MARGIN_DEG, max(b[3] for b in boxes) + MARGIN_DEG
    rows = session.execute(select(m.PartyMember.id, m.PartyMember.name, m.PartyMember.building_id,
                                  m.PartyMember.geom, m.Building.lon, m.Building.lat)
                           .outerjoin(m.Building, m.PartyMember.building_id == m.Building.id)
                           .order_by(m.PartyMember.id)).all()
    inside = set(int(i) for i in building_ids)
    keep, homes = [], []
    for r in rows:
        home = r.geom if r.geom is not None else (shapely.Point(r.lon, r.lat) if r.lon is not None else None)
        near = home is not None and x0 <= home.x <= x1 and y0 <= home.y <= y1
        if (r.building_id is not None and r.building_id in inside) or near:
            keep.append(r)
            homes.append(home)
    return gpd.GeoDataFrame({"name": [r.name for r in keep],
                             "building_id": pd.array([r.building_id for r in keep], dtype="Int64")},
                            geometry=homes, crs=4326,
                            index=pd.Index([r.id for r in keep], name="member_id", dtype=np.int64))


def _member_codes(members, grids, bg, members_to_grids):
    if not len(grids) or not len(members):
        return pd.Series(None, index=members.index, dtype=object)
    frame = members.copy()
    frame["building_grid"] = frame["building_id"].map(bg["grid"]).fillna(-1).astype(np.int64)
    return members_to_grids(frame, grids)["grid_code"]


def _worker_changes(session, codes, codes_a, codes_b, buildings, code_a, code_b, named):
    rows = session.execute(select(m.GridWorker.id, m.GridWorker.name, m.grid_worker_grid.c.grid_code)
                           .join(m.grid_worker_grid, m.grid_worker_grid.c.worker_id == m.GridWorker.id)
                           .where(m.grid_worker_grid.c.grid_code.in_(codes))
                           .order_by(m.GridWorker.id, m.grid_worker_grid.c.grid_code)).all()
    served, names = {}, {}
    for wid, name, code in rows:
        served.setdefault(wid, set()).add(code)
        names[wid] = name
    hh = buildings["households"]
    out = []
    for wid, mine in served.items():
        in_a = set(buildings.index[code_a.isin(mine).to_numpy()])
        in_b = set(buildings.index[code_b.isin(mine).to_numpy()])
        grids_a, grids_b = sorted(mine & codes_a), sorted(mine & codes_b)
        if in_a == in_b and grids_a == grids_b:
            continue
        row = {"id": int(wid), "grids_from": grids_a, "grids_to": grids_b,
               "households_from": int(hh.loc[sorted(in_a)].sum()), "households_to": int(hh.loc[sorted(in_b)].sum()),
               "buildings_gained": len(in_b - in_a), "buildings_lost": len(in_a - in_b)}
        if any(named(c) for c in mine):
            row["name"] = names[wid]
        out.append(row)
    return out


def _changed_areas(ga, gb, sliver_m2=1.0):
    """Where the grid code differs between the two plans: (from, to, area_m2) rows and WGS84 polygons."""
    if not len(ga) or not len(gb):
        return [], []
    boxes = np.vstack([ga.total_bounds, gb.total_bounds])
    metric = metric_for((boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max()))
    ma, mb = metric.frame(ga), metric.frame(gb)
    left, right = shapely.STRtree(mb.geometry.values).query(ma.geometry.values, predicate="intersects")
    rows, geoms = [], []
    for i, j in zip(left, right):
        ca, cb = ga["code"].iloc[i], gb["code"].iloc[j]
        if ca == cb:
            continue
        part = shapely.intersection(ma.geometry.iloc[i], mb.geometry.iloc[j])
        if _area(part) > sliver_m2:
            rows.append({"from": ca, "to": cb, "area_m2": round(_area(part), 1)})
            geoms.append(part)
    if geoms:
        geoms = list(metric.unproject(geoms))
    return rows, geoms
