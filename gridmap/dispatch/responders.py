"""Whom to send: the grid's workers, the nearest responders of the kinds a category names, volunteers by skill."""
from __future__ import annotations

import math

from sqlalchemy import select

from .. import catalog, lookup
from ..access import phone_for
from ..geo.crs import metric_for
from ..store import models as m

def match_volunteers(snapshot, inc, *, k=5):
    """Available volunteers with one of the category's skills, nearest first (metres).

    A category that names no skill takes the nearest available volunteers of any skill.
    Each result lists ``matched_skills``; phones are raw (the web layer masks them).
    """
    cat = catalog.category(inc.category)
    if not cat.skills:
        return [{**v, "matched_skills": []} for v in
                snapshot.nearest(inc.lon, inc.lat, k=k, kind="volunteer", available=True)]
    best = {}
    for skill in cat.skills:
        for v in snapshot.nearest(inc.lon, inc.lat, k=k, kind="volunteer", skill=skill, available=True):
            seen = best.setdefault(v["id"], {**v, "matched_skills": []})
            seen["matched_skills"].append(skill)
    return sorted(best.values(), key=lambda v: (v["distance_m"], str(v["id"])))[:k]


def propose(snapshot, inc, *, k=3, role=None, area=None, mode="car"):
    """Who to send: the grid's workers, the nearest responders of each kind the category names, volunteers.

    Responders and volunteers are ranked by road for ``mode`` (walk, ebike, car) over the imported
    roads, exactly as ``/api/v1/nearest?by=road`` ranks them (:func:`gridmap.lookup.rank_by_road`,
    one road search a round for every kind), each with ``road_distance_m``, ``eta_s`` and
    ``reachable``; none beyond their kind's reach by road
    (:func:`gridmap.catalog.within_reach`). Without roads the order is the straight line's and
    ``distance_basis`` says so: a dispatcher is never shown a crow's-flight order as a road one.

    Phones are whole only for a role that may see them at the incident's place within ``area``:
    whom to send is no directory of another area's contacts.

    Returns
    -------
    dict
        ``grid_workers``, ``responders`` (kind → people), ``volunteers``, ``mode``,
        ``distance_basis`` ("road" or "straight line") and ``exact`` (the road ranking proven;
        None without roads).
    """
    cat = catalog.category(inc.category)
    at = (inc.grid_code, inc.community_code)
    workers = [{"id": w["id"], "name": w["name"], "phone": phone_for(role, w["phone"], at=at, area=area)}
               for w in snapshot.workers.get(inc.grid_code, [])] if inc.grid_code else []
    fetchers = {kind: _nearest_of(snapshot, inc, kind) for kind in cat.responders}
    fetchers[_VOLUNTEERS] = lambda n: match_volunteers(snapshot, inc, k=n)
    found, basis, exact = lookup.rank_by_road(snapshot, inc.lon, inc.lat, fetchers, k=k, mode=mode)
    volunteers = catalog.within_reach("volunteer", found.pop(_VOLUNTEERS))
    responders = {kind: catalog.within_reach(kind, group) for kind, group in found.items()}
    for item in [r for rs in responders.values() for r in rs] + volunteers:
        item["phone"] = phone_for(role, item["phone"], at=at, area=area)
    return {"grid_workers": workers, "responders": responders, "volunteers": volunteers, "mode": mode,
            "distance_basis": basis, "exact": exact}


_VOLUNTEERS = ("volunteers",)  # a key no responder kind can be


def _nearest_of(snapshot, inc, kind):
    return lambda n: snapshot.nearest(inc.lon, inc.lat, k=n, kind=kind, available=True)


def with_stations(session, inc, proposal):
    """``proposal`` (from :func:`propose`) with each grid worker's station: ``lon``, ``lat`` and the
    ``distance_m`` from the incident, all None for a worker with no station on record.

    The snapshot keeps workers by grid without positions (a locate needs none); a map that
    draws whom to send does, and a proposal names only a grid's few workers.
    """
    ids = [w["id"] for w in proposal["grid_workers"]]
    where = {} if not ids else dict(session.execute(
        select(m.GridWorker.id, m.GridWorker.geom).where(m.GridWorker.id.in_(ids))).all())
    workers = []
    for w in proposal["grid_workers"]:
        p = where.get(w["id"])
        if p is None or p.is_empty:
            workers.append({**w, "lon": None, "lat": None, "distance_m": None})
            continue
        metric = metric_for((inc.lon, inc.lat))
        x0, y0 = metric.xy(inc.lon, inc.lat)
        x1, y1 = metric.xy(p.x, p.y)
        d = math.hypot(x1 - x0, y1 - y0)
        workers.append({**w, "lon": float(p.x), "lat": float(p.y), "distance_m": round(float(d), 1)})
    return {**proposal, "grid_workers": workers}
