"""Camera placement: candidate sites, the fewest new cameras reaching a target coverage (exact or greedy with its bound)."""
from __future__ import annotations

import heapq
import math
import multiprocessing
import time
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from ..errors import InvalidInput, N_
from ..geo.viewshed import Obstacles, polygonal, view_polygons

DEFAULT_BEARINGS = tuple(range(0, 360, 45))


def candidate_sites(obstacles, area=None, *, offset_m=0.3, roads=None, pole_spacing_m=30.0):
    """Return places a camera could be mounted: building corners, wall midpoints, road poles.

    Parameters
    ----------
    obstacles : sequence of Polygon or GeoSeries
        Footprints in metres. Corners are offset ``offset_m`` outward along the corner's mean
        normal, wall midpoints ``offset_m`` along the wall's normal.
    area : shapely geometry, optional
        Keep only sites inside it.
    roads : sequence of LineString or GeoSeries, optional
        Poles every ``pole_spacing_m`` along each road (both ends included).

    Returns
    -------
    numpy.ndarray (n, 2)
        Site coordinates in metres, outside every footprint.
    """
    obs = obstacles if isinstance(obstacles, Obstacles) else Obstacles(obstacles)
    pts = []
    if len(obs):
        a, b = obs.a, obs.b
        ab = b - a
        length = np.hypot(*ab.T)
        ok = length > 1e-6
        n = np.zeros_like(ab)
        n[ok] = np.column_stack([ab[ok, 1], -ab[ok, 0]]) / length[ok, None]
        pts.append(((a + b) / 2 + offset_m * n)[ok])
        # corner at b: the normal of this edge and of the next edge of the same ring
        nxt = np.arange(len(a)) + 1
        nxt_ok = nxt < len(a)
        nxt[~nxt_ok] = 0
        same = nxt_ok & np.all(np.isclose(a[nxt], b), axis=1)
        # close each ring: the edge after a ring's last one is its first
        first = np.flatnonzero(~np.r_[False, np.all(np.isclose(a[1:], b[:-1]), axis=1)])
        ring_id = np.cumsum(np.isin(np.arange(len(a)), first)) - 1
        nxt[~same] = first[ring_id[~same]]
        m = n + n[nxt]
        mlen = np.hypot(*m.T)
        good = ok & (mlen > 1e-6)
        pts.append(b[good] + offset_m * m[good] / mlen[good, None])
    if roads is not None:
        for line in np.asarray(getattr(roads, "values", roads), dtype=object):
            for part in shapely.get_parts(line):
                k = max(1, int(math.ceil(part.length / pole_spacing_m)))
                pts.append(shapely.get_coordinates(shapely.line_interpolate_point(part, np.linspace(0, 1, k + 1),
                                                                                  normalized=True)))
    if not pts:
        return np.empty((0, 2))
    xy = np.unique(np.round(np.concatenate(pts), 3), axis=0)
    keep = np.ones(len(xy), dtype=bool)
    if len(obs):
        hit = obs.tree.query(shapely.points(xy), predicate="intersects")[0]
        keep[hit] = False
    if area is not None:
        keep &= shapely.contains_xy(area, xy[:, 0], xy[:, 1]) | shapely.intersects_xy(area, xy[:, 0], xy[:, 1])
    return xy[keep]


@dataclass
class _Samples:
    xy: np.ndarray
    weight: np.ndarray


def _samples(public, cell_m):
    x0, y0, x1, y1 = public.bounds
    xs = np.arange(x0, x1, cell_m)
    ys = np.arange(y0, y1, cell_m)
    gx, gy = np.meshgrid(xs, ys)
    cells = shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + cell_m, gy.ravel() + cell_m)
    cells = cells[shapely.intersects(cells, public)]
    parts = shapely.intersection(cells, public)
    w = shapely.area(parts)
    keep = w > 1e-9
    parts, w = parts[keep], w[keep]
    # the point stands for its cell's public part; point_on_surface keeps it inside that part
    return _Samples(shapely.get_coordinates(shapely.point_on_surface(parts)), w)


def place_cameras(area, obstacles, candidates, *, target_percent, fov, range_m, bearings=DEFAULT_BEARINGS,
                  existing=None, cell_m=None, max_exact=400_000, time_limit=20.0):
    """Choose the fewest new cameras that bring the public space's coverage to ``target_percent``.

    The public space (``area`` minus footprints) is cut into square cells of ``cell_m``; a cell
    counts as seen by a candidate when its inner point is in the candidate's view, and weighs its
    public area. Every candidate site is tried at every bearing of ``bearings``.

    Parameters
    ----------
    area : shapely geometry
        Courtyard or grid polygon, in metres.
    obstacles : sequence of Polygon or GeoSeries
        Building footprints in metres.
    candidates : array_like (n, 2) or sequence of Points
        Candidate sites, e.g. from :func:`candidate_sites`.
    target_percent : float
        Coverage to reach, in percent of the public space (cameras already in ``existing`` count).
    fov, range_m : float
        Field of view (degrees) and range (metres) of the new cameras.
    bearings : sequence of float
        Bearings tried at each site.
    existing : GeoDataFrame, optional
        Cameras already installed (as for :func:`coverage`); what they see needs no new camera.
    cell_m : float, optional
        Cell size; default about 4,000 cells over the public space, at least 0.5 m.
    max_exact : int
        Largest number of (cell class × candidate) incidences solved exactly with an integer
        programme (:func:`scipy.optimize.milp`); above it, or when the solver does not prove an
        optimum within ``time_limit`` seconds, the greedy answer is returned.
    time_limit : float
        Wall-clock seconds the exact attempt may take in all: merging cells, building the
        programme, the solver's presolve and its search. Where the platform can fork, the solver
        runs in a child process that is stopped at the deadline whatever it is doing (HiGHS looks
        at its own limit only between presolve passes, which at community scale last longer than
        the limit); elsewhere it runs here with the time left as its own limit.

    Returns
    -------
    dict
        ``sites``: GeoDataFrame of the chosen cameras (``bearing``, ``fov``, ``range_m``, point
        geometry); ``percent`` reached on the cells; ``reached`` (bool); ``cameras`` (count);
        ``method`` ``"ilp"`` or ``"greedy"``; ``bound``: what is guaranteed; ``exact``: how the
        exact attempt ended (``"optimal"``, ``"time limit"``, ``"no optimum"``, ``"too large"``,
        ``"no candidates"``); ``seconds``; ``cells``, ``candidates``.

    Notes
    -----
    Greedy picks the candidate adding the most uncovered weight until the target is met. For this
    partial set cover it uses at most H(Δ) ≤ 1 + ln Δ times the optimal number of cameras, Δ the
    most cells one candidate sees (Slavík 1997); equivalently, with a fixed number k of cameras it
    covers at least (1 − 1/e) of the best k-camera coverage (Nemhauser, Wolsey & Fisher 1978).
    """
    t0 = time.perf_counter()
    problem = _placement_problem(area, obstacles, candidates, fov=fov, range_m=range_m, bearings=bearings,
                                 existing=existing, cell_m=cell_m, target_percent=target_percent)
    out = _choose(problem, target_percent, max_exact=max_exact, time_limit=time_limit)
    out["seconds"] = time.perf_counter() - t0
    return out


@dataclass
class _Problem:
    """A placement's cells and candidates, built once and solved for one target or several."""
    A: sparse.csr_matrix
    samples: _Samples
    seen0: np.ndarray
    sites: list
    fov: float
    range_m: float


def _placement_problem(area, obstacles, candidates, *, fov, range_m, bearings, existing, cell_m, target_percent=None):
    """Public space, cells and candidate matrix of :func:`place_cameras` (which see for the parameters)."""
    obs = obstacles if isinstance(obstacles, Obstacles) else Obstacles(obstacles)
    blocked = shapely.union_all(obs.geoms) if len(obs) else shapely.Polygon()
    public = polygonal(shapely.make_valid(shapely.difference(area, blocked)))
    if public.is_empty:
        raise InvalidInput(N_("The area has no public space left once buildings are removed."),
                           fix=N_("Pass the courtyard or grid polygon, not a building footprint."))
    if target_percent is not None and not 0 < target_percent <= 100:
        raise InvalidInput(N_("target_percent was %(target_percent)s but must be in (0, 100]."),
                           fix=N_("Give a percentage of the public space, e.g. 95."),
                           params={"target_percent": repr(target_percent)})
    A, s, seen0, sites = candidate_matrix(public, obs, candidates, fov=fov, range_m=range_m, bearings=bearings,
                                          existing=existing, cell_m=cell_m)
    return _Problem(A, s, seen0, sites, float(fov), float(range_m))


def _choose(problem, target_percent, *, max_exact, time_limit, exact=True):
    """Greedy, then the exact programme within ``time_limit``; the :func:`place_cameras` answer without ``seconds``.

    ``exact=False`` skips the programme (``exact`` then says ``"skipped"``).
    """
    A, s, seen0, sites = problem.A, problem.samples, problem.seen0, problem.sites
    total = s.weight.sum()
    need = target_percent / 100.0 * total
    base = s.weight[seen0].sum()
    chosen, method, bound = _greedy(A, s.weight, ~seen0, need - base)
    if not exact:
        status = "skipped"
    elif not len(sites):
        status = "no candidates"
    elif A.nnz > max_exact:
        status = "too large"
    else:
        found, status = _ilp(A, s.weight, ~seen0, need - base, time_limit, upper=len(chosen))
        if found is not None:
            chosen, method, bound = found, "ilp", "optimal for the cells (integer programme solved to optimality)"
    seen = seen0.copy()
    if chosen:
        seen |= np.asarray(A[:, chosen].sum(axis=1)).ravel() > 0
    pct = 100.0 * s.weight[seen].sum() / total
    frame = gpd.GeoDataFrame({"bearing": [float(sites[j][2]) for j in chosen],
                              "fov": problem.fov, "range_m": problem.range_m},
                             geometry=[shapely.Point(sites[j][0], sites[j][1]) for j in chosen])
    return {"sites": frame, "percent": pct, "reached": bool(pct >= target_percent - 1e-9),
            "cameras": len(chosen), "columns": list(chosen), "method": method, "bound": bound, "exact": status,
            "cells": len(s.weight), "candidates": len(sites)}


def candidate_matrix(public, obstacles, candidates, *, fov, range_m, bearings=DEFAULT_BEARINGS, existing=None,
                     cell_m=None):
    """Discretise the public space and list which cells each candidate (site × bearing) sees.

    Returns
    -------
    tuple
        ``(A, samples, seen0, sites)``: sparse cells × candidates 0/1 matrix (cells already seen by
        ``existing`` are left out of every column), the samples (``xy``, ``weight`` = public m² of
        the cell), the boolean mask of cells seen by ``existing``, and ``(x, y, bearing)`` per column.
        Candidates that would add nothing are dropped; columns are in site order, bearings in the
        order given within a site.

    Notes
    -----
    The views of all candidates are computed in one batched call (:func:`view_polygons`); each is
    as :func:`view_polygon` would draw it alone. An STRtree over the cells' points gives the cells
    inside each view's box, and only those are tested (``contains_xy`` on the prepared view, the
    test a cell has always been counted by), so the matrix is that of testing every cell.
    """
    obs = obstacles if isinstance(obstacles, Obstacles) else Obstacles(obstacles)
    if cell_m is None:
        cell_m = max(0.5, math.sqrt(public.area / 4000.0))
    s = _samples(public, cell_m)
    tree = shapely.STRtree(shapely.points(s.xy))
    seen0 = np.zeros(len(s.weight), dtype=bool)
    if existing is not None and len(existing):
        seen0[_cells_in(view_polygons(existing, obs).values, s.xy, tree)[1]] = True
    cand = _as_xy(candidates)
    bearings = tuple(bearings)
    # one row per (site, bearing), site-major: the order in which columns are numbered
    site_of = np.repeat(np.arange(len(cand)), len(bearings))
    bearing_of = np.tile(np.arange(len(bearings)), len(cand))
    views = np.empty(0, dtype=object)
    if len(site_of):
        trial = gpd.GeoDataFrame({"bearing": np.asarray(bearings, dtype=float)[bearing_of],
                                  "fov": float(fov), "range_m": float(range_m)},
                                 geometry=shapely.points(cand[site_of]))
        views = view_polygons(trial, obs).values
    view, cell = _cells_in(views, s.xy, tree)
    keep = ~seen0[cell]
    view, cell = view[keep], cell[keep]
    # a candidate adding nothing gets no column; the others are numbered in row order
    used = np.unique(view)
    col = np.searchsorted(used, view)
    sites = [(cand[site_of[k]][0], cand[site_of[k]][1], bearings[bearing_of[k]]) for k in used.tolist()]
    A = sparse.csr_matrix((np.ones(len(cell)), (cell, col)), shape=(len(s.weight), len(sites)), dtype=np.float64)
    return A, s, seen0, sites


def _cells_in(views, xy, tree):
    """(view, cell) pairs, sorted by view then cell, of the cell points strictly inside each view.

    ``tree`` is the STRtree of the points ``xy``: only the points in a view's box are tested.
    """
    views = np.asarray(views, dtype=object)
    if not len(views) or not len(xy):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    view, cell = tree.query(views)
    shapely.prepare(views)
    try:
        inside = shapely.contains_xy(views[view], xy[cell, 0], xy[cell, 1])
    finally:
        shapely.destroy_prepared(views)
    view, cell = view[inside], cell[inside]
    order = np.lexsort((cell, view))
    return view[order].astype(np.int64), cell[order].astype(np.int64)


def _as_xy(candidates):
    arr = np.asarray(getattr(candidates, "values", candidates))
    if arr.dtype == object:
        return shapely.get_coordinates(arr)
    return np.asarray(arr, dtype=float).reshape(-1, 2)


def _greedy(A, w, open_, need):
    """Greedy partial cover; returns (chosen columns, "greedy", bound text).

    Each step takes the column adding the most uncovered weight, the lowest of equals. A column's
    gain only shrinks as cells get covered, so a gain counted earlier bounds it from above (lazy
    greedy, Minoux 1978): only a column reaching the top of the heap is counted again. Its cells
    are added one by one in index order, as the sparse product that counts all gains at the start
    adds them, so every step takes the very column a full recount would.
    """
    A = A.tocsc()
    uncovered = open_.copy()
    open_w = w * uncovered
    got, chosen = 0.0, []
    delta = int(np.diff(A.indptr).max()) if A.shape[1] else 0
    heap = [(-g, j) for j, g in enumerate((A.T @ open_w).tolist())]
    heapq.heapify(heap)
    while got < need - 1e-9 and heap:
        _, j = heapq.heappop(heap)
        cells = A.indices[A.indptr[j]:A.indptr[j + 1]]
        gain = float(np.cumsum(open_w[cells])[-1]) if cells.size else 0.0  # cumsum: in order, no pairing
        if heap and (-gain, j) > heap[0]:
            heapq.heappush(heap, (-gain, j))  # another may now add more: look again
            continue
        if gain <= 1e-12:
            break
        chosen.append(j)
        got += w[cells][uncovered[cells]].sum()
        uncovered[cells] = False
        open_w[cells] = 0.0
    h = sum(1.0 / k for k in range(1, delta + 1)) if delta else 1.0
    return chosen, "greedy", (f"at most H(Δ) = {h:.2f} × the optimal number of cameras (Δ = {delta} cells); "
                              f"a fixed number of greedy cameras covers ≥ (1 − 1/e) of the best coverage")


def _ilp(A, w, open_, need, time_limit, upper):
    """Fewest columns whose cells weigh at least ``need``, within ``time_limit`` wall seconds in all.

    Returns ``(columns, "optimal")``, or ``(None, why)`` when no optimum was proven in time.
    """
    deadline = time.monotonic() + float(time_limit)
    if need <= 1e-9:
        return [], "optimal"
    A = A.tocsr()[open_]
    w = w[open_]
    # cells seen by the same candidates are interchangeable: merge them and add their weights
    keys = {}
    cls_of = np.empty(A.shape[0], dtype=np.int64)
    for i in range(A.shape[0]):
        k = A.indices[A.indptr[i]:A.indptr[i + 1]].tobytes()
        cls_of[i] = keys.setdefault(k, len(keys))
    wc = np.bincount(cls_of, weights=w, minlength=len(keys))
    first = np.unique(cls_of, return_index=True)[1]
    C = A[first]
    nonempty = np.diff(C.indptr) > 0
    C, wc = C[nonempty], wc[nonempty]
    m, n = C.shape
    # variables: x (n candidates) then y (m cell classes); minimise sum x
    c = np.r_[np.ones(n), np.zeros(m)]
    link = sparse.hstack([-C, sparse.identity(m)]).tocsr()  # y_i - sum_j C_ij x_j <= 0
    target = sparse.csr_matrix(np.r_[np.zeros(n), wc][None, :])
    cons = [LinearConstraint(link, -np.inf, 0), LinearConstraint(target, need - 1e-9, np.inf)]
    if upper:
        cons.append(LinearConstraint(sparse.csr_matrix(np.r_[np.ones(n), np.zeros(m)][None, :]), 0, upper))
    res = _milp_until(deadline, c=c, constraints=cons, integrality=np.r_[np.ones(n), np.zeros(m)],
                      bounds=Bounds(0, 1))
    if res is None:
        return None, "time limit"
    status, x = res
    if status != 0 or x is None:
        return None, "time limit" if status == 1 else "no optimum"  # 1: HiGHS's own limit
    return [int(j) for j in np.flatnonzero(x[:n] > 0.5)], "optimal"


def _milp_until(deadline, **problem):
    """``(status, x)`` of :func:`scipy.optimize.milp` on ``problem``, or None when ``deadline`` passed first.

    ``deadline`` is on :func:`time.monotonic`. HiGHS is given the time left as its own limit, but
    it looks at that limit only now and then, never inside a presolve pass or the root LP (at
    community scale a limit of 20 s ended after 31 s, one of 150 s after 186 s): with fork, it
    runs in a child process that is killed at the deadline; without, here, trusting its limit.
    A child that dies without an answer gives status -1.
    """
    left = deadline - time.monotonic()
    if left <= 0:
        return None
    problem["options"] = {"time_limit": left, "disp": False}
    if "fork" not in multiprocessing.get_all_start_methods():
        res = milp(**problem)
        return res.status, res.x
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_milp_child, args=(send, problem), name="gridmap-placement-milp")
    child.start()
    send.close()
    try:
        if not recv.poll(max(0.0, deadline - time.monotonic())):
            return None
        return recv.recv()
    except (EOFError, OSError):
        return -1, None  # the child died without an answer (its traceback went to stderr)
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        recv.close()


def _milp_child(conn, problem):
    res = milp(**problem)
    conn.send((res.status, res.x))
    conn.close()
