"""What the dispatcher's page shows: the panel for a point, the map's layers, the statistics page."""
from __future__ import annotations

from .. import access, catalog, coverage, dispatch, lookup

NEAR_GRID_RADIUS_M = 30.0  # closer than this to another grid, a dispatcher should check which grid answers
# A spot this close to a building's point takes its address: a residential block is some 60 × 15 m
# around that point, so a click on the block names it, and a click on a road or square names none.
PLACE_ADDRESS_RADIUS_M = 30.0


def panel(snapshot, lon, lat, *, role=None, area=None, k=3, mode="car"):
    """Everything the dispatcher's side panel shows about a WGS84 point.

    ``lookup.locate`` (district › street › community › grid, workers with phones as ``role`` may
    see them, party branch), the cameras that see the point, the ``k`` nearest of each responder
    kind and of volunteers ranked by road for ``mode`` (walk, ebike, car) with straight-line and,
    where roads exist, road distance and ETA (``distance_basis`` and ``mode`` say which), and
    the grids within :data:`NEAR_GRID_RADIUS_M` of the point besides its own, and the ``address`` of
    the building there (:func:`place_address`). Responders beyond their kind's reach
    (:data:`gridmap.catalog.MAX_RESPONDER_DISTANCE_M`) are left out.

    Phones are whole only where ``role`` may see them within ``area`` (the point's grid and
    community): a click elsewhere is no directory of another area's contacts.

    Raises NotFound when the point lies in no community gridmap knows.
    """
    if not access.can(role, "phone.read", at=place_of(snapshot, lon, lat), area=area):
        role = None  # phones as the public sees them, here
    out = lookup.locate(snapshot, lon, lat, role=role)
    out["cameras"] = [{key: c.get(key) for key in ("id", "name", "distance_m", "bearing")}
                      for c in snapshot.cameras_seeing(lon, lat)]
    kinds = list(catalog.RESPONDER_KINDS) + ["volunteer"]
    # one road search from the point serves every kind's candidates (not one search a kind)
    found, basis = lookup.nearest_by_kind(snapshot, lon=lon, lat=lat, kinds=kinds, k=k, by="road", mode=mode,
                                          role=role)
    out["responders"] = {kind: catalog.within_reach(kind, group) for kind, group in found.items()}
    out["distance_basis"] = basis
    out["mode"] = mode
    out["near_other_grids"] = snapshot.grids_near(lon, lat, NEAR_GRID_RADIUS_M)
    out["address"] = place_address(snapshot, lon, lat)
    return out


def place_address(snapshot, lon, lat):
    """The address of the building at a spot (within :data:`PLACE_ADDRESS_RADIUS_M`), or "" where there
    is none: an incident located on the map is stored with the address of where it lies, never another's."""
    if snapshot.addresses is None:
        return ""
    hit = snapshot.addresses.nearest(lon, lat, max_m=PLACE_ADDRESS_RADIUS_M)
    return hit["address"] if hit else ""


def place_of(snapshot, lon, lat):
    """A point's place as the permission table takes it: (grid code or None, community code or None)."""
    where = snapshot.locate(lon, lat)
    return (where["grid"] or {}).get("code"), (where["community"] or {}).get("code")


def cameras_at(session, snapshot, lon, lat, *, min_blind_m2=None):
    """The camera layer of the community a spot lies in, and the ids of the cameras that see the spot.

    The layer is ``coverage.report_for(..., geometries=True)`` of the spot's community, plus any
    camera of a neighbouring community that sees across the boundary. A community's report costs
    about 0.05 s: it is made for a map of one spot (a click), never for the map of all incidents.

    Returns
    -------
    (dict or None, list of int)
        The report (None outside every community) and the seeing cameras' ids, nearest first.
    """
    where = snapshot.locate(lon, lat)
    if where["community"] is None:
        return None, []
    report = coverage.report_for(session, where["community"]["code"], min_blind_m2=min_blind_m2, geometries=True)
    seeing = [c["id"] for c in snapshot.cameras_seeing(lon, lat)]
    drawn = {v["id"] for v in report["views"]}
    report["views"] = report["views"] + coverage.camera_views_of(session, [i for i in seeing if i not in drawn])
    return report, seeing


def map_layers(session, snapshot, *, point=None, incident_id=None, role=None, area=None, min_blind_m2=None,
               mode="car"):
    """What the dispatcher's map draws: the located ``point`` (WGS84) with its own grid and the grids
    within :data:`NEAR_GRID_RADIUS_M`, the open incidents, with ``incident_id`` that incident and
    whom to send (ranked by road for ``mode``), and the cameras of the spot's community (those that see
    the spot outlined).

    Returns
    -------
    dict
        ``point``, ``own`` (grid code or None), ``near`` (codes), ``incidents``, ``incident`` and
        ``proposal`` (None without ``incident_id``), ``cameras`` (a coverage report or None) and
        ``seeing`` (camera ids).
    """
    own, near, incident, proposal = None, (), None, None
    if point is not None:
        where = snapshot.locate(*point)
        own = where["grid"]["code"] if where["grid"] else None
        near = [g["code"] for g in snapshot.grids_near(*point, NEAR_GRID_RADIUS_M)]
    incidents = dispatch.list_incidents(session, status="open", limit=500, role=role, area=area)
    if incident_id is not None:
        opened = dispatch.incident_panel(session, snapshot, incident_id, role=role, area=area, mode=mode)
        incident, proposal = opened["incident"], opened["proposal"]
    spot = point if point is not None else (incident["lon"], incident["lat"]) if incident else None
    cameras, seeing = cameras_at(session, snapshot, *spot, min_blind_m2=min_blind_m2) \
        if spot and None not in spot else (None, ())
    return {"point": point, "own": own, "near": near, "incidents": incidents, "incident": incident,
            "proposal": proposal, "cameras": cameras, "seeing": seeing}


def place_names(snapshot):
    """Grid and community code → name, for the statistics tables."""
    names = dict(zip(snapshot.grids["code"], snapshot.grids["name"]))
    if snapshot.communities is not None:
        names.update(zip(snapshot.communities["code"], snapshot.communities["name"]))
    return names


def communities(snapshot):
    """The communities to filter the statistics by: ``code`` and ``name``, by code."""
    if snapshot.communities is None:
        return []
    return snapshot.communities[["code", "name"]].to_dict("records")
