"""Values checked as they come in from a URL or the command line: plan ids, community codes, days.

Light on purpose (the standard library and gridmap.errors): the web's parameters
(:mod:`gridmap.web.params`) and the commands share them, and a command must not load the web to check an id.
"""
import datetime as dt
import re

from .errors import InvalidInput, N_

#: The largest id a database integer column holds (PostgreSQL's integer; SQLite's are wider).
MAX_ID = 2**31 - 1
_COMMUNITY_CODE = re.compile(r"\d{12}")
#: Days and times the service accepts: wide enough for any record, narrow enough that adding a
#: window or a time zone to one can never leave the calendar (9999-12-31 + 1 day is an OverflowError).
EARLIEST = dt.datetime(1970, 1, 1)
LATEST = dt.datetime(2100, 1, 1)


def ascii_digits(text):
    # str.isdigit() also takes '²' and '٣', which int() refuses or reads as another number
    return text.isascii() and text.isdigit()


def plan_id(raw):
    """A plan id from a URL or the command line: a positive whole number within a database integer."""
    text = str(raw).strip()
    if isinstance(raw, bool) or not ascii_digits(text) or not (1 <= int(text) <= MAX_ID):
        raise InvalidInput(N_("Plan id %(raw)s is not a positive whole number."),
                           fix=N_("Use an id from GET /api/v1/plans or `gridmap plan list`."), details={"plan": raw},
                           params={"raw": repr(raw)})
    return int(text)


def community_code(code):
    """A 12-digit community code, or InvalidInput naming the value."""
    if not (isinstance(code, str) and _COMMUNITY_CODE.fullmatch(code)):
        raise InvalidInput(N_("community=%(code)s is not a 12-digit community code."),
                           fix=N_("Use a code from /api/v1/communities, e.g. 210213013004."), details={"community": code},
                           params={"code": repr(code)})
    return code


def optional_community(raw):
    """``community`` from a query string: None when absent, else a checked 12-digit code."""
    return None if raw in (None, "") else community_code(raw)


def parse_day(raw, *, name="at"):
    """A calendar day written YYYY-MM-DD, strictly, from 1970 to 2099; InvalidInput naming ``name`` and the value otherwise."""
    text = str(raw).strip() if raw is not None else ""
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(N_("%(name)s=%(raw)s is not a date written YYYY-MM-DD."),
                           fix=N_("Write e.g. %(name)s=2026-05-03."), details={name: raw},
                           params={"name": name, "raw": repr(raw)}) from None
    if not EARLIEST.date() <= day < LATEST.date():
        raise InvalidInput(N_("%(name)s=%(text)s is outside the years %(year)s–%(value)s this service keeps."),
                           fix=N_("Write a day between %(value2)s and %(value3)s."),
                           details={name: text},
                           params={"name": name, "text": text, "year": EARLIEST.year, "value": LATEST.year - 1,
                                   "value2": EARLIEST.date(), "value3": LATEST.date() - dt.timedelta(days=1)})
    return day
