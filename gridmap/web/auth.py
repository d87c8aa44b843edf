"""Log in and out."""
import math
import time

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import UserMixin, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from .. import accounts, lockout
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


class LoginForm(FlaskForm):
    username = StringField("username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("password", validators=[DataRequired(), Length(max=256)])


@login_manager.user_loader
def _load_user(user_id):
    # Reading the user costs a session and a query on every request (a fifth of a dispatcher's
    # click, measured); a role read a few seconds ago is still the role, so keep it that long.
    ttl = current_app.config["LOGIN_CACHE_SECONDS"]
    cache = current_app.extensions.setdefault("gridmap.users", {})
    now = time.monotonic()
    hit = cache.get(user_id)
    if hit is not None and now - hit[1] < ttl:
        return hit[0]
    with store().session() as session:
        account = accounts.load(session, user_id)
    user = LoginUser(account) if account else None
    if ttl > 0:
        if len(cache) > 10_000:  # user ids come from signed cookies, but stay bounded anyway
            cache.clear()
        cache[user_id] = (user, now)
    return user


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
            target = request.args.get("next", "")
            return redirect(target if target.startswith("/") and not target.startswith("//") else url_for("resident.index"))
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
    """Log out."""
    logout_user()
    return redirect(url_for("resident.index"))
