"""Flask extensions, created unbound and attached to each app in init_extensions."""
import os

from flask import current_app, request, session
from flask_babel import Babel, get_locale
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect

from .. import access
from . import nav
from ..index import SnapshotCache

LANGUAGES = {"zh_CN": "中文", "en": "English"}

babel = Babel()
login_manager = LoginManager()
csrf = CSRFProtect()


def select_locale():
    """?lang= (remembered in the session), else the session's choice, else DEFAULT_LOCALE.

    The browser's Accept-Language is not consulted: the service's language is a setting
    of the deployment (Chinese by default), and the switch on every page is one tap.
    """
    wanted = request.args.get("lang")
    if wanted in LANGUAGES:
        session["lang"] = wanted
    lang = session.get("lang")
    return lang if lang in LANGUAGES else current_app.config["DEFAULT_LOCALE"]


def init_extensions(app):
    babel.init_app(app, locale_selector=select_locale,
                   default_translation_directories=str(app.root_path + "/translations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    app.extensions["gridmap.snapshots"] = SnapshotCache(app.extensions["gridmap.store"],
                                                        app.config["SNAPSHOT_CHECK_SECONDS"],
                                                        directory=_snapshot_dir(app))

    @app.context_processor
    def _languages():
        # Babel normalises zh_CN to zh_Hans_CN; templates compare against LANGUAGES keys.
        lang = get_locale().language if get_locale() else "zh"
        return {"LANGUAGES": LANGUAGES, "current_locale": "en" if lang == "en" else "zh_CN", "can": _can,
                "header_pages": nav.header_pages}


def _snapshot_dir(app):
    """Where the snapshot files go: SNAPSHOT_DIR, instance/snapshots by default, None for in memory."""
    chosen = str(app.config.get("SNAPSHOT_DIR") or "")
    if chosen.strip().lower() == "memory":
        return None
    return chosen or os.path.join(app.instance_path, "snapshots")


def _can(action):
    """Whether the signed-in user may do ``action``: templates show a link only to those who may follow it."""
    return current_user.is_authenticated and access.can(current_user.role, action)
