"""User accounts: create, authenticate; roles of the permission table (admin, planner, dispatcher, grid_worker)."""
import functools
from dataclasses import dataclass

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from .access import ROLES
from .errors import Conflict, InvalidInput
from .store import models as m


@dataclass(frozen=True)
class Account:
    """A user as the rest of gridmap sees one: no ORM object outlives its session."""

    id: int
    username: str
    role: str
    display_name: str
    worker_id: int | None

    @classmethod
    def of(cls, user):
        return cls(user.id, user.username, user.role, user.display_name or user.username, user.worker_id)


def create_user(session, username, password, role, *, display_name="", worker_id=None):
    username = (username or "").strip()
    if not username or len(username) > 64:
        raise InvalidInput("The username is empty or longer than 64 characters.", fix="Choose a short login name.")
    if role not in ROLES:
        raise InvalidInput(f"Role {role!r} is not known.", fix=f"Use one of {list(ROLES)}.")
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
    # an unknown name costs the same hash as a known one: the time taken must not tell which names exist
    stored = user.password_hash if user is not None else _unknown_user_hash()
    if not check_password_hash(stored, password or "") or user is None:
        return None
    return Account.of(user)


@functools.cache
def _unknown_user_hash():
    return generate_password_hash("no account has this password")


def load(session, user_id):
    """The account with id ``user_id`` (digits from a signed session cookie), or None."""
    text = str(user_id)
    user = session.get(m.User, int(text)) if text.isascii() and text.isdigit() and len(text) < 19 else None
    return Account.of(user) if user else None
