"""What every command shares: the store of the current app, errors as a message and a fix, tables, the user's language."""
import functools
import os
import sys
import unicodedata
from pathlib import Path

import click
from flask import current_app

from ..errors import GridmapError
from ..geo.errors import N_, Said, fill, problem_lines

#: The compiled catalogue each language reads (English is the templates themselves).
_CATALOGUES = {"zh": "zh_Hans_CN"}


def store():
    return current_app.extensions["gridmap.store"]


def reports_errors(command):
    """Run ``command``; a GridmapError ends it with its message and fix on stderr and exit status 2."""
    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except GridmapError as err:
            fail(err)
    return run


def fail(err):
    params = err.params
    if "lines" in params and (err.details or {}).get("problems"):  # a rejected file: its problems said anew
        params = {**params, "lines": problem_lines(err.details["problems"], say)}
    click.secho(say(N_("Error: %(message)s"), message=_said(err.template, err.message, err.params, params)),
                fg="red", err=True)
    if err.fix:
        click.echo(say(N_("Fix: %(fix)s"), fix=_said(err.fix_template, err.fix, err.params)), err=True)
    sys.exit(2)


def _said(template, text, params, said_params=None):
    # a command that rewrote the English after the error was raised (a sharper fix) is heard as written
    if fill(template, params) != text:
        return text
    return say(template, params if said_params is None else said_params)


def language(environ=None):
    """The user's language, ``"zh"`` or ``"en"``: GRIDMAP_LANG, else the locale (LC_ALL, then LANG) — zh* is Chinese.

    A terminal has no page to switch languages on: the shell's locale is the user's choice."""
    environ = os.environ if environ is None else environ
    for name in ("GRIDMAP_LANG", "LC_ALL", "LANG"):
        value = (environ.get(name) or "").strip()
        if value and value not in ("C", "POSIX") and not value.startswith("C."):
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def say(template, params=None, **more):
    """``template`` (an ``N_`` msgid) in the user's :func:`language`, filled from ``params``.

    The web renders catalogue entries through Flask-Babel within a request; a command has no
    request, so it reads the same compiled catalogue with Babel directly (loaded once, only by
    the commands that print a message)."""
    if not template:
        return template
    params = {k: say(v.template, v.params) if isinstance(v, Said) else v for k, v in {**(params or {}), **more}.items()}
    catalogue = _catalogue(language())
    if catalogue is None:
        return fill(template, params)
    # a "what" parameter names a kind of record, a word of the catalogue too (as on the web)
    params = {k: catalogue.gettext(v) if k == "what" and isinstance(v, str) else v for k, v in params.items()}
    return fill(catalogue.gettext(template), params)


@functools.lru_cache(maxsize=None)
def _catalogue(lang):
    if lang not in _CATALOGUES:
        return None
    from babel.support import Translations  # only commands that speak load Babel's catalogue reader
    found = Translations.load(str(Path(__file__).resolve().parents[1] / "translations"), [_CATALOGUES[lang]])
    return found if isinstance(found, Translations) else None  # NullTranslations: not compiled


def print_rows(rows, columns, headers=None):
    """``rows`` (dicts) as aligned columns under ``headers`` (default: the column keys themselves)."""
    columns = list(columns)
    headers = list(headers or columns)
    cells = [[str(r.get(c, "") if r.get(c) is not None else "") for c in columns] for r in rows]
    widths = [max([_width(h)] + [_width(row[i]) for row in cells]) for i, h in enumerate(headers)]
    click.echo("  ".join(_pad(h, w) for h, w in zip(headers, widths)))
    for row in cells:
        click.echo("  ".join(_pad(v, w) for v, w in zip(row, widths)))


def _width(text):
    # a Han character takes two columns of a terminal (East Asian Wide), or Chinese headings misalign
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text, width):
    return text + " " * (width - _width(text))
