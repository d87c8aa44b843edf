"""User accounts: create, authenticate; roles admin, planner, dispatcher, grid_worker."""
from flask_login import UserMixin
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from .errors import Conflict, InvalidInput
from .store import models as m


class LoginUser(UserMixin):
    """The logged-in user as Flask-Login sees it: no ORM object outlives its session."""

    def __init__(self, user):
        self.id = str(user.id)
        self.username = user.username
        self.role = user.role
        self.display_name = user.display_name or user.username
        self.worker_id = user.worker_id


def create_user(session, username, password, role, *, display_name="", worker_id=None):
    username = (username or "").strip()
    if not username or len(username) > 64:
        raise InvalidInput("The username is empty or longer than 64 characters.", fix="Choose a short login name.")
    if role not in m.ROLES:
        raise InvalidInput(f"Role {role!r} is not known.", fix=f"Use one of {list(m.ROLES)}.")
    if len(password or "") < 8:
        raise InvalidInput("The password is shorter than 8 characters.", fix="Choose a longer password.")
    if session.scalar(select(m.User).where(m.User.username == username)):
        raise Conflict(f"User {username!r} exists already.", fix="Pick another username.")
    user = m.User(username=username, password_hash=generate_password_hash(password), role=role,
                  display_name=display_name, worker_id=worker_id)
    session.add(user)
    session.flush()
    return user


def authenticate(session, username, password):
    """The user if the password matches, else None (the same answer for an unknown name)."""
    user = session.scalar(select(m.User).where(m.User.username == (username or "").strip()))
    if user is None or not check_password_hash(user.password_hash, password or ""):
        return None
    return LoginUser(user)


def load(session, user_id):
    user = session.get(m.User, int(user_id)) if str(user_id).isdigit() else None
    return LoginUser(user) if user else None
