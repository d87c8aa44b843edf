"""Typed errors that say what went wrong and what to do about it.

The base vocabulary (``GridmapError``, ``InvalidInput``, ``NotFound``) lives in
:mod:`gridmap.geo.errors`, the bottom layer, so that the pure geometry code raises the same
errors as everything above it; this module re-exports it and adds the errors of the services.
"""
from .geo.errors import GridmapError, InvalidInput, N_, NotFound, Said

__all__ = ["GridmapError", "InvalidInput", "N_", "NotFound", "Said", "Conflict", "Forbidden", "Unauthenticated"]


class Conflict(GridmapError):
    """Someone else changed the record first (optimistic locking) or a rule forbids the change."""

    status = 409
    code = "conflict"


class Forbidden(GridmapError):
    """The caller is known and may not do this."""

    status = 403
    code = "forbidden"


class Unauthenticated(GridmapError):
    """Nobody has signed in, and only a signed-in role may do this."""

    status = 401
    code = "unauthorized"
