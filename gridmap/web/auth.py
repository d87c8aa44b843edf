"""Log in and out."""
import time

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import UserMixin, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from .. import accounts
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
        with store().session() as session:
            account = accounts.authenticate(session, form.username.data, form.password.data)
        if account:
            login_user(LoginUser(account))
            target = request.args.get("next", "")
            return redirect(target if target.startswith("/") and not target.startswith("//") else url_for("resident.index"))
        flash(_("Wrong username or password."), "error")
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
def logout():
    """Log out."""
    logout_user()
    return redirect(url_for("resident.index"))
