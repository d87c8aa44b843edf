"""The people commands: logins (create, communities, password, role) and API keys for machines."""
import click
from flask.cli import with_appcontext

from .. import accounts, apikeys
from ..access import ROLES
from ..store import loaders
from .common import print_rows, reports_errors, store


@click.command("create-user")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--name", "display_name", default="")
@click.option("--worker-id", type=int, default=None,
              help="grid_worker: the id of the grid worker record whose grids the account serves.")
@click.option("--community", "communities", multiple=True,
              help="dispatcher: a 12-digit community code it covers (repeat for several).")
@with_appcontext
@reports_errors
def create_user_command(username, role, password, display_name, worker_id, communities):
    """Create a login for USERNAME with ROLE, and where it works: a dispatcher reads and moves incidents
    only in the communities it covers (none given: none), a grid worker only in its worker record's grids."""
    with store().transaction() as session:
        accounts.create_user(session, username, password, role, display_name=display_name, worker_id=worker_id,
                             communities=communities)
    where = f", covering {', '.join(sorted(set(communities)))}" if communities else ""
    click.echo(f"Created {role} {username}{where}")


@click.command("set-communities")
@click.argument("username")
@click.argument("codes", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every community in the store now (a city-wide desk).")
@with_appcontext
@reports_errors
def set_communities_command(username, codes, all_):
    """Say which communities the dispatcher USERNAME covers: CODES replace the ones it had (none: it covers nothing)."""
    with store().transaction() as session:
        if all_:
            codes = [c["code"] for c in loaders.communities(session)]
        out = accounts.set_communities(session, username, codes)
    click.echo(f"{username} covers {', '.join(out)}" if out else f"{username} covers no community")


@click.command("set-password")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@with_appcontext
@reports_errors
def set_password_command(username, password):
    """Give USERNAME a new password; their open sessions end (every web process within LOGIN_CACHE_SECONDS)."""
    with store().transaction() as session:
        accounts.set_password(session, username, password)
    click.echo(f"New password for {username}; their sessions are ended")


@click.command("set-role")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(ROLES))
@with_appcontext
@reports_errors
def set_role_command(username, role):
    """Give USERNAME the role ROLE; their open sessions end (every web process within LOGIN_CACHE_SECONDS)."""
    with store().transaction() as session:
        accounts.set_role(session, username, role)
    click.echo(f"{username} is now {role}; their sessions are ended")


# --- API keys for Open311 clients and SOS gateways --------------------------------------------

@click.group("api-key")
def api_key_group():
    """API keys for Open311 clients and SOS gateways: create, list, revoke."""


@api_key_group.command("create")
@click.argument("name")
@with_appcontext
@reports_errors
def api_key_create_command(name):
    """Create a key for client NAME and print it once: only its hash is stored."""
    store().upgrade()
    with store().transaction() as session:
        key, _ = apikeys.create(session, name)
    click.echo(key)
    click.echo(f"API key {name!r} created. Keep it now: it cannot be shown again.", err=True)


@api_key_group.command("list")
@with_appcontext
@reports_errors
def api_key_list_command():
    """List the keys by name, with the first characters of each and whether it is active."""
    with store().session() as session:
        print_rows(apikeys.list_keys(session), ["name", "prefix", "active", "created_at"])


@api_key_group.command("revoke")
@click.argument("name")
@with_appcontext
@reports_errors
def api_key_revoke_command(name):
    """Deactivate the key named NAME."""
    with store().transaction() as session:
        apikeys.revoke(session, name)
    click.echo(f"API key {name!r} revoked.")
