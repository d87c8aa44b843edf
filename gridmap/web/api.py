"""JSON API v1: locate (also as of a day), grids, communities, address search, plans, crosswalk, incidents, SOS."""
from flask import Blueprint, current_app, jsonify, request
from flask_wtf.csrf import generate_csrf

from .. import access, apikeys, assign, dispatch, importer, index, lookup, plans
from ..store import loaders
from ..pages import dispatcher as dispatcher_page
from . import bodies, border, openapi, params
from .common import current_actor, current_area, current_role, localize_finding, requires, snapshot, store
from .extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/locate")
def locate():
    """Locate a point: community, grid, workers (masked by role), party branch; ``at`` for a past day's plan."""
    lon, lat = params.parse_point(request.args.get("lon"), request.args.get("lat"), request.args.get("crs"))
    if request.args.get("at") is None:
        return jsonify(lookup.locate(snapshot(), lon, lat, role=_role_at(lon, lat)))
    day = params.parse_day(request.args.get("at"), name="at")
    with store().session() as session:
        snap = index.snapshot_on(session, day)
    return jsonify({**lookup.locate(snap, lon, lat, role=_role_at(lon, lat)), "at": day.isoformat()})


def _role_at(lon, lat):
    """The caller's role where it may see phones at the point (its area), else None: masked as for the public."""
    role = current_role()
    if role is None or not access.can(role, "phone.read"):
        return role
    at = dispatcher_page.place_of(snapshot(), lon, lat)
    return role if access.can(role, "phone.read", at=at, area=current_area()) else None


@bp.get("/grids")
def grids():
    """Published grids as a GeoJSON FeatureCollection, optionally of one community."""
    community = params.optional_community(request.args.get("community"))
    with store().session() as session:
        return jsonify(plans.grids_geojson(session, community))


@bp.get("/communities")
def communities():
    """All communities with their codes, street and district."""
    with store().session() as session:
        return jsonify(loaders.communities(session))


@bp.get("/addresses")
def addresses():
    """Type-ahead over building addresses: the same fuzzy search as /geocode, shaped for the resident's box."""
    limit = params.parse_limit(request.args.get("limit"), default=10, most=50)
    return jsonify(lookup.addresses(snapshot(), request.args.get("q", ""), limit=limit))


@bp.get("/geocode")
def geocode():
    """Ranked buildings for a loosely typed address: address, building_id, lon, lat, score."""
    limit = params.parse_limit(request.args.get("limit"), default=10, most=50)
    community = params.optional_community(request.args.get("community"))
    return jsonify(lookup.geocode(snapshot(), request.args.get("q", ""), community=community, limit=limit))


@bp.get("/nearest")
def nearest():
    """The k nearest responders or volunteers to a point, in metres, filtered by kind, skill, availability."""
    q = params.parse_nearest_query(request.args)
    return jsonify(lookup.nearest(snapshot(), **q, role=_role_at(q["lon"], q["lat"])))


@bp.get("/grids/<code>/members")
def grid_members(code):
    """Residents, party members and contact links of one grid, for the roles that need them."""
    with store().session() as session:
        return jsonify(assign.grid_members(session, params.parse_grid_code(code), current_role(), area=current_area()))


# --- plans ------------------------------------------------------------------------------------

def _limits():
    return plans.Limits.from_config(current_app.config)


@bp.get("/csrf")
def csrf_token():
    """A CSRF token for this session: send it back as the X-CSRFToken header on POSTs."""
    return jsonify({"csrf_token": generate_csrf()})


@bp.get("/plans")
def plan_list():
    """Plans of every status, newest first, optionally of one community."""
    community = params.optional_community(request.args.get("community"))
    with store().session() as session:
        return jsonify(plans.list_plans(session, community))


@bp.get("/plans/<plan_id>")
def plan_detail(plan_id):
    """One plan with its grids as GeoJSON (households, workers, party branch per grid)."""
    with store().session() as session:
        return jsonify(plans.plan_detail(session, params.plan_id(plan_id), limits=_limits()))


@bp.get("/plans/<plan_id>/validation")
def plan_validation(plan_id):
    """Every validation finding of a plan, errors first, each with kind and GeoJSON geometry."""
    with store().session() as session:
        return jsonify([localize_finding(f.to_dict())
                        for f in plans.validate(session, params.plan_id(plan_id), limits=_limits())])


@bp.get("/plans/<plan_id>/publish-preview")
@requires("plan.edit")
def plan_publish_preview(plan_id):
    """What publishing a draft will do: errors (blocking), warnings to accept by key, the earliest
    effective date, and the buildings and households moving between grids with their workers."""
    pid = params.plan_id(plan_id)
    with store().session() as session:
        out = plans.publish_preview(session, pid, limits=_limits())
    for f in out["errors"] + out["warnings"]:
        localize_finding(f)
    return jsonify(out)


@bp.post("/plans/<plan_id>/publish")
@requires("plan.edit")
def plan_publish(plan_id):
    """Publish a draft (planner or admin): body {"version": N, "valid_from": "YYYY-MM-DD"?}."""
    pid = params.plan_id(plan_id)
    args = bodies.parse_publish_body(border.json_body())
    with store().transaction() as session:
        out = plans.publish_plan(session, pid, limits=_limits(), **args)
    current_app.extensions["gridmap.snapshots"].invalidate()
    return jsonify(out)


@bp.post("/plans/<plan_id>/copy")
@requires("plan.edit")
def plan_copy(plan_id):
    """Copy a plan of any status into a new draft (planner or admin)."""
    pid = params.plan_id(plan_id)
    with store().transaction() as session:
        out = plans.plan_summary(plans.copy_plan(session, pid))
    return jsonify(out), 201


@bp.get("/plans/<plan_a>/diff/<plan_b>")
def plan_diff(plan_a, plan_b):
    """Buildings, households, party members and workers changing grid between two plans, with a map layer."""
    a, b = params.plan_id(plan_a), params.plan_id(plan_b)
    with store().session() as session:
        return jsonify(plans.diff(session, a, b, personal=_people_in_area()))


def _people_in_area():
    """Whether names of a grid's people may be shown, as a test of the grid's code (plan diffs)."""
    role, area = current_role(), current_area()
    if not access.can(role, "people.read"):
        return False
    return lambda grid: isinstance(grid, str) and access.can(role, "people.read", at=(grid, grid[:12]), area=area)


@bp.get("/crosswalk")
def crosswalk():
    """Department grids against the unified grids of a community: area and household shares both ways."""
    community = params.community_code(request.args.get("community"))
    plan = request.args.get("plan")
    with store().session() as session:
        return jsonify(plans.crosswalk(session, community, params.plan_id(plan) if plan not in (None, "") else None))


# --- incidents, whistles, volunteers' ledger, SOS, statistics -----------------------------------

@bp.post("/incidents")
def incident_report():
    """Report an incident: {category, lon, lat, crs?, description, reporter_name, reporter_phone, address}."""
    args = bodies.parse_report(border.json_body())
    with store().transaction() as session:
        out = dispatch.submit(session, snapshot(), actor=current_actor(), **args)
    return jsonify(out), 201


@bp.get("/incidents")
@requires("incident.read")
def incident_list():
    """Incidents by status (or open/closed), level, community, grid, category, overdue; staff only."""
    q = params.parse_list_query(request.args)
    with store().session() as session:
        return jsonify(dispatch.list_incidents(session, **q, role=current_role(), area=current_area()))


@bp.get("/incidents/<incident_id>")
@requires("incident.read")
def incident_detail(incident_id):
    """One incident with its audited history and whistle tasks; staff only."""
    with store().session() as session:
        return jsonify(dispatch.incident_detail(session, params.record_id(incident_id), role=current_role(),
                                                area=current_area()))


@bp.post("/incidents/<incident_id>/transition")
def incident_transition(incident_id):
    """Move an incident on: {action, version, note?, duplicate_of?}; 409 names the allowed actions or the current version."""
    iid = params.record_id(incident_id)
    args = bodies.parse_transition(border.json_body())
    actor = current_actor()
    with store().transaction() as session:
        inc = dispatch.transition(session, iid, actor=actor, **args)
        out = dispatch.incident_dict(inc, role=actor.role, area=actor.area)
    return jsonify(out)


@bp.post("/incidents/<incident_id>/whistle")
def incident_whistle(incident_id):
    """The community blows the whistle (吹哨): {department?, note?} → a department task with a report-by deadline."""
    iid = params.record_id(incident_id)
    args = bodies.parse_whistle(border.json_body())
    with store().transaction() as session:
        task = dispatch.whistle(session, iid, actor=current_actor(), **args)
        out = dispatch.whistles(session, task.incident_id)[-1]
    return jsonify(out), 201


@bp.post(f"/whistles/<int(max={params.MAX_ID}):task_id>/report")
@requires("whistle.report_in")
def whistle_report(task_id):
    """The department reports in (报到) on a whistle task."""
    with store().transaction() as session:
        task = dispatch.report_in(session, task_id, actor=current_actor())
        out = [w for w in dispatch.whistles(session, task.incident_id) if w["id"] == task.id][0]
    return jsonify(out)


@bp.get("/incidents/<incident_id>/duplicates")
@requires("incident.read")
def incident_duplicates(incident_id):
    """Reports of the same category within 50 m and 24 h of this one, nearest first."""
    with store().session() as session:
        return jsonify(dispatch.duplicates(session, params.record_id(incident_id), role=current_role(),
                                           area=current_area()))


@bp.get("/incidents/<incident_id>/responders")
@requires("incident.read")
def incident_responders(incident_id):
    """Whom to send: the grid's workers, nearest responders of the category's kinds, volunteers by skill,
    ranked by road for ``mode`` (walk, ebike, car)."""
    role, area = current_role(), current_area()
    iid, mode = params.record_id(incident_id), params.parse_mode(request.args)
    with store().session() as session:
        inc = dispatch.visible(dispatch.get_incident(session, iid), role, area)
    return jsonify(dispatch.propose(snapshot(), inc, role=role, area=area, mode=mode))


@bp.get(f"/volunteers/<int(max={params.MAX_ID}):volunteer_id>/services")
@requires("ledger.read")
def volunteer_services(volunteer_id):
    """A volunteer's service ledger (台账): every line, total hours and hours per skill."""
    with store().session() as session:
        return jsonify(dispatch.ledger(session, volunteer_id, role=current_role(), area=current_area()))


@bp.post(f"/volunteers/<int(max={params.MAX_ID}):volunteer_id>/services")
@requires("ledger.write")
def volunteer_service_add(volunteer_id):
    """Add a line to a volunteer's ledger: {day, skill, hours, resident_id|household_id|incident_id, note?}."""
    args = bodies.parse_service(border.json_body())
    actor = current_actor()
    with store().transaction() as session:
        dispatch.record_service(session, volunteer_id, actor=actor, **args)
        out = dispatch.ledger(session, volunteer_id, role=actor.role, area=actor.area)
    return jsonify(out), 201


@bp.post("/sos")
@csrf.exempt  # devices have no session; they send X-Api-Key instead
def sos():
    """A registered wearable's alarm: {device_id, lon, lat, time} with header X-Api-Key → a priority incident."""
    with store().transaction() as session:
        key = apikeys.check(session, request.headers.get("X-Api-Key"), what="an SOS")
        args = bodies.parse_sos(border.json_body())
        inc, proposal = dispatch.sos(session, snapshot(), **args, actor=dispatch.Actor(f"api_key:{key.name}", "device"))
        out = {"incident": dispatch.incident_dict(inc, role="device"), "proposal": proposal}
    return jsonify(out), 201


@bp.get("/stats")
def incident_stats():
    """Resolution rate, hours to resolve, open by level, overdue, by grid/community/period, heatmap points."""
    q = params.parse_stats_query(request.args)
    with store().session() as session:
        return jsonify(dispatch.statistics(session, **q, role=current_role(), area=current_area()))


# --- imported records: corrections by hand (admin) -----------------------------------------------


@bp.patch(f"/records/<kind>/<int(max={params.MAX_ID}):record_id>")
@requires("record.edit")
def record_update(kind, record_id):
    """Correct fields of one imported record: body {"version": N, "values": {...}}; 409 on a stale version."""
    version, values = bodies.parse_record_patch(border.json_body())
    with store().transaction() as session:
        out = importer.update_record(session, kind, record_id, values, version=version, user=current_actor().name)
    current_app.extensions["gridmap.snapshots"].invalidate()
    return jsonify(out)


@bp.delete(f"/records/<kind>/<int(max={params.MAX_ID}):record_id>")
@requires("record.edit")
def record_retire(kind, record_id):
    """Retire one imported record: body {"version": N}; undone with its batch."""
    body = bodies.conform(border.json_body(), "RecordRetireBody")
    with store().transaction() as session:
        out = importer.retire_record(session, kind, record_id, version=body["version"], user=current_actor().name)
    current_app.extensions["gridmap.snapshots"].invalidate()
    return jsonify(out)


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI 3.1 document of this API."""
    return jsonify(openapi.document(server_url=request.script_root + bp.url_prefix))
