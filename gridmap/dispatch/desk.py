"""What a new report and an opened incident show next: possible duplicates and whom to send."""
from __future__ import annotations

from .dedupe import duplicates
from .incidents import get_incident, incident_detail, incident_dict, report
from .responders import propose, with_stations
from .rules import OPEN_STATUSES


def submit(session, snapshot, *, actor, **report_args):
    """:func:`report`, then what the reporter and the dispatcher want to know next: possible
    duplicates (of a public category, or in ``actor``'s area; masked) and whom to send (phones as ``actor`` may see
    them at the incident's place)."""
    inc = report(session, snapshot, actor=actor, **report_args)
    return {"incident": incident_dict(inc, role=actor.role, area=actor.area, now=report_args.get("now")),
            "possible_duplicates": duplicates(session, inc.id, role=actor.role, area=actor.area, own=True),
            "proposal": propose(snapshot, inc, role=actor.role, area=actor.area)}


def incident_panel(session, snapshot, incident_id, *, role=None, area=None, now=None, mode="car"):
    """What the dispatcher sees on opening an incident: :func:`incident_detail`, the suggested
    ``duplicates`` and, while it is open, whom to send (``proposal``, workers with stations, others
    ranked by road for ``mode``; None once closed). NotFound for an incident outside ``role``'s ``area``."""
    detail = incident_detail(session, incident_id, role=role, area=area, now=now)
    inc = get_incident(session, detail["id"])
    proposal = with_stations(session, inc, propose(snapshot, inc, role=role, area=area, mode=mode)) \
        if inc.status in OPEN_STATUSES else None
    return {"incident": detail, "duplicates": duplicates(session, inc.id, role=role, area=area), "proposal": proposal}
