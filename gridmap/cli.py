"""The `gridmap` command: init-db, import, export, demo, create-user, locate."""
import json
import sys

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from .errors import GridmapError


def _store():
    return current_app.extensions["gridmap.store"]


def _fail(err):
    click.secho(f"Error: {err.message}", fg="red", err=True)
    if err.fix:
        click.echo(f"Fix: {err.fix}", err=True)
    sys.exit(2)


@click.command("init-db")
@with_appcontext
def init_db_command():
    """Create the database schema, or upgrade it to the newest migration."""
    _store().upgrade()
    click.echo(f"Database at revision {_store().current_revision()}: {_store().url.render_as_string(hide_password=True)}")


@click.command("import")
@click.argument("kind")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--layer", help="Layer of a GeoPackage or zip; buildings or roads for OpenStreetMap files.")
@click.option("--crs", help="Coordinate system of the file: an EPSG code (4326, 4490, 4547 …), gcj02 or bd09.")
@click.option("--encoding", help="Text encoding of a Shapefile or CSV, e.g. GBK.")
@click.option("--field", "fields", multiple=True, metavar="NAME=COLUMN", help="Take field NAME from column COLUMN.")
@click.option("--skip-invalid", is_flag=True, help="Import the valid features and report the rest.")
@click.option("--publish", is_flag=True, help="grids: publish the new plan at once.")
@with_appcontext
def import_command(kind, path, layer, crs, encoding, fields, skip_invalid, publish):
    """Import KIND (communities, buildings, grids, party-members, workers, volunteers, responders,
    cameras, roads) from PATH (GeoJSON, GeoPackage, Shapefile or zip, CSV with lon/lat, OSM .osm/.pbf)."""
    from . import importer
    try:
        field_map = importer.parse_field_map(fields)
        _store().upgrade()
        with click.progressbar(length=1, label=f"Importing {kind}", file=sys.stderr) as bar:
            def progress(n):
                bar.length = max(bar.length, bar.pos + n + 1)
                bar.update(n)
            summary = importer.import_file(
                _store(), kind, path, layer=layer, crs=crs, encoding=encoding, fields=field_map,
                skip_invalid=skip_invalid, publish=publish,
                max_area_change=current_app.config["IMPORT_MAX_AREA_CHANGE"], progress=progress)
    except GridmapError as err:
        _fail(err)
    _print_summary(summary)


def _print_summary(summary):
    click.echo(f"{summary.kind} from {summary.source}: imported {summary.imported}, "
               f"repaired {len(summary.repaired)}, rejected {len(summary.rejected)} in {summary.seconds:.2f} s")
    for note in summary.notes:
        click.echo(f"  {note}")
    for p in summary.rejected[:20]:
        click.echo(f"  rejected feature {p['row']}: {p['message']}")


@click.command("export")
@click.argument("kind")
@click.argument("path", type=click.Path(dir_okay=False))
@with_appcontext
def export_command(kind, path):
    """Export every record of KIND to PATH (format by extension: .geojson .gpkg .shp .zip .csv)."""
    from . import importer
    try:
        n = importer.export_file(_store(), kind, path)
    except GridmapError as err:
        _fail(err)
    click.echo(f"Wrote {n} {kind} to {path}")


@click.command("demo")
@click.option("--seed", default=2026, show_default=True, help="Seed of the demo generator.")
@click.option("--force", is_flag=True, help="Replace an existing database's contents.")
@with_appcontext
def demo_command(seed, force):
    """Build the Dalian demo (five communities, 18 grids in 城志社区, 25 cameras in 和合大院)."""
    from . import demo
    try:
        report = demo.build(_store(), seed=seed, force=force)
    except GridmapError as err:
        _fail(err)
    for line in report:
        click.echo(line)


@click.command("create-user")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(["admin", "planner", "dispatcher", "grid_worker"]))
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--name", "display_name", default="")
@with_appcontext
def create_user_command(username, role, password, display_name):
    """Create a login for USERNAME with ROLE."""
    from . import accounts
    try:
        with _store().transaction() as session:
            accounts.create_user(session, username, password, role, display_name=display_name)
    except GridmapError as err:
        _fail(err)
    click.echo(f"Created {role} {username}")


@click.command("locate")
@click.argument("lon")
@click.argument("lat")
@click.option("--crs", default="wgs84", show_default=True, type=click.Choice(["wgs84", "gcj02", "bd09"]))
@with_appcontext
def locate_command(lon, lat, crs):
    """Print the community, grid and workers at LON LAT."""
    from . import lookup
    try:
        x, y = lookup.parse_point(lon, lat, crs)
        out = lookup.locate(current_app.extensions["gridmap.snapshots"].get(), x, y, role="admin")
    except GridmapError as err:
        _fail(err)
    click.echo(json.dumps(out, ensure_ascii=False, indent=2))


# Columns of the assign summary table: (heading, summary key).
_ASSIGN_COLUMNS = [("community", "community"), ("grids", "grids"), ("buildings", "buildings"),
                   ("split", "split_buildings"), ("households", "households"), ("members", "members"),
                   ("outside", "outside_members"), ("links", "contact_links"),
                   ("unlinked", "unlinked_households"), ("cameras", "cameras"),
                   ("max load", "workers_max_load")]


@click.command("assign")
@click.option("--community", help="12-digit code of the community whose published plan to assign.")
@click.option("--all", "all_", is_flag=True, help="Assign every community's published plan.")
@with_appcontext
def assign_command(community, all_):
    """Assign buildings, party members, contact households, cameras, volunteers and responders to grids."""
    from . import assign
    if bool(community) == all_:
        _fail(GridmapError("Say which communities to assign.", fix="Pass --community CODE or --all."))
    try:
        _store().upgrade()
        with _store().transaction() as session, \
                click.progressbar(length=len(assign.RUN_STEPS), label="Assigning", file=sys.stderr) as bar:
            summaries = assign.run(session, community=community,
                                   capacity=current_app.config["CONTACT_HOUSEHOLDS_PER_MEMBER"],
                                   progress=lambda _step: bar.update(1))
    except GridmapError as err:
        _fail(err)
    _print_assign_table(summaries)


def _print_assign_table(summaries):
    rows = [[str(s[key]) for _, key in _ASSIGN_COLUMNS] for s in summaries]
    if len(summaries) > 1:
        rows.append(["total"] + [str(sum(s[key] for s in summaries)) if key != "workers_max_load"
                                 else str(max(s[key] for s in summaries)) for _, key in _ASSIGN_COLUMNS[1:]])
    heads = [h for h, _ in _ASSIGN_COLUMNS]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(heads)]
    click.echo("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(heads, widths))))
    for r in rows:
        click.echo("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))))
    for s in summaries:
        for d in s["group_mismatches"]:
            click.echo(f"  {s['community']}: party group {d['group_id']} sits under {d['parent_id']}, "
                       f"but its building's grid branch is {d['expected_branch_id']}")
    if summaries:
        click.echo(f"Assigned {len(summaries)} plan(s) in {summaries[0]['seconds']:.2f} s "
                   f"(up to {summaries[0]['contact_capacity']} contact households per member).")


COMMANDS = [init_db_command, import_command, export_command, demo_command, create_user_command, locate_command,
            assign_command]


def register_commands(app):
    for command in COMMANDS:
        app.cli.add_command(command)


def _create_app():
    from . import create_app
    return create_app()


main = FlaskGroup(create_app=_create_app, add_default_commands=True,
                  help="gridmap: grids, residents, party members, cameras and incidents on maps.")
