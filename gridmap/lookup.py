"""What a point or a typed address answers: community, grid, workers and branch; who is near; which building.

Phones come back as the caller's role may see them (:func:`gridmap.access.phone_for`). Addresses
are found by one fuzzy index (:class:`gridmap.geo.addresses.AddressIndex`) for every caller: the
resident's type-ahead, the dispatcher's search and Open311's ``address_string``.
"""
from __future__ import annotations

import math

from .access import phone_for
from .errors import InvalidInput, NotFound
from .geo.roads import eta_s
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
        raise NotFound(f"({lon:.6f}, {lat:.6f}) lies in no community gridmap knows.",
                       fix="Check the coordinates and their coordinate system (wgs84, gcj02, bd09).")
    code = where["grid"]["code"] if where["grid"] else None
    where["workers"] = [{"name": w["name"], "phone": phone_for(role, w["phone"])}
                        for w in snapshot.workers.get(code, [])] if code else []
    where["party_branch"] = snapshot.branches.get(code) if code else None
    where["edge_rule"] = EDGE_RULE if where["on_shared_edge"] else None
    if where["grid"] is None:
        where["note"] = "The community has no published grid here yet; contact the community service centre."
    return where


def nearest(snapshot, *, lon, lat, kind=None, skill=None, k=5, radius_m=None, available=None, by="line",
            mode="car", role=None):
    """The nearest entities as the API returns them: phones masked unless ``role`` may see them.

    ``by="road"`` keeps the straight-line k nearest and adds ``road_distance_m`` and ``eta_s``
    over the imported roads; without roads, or where a responder cannot be reached by road,
    those are None and ``distance_basis`` says "straight line", so a dispatcher is never shown a
    road distance that is really a crow's-flight one.
    """
    found = _nearest_masked(snapshot, lon, lat, kind=kind, skill=skill, k=k, radius_m=radius_m,
                            available=available, role=role)
    basis = add_road_distances(snapshot, lon, lat, [found], mode=mode) if by == "road" else "straight line"
    return {"lon": lon, "lat": lat, "kind": kind, "skill": skill, "k": k, "radius_m": radius_m, "by": by,
            "distance_basis": basis, "results": found}


def nearest_by_kind(snapshot, *, lon, lat, kinds, k=3, by="line", mode="car", role=None):
    """The ``k`` nearest of each of ``kinds``, as :func:`nearest` gives them one kind at a time.

    With ``by="road"`` every kind's results get their road distances from one bounded search
    from (lon, lat) (:meth:`RoadGraph.distances_m` over all of them at once), not one search a
    kind: the distances are the same, the search is shared.

    Returns
    -------
    (dict, str)
        Kind → results (as :func:`nearest`'s ``results``), and the ``distance_basis``: "road" when
        roads exist and some kind has a result, else "straight line".
    """
    found = snapshot.nearest_each(lon, lat, kinds, k=k)
    for group in found.values():
        _mask(group, role)
    basis = add_road_distances(snapshot, lon, lat, list(found.values()), mode=mode) if by == "road" \
        else "straight line"
    return found, basis


def add_road_distances(snapshot, lon, lat, groups, *, mode="car"):
    """Set ``road_distance_m`` and ``eta_s`` on every item of ``groups`` (lists of results with
    ``lon``/``lat``), all from one road search from (lon, lat); return the distance basis.

    Without roads both are None and the basis is "straight line"; an item no road reaches gets
    None. The basis is "road" when roads exist and there was any item.
    """
    items = [item for group in groups for item in group]
    if not items:
        return "straight line"
    if snapshot.roads is None:
        for item in items:
            item["road_distance_m"] = item["eta_s"] = None
        return "straight line"
    road = snapshot.roads.distances_m(lon, lat, [(r["lon"], r["lat"]) for r in items])
    for item, d, t in zip(items, road.tolist(), eta_s(road, mode).tolist()):
        ok = math.isfinite(d)
        item["road_distance_m"] = round(d, 1) if ok else None
        item["eta_s"] = round(t, 0) if ok else None
    return "road"


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
        raise InvalidInput(f"{field} {q!r} matches no building address.",
                           fix="Send lat and long, or a building address as the register writes it.",
                           details={"field": field})
    tied = [h for h in hits if h["score"] >= hits[0]["score"]]
    if len({h["building_id"] for h in tied}) > 1:
        raise InvalidInput(f"{field} {q!r} matches several buildings: {', '.join(h['address'] for h in tied)}.",
                           fix="Give the house number and building as the register writes them, or send lat and long.",
                           details={"field": field, "candidates": [h["address"] for h in tied]})
    return hits[0]
