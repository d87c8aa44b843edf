"""The data commands: schema, import, export, demo, locate, assign, partition, coverage, devices, work items.

Each command parses its arguments, calls a service and prints; a GridmapError ends it with the
message and the fix (exit status 2).
"""
import getpass
import json
import sys
import time

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from .. import assign, catalog, coverage, demo, dispatch, importer, lookup, plans
from ..errors import GridmapError, InvalidInput, N_, NotFound, Said
from ..geo.warm import warm
from ..store import loaders
from ..store import models as m
from ..store.generations import bump_generation
from ..web import params
from .common import fail, print_rows, reports_errors, say, store


@click.command("init-db")
@with_appcontext
@reports_errors
def init_db_command():
    """Create the database schema, or upgrade it to the newest migration."""
    store().upgrade()
    click.echo(f"Database at revision {store().current_revision()}: {store().url.render_as_string(hide_password=True)}")
    # cameras imported before views were stored (migration 0005) get theirs now
    computed = _refresh_views(everything=False)
    if computed:
        click.echo(f"{computed} camera views computed")


def _refresh_views(everything):
    with store().transaction() as session:
        ids = session.execute(select(m.Camera.id)).scalars().all() if everything else None
        computed = coverage.refresh_views(session, camera_ids=ids)
        if computed:
            bump_generation(session)  # running web processes pick the new views up
    return computed


@click.command("camera-views")
@click.option("--all", "everything", is_flag=True, help="Recompute every camera's view, not only missing ones.")
@with_appcontext
@reports_errors
def camera_views_command(everything):
    """Compute the stored view (sector minus what buildings hide) of cameras that lack one.

    Imports keep views current; use --all after changing cameras or buildings by other means
    (SQL, another tool).
    """
    t0 = time.perf_counter()
    computed = _refresh_views(everything)
    click.echo(f"{computed} camera views computed in {time.perf_counter() - t0:.1f} s")


@click.command("import")
@click.argument("kind")
@click.argument("path", required=False)
@click.option("--layer", help="Layer of a GeoPackage or zip; buildings or roads for OpenStreetMap files.")
@click.option("--crs", help="Coordinate system of the file: an EPSG code (4326, 4490, 4547 …), gcj02 or bd09.")
@click.option("--encoding", help="Text encoding of a Shapefile or CSV, e.g. GBK.")
@click.option("--field", "fields", multiple=True, metavar="NAME=COLUMN", help="Take field NAME from column COLUMN.")
@click.option("--skip-invalid", is_flag=True, help="Import the valid features and report the rest.")
@click.option("--publish", is_flag=True, help="grids: publish the new plan at once.")
@click.option("--department", help="department-grids: the department that drew them, e.g. 综治, 公安, 民政.")
@click.option("--mode", type=click.Choice(["upsert", "replace", "append"]), default="upsert", show_default=True,
              help="upsert: update records with the same key, add new ones; replace: also retire the source's "
                   "records the file no longer has; append: add every feature as a new record.")
@click.option("--key", metavar="COLUMN", help="The column that identifies a record across imports (default: OSM "
                                              "type and id, else a source_key/code/编码/编号 column, else content).")
@click.option("--source", help="The register records are matched in (default: file; osm for OSM files): keeps "
                                "two lists whose codes overlap apart.")
@click.option("--user", default=None, help="Who imports, for the batch history (default: the login name).")
@click.option("--limit", default=50, show_default=True, help="import list: how many batches, newest first.")
@with_appcontext
@reports_errors
def import_command(kind, path, layer, crs, encoding, fields, skip_invalid, publish, department, mode, key, source,
                   user, limit):
    """Import KIND (communities, buildings, grids, party-members, workers, volunteers, responders,
    cameras, roads, department-grids) from PATH (GeoJSON, GeoPackage, Shapefile or zip, CSV with
    lon/lat, OSM .osm/.pbf). Every import is a batch: `gridmap import list` shows them and
    `gridmap import undo BATCH` takes one back (newest first)."""
    store().upgrade()
    if kind == "list":
        with store().session() as session:
            rows = importer.list_batches(session, limit=limit)
        print_rows(rows, _BATCH_COLUMNS, headers=[say(h) for h in _BATCH_COLUMNS.values()])
        return
    if kind == "undo":
        if path is None:
            raise InvalidInput(N_("gridmap import undo needs the batch id."), fix=N_("See `gridmap import list`."))
        with store().transaction() as session:
            out = importer.undo_batch(session, path, user=_login(user))
        click.echo(say(N_("Undid batch %(batch_id)s (%(kind)s): %(retired)s records it created retired, "
                          "%(restored)s restored to their previous values, %(returned)s returned"), out))
        return
    if path is None:
        raise InvalidInput(N_("gridmap import %(kind)s needs the file to import."),
                           fix=N_("Run gridmap import %(kind)s PATH."), params={"kind": kind})
    field_map = importer.parse_field_map(fields)
    with click.progressbar(length=1, label=say(N_("Importing %(kind)s"), kind=kind), file=sys.stderr) as bar:
        def progress(n):
            bar.length = max(bar.length, bar.pos + n + 1)
            bar.update(n)
        summary = importer.import_file(
            store(), kind, path, layer=layer, crs=crs, encoding=encoding, fields=field_map,
            skip_invalid=skip_invalid, publish=publish,
            max_area_change=current_app.config["IMPORT_MAX_AREA_CHANGE"], progress=progress,
            department=department, limits=plans.Limits.from_config(current_app.config),
            mode=mode, key=key, source=source, user=_login(user))
    _print_summary(summary)


def _login(user):
    if user:
        return user
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a container without a passwd entry
        return ""


@click.group("record")
def record_group():
    """Correct or retire one imported record by hand (a one-record batch, undone like an import)."""


@record_group.command("update")
@click.argument("kind")
@click.argument("record_id")
@click.argument("values", nargs=-1, required=True, metavar="FIELD=VALUE…")
@click.option("--version", "version", required=True, help="The record's version as you read it (optimistic locking).")
@click.option("--user", default=None, help="Who corrects, for the batch history (default: the login name).")
@with_appcontext
@reports_errors
def record_update_command(kind, record_id, values, version, user):
    """Correct fields of record RECORD_ID of KIND, e.g. `gridmap record update volunteers 12 phone=138… --version 1`."""
    pairs = {}
    for pair in values:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"{pair!r} is not of the form field=value.", fix="Write e.g. phone=13812341234.")
        pairs[name.strip()] = value
    with store().transaction() as session:
        out = importer.update_record(session, kind, record_id, pairs, version=version, user=_login(user))
    click.echo(f"{kind} {out['id']} corrected in batch {out['batch_id']}, now version {out['version']}")


@record_group.command("retire")
@click.argument("kind")
@click.argument("record_id")
@click.option("--version", "version", required=True, help="The record's version as you read it (optimistic locking).")
@click.option("--user", default=None, help="Who retires it, for the batch history (default: the login name).")
@with_appcontext
@reports_errors
def record_retire_command(kind, record_id, version, user):
    """Retire record RECORD_ID of KIND: gone from every map, list and export; `gridmap import undo` brings it back."""
    with store().transaction() as session:
        out = importer.retire_record(session, kind, record_id, version=version, user=_login(user))
    click.echo(f"{kind} {out['id']} retired in batch {out['batch_id']}")


#: ``gridmap import list``'s columns and their headings (the keys are the batch's fields).
_BATCH_COLUMNS = {"id": N_("id"), "kind": N_("kind"), "source": N_("source"), "mode": N_("mode"), "user": N_("user"),
                  "started_at": N_("started at"), "created": N_("created"), "updated": N_("updated"),
                  "unchanged": N_("unchanged"), "retired": N_("retired"), "rejected": N_("rejected"),
                  "undone_at": N_("undone at")}


def _print_summary(summary):
    click.echo(say(N_("%(kind)s from %(source)s: imported %(imported)s, repaired %(repaired)s, rejected %(rejected)s "
                      "in %(seconds)s s"),
                   kind=summary.kind, source=summary.source, imported=summary.imported,
                   repaired=len(summary.repaired), rejected=len(summary.rejected), seconds=f"{summary.seconds:.2f}"))
    counts = dict(batch=summary.batch_id, mode=summary.mode, created=summary.created, updated=summary.updated,
                  unchanged=summary.unchanged, retired=summary.retired, key=summary.key_basis)
    if summary.key_basis:
        click.echo(say(N_("  batch %(batch)s (%(mode)s, key: %(key)s): created %(created)s, updated %(updated)s, "
                          "unchanged %(unchanged)s, retired %(retired)s"), counts))
    else:
        click.echo(say(N_("  batch %(batch)s (%(mode)s): created %(created)s, updated %(updated)s, "
                          "unchanged %(unchanged)s, retired %(retired)s"), counts))
    for count in summary.read:  # what the file held, before validation (OSM extracts)
        click.echo(f"  {count.line()}")
    for note in summary.notes:
        click.echo(f"  {say(note.template, note.params) if isinstance(note, Said) else note}")
    for p in summary.rejected[:20]:
        message = say(p.get("template") or p["message"], p.get("params"))
        click.echo(say(N_("  rejected feature %(row)s: %(message)s"), row=p["row"], message=message))


@click.command("export")
@click.argument("kind")
@click.argument("path", type=click.Path(dir_okay=False))
@with_appcontext
@reports_errors
def export_command(kind, path):
    """Export every record of KIND to PATH (format by extension: .geojson .gpkg .shp .zip .csv)."""
    n = importer.export_file(store(), kind, path)
    click.echo(f"Wrote {n} {kind} to {path}")


@click.command("demo")
@click.option("--seed", default=2026, show_default=True, help="Seed of the demo generator.")
@click.option("--force", is_flag=True, help="Replace an existing database's contents.")
@with_appcontext
@reports_errors
def demo_command(seed, force):
    """Build the Dalian demo (five communities, 18 grids in 城志社区, 25 cameras in 和合大院)."""
    report = demo.build(store(), seed=seed, force=force, limits=plans.Limits.from_config(current_app.config),
                        max_area_change=current_app.config["IMPORT_MAX_AREA_CHANGE"])
    for line in report:
        click.echo(line)
    # the demo is what a new user opens first: its first map must not wait for numba
    click.echo(f"map kernels ready in {warm():.1f} s")


@click.command("warm")
def warm_command():
    """Compile the map kernels (point index, road search) now, so no user's first request waits for them."""
    click.echo(f"map kernels ready in {warm():.1f} s (compiled once per machine, then loaded from the cache)")


@click.command("locate")
@click.argument("lon")
@click.argument("lat")
@click.option("--crs", default="wgs84", show_default=True, type=click.Choice(["wgs84", "gcj02", "bd09"]))
@with_appcontext
@reports_errors
def locate_command(lon, lat, crs):
    """Print the community, grid and workers at LON LAT."""
    x, y = params.parse_point(lon, lat, crs)
    out = lookup.locate(current_app.extensions["gridmap.snapshots"].get(), x, y, role="admin")
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
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="With --all: Dask worker processes (default: one a core); 1 runs in this process, "
                   "in one transaction.")
@click.option("--scheduler", metavar="tcp://HOST:PORT",
              help="With --all: run on this Dask cluster (its workers must reach the database).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="With --all on Dask: communities a task (default: about two tasks a worker).")
@with_appcontext
@reports_errors
def assign_command(community, all_, workers, scheduler, batch_size):
    """Assign buildings, party members, contact households, cameras, volunteers and responders to grids.

    With --all the communities are computed in batches on Dask (a LocalCluster of this machine's cores,
    or --scheduler); workers read the store and this process writes each batch as it arrives, in a
    transaction of its own. --workers 1 keeps the single-process path: one transaction for everything.
    The stored rows are the same either way.
    """
    if bool(community) == all_:
        fail(GridmapError("Say which communities to assign.", fix="Pass --community CODE or --all."))
    if (workers or scheduler or batch_size) and not all_:
        fail(InvalidInput(N_("--workers, --scheduler and --batch-size only apply to --all."),
                          fix=N_("Drop them, or pass --all instead of --community.")))
    if scheduler and workers:
        fail(InvalidInput(N_("--workers and --scheduler %(value)s were both given."),
                          fix=N_("A cluster has its own workers: drop --workers."), params={"value": scheduler}))
    store().upgrade()
    capacity = current_app.config["CONTACT_HOUSEHOLDS_PER_MEMBER"]
    if all_ and (scheduler or workers != 1):
        from . import batch
        with store().session() as session:
            total = session.scalar(select(func.count()).select_from(m.GridPlan).where(m.GridPlan.status == "published"))
        with batch.progress_bar(total, "Assigning on Dask") as bar:
            summaries = batch.assign_all(store(), capacity, workers=workers, scheduler=scheduler,
                                         batch_size=batch_size, progress=bar.update)
    else:
        with store().transaction() as session, \
                click.progressbar(length=len(assign.RUN_STEPS), label="Assigning", file=sys.stderr) as bar:
            summaries = assign.run(session, community=community, capacity=capacity,
                                   progress=lambda _step: bar.update(1))
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


# --- automatic partition -------------------------------------------------------------------------

@click.command("partition")
@click.argument("community")
@click.option("--grids", "n_grids", type=int, help="Number of grids to make.")
@click.option("--households-per-grid", "target", type=int, help="Households per grid to aim for.")
@click.option("--tolerance", default=0.05, show_default=True, help="Allowed deviation from the mean households.")
@click.option("--seed", default=0, show_default=True, help="Seed: the same seed gives the same plan.")
@click.option("--no-roads", is_flag=True, help="Ignore imported roads as barriers.")
@with_appcontext
@reports_errors
def partition_command(community, n_grids, target, tolerance, seed, no_roads):
    """Partition COMMUNITY's buildings into a new draft plan of balanced, contiguous, compact grids."""
    with store().transaction() as session:
        plan, report = plans.draft_from_partition(session, community, n_grids=n_grids, target_households=target,
                                                  tolerance=tolerance, seed=seed, use_roads=not no_roads)
        plan_id, n = plan.id, len(plan.grids)
    click.echo(f"Draft plan {plan_id} for {community}: {n} grids, max deviation "
               f"{report.get('max_deviation_pct', float('nan')):.1f} %, mean Polsby-Popper "
               f"{report.get('mean_polsby_popper', float('nan')):.2f}, tiling "
               f"{'exact' if report.get('tiling', {}).get('exact') else 'NOT exact'}")
    basis = report.get("households_basis", "recorded")
    held = report.get("grid_households") or []
    if held:
        span = f"{min(held):,.0f}–{max(held):,.0f}" if len(held) > 1 else f"{held[0]:,.0f}"
        click.echo(f"Households per grid: {span} (ideal {report.get('ideal_households', 0):,.1f}), "
                   + {"recorded": "as recorded",
                      "estimated": f"ESTIMATED for {report.get('estimated_buildings', 0)} buildings without a count",
                      "building count": "none recorded: balanced by building count"}.get(basis, basis))
    shown = {}
    for finding in report.get("infeasible", []):
        kind = finding.get("kind")
        shown[kind] = shown.get(kind, 0) + 1
        if shown[kind] <= 3:  # a kind repeated per grid or building: the first few, then a count
            click.echo(f"  {kind}: {finding.get('message')}")
    for kind, n in shown.items():
        if n > 3:
            click.echo(f"  {kind}: … and {n - 3} more like these")
    click.echo(f"Check it with `gridmap plan validate {plan_id}`, publish with `gridmap plan publish {plan_id}`.")


# --- camera coverage -----------------------------------------------------------------------------

@click.command("coverage")
@click.argument("name")
@click.option("--place", "place", is_flag=True,
              help="Suggest where new cameras go to reach --target (cameras already there count).")
@click.option("--target", type=float, help="With --place: coverage to reach, percent of the public space [95].")
@click.option("--fov", type=float, help="With --place: the new cameras' field of view, degrees [90].")
@click.option("--range", "range_m", type=float, help="With --place: how far the new cameras see, metres [40].")
@click.option("--bearings", type=int, help="With --place: directions tried at each site, evenly spaced [8].")
@click.option("--no-roads", is_flag=True, help="With --place: no poles along the imported roads.")
@click.option("--time-limit", type=float,
              help="With --place: seconds the exact solver may take before the greedy answer stands [20]; "
                   "0 skips it (a whole community is beyond it).")
@click.option("--output", type=click.Path(dir_okay=False),
              help="With --place: write the suggested cameras to this .geojson or .csv file "
                   "(`gridmap import cameras FILE` reads it).")
@with_appcontext
@reports_errors
def coverage_command(name, place, target, fov, range_m, bearings, no_roads, output, time_limit):
    """Report camera coverage of the public space of a courtyard (by name) or a community (code or name);
    with --place, suggest the fewest new cameras that reach a target coverage."""
    given = {"--target": target, "--fov": fov, "--range": range_m, "--bearings": bearings, "--output": output,
             "--no-roads": no_roads or None, "--time-limit": time_limit}
    if not place:
        extra = [k for k, v in given.items() if v is not None]
        if extra:
            raise InvalidInput(f"{', '.join(extra)} only apply to a placement.",
                               fix=f"Add --place: gridmap coverage {name} --place {' '.join(extra)} …")
        with store().session() as session:
            report = coverage.report_for(session, name, min_blind_m2=current_app.config["BLIND_SPOT_MIN_M2"])
    else:
        if output:
            coverage.check_sites_path(output)
        if time_limit is not None and not (0 <= time_limit <= 3600):
            raise InvalidInput(f"--time-limit was {time_limit:g} but must be from 0 to 3600 seconds.",
                               fix="Give e.g. --time-limit 20, or 0 to take the greedy answer at once.")
        with store().session() as session:
            result = coverage.placement_for(
                session, name, target_percent=95.0 if target is None else target,
                fov=90.0 if fov is None else fov, range_m=40.0 if range_m is None else range_m,
                bearings=bearings, roads=not no_roads, time_limit=20.0 if time_limit is None else time_limit)
        if output:
            coverage.write_sites(result["frame"], output)
    if place:
        _print_placement(result, output)
        return
    click.echo(f"{report['kind']} {report['name']}: {report['cameras']} cameras, public area "
               f"{report['public_m2']:.0f} m², coverage {report['percent']:.1f} %")
    click.echo(f"  blind space {report['blind_total_m2']:.0f} m² in all; blind spots ≥ {report['min_blind_m2']:g} m²: "
               f"{report['blind_count']}, {report['blind_m2']:.0f} m²")
    if report["largest_blind"]:
        lon, lat, area = report["largest_blind"]
        click.echo(f"  largest blind spot: {area:.0f} m² around {lon:.6f}, {lat:.6f}")
    click.echo("  cameras per part: " + ", ".join(f"{c}: {a:.0f} m²" for c, a in report["overlap"]))


def _print_placement(r, output):
    click.echo(f"{r['kind']} {r['name']}: {r['cameras']} cameras, public area {r['public_m2']:.0f} m², "
               f"coverage {r['percent_before']:.1f} %")
    click.echo(f"placement to {r['target']:g} %: {r['candidate_sites']} candidate sites × "
               f"{len(r['bearings'])} bearings ({r['candidates']} that add something), "
               f"public space in {r['cells']} cells of {r['cell_m']:.1f} m")
    if not r["sites"]:
        click.echo("  no new camera needed" if r["reached"] else "  no candidate site adds coverage")
    else:
        fov, range_m = r["sites"][0]["fov"], r["sites"][0]["range_m"]
        click.echo(f"  {len(r['sites'])} new cameras (fov {fov:g}°, range {range_m:g} m), lon, lat in WGS84:")
        for i, s in enumerate(r["sites"], 1):
            near = f"  {s['near']}" if s["near"] else ""
            click.echo(f"  {i:3d}  {s['lon']:.6f}, {s['lat']:.6f}  bearing {s['bearing']:5.1f}°  "
                       f"{coverage.SITE_KINDS[s['mount']]}{near}")
    status = "reached" if r["reached"] else "NOT reached"
    click.echo(f"  coverage reached {r['percent']:.1f} % (target {r['target']:g} % {status}; the solver counted "
               f"{r['percent_cells']:.1f} % of its cells"
               + (f", asked for {r['cell_target']:.2f} % on them" if r["cell_target"] > r["target"] else "")
               + (f"; {r['topped_up']} more added on the exact views" if r.get("topped_up") else "") + ")")
    click.echo(f"  method {r['method']}: {r['bound']}")
    if r.get("exact") == "time limit":
        click.echo("  the exact solver ran out of time (--time-limit); the greedy answer stands")
    click.echo(f"  {r['seconds']:.1f} s")
    if output:
        click.echo(f"  written to {output}: `gridmap import cameras {output}` adds them")
    if not r["reached"]:
        # a placement that misses its target is a failure for scripts too, not a line to overlook
        click.secho(f"Error: target {r['target']:g} % NOT reached: the suggested cameras reach "
                    f"{r['percent']:.2f} %; {r['why']}.", fg="red", err=True)
        click.echo("Fix: widen --fov or --range, try more --bearings, or lower --target.", err=True)
        sys.exit(3)


# --- SOS wearables and the communities' work-item lists ---------------------------------------

@click.group("device")
def device_group():
    """SOS wearables: register one for a resident, deactivate it, list them."""


@device_group.command("register")
@click.argument("device_id")
@click.argument("resident_id", type=int)
@with_appcontext
@reports_errors
def device_register_command(device_id, resident_id):
    """Register wearable DEVICE_ID for resident RESIDENT_ID (or point it at another resident)."""
    with store().transaction() as session:
        dispatch.register_device(session, device_id, resident_id)
    click.echo(f"Device {device_id} registered for resident {resident_id}: its SOS now raises an incident.")


@device_group.command("deactivate")
@click.argument("device_id")
@with_appcontext
@reports_errors
def device_deactivate_command(device_id):
    """Deactivate wearable DEVICE_ID: its alarms are refused until it is registered again."""
    device_id = device_id.strip()
    with store().transaction() as session:
        device = session.get(m.SosDevice, device_id)
        if device is None:
            raise InvalidInput(f"Device {device_id!r} is not registered.", fix="See `gridmap device list`.")
        dispatch.register_device(session, device_id, device.resident_id, active=False)
    click.echo(f"Device {device_id} deactivated.")


@device_group.command("list")
@with_appcontext
@reports_errors
def device_list_command():
    """List the registered wearables with their residents' ids."""
    with store().session() as session:
        print_rows(dispatch.devices(session), ["device_id", "resident_id", "active", "registered_at"])


@click.group("work-items")
def work_items_group():
    """Each community's work-item list (社区工作事项清单): the incident categories it handles itself."""


@work_items_group.command("load")
@click.argument("path", type=click.Path(dir_okay=False))
@with_appcontext
@reports_errors
def work_items_load_command(path):
    """Replace the lists of the communities PATH names: JSON {"210213013004": ["noise", "water_leak"], …}.

    A category left off a community's list goes straight to its department (the veto); communities
    the file does not name keep their lists (or the catalogue's default).
    """
    lists = catalog.load_work_items(path)
    store().upgrade()
    with store().transaction() as session:
        n = dispatch.set_work_items(session, lists)
    click.echo(f"Work-item lists of {n} communities loaded from {path}.")


@work_items_group.command("show")
@click.argument("community")
@with_appcontext
@reports_errors
def work_items_show_command(community):
    """Print the categories COMMUNITY handles itself, and whether that is its own list or the default."""
    code = params.community_code(community)
    with store().session() as session:
        if session.get(m.Community, code) is None:
            raise NotFound(f"Community {code} is not in the store.", fix="Import it first, or check the code.")
        own = loaders.work_items(session, code)
    click.echo(f"{code}: {'its own list' if own is not None else 'the default list'}")
    for c in catalog.INCIDENT_CATEGORIES:
        if c.code in (own if own is not None else catalog.DEFAULT_WORK_ITEMS):
            click.echo(f"  {c.code:20} {c.zh}")


