"""The bare app of one instance: settings, the instance folder and its secret key, the store.

What a command needs, and no more: `gridmap plan list` runs on this app and starts without
loading the web (Folium, Matplotlib, the blueprints); :func:`gridmap.app.create_app` builds the
web app on top of it.
"""
import os
import secrets
from pathlib import Path

from flask import Flask

from . import settings
from .store import Store


def create_bare_app(config=None):
    """A Flask app with gridmap's settings and store, without blueprints.

    Settings come, in rising priority, from the defaults in ``gridmap.settings``,
    ``instance/gridmap.cfg`` (a Python file), ``GRIDMAP_*`` environment variables and
    ``config`` (a dict, used by tests).
    """
    root = Path(__file__).resolve().parent
    app = Flask("gridmap", instance_path=os.environ.get("GRIDMAP_INSTANCE_PATH") or str(root.parent / "instance"),
                template_folder=str(root.parent / "templates"), instance_relative_config=True)
    app.config.update(settings.defaults())
    app.config.from_pyfile("gridmap.cfg", silent=True)
    app.config.update(settings.from_environ())
    if config:
        app.config.update(config)

    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if not app.config.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'gridmap.db'}"
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(Path(app.instance_path) / "secret_key")

    app.extensions["gridmap.store"] = Store(app.config["DATABASE_URL"])
    return app


def _instance_secret(path):
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()
