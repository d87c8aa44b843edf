"""Labelling the cell graph: seeds, grids per part, k-means++ / bisection starts and balanced growth."""
from __future__ import annotations

import math

import numpy as np
import shapely
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

from ..geo.pointindex import points_to_grids
from .polish import _polish
from .report import _finding

#: Growing a grid across a barrier costs this many times the distance (so grids stop at roads).
BARRIER_GROWTH_FACTOR = 6.0
#: A grid boundary running along a barrier counts this share of its length (so cuts follow roads).
BARRIER_CUT_SHARE = 0.4
#: A barrier-crossing adjacency left inside a grid costs this share of its length.
BARRIER_INSIDE_COST = 0.0
_GROWTH_ROUNDS = 40
_LLOYD_ROUNDS = 8
#: Parts up to this many cells also try a k-means++ start.
_SMALL_PART = 4000


# --- seeds ---------------------------------------------------------------------------------------

def _seed_cells(seed_geoms, cell_geoms, findings):
    if not len(seed_geoms):
        return np.zeros(0, dtype=np.int64)
    hit = points_to_grids(shapely.get_coordinates(seed_geoms), cell_geoms)
    out, seen = [], {}
    for s, c in enumerate(hit.tolist()):
        if c < 0:
            findings.append(_finding("seed_outside", seed=s))
        elif c in seen:
            findings.append(_finding("seed_shared", seed=s, other=seen[c]))
        else:
            seen[c] = s
            out.append(c)
    return np.array(out, dtype=np.int64)


def _kmeanspp(xy, weight, k, fixed, rng):
    """Household-weighted k-means++ centres (cell indexes), keeping ``fixed`` cells as the first."""
    chosen = list(fixed)
    w = weight + 1e-9 * max(weight.max(), 1.0)
    if not chosen:
        chosen.append(int(rng.choice(len(xy), p=w / w.sum())))
    d2 = np.min(((xy[:, None, :] - xy[chosen][None, :, :]) ** 2).sum(-1), axis=1)
    while len(chosen) < k:
        p = w * d2
        if p.sum() <= 0:
            rest = np.setdiff1d(np.arange(len(xy)), chosen)
            chosen.append(int(rest[0]))
        else:
            chosen.append(int(rng.choice(len(xy), p=p / p.sum())))
        d2 = np.minimum(d2, ((xy - xy[chosen[-1]]) ** 2).sum(-1))
    return np.array(chosen, dtype=np.int64)


def _lloyd(xy, weight, centres, n_fixed):
    """A few weighted Lloyd steps in the plane; fixed (seeded) centres stay put."""
    w = weight + 1e-9 * max(weight.max(), 1.0)
    for _ in range(_LLOYD_ROUNDS):
        d2 = ((xy[:, None, :] - xy[centres][None, :, :]) ** 2).sum(-1)
        near = np.argmin(d2, axis=1)
        sums = np.zeros((len(centres), 2))
        np.add.at(sums, near, xy * w[:, None])
        tot = np.bincount(near, weights=w, minlength=len(centres))
        moved = centres.copy()
        for j in range(n_fixed, len(centres)):
            if tot[j] > 0:
                target = sums[j] / tot[j]
                members = np.flatnonzero(near == j)
                moved[j] = members[np.argmin(((xy[members] - target) ** 2).sum(-1))]
        if len(set(moved.tolist())) < len(moved):
            break
        centres = moved
    return centres


# --- partitioning the cell graph -----------------------------------------------------------------

def _partition_cells(graph, cell_hh, k, tolerance, cell_seed, seed, findings, buildings, building_cell,
                     hh, work):
    rng = np.random.default_rng(seed)
    n = graph.n
    made = min(k, n)
    if k > n:
        findings.append(_finding("more_grids_than_buildings", n_grids=k, n_cells=n, made=made))
    k = made
    total = float(cell_hh.sum())
    ideal = total / k
    limit = ideal * (1 + tolerance)
    for b in np.flatnonzero(hh > limit):
        if building_cell[b] >= 0:
            findings.append(_finding("building_over_target", building=str(buildings.index[b]),
                                     households=float(hh[b]), limit=limit))
    # Overlapping footprints are one site (a grid cannot cut them apart): name a site over the limit
    # whose buildings are each below it, or its grid's deviation would seem unexplained.
    has = building_cell >= 0
    many = np.bincount(building_cell[has], minlength=n) > 1
    for c in np.flatnonzero(many & (cell_hh > limit)):
        members = np.flatnonzero(building_cell == c)
        if (hh[members] <= limit).all():
            findings.append(_finding("site_over_target", buildings=", ".join(str(x) for x in buildings.index[members][:8]),
                                     count=len(members), households=float(cell_hh[c]), limit=limit))
    adj = csr_matrix((np.ones(len(graph.i)), (graph.i, graph.j)), shape=(n, n))
    n_comp, comp = connected_components(adj, directed=False)
    comp_hh = np.bincount(comp, weights=cell_hh, minlength=n_comp)
    comp_cells = np.bincount(comp, minlength=n_comp)
    share = _allocate(comp_hh, comp_cells, k, ideal)
    labels = np.full(n, -1, dtype=np.int64)
    next_label = 0
    # Seeds pin grids in their own part of the boundary.
    seeds_of = {c: [int(s) for s in cell_seed if comp[s] == c] for c in range(n_comp)}
    pending = []
    for c in range(n_comp):
        cells_c = np.flatnonzero(comp == c)
        kc = share[c]
        if kc == 0:
            pending.append(c)
            continue
        if len(seeds_of[c]) > kc:
            findings.append(_finding("too_many_seeds", n_seeds=len(seeds_of[c]), k=kc))
        if kc > 0 and abs(comp_hh[c] / kc / ideal - 1) > tolerance and n_comp > 1 and ideal > 0:
            findings.append(_finding("part_unbalanced", part=c + 1, households=float(comp_hh[c]),
                                     share=float(comp_hh[c] / ideal), k=kc))
        local = _grow_and_polish(graph, cells_c, cell_hh, kc, ideal, tolerance, seeds_of[c][:kc], rng)
        labels[cells_c] = local + next_label
        next_label += kc
    for c in pending:  # parts too small for a grid join the nearest grid
        cells_c = np.flatnonzero(comp == c)
        others = np.flatnonzero(labels >= 0)
        if not len(others):
            labels[cells_c] = 0
            next_label = max(next_label, 1)
            continue
        # The grid geometrically nearest to the part (the same rule a planner would apply by eye).
        (src, dst), gap = shapely.STRtree(graph.cells[others]).query_nearest(
            graph.cells[cells_c], return_distance=True, all_matches=False)
        near = others[dst[int(np.argmin(gap))]]
        labels[cells_c] = labels[near]
        if comp_hh[c] > 0:
            findings.append(_finding("part_too_small", part=c + 1, households=float(comp_hh[c]),
                                     limit=ideal * (1 - tolerance), joined=f"#{labels[near] + 1}"))
        else:
            findings.append(_finding("empty_part", part=c + 1, joined=f"#{labels[near] + 1}",
                                     area_m2=float(graph.area[cells_c].sum())))
    return labels


def _allocate(comp_hh, comp_cells, k, ideal):
    """Grids per part of the boundary: largest remainder on households, each part ≤ its cells."""
    n_comp = len(comp_hh)
    if n_comp == 1:
        return np.array([min(k, int(comp_cells[0]))])
    quota = comp_hh / ideal if ideal > 0 else comp_cells * k / comp_cells.sum()
    share = np.minimum(np.floor(quota).astype(int), comp_cells)
    order = np.argsort(-(quota - np.floor(quota)), kind="stable")
    for c in order:
        if share.sum() >= k:
            break
        if share[c] < comp_cells[c] and quota[c] >= 0.5:
            share[c] += 1
    while share.sum() < k:  # leftovers go where a grid fits the most households
        room = np.where(share < comp_cells, comp_hh / np.maximum(share, 1) * (quota > 0), -1)
        if room.max() < 0:
            break
        share[int(np.argmax(room))] += 1
    while share.sum() > k:
        share[int(np.argmax(share))] -= 1
    return share


def _grow_and_polish(graph, cells_c, cell_hh, k, ideal, tolerance, fixed, rng):
    """Labels 0..k-1 for the cells of one connected part: the best of a few polished starts."""
    m = len(cells_c)
    if k == 1:
        return np.zeros(m, dtype=np.int64)
    local_of = np.full(graph.n, -1, dtype=np.int64)
    local_of[cells_c] = np.arange(m)
    sel = (local_of[graph.i] >= 0)
    ei, ej = local_of[graph.i[sel]], local_of[graph.j[sel]]
    dist, length, crosses = graph.dist[sel], graph.length[sel], graph.crosses[sel]
    xy, h = graph.xy[cells_c], cell_hh[cells_c]
    target = h.sum() / k
    # Ties on a lattice break by a seed-drawn jitter, so another seed explores another layout.
    jitter = 1.0 + 1e-3 * rng.random(len(ei))
    step = dist * jitter * np.where(crosses, BARRIER_GROWTH_FACTOR, 1.0)
    # Cutting along a barrier is cheap and leaving one inside a grid is dear: net, it pays to cut there.
    cut_w = length * np.where(crosses, BARRIER_CUT_SHARE - BARRIER_INSIDE_COST, 1.0)
    fixed_local = [int(local_of[s]) for s in fixed]
    radius = math.sqrt(graph.area[cells_c].sum() / (math.pi * k))
    pinned = set(fixed_local)
    split = _bisect(xy, h, k, rng)
    starts = []
    if not fixed_local:
        starts.append(_repair(m, ei, ej, length, split, h, k))
    centres = _medoids(xy, h, split, k, fixed_local, rng)
    starts.append(_grow(m, ei, ej, step, centres, h, target, tolerance, radius, len(fixed_local), xy))
    if m <= _SMALL_PART:  # a third, k-means++ start costs little on a community-sized graph
        centres = _lloyd(xy, h, _kmeanspp(xy, h, k, fixed_local, rng), len(fixed_local))
        starts.append(_grow(m, ei, ej, step, centres, h, target, tolerance, radius, len(fixed_local), xy))
    best, best_score = None, None
    for labels in starts:
        labels = _polish(m, ei, ej, cut_w, labels, h, k, target, tolerance, pinned)
        score = _score(labels, ei, ej, cut_w, h, k, target, tolerance)
        if best_score is None or score < best_score:
            best, best_score = labels, score
    return best


def _score(labels, ei, ej, cut_w, h, k, target, tolerance):
    """Lower is better: households outside the tolerance first, then the weighted boundary length."""
    pop = np.bincount(labels, weights=h, minlength=k)
    excess = np.maximum(np.abs(pop - target) - tolerance * target, 0).sum()
    return (round(float(excess), 6), float(cut_w[labels[ei] != labels[ej]].sum()))


def _bisect(xy, h, k, rng):
    """Recursive balanced splits by straight lines: compact, balanced, not always contiguous."""
    labels = np.zeros(len(xy), dtype=np.int64)
    stack = [(np.arange(len(xy)), k, 0)]
    while stack:
        idx, kk, base = stack.pop()
        if kk == 1 or len(idx) <= 1:
            labels[idx] = base
            continue
        k1 = kk // 2
        pts, w = xy[idx], h[idx]
        # Cut across the direction that makes the shortest cut line, with a seed-drawn tilt.
        angles = np.arange(6) * np.pi / 6 + rng.uniform(-0.15, 0.15)
        across = np.stack([-np.sin(angles), np.cos(angles)], axis=1)
        widths = np.ptp(pts @ across.T, axis=0)
        a = angles[int(np.argmin(widths + 1e-9 * np.arange(6)))]
        proj = pts @ np.array([np.cos(a), np.sin(a)])
        order = np.argsort(proj, kind="stable")
        cum = np.cumsum(w[order])
        goal = cum[-1] * k1 / kk
        lo, hi = k1, len(idx) - (kk - k1)  # each side keeps at least as many cells as grids
        if hi < lo:
            lo = hi = max(min(k1, len(idx) - 1), 1)
        cand = np.arange(lo, hi + 1)
        err = np.abs(cum[cand - 1] - goal)
        ties = cand[err <= err.min() + 1e-9]
        cut = int(ties[len(ties) // 2])  # among zero-household ties, cut mid-way
        stack.append((idx[order[:cut]], k1, base))
        stack.append((idx[order[cut:]], kk - k1, base + k1))
    return labels


def _repair(m, ei, ej, length, labels, h, k):
    """Keep each grid's largest piece; other pieces go to the neighbour they share most edge with."""
    labels = labels.copy()
    same = labels[ei] == labels[ej]
    g = csr_matrix((np.ones(int(same.sum())), (ei[same], ej[same])), shape=(m, m))
    _, piece = connected_components(g, directed=False)
    weight = np.bincount(piece, weights=h + 1e-6, minlength=piece.max() + 1)
    best = np.full(k, -1)
    for p in np.argsort(-weight, kind="stable"):
        lab = labels[np.flatnonzero(piece == p)[0]]
        if best[lab] < 0:
            best[lab] = p
    keep = np.isin(piece, best[best >= 0])
    labels[~keep] = -1
    adj = [[] for _ in range(m)]
    for a, b, ln in zip(ei.tolist(), ej.tolist(), length.tolist()):
        adj[a].append((b, ln))
        adj[b].append((a, ln))
    lab = labels.tolist()
    todo = [v for v in range(m) if lab[v] < 0]
    while todo:
        rest = []
        for v in todo:
            votes = {}
            for u, ln in adj[v]:
                if lab[u] >= 0:
                    votes[lab[u]] = votes.get(lab[u], 0.0) + ln
            if votes:
                lab[v] = max(sorted(votes), key=votes.get)
            else:
                rest.append(v)
        if len(rest) == len(todo):
            break
        todo = rest
    return np.array(lab, dtype=np.int64)


def _medoids(xy, h, split, k, fixed, rng):
    """Growth centres: the seeds, then the household centres of the split's parts without a seed."""
    centres = list(fixed)
    parts = sorted(range(k), key=lambda j: -h[split == j].sum())
    for j in parts:
        if len(centres) == k:
            break
        members = np.flatnonzero(split == j)
        if not len(members) or any(split[c] == j for c in fixed):
            continue
        w = h[members] + 1e-9
        c = (xy[members] * w[:, None]).sum(0) / w.sum()
        cand = members[np.argmin(((xy[members] - c) ** 2).sum(-1))]
        if cand not in centres:
            centres.append(int(cand))
    if len(centres) < k:
        centres = list(_kmeanspp(xy, h, k, centres, rng))
    return np.array(centres, dtype=np.int64)


def _grow(m, ei, ej, step, centres, h, target, tolerance, radius, n_fixed, xy):
    """Balanced, additively weighted graph Voronoi: a Dijkstra forest from offset centres."""
    k = len(centres)
    rows = np.r_[ei, ej, np.full(k, m)]
    offsets = np.zeros(k)
    best, best_key = None, None
    lr = 0.6 * radius
    for rnd in range(_GROWTH_ROUNDS):
        # scipy drops explicit zeros, so every offset edge gets a floor of a micro-metre.
        cols = np.r_[ej, ei, centres]
        vals = np.r_[step, step, offsets - offsets.min() + 1e-6]
        g = csr_matrix((vals, (rows, cols)), shape=(m + 1, m + 1))
        dist, pred = dijkstra(g, directed=True, indices=m, return_predecessors=True)
        labels = _forest_labels(pred, dist, centres, m)
        pop = np.bincount(labels[labels >= 0], weights=h[labels >= 0], minlength=k)
        dev = pop / target - 1 if target > 0 else np.zeros(k)
        key = (round(float(np.abs(dev).max()), 4), rnd)
        if best_key is None or key < best_key:
            best, best_key = labels.copy(), key
        if np.abs(dev).max() <= 0.5 * tolerance:
            break
        offsets = offsets + lr * np.clip(dev, -1.0, 1.0)
        lr *= 0.93
        # Recentre each free grid on its household centre (a cell of its own, so it stays inside).
        for j in range(n_fixed, k):
            members = np.flatnonzero(labels == j)
            if not len(members):
                continue
            w = h[members] + 1e-9
            c = (xy[members] * w[:, None]).sum(0) / w.sum()
            centres[j] = members[np.argmin(((xy[members] - c) ** 2).sum(-1))]
    unreached = best < 0
    if unreached.any():  # cannot happen in a connected part; kept total for safety
        best[unreached] = 0
    return best


def _forest_labels(pred, dist, centres, m):
    labels = np.full(m + 1, -1, dtype=np.int64)
    labels[centres] = np.arange(len(centres))
    order = np.argsort(dist[:m], kind="stable")
    p = pred.tolist()
    lab = labels.tolist()
    for v in order.tolist():
        if lab[v] < 0 and p[v] >= 0:
            lab[v] = lab[p[v]]
    return np.array(lab[:m], dtype=np.int64)
