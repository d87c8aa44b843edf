"""What the grid worker's workbench shows: my grids, my inbox, the people of my grids, today's patrol."""
from __future__ import annotations

from .. import photos
from ..dispatch import OPEN_STATUSES, list_incidents, patrol, utcnow

#: Incidents the inbox lists at most (open ones of a worker's grids are a handful; this bounds a bad day).
INBOX_LIMIT = 200


def inbox(session, *, role, area, now=None):
    """The open incidents of the worker's grids: overdue first, then new (reported) ones, then by deadline.

    Each is :func:`gridmap.dispatch.incident_dict` with the ids of its ``photos``, whose ``allowed_actions`` already hold only the
    steps the lifecycle and the permission table allow there (no escalation above the last level)."""
    now = now or utcnow()
    rows = [{**i, "photos": [p["id"] for p in photos.photos_of(session, "incident", i["id"])]}
            for i in list_incidents(session, status="open", role=role, area=area, now=now, limit=INBOX_LIMIT)
            if i["status"] in OPEN_STATUSES]
    return sorted(rows, key=lambda i: (not i["overdue"], i["status"] != "reported", i["deadline_at"] or "~",
                                       -i["id"]))


def workbench(session, snapshot, *, role, area, worker_id, now=None):
    """Everything the workbench page shows, as plain data.

    Returns
    -------
    dict
        ``grids`` (code, name, community_code of each grid served), ``inbox`` (:func:`inbox`),
        ``buildings`` (:func:`gridmap.dispatch.patrol.households`: the people of my grids with last
        visit), ``unvisited`` (ids of buildings nobody checked in at this month), ``patrol`` (the
        open one or None), ``track`` (today's patrols) and ``checkins`` (today's).
    """
    now = now or utcnow()
    grids = snapshot.grids[snapshot.grids["code"].isin(sorted(area.grids))]
    buildings = patrol.households(session, snapshot, area, role=role, now=now)
    open_patrol = patrol.current_patrol(session, worker_id, now=now) if worker_id is not None else None
    return {"grids": [{"code": r.code, "name": r.name or r.code, "community_code": r.community_code}
                      for r in grids.itertuples()],
            "inbox": inbox(session, role=role, area=area, now=now),
            "buildings": buildings,
            # the check-in list: the longest unvisited first, as a patrol walks to them
            "choices": sorted(buildings, key=lambda b: (b["last_visit"] is not None, b["last_visit"] or "",
                                                         b["address"])),
            "unvisited": [b["id"] for b in patrol.unvisited(session, snapshot, area, now=now)],
            "patrol": patrol.patrol_dict(open_patrol) if open_patrol is not None else None,
            "track": patrol.track(session, worker_id, now=now) if worker_id is not None else [],
            "checkins": patrol.checkins(session, worker_id, since=patrol.local_day_start(now))
            if worker_id is not None else []}


def map_layers(session, snapshot, *, role, area, worker_id, now=None):
    """What the workbench's map draws: my grids, today's track and check-ins, unvisited buildings, open incidents."""
    now = now or utcnow()
    grids = snapshot.grids[snapshot.grids["code"].isin(sorted(area.grids))]
    unvisited = patrol.unvisited(session, snapshot, area, now=now)
    return {"grids": grids,
            "track": [p["line"] for p in patrol.track(session, worker_id, now=now)] if worker_id is not None else [],
            "checkins": patrol.checkins(session, worker_id, since=patrol.local_day_start(now))
            if worker_id is not None else [],
            "unvisited": unvisited,
            "incidents": inbox(session, role=role, area=area, now=now)}
