"""Flask extensions, created unbound and attached to each app in init_extensions."""
from flask import g, request, session
from flask_babel import Babel
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

LANGUAGES = {"zh_CN": "中文", "en": "English"}

babel = Babel()
login_manager = LoginManager()
csrf = CSRFProtect()


def select_locale():
    """?lang= (remembered in the session), else the session, else the browser, else the default."""
    wanted = request.args.get("lang")
    if wanted in LANGUAGES:
        session["lang"] = wanted
    lang = session.get("lang")
    if lang in LANGUAGES:
        return lang
    from flask import current_app
    default = current_app.config["DEFAULT_LOCALE"]
    best = request.accept_languages.best_match(["zh", "en"]) if request.accept_languages else None
    if best == "en" and "lang" not in session and request.headers.get("Accept-Language", "").lower().startswith("en"):
        return "en"
    return default


def init_extensions(app):
    from .lookup import SnapshotCache
    babel.init_app(app, locale_selector=select_locale,
                   default_translation_directories=str(app.root_path + "/translations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    app.extensions["gridmap.snapshots"] = SnapshotCache(app.extensions["gridmap.store"],
                                                        app.config["SNAPSHOT_CHECK_SECONDS"])

    @app.context_processor
    def _languages():
        from flask_babel import get_locale
        # Babel normalises zh_CN to zh_Hans_CN; templates compare against LANGUAGES keys.
        lang = get_locale().language if get_locale() else "zh"
        return {"LANGUAGES": LANGUAGES, "current_locale": "en" if lang == "en" else "zh_CN"}

    @app.before_request
    def _lang_cookie():
        g.lang = session.get("lang")
