"""The `gridmap` commands as a table: each name, where it lives, what it does and which app it runs on.

`gridmap --help` reads the table and imports no command; a command's module (and the services it
uses) is imported when that command is invoked. :mod:`gridmap.cli.plans` and
:mod:`gridmap.cli.people` are light; :mod:`gridmap.cli.data` loads the importers, coverage and the
assigner. Commands marked ``web`` need the web app (its snapshot cache), the rest run on the bare
app of :mod:`gridmap.instance`.
"""
import importlib
from typing import NamedTuple

import click
from flask.cli import FlaskGroup, ScriptInfo


class Entry(NamedTuple):
    target: str  # "module:attribute"
    help: str  # the first paragraph of the command's docstring (a test keeps them equal)
    web: bool = False


_D, _P, _U = "gridmap.cli.data", "gridmap.cli.plans", "gridmap.cli.people"
COMMANDS = {
    "init-db": Entry(f"{_D}:init_db_command", "Create the database schema, or upgrade it to the newest migration."),
    "import": Entry(f"{_D}:import_command",
                    "Import KIND (communities, buildings, grids, party-members, workers, volunteers, responders, "
                    "cameras, roads, department-grids) from PATH (GeoJSON, GeoPackage, Shapefile or zip, CSV with "
                    "lon/lat, OSM .osm/.pbf). Every import is a batch: `gridmap import list` shows them and "
                    "`gridmap import undo BATCH` takes one back (newest first)."),
    "record": Entry(f"{_D}:record_group", "Correct or retire one imported record by hand (a one-record batch, "
                                          "undone like an import)."),
    "export": Entry(f"{_D}:export_command",
                    "Export every record of KIND to PATH (format by extension: .geojson .gpkg .shp .zip .csv)."),
    "demo": Entry(f"{_D}:demo_command",
                  "Build the Dalian demo (five communities, 18 grids in 城志社区, 25 cameras in 和合大院)."),
    "locate": Entry(f"{_D}:locate_command", "Print the community, grid and workers at LON LAT.", web=True),
    "assign": Entry(f"{_D}:assign_command", "Assign buildings, party members, contact households, cameras, "
                                            "volunteers and responders to grids."),
    "join": Entry("gridmap.cli.batch:join_command",
                  "Join every point of POINTS (Parquet, GeoParquet or CSV) to the grid holding it, into --out "
                  "(Parquet)."),
    "partition": Entry(f"{_D}:partition_command", "Partition COMMUNITY's buildings into a new draft plan of "
                                                  "balanced, contiguous, compact grids."),
    "coverage": Entry(f"{_D}:coverage_command",
                      "Report camera coverage of the public space of a courtyard (by name) or a community (code or "
                      "name); with --place, suggest the fewest new cameras that reach a target coverage."),
    "camera-views": Entry(f"{_D}:camera_views_command",
                          "Compute the stored view (sector minus what buildings hide) of cameras that lack one."),
    "warm": Entry(f"{_D}:warm_command", "Compile the map kernels (point index, road search) now, so no user's "
                                        "first request waits for them."),
    "device": Entry(f"{_D}:device_group", "SOS wearables: register one for a resident, deactivate it, list them."),
    "work-items": Entry(f"{_D}:work_items_group", "Each community's work-item list (社区工作事项清单): the incident "
                                                  "categories it handles itself."),
    "create-user": Entry(f"{_U}:create_user_command",
                         "Create a login for USERNAME with ROLE, and where it works: a dispatcher reads and moves "
                         "incidents only in the communities it covers (none given: none), a grid worker only in its "
                         "worker record's grids."),
    "set-communities": Entry(f"{_U}:set_communities_command", "Say which communities the dispatcher USERNAME "
                             "covers: CODES replace the ones it had (none: it covers nothing)."),
    "set-password": Entry(f"{_U}:set_password_command", "Give USERNAME a new password; their open sessions end "
                          "(every web process within LOGIN_CACHE_SECONDS)."),
    "set-role": Entry(f"{_U}:set_role_command", "Give USERNAME the role ROLE; their open sessions end (every web "
                      "process within LOGIN_CACHE_SECONDS)."),
    "api-key": Entry(f"{_U}:api_key_group", "API keys for Open311 clients and SOS gateways: create, list, revoke."),
    "plan": Entry(f"{_P}:plan_group", "Grid plans: list, validate, copy, publish, diff and export."),
    "crosswalk": Entry(f"{_P}:crosswalk_command",
                       "Department grids of COMMUNITY against its unified grids: area and household shares."),
}
#: Flask's own commands that serve or inspect the web app.
WEB_BUILTINS = ("run", "shell", "routes")


def load(name):
    """The click command ``name`` of the table, its module imported now."""
    module, attribute = COMMANDS[name].target.split(":")
    return getattr(importlib.import_module(module), attribute)


def register_commands(app):
    """Every command on ``app.cli`` (the web app's `flask` commands and test runners)."""
    for name in COMMANDS:
        app.cli.add_command(load(name), name)


#: The factories, by import path as Flask's ``--app`` takes them: naming them rather than importing them
#: keeps `gridmap --help` from loading even the store.
BARE_APP = "gridmap.instance:create_bare_app"
WEB_APP = "gridmap:create_app"


class LazyFlaskGroup(FlaskGroup):
    """Flask's group with the table's commands, each imported when invoked (click's LazyGroup).

    The table's commands run on the bare app (:data:`BARE_APP`); commands marked ``web`` and
    `run`, `shell` and `routes` on the web app (:data:`WEB_APP`); ``--app`` still overrides both.
    """

    def list_commands(self, ctx):
        # FlaskGroup would build the app here to list its app.cli; ours are all in the table
        self._load_plugin_commands()
        return sorted(set(click.Group.list_commands(self, ctx)) | set(COMMANDS))

    def get_command(self, ctx, name):
        entry = COMMANDS.get(name)
        info = ctx.ensure_object(ScriptInfo)
        if info.app_import_path is None:
            info.app_import_path = WEB_APP if entry is None or entry.web or name in WEB_BUILTINS else BARE_APP
        if entry is not None:
            return load(name)
        return super().get_command(ctx, name)

    def format_commands(self, ctx, formatter):
        # click would import every command for its short help; the table has it
        rows = []
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names), default=0)
        for name in names:
            if name in COMMANDS:
                rows.append((name, click.utils.make_default_short_help(COMMANDS[name].help, limit)))
            else:
                command = click.Group.get_command(self, ctx, name)
                if command is not None and not command.hidden:
                    rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
