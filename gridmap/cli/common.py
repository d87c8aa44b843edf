"""What every command shares: the store of the current app, errors as a message and a fix, tables."""
import functools
import sys

import click
from flask import current_app

from ..errors import GridmapError


def store():
    return current_app.extensions["gridmap.store"]


def reports_errors(command):
    """Run ``command``; a GridmapError ends it with its message and fix on stderr and exit status 2."""
    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except GridmapError as err:
            fail(err)
    return run


def fail(err):
    click.secho(f"Error: {err.message}", fg="red", err=True)
    if err.fix:
        click.echo(f"Fix: {err.fix}", err=True)
    sys.exit(2)


def print_rows(rows, columns):
    cells = [[str(r.get(c, "") if r.get(c) is not None else "") for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)))
