"""Assign residences, party members, cameras, volunteers and responders to grids; link contact households."""
from __future__ import annotations

import json
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.optimize import linear_sum_assignment
from sqlalchemy import and_, delete, func, or_, select

from . import access
from .errors import InvalidInput, N_, NotFound
from .geo.crs import metric_for
from .geo.pointindex import points_to_grids  # noqa: F401  (public name outside tools rely on)
from .settings import default as _setting
from .store.bulk import bulk_insert
from .store import models as m

__all__ = ["points_to_grids", "buildings_to_grids", "members_to_grids", "link_contact_households",
           "group_parent_mismatches", "worker_load", "run", "compute", "compute_at", "write", "grid_members", "SLIVER_SHARE",
           "ENTITY_KINDS", "RUN_STEPS"]

# A footprint's overlap with a grid below 0.1 % of its area is float noise, not a split: a
# footprint drawn against a grid edge overlaps its neighbour by square millimetres once both
# are projected to metres. Such slivers neither win nor make the building "split".
SLIVER_SHARE = 0.001

# Point entities assigned to grids: kind stored in entity_grid → its table (rules as data).
ENTITY_KINDS = {"camera": m.Camera, "volunteer": m.Volunteer, "responder": m.Responder}

# Steps of one run, in order; ``progress`` is called once after each.
RUN_STEPS = ("grids", "buildings", "households", "party members", "contact households", "entities", "write")

# A footprint lies within ~1 km of its representative point; buildings whose point is farther
# than this from every target grid's bounding box cannot overlap those grids.
_BBOX_MARGIN_DEG = 0.01

_NO_SHARES = ""


# --------------------------------------------------------------------------------------------
# Pure jobs over frames
# --------------------------------------------------------------------------------------------

def buildings_to_grids(buildings, grids, *, sliver=SLIVER_SHARE):
    """Assign each building to the grid holding the largest share of its footprint.

    Parameters
    ----------
    buildings : geopandas.GeoDataFrame
        Footprint polygons or points, WGS84.
    grids : geopandas.GeoDataFrame
        Grid polygons in WGS84 with a ``code`` column.
    sliver : float, default SLIVER_SHARE
        Overlaps below this fraction of a footprint are ignored (projection noise).

    Returns
    -------
    pandas.DataFrame
        Indexed like ``buildings``: ``grid`` (position in ``grids``, -1 in none),
        ``grid_code`` (None in none), ``share`` of the footprint in that grid (1.0 for
        points), ``split`` (True when two or more grids hold ≥ ``sliver``) and ``shares``
        (``{code: share}`` for split buildings, else an empty dict). Areas are measured in
        metres in a local transverse Mercator CRS. Ties go to the lowest grid code, the
        rule lookups use on shared edges.
    """
    n = len(buildings)
    out = pd.DataFrame({"grid": np.full(n, -1, dtype=np.int64), "grid_code": np.full(n, None, dtype=object),
                        "share": np.zeros(n), "split": np.zeros(n, dtype=bool),
                        "shares": [{} for _ in range(n)]}, index=buildings.index)
    if n == 0 or len(grids) == 0:
        return out
    codes = grids["code"].to_numpy(dtype=object)
    metric = metric_for(grids)
    bm = _to_metric(buildings.geometry, metric)
    gm = _to_metric(grids.geometry, metric)
    area = shapely.area(bm)
    is_poly = np.isin(shapely.get_type_id(bm), (3, 6)) & (area > 0)

    poly_pos = np.flatnonzero(is_poly)
    if len(poly_pos):
        tree = shapely.STRtree(gm)
        b_local, g_idx = tree.query(bm[poly_pos], predicate="intersects")
        b_idx = poly_pos[b_local]
        # Most footprints touch one grid and lie inside it: a prepared covered-by test answers
        # those (share 1) far faster than computing an intersection for every pair.
        shares = np.full(len(b_idx), np.nan)
        single = np.bincount(b_idx, minlength=n)[b_idx] == 1
        shapely.prepare(gm)
        whole = np.zeros(len(b_idx), dtype=bool)
        whole[single] = shapely.contains_properly(gm[g_idx[single]], bm[b_idx[single]])
        shares[whole] = 1.0
        rest = ~whole
        shares[rest] = shapely.area(shapely.intersection(bm[b_idx[rest]], gm[g_idx[rest]])) / area[b_idx[rest]]
        pairs = pd.DataFrame({"b": b_idx, "g": g_idx, "share": shares, "code": codes[g_idx].astype(str)})
        pairs = pairs[pairs["share"] >= sliver]
        pairs = pairs.sort_values(["b", "share", "code"], ascending=[True, False, True], kind="stable")
        best = pairs.drop_duplicates("b")
        pos = best["b"].to_numpy()
        out.iloc[pos, out.columns.get_loc("grid")] = best["g"].to_numpy()
        out.iloc[pos, out.columns.get_loc("share")] = best["share"].to_numpy()
        counts = pairs.groupby("b").size()
        split = counts[counts > 1].index.to_numpy()
        out.iloc[split, out.columns.get_loc("split")] = True
        shares_col = out.columns.get_loc("shares")
        for b, group in pairs[pairs["b"].isin(split)].groupby("b"):
            out.iat[b, shares_col] = {c: round(float(s), 4) for c, s in zip(group["code"], group["share"])}

    point_pos = np.flatnonzero(~is_poly)
    if len(point_pos):
        # Points (and degenerate footprints) follow the lookup's own rule, edge cases included.
        probe = shapely.point_on_surface(np.asarray(buildings.geometry.values, dtype=object)[point_pos])
        found = np.asarray(points_to_grids(gpd.GeoSeries(probe, crs=buildings.crs), grids), dtype=np.int64)
        out.iloc[point_pos, out.columns.get_loc("grid")] = found
        out.iloc[point_pos, out.columns.get_loc("share")] = np.where(found >= 0, 1.0, 0.0)
    hit = out["grid"].to_numpy() >= 0
    out.loc[hit, "grid_code"] = codes[out["grid"].to_numpy()[hit]]
    return out


def members_to_grids(members, grids):
    """Enrol party members in the grid they live in, or the nearest grid with a branch if they live in none.

    Parameters
    ----------
    members : geopandas.GeoDataFrame
        WGS84 home points (None when unknown). Optional columns: ``building_grid``
        (position in ``grids`` of the member's building's grid, -1 when the building
        lies in no grid; it wins over the home point, since the register of who lives
        where is the building) and ``community_code`` (the community the member is
        registered with: a member living outside every grid goes to the nearest grid
        *of that community* when it has any).
    grids : geopandas.GeoDataFrame
        WGS84 grid polygons with ``code``; optional ``community_code`` and ``branch_id``
        (grids without a branch — NaN/None — are skipped for members living outside).

    Returns
    -------
    pandas.DataFrame
        Indexed like ``members``: ``grid`` (-1 when the member has no home at all),
        ``grid_code``, ``branch_id`` (None when the grid has no branch), ``distance_m``
        (0 inside, else metres from home to the grid polygon in a local metric CRS)
        and ``outside`` (lives in no grid).
    """
    n = len(members)
    grid = (members["building_grid"].fillna(-1).to_numpy(dtype=np.int64, copy=True) if "building_grid" in members
            else np.full(n, -1, dtype=np.int64))
    distance = np.zeros(n)
    outside = np.zeros(n, dtype=bool)
    geoms = np.asarray(members.geometry.values, dtype=object)
    has_home = ~shapely.is_missing(geoms) if n else np.zeros(0, dtype=bool)
    if n and len(grids):
        todo = np.flatnonzero((grid < 0) & has_home)
        if len(todo):
            grid[todo] = np.asarray(points_to_grids(gpd.GeoSeries(geoms[todo], crs=members.crs), grids),
                                    dtype=np.int64)
        away = np.flatnonzero((grid < 0) & has_home)
        if len(away):
            metric = metric_for(grids)
            gm = _to_metric(grids.geometry, metric)
            pm = _to_metric(gpd.GeoSeries(geoms[away], crs=members.crs), metric)
            with_branch = (grids["branch_id"].notna().to_numpy() if "branch_id" in grids
                           else np.ones(len(grids), dtype=bool))
            if not with_branch.any():
                with_branch[:] = True  # no branches at all yet: the nearest grid is still the answer
            member_comm = (members["community_code"].to_numpy(dtype=object)[away] if "community_code" in members
                           else np.full(len(away), None, dtype=object))
            grid_comm = (grids["community_code"].to_numpy(dtype=object) if "community_code" in grids
                         else np.full(len(grids), None, dtype=object))
            member_comm = np.array([None if pd.isna(c) else c for c in member_comm], dtype=object)
            for comm in dict.fromkeys(member_comm):
                mine = np.flatnonzero(member_comm == comm) if comm is not None else \
                    np.flatnonzero(pd.isna(member_comm))
                cands = np.flatnonzero(with_branch & (grid_comm == comm)) if comm is not None else []
                if not len(cands):
                    cands = np.flatnonzero(with_branch)  # not registered anywhere we know: nearest of all
                tree = shapely.STRtree(gm[cands])
                (p_idx, t_idx), dist = tree.query_nearest(pm[mine], return_distance=True, all_matches=True)
                # all_matches keeps equidistant grids; the lowest code wins, as on shared edges
                pick = pd.DataFrame({"p": p_idx, "g": cands[t_idx], "d": dist,
                                     "code": grids["code"].to_numpy(dtype=object)[cands[t_idx]].astype(str)})
                pick = pick.sort_values(["p", "code"], kind="stable").drop_duplicates("p")
                rows = away[mine[pick["p"].to_numpy()]]
                grid[rows] = pick["g"].to_numpy()
                distance[rows] = pick["d"].to_numpy()
                outside[rows] = True
    codes = grids["code"].to_numpy(dtype=object) if len(grids) else np.array([], dtype=object)
    branch = grids["branch_id"].to_numpy(dtype=object) if "branch_id" in grids else np.full(len(grids), None)
    hit = grid >= 0
    out = pd.DataFrame({"grid": grid, "grid_code": np.full(n, None, dtype=object),
                        "branch_id": np.full(n, None, dtype=object), "distance_m": distance,
                        "outside": outside}, index=members.index)
    out.loc[hit, "grid_code"] = codes[grid[hit]]
    out.loc[hit, "branch_id"] = [None if pd.isna(b) else int(b) for b in branch[grid[hit]]]
    return out


def link_contact_households(members, households, capacity):
    """Link households to party members (党员联系户): most households covered, then least total distance.

    Within each grid every member may be linked to every household, so the bipartite graph
    is complete and the largest possible number of links is ``min(H, capacity × M)``. The
    problem is solved exactly as a rectangular assignment: rows are households, columns are
    ``capacity`` copies of each member, costs are distances. SciPy's
    ``linear_sum_assignment`` matches every row or every column (whichever side is smaller)
    at minimum total cost, i.e. maximum cardinality first, minimum distance among those.

    Parameters
    ----------
    members : pandas.DataFrame
        ``member_id``, ``grid_code``, ``x``, ``y`` (home, metres in one projected CRS).
    households : pandas.DataFrame
        ``household_id``, ``grid_code``, ``x``, ``y`` (their building's representative
        point: households have no position of their own).
    capacity : int
        Most households per member (setting ``CONTACT_HOUSEHOLDS_PER_MEMBER``).

    Returns
    -------
    links : pandas.DataFrame
        ``household_id``, ``member_id``, ``grid_code``, ``distance_m``.
    unlinked : pandas.DataFrame
        ``household_id``, ``grid_code`` of households no member could take.
    """
    if int(capacity) < 0:
        raise InvalidInput(N_("Contact capacity %(capacity)s is negative."),
                           fix=N_("Set CONTACT_HOUSEHOLDS_PER_MEMBER to 0 or more (default 15)."),
                           params={"capacity": capacity})
    capacity = int(capacity)
    # Plain arrays sorted by (grid, id): per-grid pandas slicing cost more than the solver.
    keys = pd.Index(pd.unique(np.concatenate([households["grid_code"].to_numpy(dtype=object),
                                              members["grid_code"].to_numpy(dtype=object)])))
    hk = keys.get_indexer(households["grid_code"].to_numpy(dtype=object))
    mk = keys.get_indexer(members["grid_code"].to_numpy(dtype=object))
    hid, mid = households["household_id"].to_numpy(), members["member_id"].to_numpy()
    ho, mo = np.lexsort((hid, hk)), np.lexsort((mid, mk))
    hk, hid = hk[ho], hid[ho]
    hx, hy = households["x"].to_numpy(dtype=float)[ho], households["y"].to_numpy(dtype=float)[ho]
    mk, mid = mk[mo], mid[mo]
    mx, my = members["x"].to_numpy(dtype=float)[mo], members["y"].to_numpy(dtype=float)[mo]
    linked = np.zeros(len(hid), dtype=bool)
    out_h, out_m, out_d = [], [], []
    if capacity > 0 and len(mid):
        for k in np.unique(hk):
            h0, h1 = np.searchsorted(hk, k), np.searchsorted(hk, k, side="right")
            m0, m1 = np.searchsorted(mk, k), np.searchsorted(mk, k, side="right")
            if m0 == m1:
                continue
            copies = min(capacity, h1 - h0)  # more copies than households can never be used
            cost = np.hypot(hx[h0:h1, None] - mx[None, m0:m1], hy[h0:h1, None] - my[None, m0:m1])
            rows, cols = linear_sum_assignment(np.repeat(cost, copies, axis=1))
            who = cols // copies
            out_h.append(h0 + rows)
            out_m.append(m0 + who)
            out_d.append(cost[rows, who])
    h_pos = np.concatenate(out_h) if out_h else np.zeros(0, dtype=np.int64)
    m_pos = np.concatenate(out_m) if out_m else np.zeros(0, dtype=np.int64)
    linked[h_pos] = True
    codes = keys.to_numpy(dtype=object)
    links = pd.DataFrame({"household_id": hid[h_pos], "member_id": mid[m_pos],
                          "grid_code": codes[hk[h_pos]] if len(h_pos) else np.zeros(0, dtype=object),
                          "distance_m": np.concatenate(out_d) if out_d else np.zeros(0)})
    free = ~linked
    unlinked = pd.DataFrame({"household_id": hid[free],
                             "grid_code": codes[hk[free]] if free.any() else np.zeros(0, dtype=object)})
    return links, unlinked


def group_parent_mismatches(groups, branch_of_building):
    """Building / courtyard party groups whose parent is not the branch of the grid they sit in.

    Parameters
    ----------
    groups : pandas.DataFrame
        ``id``, ``parent_id``, ``building_ids`` (list: the group's building, or every
        building of its courtyard).
    branch_of_building : dict
        building id → branch id of the building's grid.

    Returns
    -------
    list of dict
        ``group_id``, ``parent_id`` and ``expected_branch_id`` (the branch holding most of
        the group's buildings; lowest id on a tie) for every group that disagrees.
    """
    out = []
    for g in groups.itertuples(index=False):
        branches = [branch_of_building.get(b) for b in g.building_ids]
        branches = [b for b in branches if b is not None]
        if not branches:
            continue
        values, counts = np.unique(branches, return_counts=True)
        expected = int(values[np.argmax(counts)])
        parent = None if pd.isna(g.parent_id) else int(g.parent_id)
        if parent != expected:
            out.append({"group_id": int(g.id), "parent_id": parent, "expected_branch_id": expected})
    return out


def worker_load(worker_grids, households_per_grid):
    """Households each grid worker serves: every grid they serve, each counted once.

    Parameters
    ----------
    worker_grids : pandas.DataFrame
        ``worker_id``, ``grid_code`` (one row per worker and grid served).
    households_per_grid : mapping
        grid code → number of households.

    Returns
    -------
    pandas.Series
        Households per worker id, sorted by worker id.
    """
    wg = worker_grids.drop_duplicates(["worker_id", "grid_code"])
    load = wg["grid_code"].map(lambda c: int(households_per_grid.get(c, 0)))
    return load.groupby(wg["worker_id"]).sum().sort_index().astype(int)


# --------------------------------------------------------------------------------------------
# Store-facing run
# --------------------------------------------------------------------------------------------

def run(session, plan_ids=None, *, community=None, capacity=None, progress=None):
    """Compute and store every assignment for some plans, replacing their earlier rows.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        Inside the caller's transaction: the old rows go and the new come in one commit.
    plan_ids : list of int, optional
        Plans to assign (a draft may be assigned to preview it). Default: every
        published plan, or ``community``'s published plan.
    community : str, optional
        12-digit community code whose published plan to assign.
    capacity : int, optional
        Households per party member; default the setting ``CONTACT_HOUSEHOLDS_PER_MEMBER``.
    progress : callable, optional
        Called with the name of each step of :data:`RUN_STEPS` once it is done.

    Returns
    -------
    list of dict
        One summary per plan (see :func:`_summaries`), in community order.

    Notes
    -----
    Grids of the plans assigned together with the published grids of every *other*
    community form the map: a building, member or camera belongs to the plan whose grid it
    lies in, so assigning one community or all of them gives the same answer per plan.
    :func:`compute` and :func:`write` are the two halves, for runs that compute elsewhere
    (the Dask batch of ``gridmap assign --all``) and write here.
    """
    t0 = time.perf_counter()
    result = compute(session, plan_ids, community=community, capacity=capacity, progress=progress)
    summaries = write(session, result, started=t0)
    (progress or (lambda _name: None))("write")
    return summaries


def compute(session, plan_ids=None, *, community=None, capacity=None, progress=None):
    """Every assignment of some plans, computed from the store but not written: the rows :func:`write` stores.

    Parameters are those of :func:`run`; ``session`` is only read (any transaction will do).

    Returns
    -------
    dict
        ``plan_ids``, the ``rows`` per table (DataFrames ready for the store) and the ``summaries``;
        plain data, so it pickles (a Dask worker sends it back to the client that writes it).
    """
    capacity = _setting("CONTACT_HOUSEHOLDS_PER_MEMBER") if capacity is None else capacity
    step = progress or (lambda _name: None)
    plans = _target_plans(session, plan_ids, community)
    grids = _universe(session, plans)
    target = grids["plan_id"].isin([p.id for p in plans]).to_numpy()
    step("grids")

    buildings = _candidate_buildings(session, grids[target])
    bg = buildings_to_grids(buildings, grids)
    buildings = buildings.join(bg[["grid", "grid_code", "share", "split", "shares"]])
    buildings["plan_id"] = _plan_of(grids, buildings["grid"])
    targets = {p.id for p in plans}
    mine_b = buildings[buildings["plan_id"].isin(targets)].copy()
    step("buildings")

    households = _households(session, grids[target])
    households = households[households["building_id"].isin(mine_b.index)].copy()
    households["grid_code"] = households["building_id"].map(mine_b["grid_code"])
    residents = _resident_counts(session, grids[target])
    step("households")

    members = _members(session)
    members["building_grid"] = members["building_id"].map(buildings["grid"]).fillna(-1).astype(np.int64)
    mg = members_to_grids(members, grids)
    members = members.join(mg[["grid", "grid_code", "branch_id", "distance_m", "outside"]])
    members["plan_id"] = _plan_of(grids, members["grid"])
    mine_m = members[members["plan_id"].isin(targets)].copy()
    mismatches = _group_mismatches(session, plans, buildings, grids)
    step("party members")

    links, unlinked = _contact_links(plans, grids, mine_m, mine_b, households, capacity)
    step("contact households")

    entities = _entities(session, grids)
    step("entities")

    summaries = _summaries(session, plans, grids, buildings, mine_b, households, residents, mine_m, links,
                           unlinked, entities, mismatches, capacity)
    return {"plan_ids": [p.id for p in plans], "rows": _rows(plans, mine_b, mine_m, links, entities),
            "summaries": summaries}


_STORES = {}  # one Store per database URL per process: a Dask worker computes many batches


def compute_at(url, plan_ids, capacity):
    """:func:`compute` for ``plan_ids`` in a read-only transaction of its own on the store at ``url``.

    The task of one batch of ``gridmap assign --all`` on a Dask worker: it reads, the client writes
    (SQLite takes one writer at a time; see :mod:`gridmap.cli.batch`).
    """
    from .store import Store
    store = _STORES.get(url)
    if store is None:
        store = _STORES[url] = Store(url)
    with store.session() as session:
        try:
            return compute(session, plan_ids, capacity=capacity)
        finally:
            session.rollback()  # nothing to keep: the client writes


def write(session, result, *, started=None):
    """Store what :func:`compute` found, replacing the plans' earlier rows, in the caller's transaction.

    Returns the summaries, each with ``seconds`` since ``started`` (a ``time.perf_counter()``; default now).
    """
    ids = result["plan_ids"]
    for model in (m.BuildingGrid, m.MemberGrid, m.ContactLink, m.EntityGrid, m.AssignmentRun):
        session.execute(delete(model).where(model.plan_id.in_(ids)))
    for model in (m.BuildingGrid, m.MemberGrid, m.ContactLink, m.EntityGrid):
        rows = result["rows"][model.__tablename__]
        if len(rows):
            bulk_insert(session, model, rows)
    seconds = round(time.perf_counter() - (time.perf_counter() if started is None else started), 3)
    summaries = [{**s, "seconds": seconds} for s in result["summaries"]]
    for s in summaries:
        session.add(m.AssignmentRun(plan_id=s["plan_id"], summary=json.dumps(s, ensure_ascii=False)))
    session.flush()
    return summaries


def _target_plans(session, plan_ids, community):
    if plan_ids is not None and community is not None:
        raise InvalidInput(N_("Give plan ids or a community, not both."), fix=N_("Drop one of the two."))
    if community is not None:
        if session.get(m.Community, community) is None:
            known = session.scalars(select(m.Community.code).order_by(m.Community.code).limit(10)).all()
            raise NotFound(N_("Community %(community)s is not in the store."),
                           fix="Give a 12-digit community code, e.g. " + (", ".join(known) or "import one first") + ".",
                           details={"community": community},
                           params={"community": repr(community)})
        plans = session.scalars(select(m.GridPlan).where(m.GridPlan.community_code == community,
                                                         m.GridPlan.status == "published")).all()
        if not plans:
            raise NotFound(N_("Community %(community)s has no published grid plan to assign against."),
                           fix=N_("Publish a plan first (gridmap import grids … --publish)."),
                           params={"community": community})
    elif plan_ids is not None:
        ids = sorted({int(i) for i in plan_ids})
        plans = session.scalars(select(m.GridPlan).where(m.GridPlan.id.in_(ids))).all()
        missing = sorted(set(ids) - {p.id for p in plans})
        if missing:
            raise NotFound(N_("Grid plan(s) %(missing)s are not in the store."), fix=N_("Give ids of existing plans."),
                           params={"missing": missing})
    else:
        plans = session.scalars(select(m.GridPlan).where(m.GridPlan.status == "published")).all()
    communities = [p.community_code for p in plans]
    twice = sorted({c for c in communities if communities.count(c) > 1})
    if twice:
        raise InvalidInput(N_("Several plans of community %(value)s were asked for at once."),
                           fix=N_("Assign one plan per community per run."),
                           params={"value": twice[0]})
    return sorted(plans, key=lambda p: (p.community_code, p.id))


def _universe(session, plans):
    """The map to assign against: the target plans' grids and other communities' published grids."""
    ids = [p.id for p in plans]
    comms = [p.community_code for p in plans]
    q = (select(m.Grid.id, m.Grid.code, m.Grid.geom, m.Grid.plan_id, m.GridPlan.community_code)
         .join(m.GridPlan)
         .where(or_(m.Grid.plan_id.in_(ids) if ids else False,
                    and_(m.GridPlan.status == "published",
                         m.GridPlan.community_code.not_in(comms) if comms else True)))
         .order_by(m.Grid.code, m.Grid.plan_id))
    rows = session.execute(q).all()
    grids = gpd.GeoDataFrame({"grid_id": [r.id for r in rows], "code": [r.code for r in rows],
                              "plan_id": [r.plan_id for r in rows],
                              "community_code": [r.community_code for r in rows]},
                             geometry=[r.geom for r in rows], crs=4326)
    branches = dict(session.execute(
        select(m.PartyOrganization.grid_code, func.min(m.PartyOrganization.id))
        .where(m.PartyOrganization.kind == "grid_branch", m.PartyOrganization.grid_code.is_not(None))
        .group_by(m.PartyOrganization.grid_code)).all())
    grids["branch_id"] = pd.array([branches.get(c) for c in grids["code"]], dtype="Int64")
    return grids.reset_index(drop=True)


def _plan_of(grids, positions):
    pos = positions.to_numpy(dtype=np.int64)
    plan = np.full(len(pos), None, dtype=object)
    hit = pos >= 0
    plan[hit] = grids["plan_id"].to_numpy(dtype=object)[pos[hit]]
    return pd.Series(plan, index=positions.index)


def _bbox_filter(grids):
    if not len(grids):
        return False
    x0, y0, x1, y1 = grids.total_bounds
    d = _BBOX_MARGIN_DEG
    return and_(m.Building.lon.between(x0 - d, x1 + d), m.Building.lat.between(y0 - d, y1 + d))


def _candidate_buildings(session, target_grids):
    rows = session.execute(select(m.Building.id, m.Building.community_code, m.Building.courtyard_id,
                                  m.Building.households, m.Building.lon, m.Building.lat, m.Building.geom)
                           .where(_bbox_filter(target_grids)).order_by(m.Building.id)).all()
    return gpd.GeoDataFrame({"community_code": [r.community_code for r in rows],
                             "courtyard_id": [r.courtyard_id for r in rows],
                             "declared_households": [int(r.households or 0) for r in rows],
                             "lon": [r.lon for r in rows], "lat": [r.lat for r in rows]},
                            geometry=[r.geom for r in rows], crs=4326,
                            index=pd.Index([r.id for r in rows], name="building_id"))


def _households(session, target_grids):
    rows = session.execute(select(m.Household.id, m.Household.building_id).join(m.Building)
                           .where(_bbox_filter(target_grids)).order_by(m.Household.id)).all()
    return pd.DataFrame(rows, columns=["household_id", "building_id"])


def _resident_counts(session, target_grids):
    rows = session.execute(select(m.Household.building_id, func.count(m.Resident.id))
                           .join(m.Household, m.Resident.household_id == m.Household.id)
                           .join(m.Building, m.Household.building_id == m.Building.id)
                           .where(_bbox_filter(target_grids)).group_by(m.Household.building_id)).all()
    return pd.Series(dict(rows), dtype="int64")


def _members(session):
    """Every party member with a home point and the community they are registered with."""
    org_comm = select(m.PartyOrganization.id, m.PartyOrganization.community_code).subquery()
    rows = session.execute(
        select(m.PartyMember.id, m.PartyMember.building_id, m.PartyMember.geom, m.Building.lon, m.Building.lat,
               m.Building.community_code.label("building_community"), org_comm.c.community_code)
        .outerjoin(m.Building, m.PartyMember.building_id == m.Building.id)
        .outerjoin(org_comm, m.PartyMember.organization_id == org_comm.c.id)
        .order_by(m.PartyMember.id)).all()
    # The home point is the member's own position; failing that, their building's.
    homes = [r.geom if r.geom is not None else (shapely.Point(r.lon, r.lat) if r.lon is not None else None)
             for r in rows]
    return gpd.GeoDataFrame({"building_id": pd.array([r.building_id for r in rows], dtype="Int64"),
                             "community_code": [r.community_code or r.building_community for r in rows]},
                            geometry=homes, crs=4326, index=pd.Index([r.id for r in rows], name="member_id"))


def _group_mismatches(session, plans, buildings, grids):
    comms = [p.community_code for p in plans]
    if not comms:
        return []
    assigned = buildings[buildings["plan_id"].notna()]
    branch_of_building = {b: int(grids["branch_id"].iloc[g]) for b, g in assigned["grid"].items()
                          if not pd.isna(grids["branch_id"].iloc[g])}
    by_courtyard = assigned.groupby("courtyard_id").groups if len(assigned) else {}
    rows = session.execute(select(m.PartyOrganization.id, m.PartyOrganization.parent_id,
                                  m.PartyOrganization.building_id, m.PartyOrganization.courtyard_id,
                                  m.PartyOrganization.community_code)
                           .where(m.PartyOrganization.kind == "group",
                                  m.PartyOrganization.community_code.in_(comms))).all()
    groups = pd.DataFrame({
        "id": [r.id for r in rows], "parent_id": [r.parent_id for r in rows],
        "building_ids": [[r.building_id] if r.building_id is not None
                         else list(by_courtyard.get(r.courtyard_id, [])) for r in rows]})
    community = {r.id: r.community_code for r in rows}
    return [{**d, "community": community[d["group_id"]]}
            for d in group_parent_mismatches(groups, branch_of_building)]


def _contact_links(plans, grids, members, buildings, households, capacity):
    """Link each plan's households in metres of that plan's own local CRS.

    One CRS per plan, not one for the whole run: distances (and so the choice among equally
    good links) then do not depend on which other communities were assigned alongside.
    """
    links, unlinked = [], []
    for plan in plans:
        metric = metric_for(grids[grids["plan_id"] == plan.id])
        # Members living outside every grid are enrolled with a branch but are nobody's neighbour:
        # contact households are looked in on, so only members living in the grid take them.
        local = members[(members["plan_id"] == plan.id) & ~members["outside"]]
        b = buildings[buildings["plan_id"] == plan.id]
        hh = households[households["building_id"].isin(b.index)]
        mx, my = metric.xy(local.geometry.x.to_numpy(), local.geometry.y.to_numpy())
        bx, by = metric.xy(b["lon"].to_numpy(), b["lat"].to_numpy())
        hpos = pd.Series(np.arange(len(b)), index=b.index).loc[hh["building_id"]].to_numpy()
        lk, ul = link_contact_households(
            pd.DataFrame({"member_id": local.index.to_numpy(), "grid_code": local["grid_code"].to_numpy(),
                          "x": mx, "y": my}),
            pd.DataFrame({"household_id": hh["household_id"].to_numpy(), "grid_code": hh["grid_code"].to_numpy(),
                          "x": bx[hpos], "y": by[hpos]}),
            capacity)
        links.append(lk)
        unlinked.append(ul)
    if not plans:
        return (pd.DataFrame({"household_id": [], "member_id": [], "grid_code": [], "distance_m": []}),
                pd.DataFrame({"household_id": [], "grid_code": []}))
    return pd.concat(links, ignore_index=True), pd.concat(unlinked, ignore_index=True)


def _to_metric(series, metric):
    """``series.to_crs(metric.crs).values``, for WGS84 input with the community's cached transformer:
    building one per community cost ~25 ms, more than the assignment itself in a small one."""
    if series.crs is not None and series.crs.equals("EPSG:4326"):
        return np.asarray(metric.project(series.values), dtype=object)
    return np.asarray(series.to_crs(metric.crs).values, dtype=object)


def _entities(session, grids):
    frames = []
    for kind, model in ENTITY_KINDS.items():
        rows = session.execute(select(model.id, model.geom).order_by(model.id)).all()
        if not rows:
            continue
        pts = gpd.GeoSeries([r.geom for r in rows], crs=4326)
        pos = np.asarray(points_to_grids(pts, grids), dtype=np.int64)
        hit = pos >= 0
        frames.append(pd.DataFrame({"entity_kind": kind, "entity_id": np.array([r.id for r in rows])[hit],
                                    "grid_code": grids["code"].to_numpy(dtype=object)[pos[hit]],
                                    "plan_id": grids["plan_id"].to_numpy()[pos[hit]]}))
    return (pd.concat(frames, ignore_index=True) if frames else
            pd.DataFrame({"entity_kind": [], "entity_id": [], "grid_code": [], "plan_id": []}))


def _rows(plans, buildings, members, links, entities):
    """The target plans' rows per table, as the store takes them (table name → DataFrame)."""
    targets = {p.id for p in plans}
    b = buildings[buildings["plan_id"].isin(targets)]
    out = {}
    out[m.BuildingGrid.__tablename__] = pd.DataFrame({
        "plan_id": b["plan_id"].astype(int).to_numpy(), "building_id": b.index.to_numpy(),
        "grid_code": b["grid_code"].to_numpy(), "share": b["share"].round(6).to_numpy(),
        "split": b["split"].astype(bool).to_numpy(),
        "shares": [json.dumps(s, sort_keys=True) if s else _NO_SHARES for s in b["shares"]]})
    mm = members[members["plan_id"].isin(targets)]
    out[m.MemberGrid.__tablename__] = pd.DataFrame({
        "plan_id": mm["plan_id"].astype(int).to_numpy(), "member_id": mm.index.to_numpy(),
        "grid_code": mm["grid_code"].to_numpy(), "branch_id": mm["branch_id"].to_numpy(),
        "distance_m": mm["distance_m"].round(3).to_numpy(), "outside": mm["outside"].astype(bool).to_numpy()})
    plan_of_grid = dict(zip(b["grid_code"], b["plan_id"].astype(int)))
    plan_of_grid.update(zip(mm["grid_code"], mm["plan_id"].astype(int)))
    out[m.ContactLink.__tablename__] = pd.DataFrame({
        "plan_id": links["grid_code"].map(plan_of_grid).astype(int).to_numpy(),
        "household_id": links["household_id"].astype(int).to_numpy(),
        "member_id": links["member_id"].astype(int).to_numpy(),
        "distance_m": links["distance_m"].round(3).to_numpy()}) if len(links) else pd.DataFrame()
    e = entities[entities["plan_id"].isin(targets)]
    out[m.EntityGrid.__tablename__] = (e[["plan_id", "entity_kind", "entity_id", "grid_code"]]
                                       .astype({"plan_id": int, "entity_id": int}).reset_index(drop=True)
                                       if len(e) else pd.DataFrame())
    return out


def _summaries(session, plans, grids, all_buildings, buildings, households, residents, members, links,
               unlinked, entities, mismatches, capacity):
    """Per plan: grids, buildings (split, unplaced), households, residents, members (outside), contact
    links, unlinked households (total and per grid), entities per kind, workers' load, group mismatches."""
    # What a grid holds: a building's registered households where it has any, else the count its
    # import declared (a buildings file's households column) — as partition counts them. Counting
    # only register rows printed "households 0" for grids holding 641.
    registered = households.groupby("building_id").size()
    per_building = registered.reindex(buildings.index)
    per_building = per_building.fillna(buildings["declared_households"]).astype(int)
    hh_per_grid = per_building.groupby(buildings["grid_code"]).sum()
    res_per_building = residents.reindex(buildings.index).fillna(0).astype(int)
    res_per_grid = res_per_building.groupby(buildings["grid_code"]).sum()
    worker_rows = session.execute(select(m.grid_worker_grid.c.worker_id, m.grid_worker_grid.c.grid_code)).all()
    worker_grids = pd.DataFrame(worker_rows, columns=["worker_id", "grid_code"])
    out = []
    for plan in plans:
        codes = grids.loc[grids["plan_id"] == plan.id, "code"]
        code_set = set(codes)
        b = buildings[buildings["plan_id"] == plan.id]
        # buildings registered with this community that lie in no grid of the map at all
        unplaced = all_buildings[(all_buildings["community_code"] == plan.community_code)
                                 & (all_buildings["grid"] < 0)]
        mm = members[members["plan_id"] == plan.id]
        lk = links[links["grid_code"].isin(code_set)]
        ul = unlinked[unlinked["grid_code"].isin(code_set)]
        en = entities[entities["plan_id"] == plan.id]
        wg = worker_grids[worker_grids["grid_code"].isin(code_set)]
        load = worker_load(wg, hh_per_grid.to_dict())
        per_grid = {c: {"households": int(hh_per_grid.get(c, 0)), "residents": int(res_per_grid.get(c, 0)),
                        "members": int((mm["grid_code"] == c).sum()),
                        "contact_links": int((lk["grid_code"] == c).sum()),
                        "unlinked_households": int((ul["grid_code"] == c).sum())} for c in sorted(code_set)}
        out.append({
            "plan_id": plan.id, "community": plan.community_code, "grids": len(code_set),
            "buildings": len(b), "split_buildings": int(b["split"].sum()), "unplaced_buildings": len(unplaced),
            "households": int(sum(v["households"] for v in per_grid.values())),
            "residents": int(sum(v["residents"] for v in per_grid.values())),
            "members": len(mm), "outside_members": int(mm["outside"].sum()),
            "members_without_branch": int(mm["branch_id"].isna().sum()),
            "contact_capacity": int(capacity), "contact_links": len(lk), "unlinked_households": len(ul),
            **{f"{kind}s": int((en["entity_kind"] == kind).sum()) for kind in ENTITY_KINDS},
            "workers": len(load), "workers_max_load": int(load.max()) if len(load) else 0,
            "workers_mean_load": round(float(load.mean()), 1) if len(load) else 0.0,
            "group_mismatches": [d for d in mismatches if d["community"] == plan.community_code],
            "per_grid": per_grid,
        })
    return out


# --------------------------------------------------------------------------------------------
# Service for the API: who lives in a grid
# --------------------------------------------------------------------------------------------

def grid_members(session, grid_code, role, worker_id=None, *, area=None):
    """A grid's residents, party members and contact links, for the roles that work with people.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
    grid_code : str
        15-digit code of a grid of a published plan.
    role : str or None
        The caller's role; only those the permission table lets read people (``people.read``) may ask.
    worker_id : int, optional
        For ``grid_worker``: the worker record the account acts as; they see only grids they serve.
    area : gridmap.access.Area, optional
        Where the caller works (the web layer's ``current_area()``); read from ``worker_id`` when not given.

    Returns
    -------
    dict
        ``grid`` (code, name, plan_id, assigned_at), ``residents`` (name, address, unit,
        phone, vulnerable), ``party_members`` (id, name, phone, branch_id, outside,
        distance_m), ``contact_links`` (member id and name → households with address,
        unit, distance_m) and ``unlinked_households`` (household ids).

    Raises
    ------
    Forbidden
        For any other role, or a grid worker who does not serve the grid.
    NotFound
        When no published grid has that code, or it has not been assigned yet.
    """
    access.check(role, "people.read")
    grid = session.execute(select(m.Grid.code, m.Grid.name, m.Grid.plan_id).join(m.GridPlan)
                           .where(m.Grid.code == grid_code, m.GridPlan.status == "published")).first()
    if grid is None:
        raise NotFound(N_("Grid %(grid_code)s is in no published plan."),
                       fix=N_("Give the 15-digit code of a published grid."), details={"grid": grid_code},
                       params={"grid_code": repr(grid_code)})
    if area is None:
        served = session.scalars(select(m.grid_worker_grid.c.grid_code)
                                 .where(m.grid_worker_grid.c.worker_id == worker_id)).all() if worker_id is not None else ()
        area = access.Area(grids=served)
    at = (grid_code, grid_code[:12])
    access.check(role, "people.read", at=at, area=area)
    ran = session.get(m.AssignmentRun, grid.plan_id)
    if ran is None:
        raise NotFound(N_("Grid %(grid_code)s has not been assigned yet."),
                       fix=N_("Run: gridmap assign --community %(value)s"),
                       params={"grid_code": grid_code, "value": grid_code[:12]})
    def show_phone(phone):
        return access.phone_for(role, phone, at=at, area=area)

    plan_id = grid.plan_id
    in_grid = and_(m.BuildingGrid.plan_id == plan_id, m.BuildingGrid.grid_code == grid_code)
    residents = session.execute(
        select(m.Resident.name, m.Resident.phone, m.Resident.vulnerable, m.Household.unit, m.Building.address)
        .join(m.Household, m.Resident.household_id == m.Household.id)
        .join(m.Building, m.Household.building_id == m.Building.id)
        .join(m.BuildingGrid, m.BuildingGrid.building_id == m.Building.id).where(in_grid)
        .order_by(m.Building.address, m.Household.unit, m.Resident.id)).all()
    members = session.execute(
        select(m.PartyMember.id, m.PartyMember.name, m.PartyMember.phone, m.MemberGrid.branch_id,
               m.MemberGrid.outside, m.MemberGrid.distance_m)
        .join(m.MemberGrid, m.MemberGrid.member_id == m.PartyMember.id)
        .where(m.MemberGrid.plan_id == plan_id, m.MemberGrid.grid_code == grid_code)
        .order_by(m.PartyMember.id)).all()
    links = session.execute(
        select(m.ContactLink.member_id, m.ContactLink.household_id, m.ContactLink.distance_m,
               m.Household.unit, m.Building.address)
        .join(m.Household, m.ContactLink.household_id == m.Household.id)
        .join(m.Building, m.Household.building_id == m.Building.id)
        .join(m.MemberGrid, and_(m.MemberGrid.member_id == m.ContactLink.member_id,
                                 m.MemberGrid.plan_id == m.ContactLink.plan_id))
        .where(m.ContactLink.plan_id == plan_id, m.MemberGrid.grid_code == grid_code)
        .order_by(m.ContactLink.member_id, m.ContactLink.distance_m, m.ContactLink.household_id)).all()
    unlinked = session.scalars(
        select(m.Household.id).join(m.BuildingGrid, m.BuildingGrid.building_id == m.Household.building_id)
        .outerjoin(m.ContactLink, and_(m.ContactLink.household_id == m.Household.id,
                                       m.ContactLink.plan_id == plan_id))
        .where(in_grid, m.ContactLink.household_id.is_(None)).order_by(m.Household.id)).all()
    names = {r.id: r.name for r in members}
    by_member = {}
    for r in links:
        by_member.setdefault(r.member_id, []).append(
            {"household_id": r.household_id, "address": r.address, "unit": r.unit,
             "distance_m": round(r.distance_m, 1)})
    return {
        "grid": {"code": grid.code, "name": grid.name, "plan_id": plan_id,
                 "assigned_at": ran.ran_at.isoformat(timespec="seconds")},
        "residents": [{"name": r.name, "address": r.address, "unit": r.unit, "phone": show_phone(r.phone),
                       "vulnerable": bool(r.vulnerable)} for r in residents],
        "party_members": [{"id": r.id, "name": r.name, "phone": show_phone(r.phone), "branch_id": r.branch_id,
                           "outside": bool(r.outside), "distance_m": round(r.distance_m, 1)} for r in members],
        "contact_links": [{"member_id": mid, "member_name": names.get(mid, ""), "households": hh}
                          for mid, hh in by_member.items()],
        "unlinked_households": list(unlinked),
    }
