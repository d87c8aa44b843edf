"""Log in and out; where a login may send the browser next; sessions that end on the server."""
import math
import time
import unicodedata
from urllib.parse import unquote, urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import UserMixin, current_user, login_user, logout_user, user_logged_in
from flask_wtf import FlaskForm
from werkzeug.urls import iri_to_uri
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from .. import accounts, lockout
from . import nav
from .common import store
from .extensions import login_manager

bp = Blueprint("auth", __name__)


class LoginUser(UserMixin):
    """The signed-in account as Flask-Login wants it (``id`` as text, the mixin's properties)."""

    def __init__(self, account):
        self.id = str(account.id)
        self.username = account.username
        self.role = account.role
        self.display_name = account.display_name
        self.worker_id = account.worker_id
        self.generation = account.generation


class LoginForm(FlaskForm):
    username = StringField("username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("password", validators=[DataRequired(), Length(max=256)])


@login_manager.user_loader
def _load_user(user_id):
    # A session opened before the account's last logout, new password or new role is over, even
    # with a valid signature (a copied cookie). The check uses the cached account, so it costs no
    # query; a session newer than the cache (a login after a logout, seen by another process)
    # reads the account afresh. Another process honours a logout once its cache entry expires,
    # within LOGIN_CACHE_SECONDS; the process that logged out drops its entry at once.
    generation = session.get(_GENERATION)
    user = _cached_user(user_id)
    if user is not None and isinstance(generation, int) and generation > user.generation:
        user = _cached_user(user_id, fresh=True)
    if user is None or generation != user.generation:
        return None
    return user


def _cached_user(user_id, *, fresh=False):
    # Reading the user costs a session and a query on every request (a fifth of a dispatcher's
    # click, measured); a role read a few seconds ago is still the role, so keep it that long.
    ttl = current_app.config["LOGIN_CACHE_SECONDS"]
    cache = current_app.extensions.setdefault("gridmap.users", {})
    now = time.monotonic()
    hit = cache.get(user_id)
    if hit is not None and now - hit[1] < ttl and not fresh:
        return hit[0]
    with store().session() as db:
        account = accounts.load(db, user_id)
    user = LoginUser(account) if account else None
    if ttl > 0:
        if len(cache) > 10_000:  # user ids come from signed cookies, but stay bounded anyway
            cache.clear()
        cache[user_id] = (user, now)
    return user


_GENERATION = "gen"  # the session key holding the account's session generation at login


@user_logged_in.connect
def _remember_generation(app, user):
    session[_GENERATION] = user.generation


# Controls (tab, newline, NUL), format characters (zero-width, bidi overrides), line and paragraph
# separators, surrogates, private and unassigned code points: none belongs in a link of this site.
_REFUSED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def safe_next(target):
    """``target`` as a Location on this site, or None when it could lead anywhere else.

    Only a path is accepted: ``/`` then anything but a second ``/`` or ``\\``; no backslash, control,
    format or separator character anywhere, no space in the path. Browsers drop tabs and newlines
    and read ``\\`` as ``/``, so ``/%09/evil.example`` reaches them as ``//evil.example``. The same
    holds after percent-decoding (repeatedly) and after NFKC folding (``／`` is ``/`` to some
    parsers). Non-ASCII text, e.g. a courtyard's name in a query, stays allowed, sent percent-encoded.
    """
    if not isinstance(target, str) or not target or len(target) > 2048:
        return None
    forms, text = {target}, target
    for _round in range(4):  # %25 nests; four rounds undo anything a browser or proxy would
        text = unquote(text)
        forms.add(text)
    forms |= {unicodedata.normalize("NFKC", f) for f in list(forms)}
    for form in forms:
        if not form.startswith("/") or form[1:2] in ("/", "\\") or "\\" in form:
            return None
        if any(unicodedata.category(ch) in _REFUSED for ch in form):
            return None
        path = form.split("?", 1)[0].split("#", 1)[0]
        if any(ch.isspace() for ch in path):  # a space in a query (a name) is text; in a path, a trick
            return None
        parts = urlsplit(form)
        if parts.scheme or parts.netloc:
            return None
    return iri_to_uri(target)


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the login form and log the user in."""
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        account, locked = _authenticate(form.username.data, form.password.data)
        if locked:
            flash(_("Too many failed sign-ins for this username. Try again in %(seconds)d seconds.",
                    seconds=locked), "error")
            return render_template("auth/login.html", form=form), 429, {"Retry-After": str(locked)}
        if account:
            login_user(LoginUser(account))
            # a safe `next` (the page that sent the user here) wins; else the page of their role
            return redirect(safe_next(request.args.get("next")) or url_for(nav.home(account.role)))
        flash(_("Wrong username or password."), "error")
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


def _authenticate(username, password):
    """(account or None, seconds the username stays locked or None): the lockout around the password check.

    A locked name is refused before its password is checked, right or wrong; unknown names are
    counted and locked like known ones (the answer must not tell which names exist)."""
    client = request.remote_addr or ""
    try:
        with store().transaction() as session:
            lockout.check(session, username, client=client)
            account = accounts.authenticate(session, username, password)
            if account:
                lockout.succeeded(session, username, client=client)
                return account, None
            locked = lockout.failed(session, username, lockout.Policy.from_config(current_app.config), client=client)
    except lockout.LockedOut as err:
        return None, err.retry_after
    return None, math.ceil(locked) if locked else None


@bp.post("/logout")
def logout():
    """Log out, here and wherever this account's session cookie has been copied to."""
    if current_user.is_authenticated:
        user_id = current_user.id
        with store().transaction() as db:
            accounts.end_sessions(db, user_id)
        current_app.extensions.get("gridmap.users", {}).pop(user_id, None)
    logout_user()
    session.pop(_GENERATION, None)
    response = redirect(url_for("resident.index"))
    # the browser drops what it kept of this account: the workbench's cached pages (Cache Storage), its
    # offline outbox (IndexedDB) and its service worker, so a phone handed on shows nobody's data offline.
    # worker.js does the same before signing out (browsers without Clear-Site-Data) and asks first when
    # entries are still unsent.
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response
