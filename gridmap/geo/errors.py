"""The error vocabulary every layer speaks: what went wrong, what to do about it, and the HTTP status.

It lives at the bottom, in ``geo``, because ``geo`` may import nothing else of gridmap and its
readers and validators must still raise errors the web layer and the command line turn into a
400 with a fix. ``gridmap.errors`` re-exports these and adds the errors of the layers above.
"""


def N_(template):
    """Mark ``template`` for the message catalogue without translating it here.

    The layers below ``web`` know no request and no language: they raise English templates with
    ``%(name)s`` placeholders and their ``params``; the web layer looks the template up in the
    catalogue of the page's language and fills it (:func:`gridmap.web.common.localized`).
    """
    return template


class Said(str):
    """A sentence for people: its English text (what programs, logs and tests read, since it *is*
    that ``str``) carrying the catalogue ``template`` and ``params`` it was made from, so a page or a
    terminal can say it again in its own language. Notes of an import are made of these."""

    def __new__(cls, template, **params):
        said = super().__new__(cls, fill(template, {k: str(v) if isinstance(v, Said) else v
                                                    for k, v in params.items()}))
        said.template, said.params = template, params
        return said

    def to_dict(self):
        """The sentence as JSON keeps it (an import job's state): text, template and plain params."""
        return {"text": str(self), "template": self.template,
                "params": {k: (v.to_dict() if isinstance(v, Said) else v) for k, v in self.params.items()}}

    @classmethod
    def from_dict(cls, d):
        """A :meth:`to_dict` read back; a plain string stays a plain string."""
        if not isinstance(d, dict):
            return d
        return cls(d["template"], **{k: cls.from_dict(v) for k, v in (d.get("params") or {}).items()})


class GridmapError(Exception):
    """Base of every error gridmap raises on purpose.

    ``status`` is the HTTP status the web layer answers with; ``details``
    carries machine-readable specifics (e.g. the list of rejected features).
    ``params`` fill ``%(name)s`` placeholders of ``message`` and ``fix`` when the two are
    catalogue templates (marked with :func:`N_`); ``message``/``fix`` read as the filled English,
    ``template``/``fix_template`` keep what the catalogue translates.
    """

    status = 500
    code = "error"

    def __init__(self, message, *, fix=None, details=None, params=None, code=None):
        if code:
            self.code = code  # a finer reason than the class's, for programs to branch on
        self.params = {k: _plain(v) for k, v in (params or {}).items()}
        self.template, self.fix_template = message, fix
        message, fix = fill(message, self.params), fill(fix, self.params)
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.details = details or {}

    def to_dict(self):
        out = {"error": self.code, "message": self.message}
        if self.fix:
            out["fix"] = self.fix
        if self.params:
            out["params"] = self.params
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


def fill(template, params):
    """``template`` with its ``%(name)s`` placeholders filled from ``params`` (untouched without params)."""
    if not template or not params:
        return template
    try:
        return template % params
    except (KeyError, ValueError, TypeError):  # a translation that lost a placeholder: show it unfilled
        return template


def _plain(value):
    """A parameter as JSON carries it and a sentence reads it: lists joined with commas, others as text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, set, frozenset)):  # a tuple is one value (a shape, a point): shown as written
        return ", ".join(str(v) for v in (sorted(value, key=str) if isinstance(value, (set, frozenset)) else value))
    return str(value)


def problem_lines(problems, render=fill, *, most=20):
    """The first ``most`` import problems (dicts) as indented lines of text, each said by ``render(template, params)``
    (English by default; the command line passes its own to speak the user's language)."""
    lines = []
    for p in problems[:most]:
        params = p.get("params") or {}
        message = render(p.get("template") or p["message"], params)
        fix = render(p.get("fix_template") or p["fix"], params)
        if p.get("feature"):
            lines.append(render(N_("  feature %(row)s (%(feature)s): %(message)s. %(fix)s"),
                                {"row": p["row"], "feature": p["feature"], "message": message, "fix": fix}))
        else:
            lines.append(render(N_("  feature %(row)s: %(message)s. %(fix)s"),
                                {"row": p["row"], "message": message, "fix": fix}))
    if len(problems) > most:
        lines.append(render(N_("  … and %(n)s more"), {"n": len(problems) - most}))
    return "\n".join(lines)
