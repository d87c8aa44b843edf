"""A grid worker's patrol: positions from the phone checked for plausibility, check-ins at buildings, sent once.

A patrol belongs to the worker record an account acts as; every write is limited to the grids that
record serves (``patrol.use``, scope SERVED). The phone queues what is typed offline and sends it
later, so check-ins and workbench reports carry the key the phone made when they were typed: a
replay answers the first result, never stores a second. Times are naive UTC like every stored time;
"today" and "this month" are the community's (China Standard Time, UTC+8, no daylight saving).
"""
from __future__ import annotations

import datetime as dt
import math
import re

import numpy as np
import shapely

from sqlalchemy import func, insert, select

from .. import access, photos
from ..errors import Conflict, Forbidden, InvalidInput, N_, NotFound
from ..store import models as m
from ..store.races import lock
from .incidents import get_incident, incident_dict, report, transition
from .rules import utcnow

# --- the plausibility rules, as data ------------------------------------------------------------

#: Most positions one request may carry: a phone sends a batch every few seconds, so this is minutes of walk.
MAX_BATCH = 500
#: A position whose accuracy circle is wider than this says little about where the worker walked.
MAX_ACCURACY_M = 100.0
#: Faster than this between two positions is a jump of the fix, not a walk or an e-bike ride (54 km/h).
MAX_SPEED_MPS = 15.0
#: Positions this far outside every grid the worker serves are not a patrol of their grids.
NEAR_M = 300.0
#: How far ahead of the server's clock a phone's time may run.
CLOCK_SKEW = dt.timedelta(minutes=5)
#: A patrol left open longer than this takes no more positions: start a new one.
MAX_PATROL = dt.timedelta(hours=16)
#: A check-in typed offline may wait this long to be sent.
MAX_QUEUE_AGE = dt.timedelta(days=7)
#: A check-in whose position is given must be this close to the building (plus the fix's accuracy).
CHECKIN_NEAR_M = 150.0
#: The community's clock, for "today" and "this month".
LOCAL_OFFSET = dt.timedelta(hours=8)

#: Why a position was not kept (the answer's ``rejected[].reason``).
REASONS = ("accuracy", "time", "outside", "speed")

_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")


def local_day_start(now):
    """The naive UTC time at which the community's day holding ``now`` began."""
    local = now + LOCAL_OFFSET
    return dt.datetime(local.year, local.month, local.day) - LOCAL_OFFSET


def local_month_start(now):
    """The naive UTC time at which the community's month holding ``now`` began."""
    local = now + LOCAL_OFFSET
    return dt.datetime(local.year, local.month, 1) - LOCAL_OFFSET


def check_key(key):
    """An idempotency key as the phone makes it (a UUID or 16–64 URL-safe characters), else InvalidInput."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidInput(N_("key=%(value)s is not an idempotency key of 16–64 letters, digits, - or _."),
                           fix=N_("Send the key the page made when the entry was typed (crypto.randomUUID())."),
                           details={"field": "key"},
                           params={"value": repr(str(key)[:70])})
    return key


# --- patrols ---------------------------------------------------------------------------------------

def _worker(actor, worker_id):
    access.check(actor.role, "patrol.use")
    if worker_id is None or not actor.area.grids:
        raise _no_grid(actor)
    return worker_id


def _no_grid(actor):
    return Forbidden("This account acts as no grid worker serving a grid, so it has no patrol.",
                     fix="Ask an admin to link your account to a grid worker who serves a grid.",
                     details={"allowed_roles": access.roles_for("patrol.use")})


def current_patrol(session, worker_id, *, now=None):
    """The worker's open patrol (started, not stopped, not older than :data:`MAX_PATROL`), or None."""
    now = now or utcnow()
    return session.scalars(select(m.Patrol).where(m.Patrol.worker_id == worker_id, m.Patrol.ended_at.is_(None),
                                                  m.Patrol.started_at > now - MAX_PATROL)
                           .order_by(m.Patrol.started_at.desc()).limit(1)).first()


def start_patrol(session, *, actor, worker_id, now=None):
    """Start a patrol, or answer the one already open (a second tap, a second tab): returns (patrol, created)."""
    now = now or utcnow()
    _worker(actor, worker_id)
    lock(session, m.GridWorker, worker_id)  # two starts at once: the second waits and finds the first's
    open_one = current_patrol(session, worker_id, now=now)
    if open_one is not None:
        return open_one, False
    patrol = m.Patrol(worker_id=worker_id, started_at=now, started_by=actor.name, points=0, distance_m=0.0)
    session.add(patrol)
    session.flush()
    return patrol, True


def stop_patrol(session, patrol_id, *, actor, worker_id, now=None):
    """Stop the worker's patrol; Conflict when it is stopped already, NotFound when it is not theirs."""
    now = now or utcnow()
    _worker(actor, worker_id)
    patrol = _own_patrol(session, patrol_id, worker_id, lock_it=True)
    if patrol.ended_at is not None:
        raise Conflict(N_("Patrol %(id)s was stopped at %(ended_at)s already."),
                       fix=N_("Nothing to do; start a new patrol to patrol again."),
                       details={"ended_at": _iso(patrol.ended_at)},
                       params={"id": patrol.id, "ended_at": _iso(patrol.ended_at)})
    patrol.ended_at = now
    session.flush()
    return patrol


def add_points(session, snapshot, patrol_id, points, *, actor, worker_id, now=None):
    """Keep the plausible positions of a batch; returns ``{"accepted", "rejected": [{index, reason}], "patrol"}``.

    ``points`` are dicts ``lon``, ``lat`` (WGS84), ``accuracy_m`` and ``at`` (naive UTC), as the
    border parsed them. A position is not kept (its reason in :data:`REASONS`) when its accuracy is
    worse than :data:`MAX_ACCURACY_M`; its time is before the patrol began, ahead of the clock, or
    not after the last kept one; it lies farther than :data:`NEAR_M` from every grid the worker
    serves; or reaching it from the last kept position needs more than :data:`MAX_SPEED_MPS`.
    Conflict when the patrol is stopped; NotFound when it is not the worker's.
    """
    now = now or utcnow()
    _worker(actor, worker_id)
    if len(points) > MAX_BATCH:
        raise InvalidInput(N_("The batch holds %(points)s positions, more than %(MAX_BATCH)s."),
                           fix=N_("Send at most %(MAX_BATCH)s positions a request."), details={"most": MAX_BATCH},
                           params={"points": len(points), "MAX_BATCH": MAX_BATCH})
    patrol = _own_patrol(session, patrol_id, worker_id, lock_it=True)
    if patrol.ended_at is not None or patrol.started_at <= now - MAX_PATROL:
        raise Conflict(N_("Patrol %(id)s is over; it takes no more positions."),
                       fix=N_("Start a new patrol."), details={"ended_at": _iso(patrol.ended_at)},
                       params={"id": patrol.id})
    last = session.scalars(select(m.PatrolPoint).where(m.PatrolPoint.patrol_id == patrol.id)
                           .order_by(m.PatrolPoint.at.desc(), m.PatrolPoint.id.desc()).limit(1)).first()
    prev = None if last is None else (last.at, *snapshot.metric.xy(last.lon, last.lat))
    kept, rejected, added = check_points(snapshot, actor.area, points, since=patrol.started_at, last=prev, now=now)
    if kept:  # one executemany, not an ORM object a position
        session.execute(insert(m.PatrolPoint), [{"patrol_id": patrol.id, "at": points[i]["at"], "lon": points[i]["lon"],
                                                 "lat": points[i]["lat"], "accuracy_m": points[i]["accuracy_m"]}
                                                for i in kept])
    patrol.points += len(kept)
    patrol.distance_m += added
    session.flush()
    return {"accepted": len(kept), "rejected": rejected, "patrol": patrol_dict(patrol)}


def check_points(snapshot, area, points, *, since, last=None, now):
    """Which of ``points`` are plausible (see :func:`add_points`), without the store.

    ``last`` is the last kept position as ``(at, x, y)`` in the snapshot's metric frame, or None.
    Returns ``(kept indices in time order, [{"index", "reason"}] by index, metres walked)``. The
    batch is projected and measured against the served grids at once; only the walk from one kept
    position to the next is sequential."""
    if not points:
        return [], [], 0.0
    xs, ys = snapshot.metric.xy(np.array([p["lon"] for p in points]), np.array([p["lat"] for p in points]))
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    near = _near_served(snapshot, area, xs, ys)
    kept, rejected, added, prev = [], [], 0.0, last
    for i in sorted(range(len(points)), key=lambda k: points[k]["at"]):
        p, x, y = points[i], float(xs[i]), float(ys[i])
        reason = None
        if p["accuracy_m"] > MAX_ACCURACY_M:
            reason = "accuracy"
        elif p["at"] < since - dt.timedelta(seconds=30) or p["at"] > now + CLOCK_SKEW \
                or (prev is not None and p["at"] <= prev[0]):
            reason = "time"
        elif not near[i]:
            reason = "outside"
        elif prev is not None:
            # the fixes' own error is no movement: subtract it before judging the speed
            moved = math.hypot(x - prev[1], y - prev[2])
            if max(0.0, moved - p["accuracy_m"]) / (p["at"] - prev[0]).total_seconds() > MAX_SPEED_MPS:
                reason = "speed"
        if reason is not None:
            rejected.append({"index": i, "reason": reason})
            continue
        if prev is not None:
            added += math.hypot(x - prev[1], y - prev[2])
        prev = (p["at"], x, y)
        kept.append(i)
    return kept, sorted(rejected, key=lambda r: r["index"]), added


def _near_served(snapshot, area, xs, ys, radius_m=NEAR_M):
    """For metric points: whether each lies within ``radius_m`` of a grid ``area`` serves."""
    grids = snapshot.grids[snapshot.grids["code"].isin(sorted(area.grids))]
    if not len(grids):
        return np.zeros(len(xs), bool)
    served = shapely.union_all(snapshot.metric.project(grids.geometry.array))
    return shapely.dwithin(served, shapely.points(xs, ys), radius_m)


def near_served(snapshot, area, lon, lat, radius_m=NEAR_M):
    """Whether (lon, lat) lies in, or within ``radius_m`` of, a grid ``area`` serves."""
    i = snapshot.grid_at(lon, lat)
    if i >= 0 and snapshot.grids["code"].iat[i] in area.grids:
        return True
    return any(g["code"] in area.grids for g in snapshot.grids_near(lon, lat, radius_m))


def _own_patrol(session, patrol_id, worker_id, *, lock_it=False):
    patrol = lock(session, m.Patrol, patrol_id) if lock_it else session.get(m.Patrol, patrol_id)
    if patrol is None or patrol.worker_id != worker_id:  # another worker's patrol answers as a missing one
        raise NotFound(N_("Patrol %(patrol_id)s does not exist."), fix=N_("Start a patrol on the workbench."),
                       params={"patrol_id": patrol_id})
    return patrol


def patrol_dict(patrol):
    return {"id": patrol.id, "started_at": _iso(patrol.started_at), "ended_at": _iso(patrol.ended_at),
            "points": patrol.points, "distance_m": round(patrol.distance_m, 1)}


def track(session, worker_id, *, now=None):
    """Today's patrols of the worker, oldest first, each with its positions: ``[{patrol…, "line": [[lon, lat]…]}]``."""
    now = now or utcnow()
    patrols = session.scalars(select(m.Patrol).where(m.Patrol.worker_id == worker_id,
                                                     m.Patrol.started_at >= local_day_start(now))
                              .order_by(m.Patrol.started_at)).all()
    out = []
    for p in patrols:
        rows = session.execute(select(m.PatrolPoint.lon, m.PatrolPoint.lat).where(m.PatrolPoint.patrol_id == p.id)
                               .order_by(m.PatrolPoint.at, m.PatrolPoint.id)).all()
        out.append({**patrol_dict(p), "line": [[lon, lat] for lon, lat in rows]})
    return out


# --- buildings of my grids, check-ins ------------------------------------------------------------

def served_buildings(session, snapshot, area):
    """The buildings in the grids ``area`` serves, located as the resident's lookup locates them.

    Returns a list of dicts ``id``, ``address``, ``name``, ``households``, ``lon``, ``lat``,
    ``grid_code``, sorted by grid and address."""
    grids = snapshot.grids[snapshot.grids["code"].isin(sorted(area.grids))]
    if not len(grids):
        return []
    minx, miny, maxx, maxy = grids.total_bounds
    rows = session.execute(select(m.Building.id, m.Building.address, m.Building.name, m.Building.households,
                                  m.Building.lon, m.Building.lat)
                           .where(m.Building.lon.between(minx, maxx), m.Building.lat.between(miny, maxy))).all()
    codes = snapshot.grids["code"].tolist()
    out = []
    for r in rows:
        i = snapshot.grid_at(r.lon, r.lat)
        if i >= 0 and codes[i] in area.grids:
            out.append({"id": r.id, "address": r.address, "name": r.name, "households": r.households,
                        "lon": r.lon, "lat": r.lat, "grid_code": codes[i]})
    return sorted(out, key=lambda b: (b["grid_code"], b["address"], b["id"]))


def last_visits(session, building_ids):
    """building id → the newest check-in time at it (naive UTC), for the buildings that have one."""
    ids = list(building_ids)
    if not ids:
        return {}
    out = {}
    for chunk in range(0, len(ids), 900):  # SQLite's bound-parameter limit
        out.update(session.execute(select(m.Checkin.building_id, func.max(m.Checkin.at))
                                   .where(m.Checkin.building_id.in_(ids[chunk:chunk + 900]))
                                   .group_by(m.Checkin.building_id)).all())
    return out


def unvisited(session, snapshot, area, *, now=None):
    """The buildings of ``area``'s grids nobody has checked in at this month (the community's month)."""
    now = now or utcnow()
    buildings = served_buildings(session, snapshot, area)
    since = local_month_start(now)
    seen = {b for b, at in last_visits(session, [b["id"] for b in buildings]).items() if at >= since}
    return [b for b in buildings if b["id"] not in seen]


def check_in(session, snapshot, *, actor, worker_id, key, building_id, note="", at=None, lon=None, lat=None,
             accuracy_m=None, now=None):
    """Record a visit to a building of the worker's grids; returns (checkin dict, created).

    A key already stored answers the check-in stored with it (created False) when it is this
    worker's, NotFound otherwise. NotFound for a building outside the grids served (as for one
    that does not exist); InvalidInput for a time ahead of the clock or older than
    :data:`MAX_QUEUE_AGE`, or a position farther than :data:`CHECKIN_NEAR_M` from the building.
    """
    now = now or utcnow()
    _worker(actor, worker_id)
    key = check_key(key)
    first = session.scalar(select(m.Checkin).where(m.Checkin.idempotency_key == key))
    if first is not None:
        if first.worker_id != worker_id:
            raise NotFound(N_("No check-in has this key."), fix=N_("Make a new key for a new check-in."))
        return checkin_dict(session, first), False
    at = at or now
    if at > now + CLOCK_SKEW or at < now - MAX_QUEUE_AGE:
        raise InvalidInput(N_("at=%(at)s is not between %(value)s and now."),
                           fix=N_("Check the phone's clock; a check-in kept offline for over a week is dropped."),
                           details={"field": "at"},
                           params={"at": _iso(at), "value": _iso(now - MAX_QUEUE_AGE)})
    building = session.get(m.Building, building_id)
    grid = None
    if building is not None:
        i = snapshot.grid_at(building.lon, building.lat)
        grid = snapshot.grids["code"].iat[i] if i >= 0 else None
    if building is None or not access.can(actor.role, "patrol.use", at=(grid, None), area=actor.area) or grid is None:
        raise NotFound(N_("Building %(building_id)s is not in a grid you serve."),
                       fix=N_("Pick a building of your grids from the list."), details={"building_id": building_id},
                       params={"building_id": building_id})
    if lon is not None and lat is not None:
        x, y = snapshot.metric.xy(lon, lat)
        bx, by = snapshot.metric.xy(building.lon, building.lat)
        away = math.hypot(x - bx, y - by)
        if away > CHECKIN_NEAR_M + (accuracy_m or 0.0):
            raise InvalidInput(N_("You were %(away)s m from %(address)s when checking in there; a check-in is taken within "
                                  "%(CHECKIN_NEAR_M)s m."),
                               fix=N_("Check in when you are at the building, or leave the position out."),
                               details={"field": "lon", "distance_m": round(away, 1)},
                               params={"away": format(away, '.0f'), "address": building.address,
                                       "CHECKIN_NEAR_M": format(CHECKIN_NEAR_M, '.0f')})
    patrol = current_patrol(session, worker_id, now=now)
    row = m.Checkin(idempotency_key=key, worker_id=worker_id, building_id=building.id, grid_code=grid,
                    patrol_id=patrol.id if patrol is not None else None, at=at, recorded_at=now, note=note or "",
                    recorded_by=actor.name)
    session.add(row)
    session.flush()  # a key another request took at the same moment: Store.transaction() answers 409
    return checkin_dict(session, row), True


def checkin_dict(session, c):
    b = session.get(m.Building, c.building_id)
    return {"id": c.id, "key": c.idempotency_key, "building_id": c.building_id, "address": b.address if b else "",
            "lon": b.lon if b else None, "lat": b.lat if b else None,
            "grid_code": c.grid_code, "at": _iso(c.at), "recorded_at": _iso(c.recorded_at), "note": c.note,
            "patrol_id": c.patrol_id}


def checkins(session, worker_id, *, since):
    """The worker's check-ins since ``since``, newest first."""
    rows = session.scalars(select(m.Checkin).where(m.Checkin.worker_id == worker_id, m.Checkin.at >= since)
                           .order_by(m.Checkin.at.desc(), m.Checkin.id.desc())).all()
    return [checkin_dict(session, c) for c in rows]


# --- reports typed on the workbench (perhaps offline) ---------------------------------------------

def report_once(session, snapshot, *, actor, key, now=None, **report_args):
    """:func:`gridmap.dispatch.report` for a grid worker, stored once per ``key``: returns (incident dict, created).

    The spot must lie in or near a grid the worker serves (:data:`NEAR_M`); a replayed key answers
    the incident first stored with it."""
    now = now or utcnow()
    access.check(actor.role, "patrol.use")
    key = check_key(key)
    first = session.get(m.ReportReceipt, key)
    if first is not None:
        if first.username != actor.name:
            raise NotFound(N_("No report has this key."), fix=N_("Make a new key for a new report."))
        inc = get_incident(session, first.incident_id)
        return incident_dict(inc, role=actor.role, area=actor.area, now=now), False
    if not near_served(snapshot, actor.area, report_args["lon"], report_args["lat"]):
        raise InvalidInput(N_("The spot is not in or near a grid you serve."),
                           fix=N_("Report from your grids; the dispatcher takes reports from elsewhere."),
                           details={"field": "lon"})
    inc = report(session, snapshot, actor=actor, now=now, source="worker", **report_args)
    session.add(m.ReportReceipt(idempotency_key=key, incident_id=inc.id, username=actor.name))
    session.flush()
    return incident_dict(inc, role=actor.role, area=actor.area, now=now), True


# --- resolving on the spot, with photos ------------------------------------------------------------

#: Photos a resolve may carry (the same number a resident's report may).
MAX_RESOLVE_PHOTOS = 3


def resolve(session, incident_id, *, actor, version, note, files=(), photo_limits=None, now=None,
            show_photos=False):
    """Resolve an incident with a note saying what was done and up to :data:`MAX_RESOLVE_PHOTOS` photos.

    The photos are checked and cleaned (:func:`gridmap.photos.clean_photos`: type by content, size,
    no EXIF) before anything is written, then stored as the incident's own (``owner_kind``
    "incident", stage "resolve"): those who may read the incident see them, as they see the report's.
    The resident who reported it sees them on the report's status page only with ``show_photos``
    (``incident.show_photos`` in :mod:`gridmap.access`, where the incident is). Returns
    ``(incident, photo ids)``; the transition's own NotFound / Conflict / Forbidden otherwise.
    """
    if not (note or "").strip():
        raise InvalidInput(N_("note is missing: a resolve says what was done."), fix=N_("Write what was done."),
                           details={"field": "note"})
    limits = photo_limits or photos.PhotoLimits(max_count=MAX_RESOLVE_PHOTOS)
    cleaned = photos.clean_photos(files, limits=limits)
    inc = transition(session, incident_id, "resolve", actor=actor, version=version, note=note.strip(), now=now)
    if show_photos and cleaned:
        access.check(actor.role, "incident.show_photos", at=(inc.grid_code, inc.community_code), area=actor.area)
    ids = photos.save_photos(session, cleaned, owner_kind="incident", owner_id=inc.id, limits=limits, stage="resolve",
                             reporter_sees=bool(show_photos))
    return inc, ids


# --- the people of my grids ------------------------------------------------------------------------

def households(session, snapshot, area, *, role, now=None):
    """The households of ``area``'s grids by building, with residents, contact party members and last visit.

    Returns a list of buildings (as :func:`served_buildings`) each with ``last_visit`` (ISO or
    None) and ``households``: ``[{id, unit, size, residents: [{name, phone, vulnerable}],
    contact_member}]``; ``contact_member`` is the name of the party member who looks in on the
    household under the published plan (党员联系户), or None. Phones as ``role`` may see them there."""
    buildings = served_buildings(session, snapshot, area)
    if not buildings:
        return []
    by_id = {b["id"]: {**b, "count": b["households"], "households": []} for b in buildings}
    visits = last_visits(session, list(by_id))
    ids = list(by_id)
    homes, people, contacts = [], [], {}
    for chunk in range(0, len(ids), 900):
        part = ids[chunk:chunk + 900]
        homes += session.execute(select(m.Household.id, m.Household.building_id, m.Household.unit, m.Household.size)
                                 .where(m.Household.building_id.in_(part)).order_by(m.Household.unit,
                                                                                    m.Household.id)).all()
    hids = [h.id for h in homes]
    for chunk in range(0, len(hids), 900):
        part = hids[chunk:chunk + 900]
        people += session.execute(select(m.Resident.household_id, m.Resident.name, m.Resident.phone,
                                         m.Resident.vulnerable).where(m.Resident.household_id.in_(part))
                                  .order_by(m.Resident.id)).all()
        contacts.update(session.execute(
            select(m.ContactLink.household_id, m.PartyMember.name)
            .join(m.PartyMember, m.PartyMember.id == m.ContactLink.member_id)
            .join(m.GridPlan, m.GridPlan.id == m.ContactLink.plan_id)
            .where(m.GridPlan.status == "published", m.ContactLink.household_id.in_(part))).all())
    residents = {}
    for p in people:
        residents.setdefault(p.household_id, []).append(p)
    for h in homes:
        b = by_id[h.building_id]
        at = (b["grid_code"], None)
        b["households"].append({
            "id": h.id, "unit": h.unit, "size": h.size, "contact_member": contacts.get(h.id),
            "residents": [{"name": r.name, "phone": access.phone_for(role, r.phone, at=at, area=area),
                           "vulnerable": bool(r.vulnerable)} for r in residents.get(h.id, [])]})
    out = []
    for b in by_id.values():
        b["last_visit"] = _iso(visits.get(b["id"]))
        out.append(b)
    return out


def _iso(value):
    return None if value is None else value.replace(microsecond=0).isoformat() + "Z"

