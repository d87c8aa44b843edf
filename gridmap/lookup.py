"""Resident lookup: a point or an address → community, grid, grid workers and party branch."""
from __future__ import annotations

import math
import threading
import time

from sqlalchemy import Integer, func, or_, select

from . import plans
from .errors import InvalidInput, NotFound
from .geo import crs as geo_crs
from .index import EDGE_RULE, Snapshot
from .privacy import phone_for
from .store import models as m

COORDINATE_SYSTEMS = ("wgs84", "gcj02", "bd09")


class SnapshotCache:
    """One Snapshot per process, rebuilt when the store's published generation moves on.

    Every process polls the generation counter (one tiny query at most every
    ``check_seconds``), so several web workers agree soon after a publish
    without a restart or a message bus.
    """

    def __init__(self, store, check_seconds=2.0):
        self.store = store
        self.check_seconds = check_seconds
        self._snapshot = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def get(self):
        now = time.monotonic()
        snap = self._snapshot
        if snap is not None and now - self._checked < self.check_seconds:
            return snap
        with self._lock:
            with self.store.session() as session:
                gen = plans.generation(session)
                if self._snapshot is None or self._snapshot.generation != gen:
                    self._snapshot = Snapshot.from_store(session)
            self._checked = now
            return self._snapshot

    def invalidate(self):
        self._snapshot = None


def parse_point(lon, lat, crs="wgs84"):
    """Validate query-string coordinates and return WGS84 floats.

    Raises InvalidInput naming the bad value: not a number, not finite, out of range,
    lon/lat apparently swapped, or an unknown coordinate system.
    """
    crs = (crs or "wgs84").lower().replace("-", "")
    if crs not in COORDINATE_SYSTEMS:
        raise InvalidInput(f"crs {crs!r} is not supported here.", fix=f"Use one of {list(COORDINATE_SYSTEMS)}.")
    values = {}
    for name, raw in (("lon", lon), ("lat", lat)):
        if raw is None or str(raw).strip() == "":
            raise InvalidInput(f"{name} is missing.", fix="Give both lon and lat in decimal degrees, e.g. lon=121.61&lat=38.91.")
        try:
            values[name] = float(str(raw).strip())
        except ValueError:
            raise InvalidInput(f"{name}={raw!r} is not a number.", fix="Write decimal degrees, e.g. 121.6147.") from None
        if not math.isfinite(values[name]):
            raise InvalidInput(f"{name}={raw!r} is not a finite number.", fix="Write decimal degrees, e.g. 121.6147.")
    x, y = values["lon"], values["lat"]
    if abs(y) > 90 and abs(x) <= 90:
        raise InvalidInput(f"lat={y} is out of range and lon={x} looks like a latitude: lon and lat look swapped.",
                           fix=f"Try lon={y}&lat={x}.")
    if abs(x) > 180 or abs(y) > 90:
        raise InvalidInput(f"lon={x}, lat={y} is outside the globe.", fix="lon must be within ±180 and lat within ±90.")
    if crs == "gcj02":
        x, y = geo_crs.gcj02_to_wgs84(x, y)
    elif crs == "bd09":
        x, y = geo_crs.bd09_to_wgs84(x, y)
    return float(x), float(y)


def locate(snapshot, lon, lat, *, role=None):
    """Everything a resident or dispatcher needs about a WGS84 point.

    Raises NotFound when the point lies in no community with published grids.
    Phones are masked unless ``role`` may see them (see ``catalog.SEES_FULL_PHONES``).
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


def search_addresses(session, q, *, limit=10):
    """Buildings whose address equals, starts with or contains ``q``, in that order."""
    q = (q or "").strip()
    if not q:
        return []
    if len(q) > 200:
        raise InvalidInput(f"q is {len(q)} characters long; an address search takes at most 200.",
                           fix="Type the street and number only, e.g. q=湾里路12号.")
    like = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rank = ((m.Building.address == q).cast(Integer) * 2 +
            (m.Building.address.like(f"{like}%", escape="\\")).cast(Integer))
    rows = session.execute(
        select(m.Building.id, m.Building.address, m.Building.name, m.Building.lon, m.Building.lat)
        .where(or_(m.Building.address.like(f"%{like}%", escape="\\"), m.Building.name == q))
        .order_by(rank.desc(), func.length(m.Building.address), m.Building.address).limit(limit)).all()
    return [{"id": r.id, "address": r.address, "name": r.name, "lon": r.lon, "lat": r.lat} for r in rows]


def locate_address(session, snapshot, q, *, role=None):
    """Locate the best-matching building for an address; NotFound when nothing matches."""
    hits = search_addresses(session, q, limit=1)
    if not hits:
        raise NotFound(f"No building address matches {q!r}.", fix="Type part of the street name and number, e.g. 湾里路12号.")
    out = locate(snapshot, hits[0]["lon"], hits[0]["lat"], role=role)
    out["address"] = hits[0]["address"]
    return out


def parse_grid_code(code):
    if not (isinstance(code, str) and len(code) == 15 and code.isdigit()):
        raise InvalidInput(f"Grid code {code!r} is not 15 digits.",
                           fix="Use a code from /api/v1/grids, e.g. 210213013004001.")
    return code


def parse_nearest_query(args):
    """Validate /nearest's query string: lon, lat, crs, kind, skill, k, radius, available."""
    from .catalog import RESPONDER_KINDS
    lon, lat = parse_point(args.get("lon"), args.get("lat"), args.get("crs"))
    kinds = sorted(RESPONDER_KINDS) + ["volunteer"]
    kind = (args.get("kind") or "").strip() or None
    if kind is not None and kind not in kinds:
        raise InvalidInput(f"kind={kind!r} is not known.", fix=f"Use one of {kinds}.")
    k = _bounded_number(args, "k", int, default=5, low=1, high=50)
    radius = _bounded_number(args, "radius", float, default=None, low=1, high=50_000)
    available = (args.get("available") or "").strip().lower()
    if available not in ("", "true", "false", "1", "0"):
        raise InvalidInput(f"available={available!r} is not true or false.", fix="Use available=true or leave it out.")
    skill = (args.get("skill") or "").strip() or None
    if skill is not None and len(skill) > 32:
        raise InvalidInput("skill is longer than 32 characters.", fix="Name one skill, e.g. skill=维修.")
    by = (args.get("by") or "line").strip()
    if by not in ("line", "road"):
        raise InvalidInput(f"by={by!r} is not known.", fix="Use by=road for road distances, or leave it out.")
    mode = (args.get("mode") or "car").strip()
    from .routing import SPEEDS_MPS
    if mode not in SPEEDS_MPS:
        raise InvalidInput(f"mode={mode!r} is not known.", fix=f"Use one of {sorted(SPEEDS_MPS)}.")
    return {"lon": lon, "lat": lat, "kind": kind, "skill": skill, "k": k, "radius_m": radius,
            "available": None if available == "" else available in ("true", "1"), "by": by, "mode": mode}


def _bounded_number(args, name, cast, *, default, low, high):
    raw = (args.get(name) or "").strip()
    if raw == "":
        return default
    try:
        value = cast(raw)
    except ValueError:
        value = None
    if value is None or not (low <= value <= high) or (cast is float and not math.isfinite(value)):
        raise InvalidInput(f"{name}={raw!r} is not a number between {low} and {high}.",
                           fix=f"Use e.g. {name}={default or low}.")
    return value


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
    from .routing import eta_s
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
    """Ranked building candidates for a loosely typed address (offline, fuzzy)."""
    if community is not None and not (len(community) == 12 and community.isdigit()):
        raise InvalidInput(f"community={community!r} is not a 12-digit community code.",
                           fix="Use a code from /api/v1/communities, e.g. 210213013004.")
    if snapshot.addresses is None:
        return []
    return snapshot.addresses.search(q, community=community, limit=limit)
