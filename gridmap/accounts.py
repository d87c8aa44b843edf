"""User accounts: create, authenticate, end sessions, say where each works (the roles are access.ROLES)."""
import functools
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from .access import ROLES, Area
from .errors import Conflict, InvalidInput, N_, NotFound
from .store import models as m


@dataclass(frozen=True)
class Account:
    """A user as the rest of gridmap sees one: no ORM object outlives its session."""

    id: int
    username: str
    role: str
    display_name: str
    worker_id: int | None
    generation: int = 0  # of its sessions: one opened in an older generation signs no one in

    @classmethod
    def of(cls, user):
        return cls(user.id, user.username, user.role, user.display_name or user.username, user.worker_id,
                   user.session_generation or 0)


def create_user(session, username, password, role, *, display_name="", worker_id=None, communities=()):
    """Create an account; ``worker_id`` (grid workers: whose grids it serves) and ``communities``
    (dispatchers: the community codes it covers) say where it works. NotFound names an unknown one."""
    username = (username or "").strip()
    if not username or len(username) > 64:
        raise InvalidInput(N_("The username is empty or longer than 64 characters."),
                           fix=N_("Choose a short login name."))
    _check_role(role)
    _check_password(password)
    if session.scalar(select(m.User).where(m.User.username == username)):
        raise Conflict(N_("User %(username)s exists already."), fix=N_("Pick another username."),
                       params={"username": repr(username)})
    user = m.User(username=username, password_hash=generate_password_hash(password), role=role,
                  display_name=display_name, worker_id=worker_id)
    if worker_id is not None and session.get(m.GridWorker, worker_id) is None:
        raise NotFound(N_("Grid worker %(worker_id)s does not exist."),
                       fix=N_("Give the id of an imported grid worker."),
                       params={"worker_id": worker_id})
    session.add(user)
    session.flush()
    if communities:
        set_communities(session, username, communities)
    return user


def set_communities(session, username, codes):
    """Replace the communities ``username`` covers with ``codes`` (empty: none); returns them sorted.

    Only dispatchers work by community (admins work everywhere, grid workers where their worker
    record serves): InvalidInput for another role, NotFound for an unknown user or community.
    """
    user = session.scalar(select(m.User).where(m.User.username == (username or "").strip()))
    if user is None:
        raise NotFound(N_("User %(username)s does not exist."), fix=N_("Create it first: gridmap create-user."),
                       params={"username": repr(username)})
    codes = sorted({str(c).strip() for c in codes})
    if codes and user.role != "dispatcher":
        raise InvalidInput(N_("User %(username)s is a %(role)s; only dispatchers cover communities."),
                           fix=N_("Admins work everywhere; a grid worker works where its worker record serves."),
                           params={"username": repr(user.username), "role": user.role})
    known = set(session.scalars(select(m.Community.code).where(m.Community.code.in_(codes)))) if codes else set()
    missing = [c for c in codes if c not in known]
    if missing:
        raise NotFound(N_("Communities %(value)s are not in the store."),
                       fix=N_("Give 12-digit codes of imported communities (GET /api/v1/communities lists them)."),
                       details={"communities": missing},
                       params={"value": missing[:5]})
    session.execute(delete(m.user_community).where(m.user_community.c.user_id == user.id))
    if codes:
        session.execute(insert(m.user_community), [{"user_id": user.id, "community_code": c} for c in codes])
    return codes


def area_of(session, user_id, role, worker_id=None):
    """Where an account works (:class:`gridmap.access.Area`): the grids its worker record serves
    (grid workers), the communities it covers (dispatchers); empty for other roles."""
    grids = session.scalars(select(m.grid_worker_grid.c.grid_code).where(
        m.grid_worker_grid.c.worker_id == worker_id)).all() if role == "grid_worker" and worker_id is not None else ()
    communities = session.scalars(select(m.user_community.c.community_code).where(
        m.user_community.c.user_id == int(user_id))).all() if role == "dispatcher" else ()
    return Area(grids=grids, communities=communities)


def authenticate(session, username, password):
    """The user if the password matches, else None (the same answer for an unknown name)."""
    user = session.scalar(select(m.User).where(m.User.username == (username or "").strip()))
    # an unknown name costs the same hash as a known one: the time taken must not tell which names exist
    stored = user.password_hash if user is not None else _unknown_user_hash()
    if not check_password_hash(stored, password or "") or user is None:
        return None
    return Account.of(user)


def set_password(session, username, password):
    """Give ``username`` a new password and end every session they have open (a leaked one too)."""
    _check_password(password)
    user = _user(session, username)
    user.password_hash = generate_password_hash(password)
    user.session_generation = (user.session_generation or 0) + 1
    return Account.of(user)


def set_role(session, username, role):
    """Give ``username`` a new role and end their open sessions, so no page keeps the old role's rights."""
    _check_role(role)
    user = _user(session, username)
    user.role = role
    user.session_generation = (user.session_generation or 0) + 1
    return Account.of(user)


def end_sessions(session, user_id):
    """End every session of the account ``user_id`` (logout, or a stolen cookie); False for no such account."""
    user = session.get(m.User, int(user_id))
    if user is None:
        return False
    # One UPDATE, not read-then-write: two logouts at once still end up past the generation both saw.
    session.execute(update(m.User).where(m.User.id == user.id)
                    .values(session_generation=m.User.session_generation + 1))
    return True


def _user(session, username):
    user = session.scalar(select(m.User).where(m.User.username == (username or "").strip()))
    if user is None:
        raise NotFound(N_("No user is called %(username)s."),
                       fix=N_("Check the name; `gridmap create-user` makes one."),
                       params={"username": repr(username)})
    return user


def _check_role(role):
    if role not in ROLES:
        raise InvalidInput(N_("Role %(role)s is not known."), fix=N_("Use one of %(ROLES)s."),
                           params={"role": repr(role), "ROLES": ", ".join(map(str, list(ROLES)))})


def _check_password(password):
    if len(password or "") < 8:
        raise InvalidInput(N_("The password is shorter than 8 characters."), fix=N_("Choose a longer password."))


@functools.cache
def _unknown_user_hash():
    return generate_password_hash("no account has this password")


def load(session, user_id):
    """The account with id ``user_id`` (digits from a signed session cookie), or None."""
    text = str(user_id)
    user = session.get(m.User, int(text)) if text.isascii() and text.isdigit() and len(text) < 19 else None
    return Account.of(user) if user else None
