"""API keys for machines (Open311 clients, SOS gateways): created once, kept only as a SHA-256 hash."""
import hashlib
import hmac
import secrets

from sqlalchemy import select

from .errors import Conflict, Forbidden, InvalidInput, N_, NotFound
from .store import models as m

# A key is 256 random bits, so a plain SHA-256 is enough: there is no password to guess slowly,
# and a fast hash lets a request find its key by an indexed equality lookup.
_PREFIX = "gm_"


def create(session, name):
    """Create a key named ``name``; returns ``(key, row)``. The key itself is never stored: show it once."""
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise InvalidInput(N_("API key name %(name)s is empty or longer than 64 characters."),
                           fix=N_("Name the client, e.g. wechat-miniprogram."),
                           params={"name": repr(name)})
    if session.scalar(select(m.ApiKey.id).where(m.ApiKey.name == name)) is not None:
        raise Conflict(N_("An API key named %(name)s exists already."), fix=N_("Choose another name."),
                       params={"name": repr(name)})
    key = _PREFIX + secrets.token_urlsafe(32)
    row = m.ApiKey(name=name, key_hash=_hash(key), prefix=key[:10], active=True)
    session.add(row)
    session.flush()
    return key, row


def check(session, key, *, what="this request"):
    """The active ApiKey row for ``key``; Forbidden (naming what needs it) otherwise."""
    if not key or not isinstance(key, str):
        raise Forbidden(N_("An api_key is required for %(what)s."),
                        fix=N_("Ask the administrator for a key (gridmap api-key create NAME) and send it."),
                        params={"what": what})
    row = session.scalar(select(m.ApiKey).where(m.ApiKey.key_hash == _hash(key)))
    # compare again in constant time: the index lookup found the row, this keeps timing flat
    if row is None or not row.active or not hmac.compare_digest(row.key_hash, _hash(key)):
        raise Forbidden(N_("The api_key sent for %(what)s is not valid."),
                        fix=N_("Check the key; a revoked key must be replaced (gridmap api-key create NAME)."),
                        params={"what": what})
    return row


def revoke(session, name):
    row = session.scalar(select(m.ApiKey).where(m.ApiKey.name == name))
    if row is None:
        raise NotFound(N_("No API key is named %(name)s."), fix=N_("See gridmap api-key list."),
                       params={"name": repr(name)})
    row.active = False
    return row


def list_keys(session):
    return [{"name": r.name, "prefix": r.prefix, "active": r.active, "created_at": r.created_at.isoformat(timespec="seconds")}
            for r in session.scalars(select(m.ApiKey).order_by(m.ApiKey.name))]


def _hash(key):
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
