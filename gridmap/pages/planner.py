"""What the planner's pages show: the community and plan chosen, the map's layers, camera coverage."""
from __future__ import annotations

from sqlalchemy import select

from .. import coverage
from ..errors import InvalidInput, NotFound
from ..plans import crosswalk, diff, get_plan, list_plans, plan_state, plan_summary
from ..store import models as m
from ..store.loaders import community_buildings


def planner_choices(session, community=None, plan=None):
    """Communities, the chosen community's drafts and published plan, and the chosen plan's id.

    Without a choice the first community and its published plan (else its newest draft) are shown.
    """
    communities = [{"code": c.code, "name": c.name}
                   for c in session.scalars(select(m.Community).order_by(m.Community.code)).all()]
    chosen_plan = get_plan(session, plan) if plan not in (None, "") else None
    code = chosen_plan.community_code if chosen_plan else (community or None)
    if code is None and communities:
        code = communities[0]["code"]
    listed = [p for p in list_plans(session, code) if p["status"] in ("draft", "published")] if code else []
    if chosen_plan is None and listed:
        published = [p for p in listed if p["status"] == "published"]
        chosen_plan = get_plan(session, (published or listed)[0]["id"])
    published_id = next((p["id"] for p in listed if p["status"] == "published"), None)
    return {"communities": communities, "community": code, "plans": listed,
            "plan": plan_summary(chosen_plan) if chosen_plan else None, "published": published_id}


def map_layers(session, plan_id, *, diff_with=None, department=False, limits=None):
    """The data of the planner's map: grids with metrics, building footprints, findings, overlays.

    ``diff_with`` is another plan's id (usually the published one); ``department`` adds the
    community's department grids when it has any (an empty overlay otherwise).
    """
    plan = get_plan(session, plan_id)
    state = plan_state(session, plan, limits=limits, buildings=False)
    out = {"grids": state["grids"], "findings": state["findings"],
           "buildings": community_buildings(session, plan.community_code), "diff": None, "department": None}
    if diff_with not in (None, "") and get_plan(session, diff_with).id != plan.id:
        out["diff"] = diff(session, diff_with, plan.id)["geojson"]
    if department:
        try:
            out["department"] = crosswalk(session, plan.community_code, plan.id)["department_features"]
        except NotFound:
            out["department"] = {"type": "FeatureCollection", "features": []}
    return out


def plan_map(session, plan_id, *, diff_with=None, department=False, limits=None, min_blind_m2=None):
    """Everything the planner's map draws: :func:`map_layers`, whether the plan may be edited, and
    the community's camera coverage (views and blind spots, off at first)."""
    plan = get_plan(session, plan_id)
    layers = map_layers(session, plan, diff_with=diff_with, department=department, limits=limits)
    cams = coverage.report_for(session, plan.community_code, min_blind_m2=min_blind_m2, geometries=True)
    return {**layers, "editable": plan.status == "draft", "cameras": cams}


def coverage_page(session, name, *, min_blind_m2=None):
    """The coverage page: the places to choose from, and the chosen place's report with its shapes.

    A place that cannot be reported on (unknown, or a courtyard without an outline) comes back as
    ``error`` beside the choices, so the page can show the fix above the form.
    """
    out = {"choices": coverage.place_choices(session), "name": name, "report": None, "error": None}
    if name:
        try:
            out["report"] = coverage.report_for(session, name, min_blind_m2=min_blind_m2, geometries=True)
        except (InvalidInput, NotFound) as err:
            out["error"] = err
    return out
