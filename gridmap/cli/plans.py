"""The plan commands: list, validate, copy, publish, diff and export plans; the department-grid crosswalk.

Light to start: plans, ids and the store only (the plans package loads a module when a command uses it).
"""
import csv
import json
import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from .. import ids, plans
from ..errors import GridmapError, N_
from .common import print_rows, reports_errors, say, store


@click.group("plan")
def plan_group():
    """Grid plans: list, validate, copy, publish, diff and export."""


def _plan_limits():
    return plans.Limits.from_config(current_app.config)


@plan_group.command("list")
@click.option("--community", help="12-digit code of the community whose plans to list.")
@with_appcontext
@reports_errors
def plan_list_command(community):
    """List plans (drafts, published, retired), newest first per community."""
    with store().session() as session:
        rows = plans.list_plans(session, ids.optional_community(community))
    for r in rows:  # a name gridmap generated, in the user's language; a typed one as typed
        if r.get("name_template"):
            r["name"] = say(r["name_template"], r["name_params"])
    print_rows(rows, ["id", "community", "status", "valid_from", "valid_to", "version", "grids", "name"])


@plan_group.command("validate")
@click.argument("plan_id")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON with their GeoJSON geometry.")
@with_appcontext
@reports_errors
def plan_validate_command(plan_id, as_json):
    """List every validation finding of PLAN_ID; exit status 1 when any is an error."""
    with store().session() as session:
        findings = plans.validate(session, ids.plan_id(plan_id), limits=_plan_limits())
    errors = sum(f.severity == "error" for f in findings)
    if as_json:
        click.echo(json.dumps([f.to_dict() for f in findings], ensure_ascii=False, indent=2))
    else:
        for f in findings:
            click.echo(f"{f.severity:7}  {f.kind:14}  {','.join(f.grid_codes):33}  {f.message}")
        click.echo(f"{errors} error(s), {len(findings) - errors} warning(s)")
    if errors:
        sys.exit(1)


@plan_group.command("copy")
@click.argument("plan_id")
@click.option("--name", help="Name of the new draft.")
@with_appcontext
@reports_errors
def plan_copy_command(plan_id, name):
    """Copy PLAN_ID (of any status) into a new draft."""
    with store().transaction() as session:
        new = plans.plan_summary(plans.copy_plan(session, ids.plan_id(plan_id), name=name))
    click.echo(f"Draft plan {new['id']} of {new['community']} with {new['grids']} grids")


@plan_group.command("publish")
@click.argument("plan_id")
@click.option("--on", "on", help="First day the plan is valid, YYYY-MM-DD (default today).")
@click.option("--version", "version", type=int, help="Publish only if the plan is still at this version.")
@click.option("--accept-warnings", "accept", is_flag=True,
              help="Publish although validation warns (listed by `gridmap plan validate PLAN_ID`).")
@with_appcontext
@reports_errors
def plan_publish_command(plan_id, on, version, accept):
    """Validate and publish draft PLAN_ID; the community's current plan is retired the same day.

    Errors always refuse; warnings refuse too unless --accept-warnings says you read them."""
    day = ids.parse_day(on, name="--on") if on is not None else None
    try:
        with store().transaction() as session:
            out = plans.publish_plan(session, ids.plan_id(plan_id), expected_version=version, on=day,
                                     limits=_plan_limits(), accepted_warnings=None if accept else [])
    except GridmapError as err:
        for f in (err.details or {}).get("warnings", []):
            click.echo(f"warning  {f['kind']:14}  {','.join(f['grid_codes']):33}  {f['message']}", err=True)
        if err.code == "warnings_not_accepted":
            err.fix = err.fix_template = N_("Read them, then publish again with --accept-warnings (or fix them in "
                                            "the draft).")
        raise
    # the web app's snapshot cache, when this runs inside it (tests); other processes see the new
    # generation that publishing bumps
    if "gridmap.snapshots" in current_app.extensions:
        current_app.extensions["gridmap.snapshots"].invalidate()
    click.echo(f"Published plan {out['id']} of {out['community']} from {out['valid_from']}")


@plan_group.command("diff")
@click.argument("plan_a")
@click.argument("plan_b")
@click.option("--out", type=click.Path(dir_okay=False), help="Also write the table to this CSV file.")
@with_appcontext
@reports_errors
def plan_diff_command(plan_a, plan_b, out):
    """Buildings, households, party members and grid workers that change grid from PLAN_A to PLAN_B."""
    with store().session() as session:
        result = plans.diff(session, ids.plan_id(plan_a), ids.plan_id(plan_b), personal=True)
    rows = plans.diff_rows(result)
    s = result["summary"]
    print_rows(rows[:50], ["kind", "id", "label", "households", "from", "to"])
    if len(rows) > 50:
        click.echo(f"… and {len(rows) - 50} more rows")
    click.echo(f"{s['buildings']} buildings ({s['households']} households), {s['members']} party members and "
               f"{s['workers']} grid workers change grid")
    if out:
        with open(out, "w", newline="", encoding="utf-8-sig") as f:  # utf-8-sig: Excel reads the Chinese
            writer = csv.DictWriter(f, fieldnames=["kind", "id", "label", "households", "from", "to"],
                                    extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        click.echo(f"Wrote {len(rows)} rows to {out}")


@plan_group.command("export")
@click.argument("plan_id")
@click.argument("path", type=click.Path(dir_okay=False))
@with_appcontext
@reports_errors
def plan_export_command(plan_id, path):
    """Write PLAN_ID's grids with households, workers and party branch to PATH (.geojson .gpkg .zip .shp .csv)."""
    with store().session() as session:
        n = plans.export_plan(session, ids.plan_id(plan_id), path)
    click.echo(f"Wrote {n} grids of plan {plan_id} to {path}")


@click.command("crosswalk")
@click.argument("community")
@click.option("--plan", "plan_id", help="Unified plan to compare with (default: the published one).")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the crosswalk table to this CSV file.")
@with_appcontext
@reports_errors
def crosswalk_command(community, plan_id, out):
    """Department grids of COMMUNITY against its unified grids: area and household shares."""
    with store().session() as session:
        result = plans.crosswalk(session, ids.community_code(community),
                                 ids.plan_id(plan_id) if plan_id is not None else None)
    if out:
        n = plans.write_csv(result, out)
        click.echo(f"Wrote {n} rows to {out}")
    else:
        print_rows(result["rows"], ["department", "department_code", "grid_code", "area_share_of_department_grid",
                                     "area_share_of_grid", "households", "household_share_of_department_grid"])
