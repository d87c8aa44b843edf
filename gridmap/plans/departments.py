"""Crosswalk between each department's legacy grids and a community's unified grids: area and household shares."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import select

from ..assign import buildings_to_grids
from ..errors import InvalidInput, N_, NotFound
from ..geo.crs import metric_for
from ..store import models as m
from ..store.loaders import buildings_near
from .records import _community, get_plan, plan_summary
from .rules import grids_frame

# Columns of the crosswalk table, in order: one row per (department grid, unified grid) that overlap.
COLUMNS = ["department", "department_grid_id", "department_code", "department_name", "grid_code", "grid_name",
           "area_m2", "area_share_of_department_grid", "area_share_of_grid",
           "households", "household_share_of_department_grid", "household_share_of_grid"]

# Overlaps below this many m² are digitising noise where two layers trace the same road.
SLIVER_M2 = 1.0


def crosswalk(session, community_code, plan_id=None):
    """For every department grid of a community, the unified grids it overlaps, and the reverse.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
    community_code : str
        12-digit code of the community.
    plan_id : int, optional
        The unified plan to compare with; default the community's published plan.

    Returns
    -------
    dict
        ``community``, ``plan`` (summary); ``rows``: one dict per overlapping pair with
        :data:`COLUMNS` — ``area_share_of_department_grid`` is the pair's area over the
        department grid's (it sums to 1 over a department grid lying wholly in unified grids),
        ``area_share_of_grid`` the pair's area over the unified grid's (it sums to 1 over one
        department's grids when they cover the unified grid); the household shares likewise,
        households counted per building by the largest overlap of its footprint in each layer.
        ``department_grids`` (per department grid: area, households and the ``covered`` shares,
        i.e. the sums above), ``grids`` (per unified grid and department: the same), and
        ``department_features`` (the department grids as GeoJSON for a map overlay).
    """
    code = _community(session, community_code)
    plan = _plan(session, code, plan_id)
    grids = grids_frame(plan)
    dept = _department_grids(session, code)
    if dept.empty:
        raise NotFound(N_("Community %(code)s has no department grids."),
                       fix=N_("Import them: gridmap import department-grids PATH --department NAME."),
                       details={"community": code},
                       params={"code": code})
    boxes = [grids.total_bounds, dept.total_bounds] if len(grids) else [dept.total_bounds]
    buildings = buildings_near(session, boxes)
    x0, y0, x1, y1 = np.vstack(boxes)[:, 0].min(), np.vstack(boxes)[:, 1].min(), \
        np.vstack(boxes)[:, 2].max(), np.vstack(boxes)[:, 3].max()
    metric = metric_for((x0, y0, x1, y1))
    gm, dm = metric.frame(grids), metric.frame(dept)
    grid_area = gm.area.to_numpy()
    dept_area = dm.area.to_numpy()

    # households: each building once per layer, in the grid holding most of its footprint; a
    # department's grids are matched among that department's only (departments overlap each other)
    unified = buildings_to_grids(buildings, grids)["grid_code"] if len(grids) else \
        pd.Series(None, index=buildings.index, dtype=object)
    hh = buildings["households"]
    grid_hh = hh.groupby(unified).sum()
    dept_hh, pair_hh = {}, {}
    for _name, part in dept.groupby("department", sort=True):
        # codes are the department grids' ids: legacy codes repeat or are missing
        in_dept = buildings_to_grids(buildings, part.assign(code=part.index.astype(str)))["grid_code"]
        for d, total in hh.groupby(in_dept).sum().items():
            dept_hh[int(d)] = int(total)
        both = pd.DataFrame({"d": in_dept, "g": unified, "hh": hh}).dropna()
        for (d, g), total in both.groupby(["d", "g"])["hh"].sum().items():
            pair_hh[(int(d), g)] = int(total)

    left, right = shapely.STRtree(gm.geometry.values).query(dm.geometry.values, predicate="intersects")
    rows = []
    for i, j in zip(left, right):
        area = float(shapely.area(shapely.intersection(dm.geometry.iloc[i], gm.geometry.iloc[j])))
        d_id, g_code = int(dept.index[i]), grids["code"].iloc[j]
        households = pair_hh.get((d_id, g_code), 0)
        if area <= SLIVER_M2 and households == 0:
            continue
        d_hh, g_hh = dept_hh.get(d_id, 0), int(grid_hh.get(g_code, 0))
        rows.append({
            "_area": area, "department": dept["department"].iloc[i], "department_grid_id": d_id,
            "department_code": dept["code"].iloc[i], "department_name": dept["name"].iloc[i],
            "grid_code": g_code, "grid_name": grids["name"].iloc[j], "area_m2": round(area, 1),
            "area_share_of_department_grid": _share(area, dept_area[i]),
            "area_share_of_grid": _share(area, grid_area[j]),
            "households": households,
            "household_share_of_department_grid": _share(households, d_hh),
            "household_share_of_grid": _share(households, g_hh),
        })
    rows.sort(key=lambda r: (r["department"], r["department_code"], r["department_grid_id"], r["grid_code"]))
    table = pd.DataFrame(rows, columns=COLUMNS + ["_area"])
    for r in rows:
        del r["_area"]

    by_dept = table.groupby("department_grid_id")
    department_grids = [{
        "id": int(d_id), "department": r["department"], "code": r["code"], "name": r["name"],
        "area_m2": round(float(dept_area[k]), 1), "households": dept_hh.get(int(d_id), 0),
        "grids": sorted(by_dept.get_group(d_id)["grid_code"]) if d_id in by_dept.groups else [],
        "covered_area_share": _sum(by_dept, d_id, "_area") / dept_area[k] if dept_area[k] else 0.0,
        "covered_household_share": (_sum(by_dept, d_id, "households") / dept_hh[int(d_id)]
                                    if dept_hh.get(int(d_id)) else None),
    } for k, (d_id, r) in enumerate(dept.iterrows())]
    for d in department_grids:
        d["covered_area_share"] = round(float(d["covered_area_share"]), 6)
        if d["covered_household_share"] is not None:
            d["covered_household_share"] = round(float(d["covered_household_share"]), 6)

    unified_rows = []
    for j, g_code in enumerate(grids["code"]):
        mine = table[table["grid_code"] == g_code]
        for name in sorted(dept["department"].unique()):
            part = mine[mine["department"] == name]
            unified_rows.append({
                "grid_code": g_code, "grid_name": grids["name"].iloc[j], "department": name,
                "area_m2": round(float(grid_area[j]), 1), "households": int(grid_hh.get(g_code, 0)),
                "department_grids": part["department_code"].tolist(),
                "covered_area_share": round(float(part["_area"].sum() / grid_area[j]), 6) if grid_area[j] else 0.0,
                "covered_household_share": (round(float(part["households"].sum() / grid_hh[g_code]), 6)
                                            if grid_hh.get(g_code) else None),
            })
    features = [{"type": "Feature", "id": int(i),
                 "properties": {"department": r["department"], "code": r["code"], "name": r["name"]},
                 "geometry": shapely.geometry.mapping(r.geometry)} for i, r in dept.iterrows()]
    return {"community": code, "plan": plan_summary(plan), "rows": rows,
            "department_grids": department_grids, "grids": unified_rows,
            "department_features": {"type": "FeatureCollection", "features": features}}


def write_csv(result, path):
    """Write the crosswalk rows to ``path`` as CSV (UTF-8 with BOM, so Excel shows Chinese). Returns the row count."""
    pd.DataFrame(result["rows"], columns=COLUMNS).to_csv(path, index=False, encoding="utf-8-sig")
    return len(result["rows"])


def _plan(session, code, plan_id):
    if plan_id is not None:
        plan = get_plan(session, plan_id)
        if plan.community_code != code:
            raise InvalidInput(N_("Plan %(id)s belongs to community %(community_code)s, not %(code)s."),
                               fix=N_("Give a plan of the same community, or leave the plan out."),
                               details={"plan": plan.id, "community": code},
                               params={"id": plan.id, "community_code": plan.community_code, "code": code})
        return plan
    plan = session.scalars(select(m.GridPlan).where(m.GridPlan.community_code == code,
                                                    m.GridPlan.status == "published")).first()
    if plan is None:
        raise NotFound(N_("Community %(code)s has no published plan to compare the department grids with."),
                       fix=N_("Publish a plan, or give plan=ID of a draft."), details={"community": code},
                       params={"code": code})
    return plan


def _department_grids(session, code):
    rows = session.execute(select(m.DepartmentGrid.id, m.DepartmentGrid.department, m.DepartmentGrid.code,
                                  m.DepartmentGrid.name, m.DepartmentGrid.geom)
                           .where(m.DepartmentGrid.community_code == code)
                           .order_by(m.DepartmentGrid.department, m.DepartmentGrid.code, m.DepartmentGrid.id)).all()
    return gpd.GeoDataFrame({"department": [r.department for r in rows], "code": [r.code for r in rows],
                             "name": [r.name for r in rows]},
                            geometry=[r.geom for r in rows], crs=4326,
                            index=pd.Index([r.id for r in rows], name="id", dtype=np.int64))


def _share(part, whole):
    return round(float(part) / float(whole), 6) if whole else 0.0


def _sum(groups, key, column):
    return float(groups.get_group(key)[column].sum()) if key in groups.groups else 0.0
