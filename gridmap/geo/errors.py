"""The error vocabulary every layer speaks: what went wrong, what to do about it, and the HTTP status.

It lives at the bottom, in ``geo``, because ``geo`` may import nothing else of gridmap and its
readers and validators must still raise errors the web layer and the command line turn into a
400 with a fix. ``gridmap.errors`` re-exports these and adds the errors of the layers above.
"""


class GridmapError(Exception):
    """Base of every error gridmap raises on purpose.

    ``status`` is the HTTP status the web layer answers with; ``details``
    carries machine-readable specifics (e.g. the list of rejected features).
    """

    status = 500
    code = "error"

    def __init__(self, message, *, fix=None, details=None):
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.details = details or {}

    def to_dict(self):
        out = {"error": self.code, "message": self.message}
        if self.fix:
            out["fix"] = self.fix
        if self.details:
            out["details"] = self.details
        return out

    def __str__(self):
        return f"{self.message} {self.fix}" if self.fix else self.message


class InvalidInput(GridmapError, ValueError):
    """The caller sent something we cannot use; nothing was written."""

    status = 400
    code = "invalid_input"


class NotFound(GridmapError, LookupError):
    status = 404
    code = "not_found"
