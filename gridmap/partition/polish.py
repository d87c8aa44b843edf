"""Local search: boundary cells move between grids when every move constraint allows, to balance, then shorten."""
from __future__ import annotations

from collections import deque

import numpy as np

#: The local search aims inside this share of the tolerance, leaving a margin for rounding.
_AIM = 0.9
_MAX_PASSES = 60


# A move is (cell, from-grid, to-grid); every constraint must allow it. Constraints are plain
# callables over the search state, so a caller's rule (a grid must keep its party branch) is one more
# function in the tuple, not another branch in the loop.

class _State:
    def __init__(self, m, ei, ej, cut_w, labels, h, k, target, tolerance, pinned):
        self.ei, self.ej = ei, ej
        self.adj = [[] for _ in range(m)]
        self.w = [[] for _ in range(m)]
        for a, b, wt in zip(ei.tolist(), ej.tolist(), cut_w.tolist()):
            self.adj[a].append(b)
            self.w[a].append(wt)
            self.adj[b].append(a)
            self.w[b].append(wt)
        self.labels = labels.tolist()
        self.h = h.tolist()
        self.pop = np.bincount(labels, weights=h, minlength=k).tolist()
        self.size = np.bincount(labels, minlength=k).tolist()
        self.target = target
        self.limit = _AIM * tolerance * target
        self.pinned = pinned


def _not_pinned(state, cell, src, dst):
    """A seed's cell stays in the grid grown from it."""
    return cell not in state.pinned


def _not_emptying(state, cell, src, dst):
    """A grid keeps at least one cell."""
    return state.size[src] > 1


def _keeps_contiguity(state, cell, src, dst):
    """The source grid stays one piece without the cell (the destination touches it already)."""
    adj, labels = state.adj, state.labels
    nb = [n for n in adj[cell] if labels[n] == src]
    if len(nb) <= 1:
        return True
    want = set(nb)
    # Usually the cell's neighbours in the grid touch each other around it: no search needed.
    seen, stack = {nb[0]}, [nb[0]]
    while stack:
        u = stack.pop()
        for v in adj[u]:
            if v in want and v not in seen:
                seen.add(v)
                stack.append(v)
    if len(seen) == len(want):
        return True
    seen, queue, missing = {nb[0], cell}, deque([nb[0]]), len(want) - 1
    while queue:
        u = queue.popleft()
        for v in adj[u]:
            if v not in seen and labels[v] == src:
                seen.add(v)
                if v in want:
                    missing -= 1
                    if missing == 0:
                        return True
                queue.append(v)
    return False


MOVE_CONSTRAINTS = (_not_pinned, _not_emptying, _keeps_contiguity)


def _excess(pop, state):
    return max(abs(pop - state.target) - state.limit, 0.0)


def _polish(m, ei, ej, cut_w, labels, h, k, target, tolerance, pinned):
    state = _State(m, ei, ej, cut_w, labels, h, k, target, tolerance, pinned)
    scale = max(target, 1e-9)
    perim = float(np.mean(cut_w)) if len(cut_w) else 1.0
    # Stage 1 balances (squared excess outside the aim, boundary length only breaking ties);
    # stage 2 shortens boundaries without leaving the aim.
    for stage in (1, 2):
        for _ in range(_MAX_PASSES):
            if not _pass(state, stage, scale, perim):
                break
    return np.array(state.labels, dtype=np.int64)


def _pass(state, stage, scale, perim):
    adj, w, labels, pop, h = state.adj, state.w, state.labels, state.pop, state.h
    moved = False
    if stage == 1 and all(_excess(p, state) == 0 for p in pop):
        return False
    lab = np.asarray(labels)
    cut = lab[state.ei] != lab[state.ej]
    for cell in np.unique(np.r_[state.ei[cut], state.ej[cut]]).tolist():
        src = labels[cell]
        gain = {}
        for n, wt in zip(adj[cell], w[cell]):
            gain[labels[n]] = gain.get(labels[n], 0.0) + wt
        if len(gain) == 1:
            continue
        best, best_delta = None, (0.0, -1e-12)
        hc = h[cell]
        for dst, along in gain.items():
            if dst == src:
                continue
            d_cut = (gain.get(src, 0.0) - along) / perim
            ps, pd_ = pop[src], pop[dst]
            if stage == 1:
                before = _excess(ps, state) ** 2 + _excess(pd_, state) ** 2
                after = _excess(ps - hc, state) ** 2 + _excess(pd_ + hc, state) ** 2
                d_bal = (after - before) / scale ** 2
                if d_bal > 0 or (d_bal == 0 and d_cut >= 0):
                    continue
                # Balance first; boundary length only orders moves that balance equally.
                delta = (d_bal, d_cut) if d_bal < 0 else (0.0, d_cut)
            else:
                if hc > 0 and (_excess(ps - hc, state) > _excess(ps, state)
                               or _excess(pd_ + hc, state) > _excess(pd_, state)):
                    continue
                if d_cut >= 0:
                    continue
                delta = (0.0, d_cut)
            if delta < best_delta:
                best, best_delta = dst, delta
        if best is None:
            continue
        if not all(rule(state, cell, src, best) for rule in MOVE_CONSTRAINTS):
            continue
        labels[cell] = best
        pop[src] -= hc
        pop[best] += hc
        state.size[src] -= 1
        state.size[best] += 1
        moved = True
    return moved
