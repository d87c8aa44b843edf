"""Incidents: routing by catalogue, lifecycle with escalation and the whistle, duplicates, statistics, SOS, volunteers.

Every rule that varies is a table: categories and their levels live in :mod:`gridmap.catalog`,
the lifecycle in :data:`~gridmap.dispatch.rules.TRANSITIONS`, who may take each step in
:mod:`gridmap.access`. Functions take a SQLAlchemy session (and a :class:`gridmap.index.Snapshot`
where a point must be located) and never see Flask; the caller commits.

- :mod:`.rules` — statuses, transitions, routing and deadlines as data; the work-item lists
- :mod:`.incidents` — report, transition, whistle, report-in; reading incidents back
- :mod:`.dedupe` — reports of the same matter nearby
- :mod:`.responders` — whom to send
- :mod:`.desk` — what a report and an opened incident show next
- :mod:`.volunteering` — the volunteers' service ledger
- :mod:`.wearables` — registered wearables and their alarms
- :mod:`.stats` — figures, tables and the heat layer
- :mod:`.georeport` — the incidents as Open311 GeoReport v2 requests
- :mod:`.patrol` — a grid worker's patrols, check-ins and workbench reports, each stored once
- :mod:`.residents` — a resident's report with photos, and its public status page
"""
from .areas import visible
from .desk import incident_panel, submit
from .dedupe import duplicates
from .incidents import (get_incident, history, incident_detail, incident_dict, is_overdue, iso, list_incidents,
                        report, report_in, transition, whistle, whistles)
from .volunteering import ledger, record_service
from .responders import match_volunteers, propose, with_stations
from .residents import incident_photo, public_status, report_photo, resident_report
from .rules import (ACTIONS, CLOSED_STATUSES, DUPLICATE_RADIUS_M, DUPLICATE_WINDOW, OPEN_STATUSES, PERIODS,
                    STATUSES, TRANSITIONS, Actor, Route, allowed_actions, deadline, may_whistle, route, set_work_items,
                    utcnow)
from .wearables import devices, register_device, sos
from .stats import heat_cells, statistics

__all__ = [
    "ACTIONS", "CLOSED_STATUSES", "DUPLICATE_RADIUS_M", "DUPLICATE_WINDOW", "OPEN_STATUSES", "PERIODS", "STATUSES",
    "TRANSITIONS", "Actor", "Route", "allowed_actions", "deadline", "devices", "duplicates", "get_incident",
    "heat_cells", "history", "incident_detail", "incident_dict", "incident_panel", "is_overdue", "iso", "ledger",
    "incident_photo", "list_incidents", "match_volunteers", "public_status", "report_photo", "resident_report", "may_whistle", "propose", "record_service", "register_device", "report", "report_in",
    "route", "set_work_items", "sos", "statistics", "submit", "transition", "utcnow", "whistle", "whistles",
    "visible", "with_stations",
]
