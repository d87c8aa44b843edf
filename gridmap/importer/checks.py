"""Checks of an import's references before anything is written: communities found or named, codes unique.

Each ``check_<kind>(session, frame, department=None)`` returns ``(frame, problems)``: the frame with
what it resolved filled in (e.g. ``community_code`` from the location) and a Problem per bad row.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import select

from ..store import models as m
from ..errors import N_
from .fields import labels, problem


def check_communities(session, frame, **_):
    problems = []
    dup = frame["code"].duplicated(keep="first")
    for i in np.flatnonzero(dup.to_numpy()):
        r = frame.iloc[i]
        problems.append(problem(r["_row"], r["code"], "code", r["code"], N_("code %(code)s appears twice"),
                                N_("Give each community its own code, or merge the two outlines."),
                                code="duplicate_code", **{"code": r["code"]}))
    return frame, problems


def check_grids(session, frame, **_):
    frame = frame.copy()
    problems = _resolve_community(session, frame, by="overlap")
    # A MultiPolygon grid must be one piece; a MultiPolygon of one part is fine.
    for i, g in enumerate(frame.geometry):
        if g is not None and g.geom_type == "MultiPolygon":
            if len(g.geoms) == 1:
                frame.iloc[i, frame.columns.get_loc(frame.geometry.name)] = g.geoms[0]
            else:
                r = frame.iloc[i]
                problems.append(problem(r["_row"], r.get("name"), "geometry", f"{len(g.geoms)} parts",
                                        N_("grid has %(parts)s separate parts"),
                                        N_("A grid must be one contiguous area: split it into grids or join the parts."),
                                        code="grid_in_parts", parts=len(g.geoms)))
    for i in np.flatnonzero(((frame["code"] != "") & frame["code"].duplicated()).to_numpy()):
        r = frame.iloc[i]
        problems.append(problem(r["_row"], r["code"], "code", r["code"], N_("the grid code appears twice"),
                                N_("Give each grid its own code or leave codes empty to number them."),
                                code="duplicate_code"))
    return frame, problems


def check_located(session, frame, **_):
    """Buildings, volunteers, cameras: the community from the location where none is given."""
    frame = frame.copy()
    return frame, _resolve_community(session, frame, by="point", required=False)


def check_party_members(session, frame, **_):
    frame = frame.copy()
    problems = []
    by_address = dict(session.execute(select(m.Building.address, m.Building.id)).all())
    ids = []
    for r in frame.to_dict("records"):
        if r["building_address"] and r["building_address"] not in by_address:
            problems.append(problem(r["_row"], r["name"], "building_address", r["building_address"],
                                    N_("no building has the address %(address)s"),
                                    N_("Import the buildings first, or correct the address."),
                                    code="unknown_address", address=repr(r["building_address"])))
        ids.append(by_address.get(r["building_address"]))
    frame["building_id"] = ids
    return frame, problems


def check_workers(session, frame, **_):
    frame = frame.copy()
    problems = [] if frame.geometry.isna().all() else _resolve_community(session, frame, by="point", required=False)
    for r in frame.to_dict("records"):
        for code in filter(None, r["grids"].split(";")):
            if len(code) != 15 or not code.isdigit():
                problems.append(problem(r["_row"], r["name"], "grids", code, N_("grid code %(grid)s is not 15 digits"),
                                        N_("List 15-digit grid codes separated by ';'."), code="bad_code",
                                        grid=repr(code)))
    return frame, problems


def check_nothing(session, frame, **_):
    """Responders and roads refer to nothing else in the store."""
    return frame, []


def check_department_grids(session, frame, **_):
    frame = frame.copy()
    return frame, _resolve_community(session, frame, by="overlap")


def _resolve_community(session, frame, *, by, required=True):
    """Fill empty community_code from the community containing (point) or most overlapping (polygon) each feature."""
    problems = []
    known = dict(session.execute(select(m.Community.code, m.Community.geom)).all())
    given = frame["community_code"].fillna("")
    rows = frame["_row"].to_numpy()
    names = labels(frame)
    for i in np.flatnonzero(((given != "") & ~given.isin(list(known))).to_numpy()):
        problems.append(problem(rows[i], names[i], "community_code", given.iloc[i],
                                 N_("community %(community)s is not in the store"),
                                 N_("Import the communities first, or correct the code."),
                                 code="unknown_community", community=given.iloc[i]))
    todo = np.flatnonzero((given == "").to_numpy())
    if len(todo) and known:
        codes = list(known)
        tree = shapely.STRtree(list(known.values()))
        geoms = frame.geometry.values[todo]
        found = np.full(len(todo), "", dtype=object)
        if by == "point":
            probe = shapely.point_on_surface(geoms)
            g_idx, t_idx = tree.query(probe, predicate="intersects")
            hits = pd.DataFrame({"g": g_idx, "code": np.asarray(codes, dtype=object)[t_idx]})
            # on a shared boundary the lowest community code wins, the same rule as for grids
            first = hits.sort_values(["g", "code"]).drop_duplicates("g")
            found[first["g"].to_numpy()] = first["code"].to_numpy()
        else:
            g_idx, t_idx = tree.query(geoms, predicate="intersects")
            areas = shapely.area(shapely.intersection(geoms[g_idx], np.array(list(known.values()))[t_idx]))
            best = {}
            for gi, ti, a in zip(g_idx, t_idx, areas):
                if a > best.get(gi, (0, None))[0]:
                    best[gi] = (a, ti)
            for gi, (_, ti) in best.items():
                found[gi] = codes[ti]
        frame.loc[frame.index[todo], "community_code"] = found
    if required:
        for i in np.flatnonzero((frame["community_code"].fillna("") == "").to_numpy()):
            problems.append(problem(rows[i], names[i], "community_code", "",
                                     N_("the feature lies in no imported community"),
                                     N_("Import the community boundary first, or give community_code."),
                                     code="outside_communities"))
    return problems
