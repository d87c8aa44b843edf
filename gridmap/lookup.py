"""What a point or a typed address answers: community, grid, workers and branch; who is near; which building.

Phones come back as the caller's role may see them (:func:`gridmap.access.phone_for`). Addresses
are found by one fuzzy index (:class:`gridmap.geo.addresses.AddressIndex`) for every caller: the
resident's type-ahead, the dispatcher's search and Open311's ``address_string``.
"""
from __future__ import annotations

import math

from .access import phone_for
from .errors import InvalidInput, N_, NotFound
from .index import EDGE_RULE

#: An address resolves to a building (Open311's address_string) only at this score or above, and
#: only when no other building scores as well: a report must not land on a guess.
RESOLVE_MIN_SCORE = 90.0


def locate(snapshot, lon, lat, *, role=None):
    """Everything a resident or dispatcher needs about a WGS84 point.

    Raises NotFound when the point lies in no community with published grids.
    Phones are masked unless ``role`` may see them (see :mod:`gridmap.access`).
    """
    where = snapshot.locate(lon, lat)
    if where["grid"] is None and where["community"] is None:
        raise NotFound(N_("(%(lon)s, %(lat)s) lies in no community gridmap knows."),
                       fix=N_("Check the coordinates and their coordinate system (wgs84, gcj02, bd09)."),
                       params={"lon": format(lon, '.6f'), "lat": format(lat, '.6f')})
    code = where["grid"]["code"] if where["grid"] else None
    where["workers"] = [{"name": w["name"], "phone": phone_for(role, w["phone"])}
                        for w in snapshot.workers.get(code, [])] if code else []
    where["party_branch"] = snapshot.branches.get(code) if code else None
    where["edge_rule"] = EDGE_RULE if where["on_shared_edge"] else None
    if where["grid"] is None:
        where["note"] = "The community has no published grid here yet; contact the community service centre."
    return where


#: ``by=road`` measures the straight-line nearest and widens that pool (×4 a round) until the
#: ranking is proven; it starts at k plus this many candidates ...
ROAD_POOL_EXTRA = 8
#: ... and stops at this many, answering the best of them with ``exact`` false (a point no road of
#: the mode reaches would otherwise measure every responder in the city).
ROAD_POOL_MAX = 1024
#: Straight lines are measured in the snapshot's local metric CRS, roads in the road graph's; two
#: local transverse Mercators whose scales differ by far less than this over a city.
_BOUND_SLACK_M = 0.5


def nearest(snapshot, *, lon, lat, kind=None, skill=None, k=5, radius_m=None, available=None, by="line",
            mode="car", role=None):
    """The nearest entities as the API returns them: phones masked unless ``role`` may see them.

    ``by="road"`` ranks by road distance over the imported roads for ``mode`` (walk, ebike,
    car: the classes and one-way streets the mode keeps to) and is exact: see
    :func:`rank_by_road`. Each result gets ``road_distance_m``, ``eta_s`` and ``reachable``;
    those no road reaches come last, ``reachable`` false. Without roads the order is the straight
    line's, the road fields are None and ``distance_basis`` says "straight line", so a dispatcher
    is never shown a road distance that is really a crow's-flight one. ``radius_m`` bounds the
    straight-line distance either way.
    """
    out = {"lon": lon, "lat": lat, "kind": kind, "skill": skill, "k": k, "radius_m": radius_m, "by": by,
           "mode": mode if by == "road" else None}
    if by != "road":
        found = _nearest_masked(snapshot, lon, lat, kind=kind, skill=skill, k=k, radius_m=radius_m,
                                available=available, role=role)
        return {**out, "distance_basis": "straight line", "results": found}
    fetch = lambda n: snapshot.nearest(lon, lat, k=n, kind=kind, skill=skill,
                                       available=available, radius_m=radius_m)
    ranked, basis, exact = rank_by_road(snapshot, lon, lat, {kind: fetch}, k=k, mode=mode)
    return {**out, "distance_basis": basis, "exact": exact, "results": _mask(ranked[kind], role)}


def nearest_by_kind(snapshot, *, lon, lat, kinds, k=3, by="line", mode="car", role=None):
    """The ``k`` nearest of each of ``kinds``, as :func:`nearest` gives them one kind at a time.

    With ``by="road"`` every kind is ranked by road as :func:`nearest` ranks it, the candidates
    of all kinds measured by one bounded search from (lon, lat) a round
    (:meth:`RoadGraph.routes`), not one search a kind: the distances are the same, the search
    is shared.

    Returns
    -------
    (dict, str)
        Kind → results (as :func:`nearest`'s ``results``), and the ``distance_basis``: "road" when
        roads exist and some kind has a result, else "straight line".
    """
    if by != "road":
        found = snapshot.nearest_each(lon, lat, kinds, k=k)
        for group in found.values():
            _mask(group, role)
        return found, "straight line"
    if k is None or int(k) < 1:
        raise InvalidInput(N_("k=%(k)s is not a positive whole number."), fix=N_("Use e.g. k=5."),
                           params={"k": repr(k)})
    pools = {}

    def fetcher(kind):
        # the point is projected once for all kinds (Snapshot.nearest_each), pools cut per kind
        def fetch(n):
            if n not in pools:
                pools[n] = snapshot.nearest_each(lon, lat, kinds, k=n)
            return pools[n][kind]
        return fetch

    found, basis, _ = rank_by_road(snapshot, lon, lat, {kind: fetcher(kind) for kind in kinds}, k=k, mode=mode)
    for group in found.values():
        _mask(group, role)
    return found, basis


def rank_by_road(snapshot, lon, lat, fetchers, *, k, mode="car"):
    """The ``k`` nearest by road of each group, exactly.

    A straight line is never longer than the road between the same points, so once the k-th
    road distance found among a group's straight-line nearest is no larger than the straight
    line to the next candidate not measured, no candidate further out can come nearer by road:
    the ranking is exact. Each round measures every group's new candidates by one road search
    and widens the unproven groups' pools fourfold, up to :data:`ROAD_POOL_MAX`.

    Parameters
    ----------
    fetchers : dict
        Group key → ``fetch(n)``, the group's ``n`` nearest by straight line (records with
        ``lon``, ``lat``, ``distance_m``, ``kind``, ``id``), nearest first.

    Returns
    -------
    (dict, str, bool or None)
        Key → the ``k`` results, by road distance, those no road reaches last (``reachable``
        false); the distance basis ("road", or "straight line" without roads or results); and
        whether every group's ranking is proven exact (None without roads).
    """
    k = int(k)
    if snapshot.roads is None:
        found = {key: fetch(k) for key, fetch in fetchers.items()}
        for item in (i for group in found.values() for i in group):
            item["road_distance_m"] = item["eta_s"] = item["reachable"] = None
        return found, "straight line", None
    size = {key: k + ROAD_POOL_EXTRA for key in fetchers}
    measured = {}                      # (kind, id) → (metres, seconds)
    result, exact = {}, True
    pending = list(fetchers)
    while pending:
        pools = {key: fetchers[key](size[key] + 1) for key in pending}  # one more: the bound
        new = {}
        for key in pending:
            for item in pools[key][: size[key]]:
                ident = (item.get("kind"), item.get("id"))
                if ident not in measured:
                    new.setdefault(ident, item)
        if new:
            dist, time = snapshot.roads.routes(lon, lat, [(i["lon"], i["lat"]) for i in new.values()], mode=mode)
            measured.update(zip(new, zip(dist.tolist(), time.tolist())))
        still = []
        for key in pending:
            pool = pools[key]
            cands = pool[: size[key]]
            road = sorted(d for d, _ in (measured[(i.get("kind"), i.get("id"))] for i in cands) if math.isfinite(d))
            exhausted = len(pool) <= size[key]
            proven = exhausted or (len(road) >= k and road[k - 1] <= pool[size[key]]["distance_m"] - _BOUND_SLACK_M)
            if proven or size[key] >= ROAD_POOL_MAX:
                exact = exact and proven
                result[key] = _ranked(cands, measured, k)
            else:
                size[key] = min(size[key] * 4, ROAD_POOL_MAX)
                still.append(key)
        pending = still
    found = {key: result[key] for key in fetchers}
    basis = "road" if any(found.values()) else "straight line"
    return found, basis, exact


def _ranked(cands, measured, k):
    rows = []
    for item in cands:
        d, t = measured[(item.get("kind"), item.get("id"))]
        ok = math.isfinite(d)
        rows.append((not ok, d if ok else item["distance_m"], item["distance_m"], str(item.get("id")), item, d, t))
    rows.sort(key=lambda r: r[:4])
    out = []
    for *_, item, d, t in rows[:k]:
        ok = math.isfinite(d)
        item = dict(item)
        item["road_distance_m"] = round(d, 1) if ok else None
        item["eta_s"] = round(t, 0) if ok and math.isfinite(t) else None
        item["reachable"] = ok
        out.append(item)
    return out


def _nearest_masked(snapshot, lon, lat, *, kind=None, skill=None, k=5, radius_m=None, available=None, role=None):
    return _mask(snapshot.nearest(lon, lat, k=k, kind=kind, skill=skill, available=available, radius_m=radius_m),
                 role)


def _mask(found, role):
    for item in found:
        if "phone" in item:
            item["phone"] = phone_for(role, item["phone"])
    return found


def geocode(snapshot, q, *, community=None, limit=10):
    """Ranked building candidates for a loosely typed address (offline, fuzzy): ``address``,
    ``building_id``, ``name``, ``community_code``, ``lon``, ``lat``, ``score``, best first."""
    if snapshot.addresses is None:
        return []
    return snapshot.addresses.search(q, community=community, limit=limit)


def addresses(snapshot, q, *, limit=10):
    """The resident's type-ahead: buildings for what has been typed so far, best first.

    Each is ``id`` (the building's), ``address``, ``name``, ``lon``, ``lat``. An empty query, or
    one of punctuation only, finds nothing rather than failing: the box is often empty.
    """
    if not (q or "").strip() or snapshot.addresses is None:
        return []
    return [{"id": h["building_id"], "address": h["address"], "name": h["name"], "lon": h["lon"], "lat": h["lat"]}
            for h in snapshot.addresses.search(q, limit=limit)]


def resolve_address(snapshot, q, *, field="address"):
    """The one building ``q`` names: the best candidate when it scores at least
    :data:`RESOLVE_MIN_SCORE` and no other building scores as well.

    Raises InvalidInput (naming ``field``) when no building matches that well, or when several do.
    """
    hits = snapshot.addresses.search(q, limit=3) if (q or "").strip() and snapshot.addresses is not None else []
    if not hits or hits[0]["score"] < RESOLVE_MIN_SCORE:
        raise InvalidInput(N_("%(field)s %(q)s matches no building address."),
                           fix=N_("Send lat and long, or a building address as the register writes it."),
                           details={"field": field},
                           params={"field": field, "q": repr(q)})
    tied = [h for h in hits if h["score"] >= hits[0]["score"]]
    if len({h["building_id"] for h in tied}) > 1:
        raise InvalidInput(N_("%(field)s %(q)s matches several buildings: %(value)s."),
                           fix=N_("Give the house number and building as the register writes them, or send lat and long."),
                           details={"field": field, "candidates": [h["address"] for h in tied]},
                           params={"field": field, "q": repr(q), "value": ', '.join(h['address'] for h in tied)})
    return hits[0]
