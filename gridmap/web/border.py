"""The web border's bounds: how much a request may send, how deep its JSON may nest, what its text may hold.

Every request passes :func:`_bound` before its view (and before CSRF reads a form): a body
larger than its route's limit is refused with 413 before a byte of it is read, and a query
string or form with characters no field can hold (NUL, other control characters, lone
surrogates) is refused with 400 naming the parameter. JSON bodies are read only through
:func:`json_body`, which bounds nesting before the parser recurses and checks every string the
same way, so a service never sees text PostgreSQL cannot store or a body that costs gigabytes.
"""
from __future__ import annotations

import json
import re

import numpy as np
from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from ..dispatch.residents import MAX_PHOTOS
from ..errors import InvalidInput, N_

#: Endpoints whose bodies carry geometry (the planner's edits): they get MAX_EDIT_BYTES, every other MAX_BODY_BYTES.
LARGE_BODY_ENDPOINTS = frozenset({"planner.edit"})
#: Endpoints that take photos → how many: MAX_BODY_BYTES plus PHOTO_MAX_BYTES a photo (gridmap.photos checks each).
PHOTO_ENDPOINTS = {"reports.create": MAX_PHOTOS, "worker.resolve": MAX_PHOTOS}
#: Endpoints that take a data file: the file's own limit plus MAX_BODY_BYTES for the form around it.
UPLOAD_ENDPOINTS = frozenset({"admin.upload"})
_UPLOAD_FORM_MEMORY = 1 << 20

# C0 controls other than tab, newline and carriage return, DEL, and UTF-16 halves that are not a pair:
# PostgreSQL cannot store NUL, no field means the others, and a lone surrogate cannot be encoded as UTF-8.
_BAD_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
#: The same rule as a JSON Schema pattern, for the OpenAPI document's text parameters and fields.
TEXT_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f\\ud800-\\udfff]*$"
# A JSON string, escapes included (the unrolled form scans in linear time).
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)


class PayloadTooLarge(RequestEntityTooLarge):
    """413 that names the limit and the setting that raises it."""

    def __init__(self, limit, setting):
        super().__init__(f"The request body is larger than {limit:,} bytes, the most this address accepts. "
                         f"Send less (split the work), or ask the operator to raise GRIDMAP_{setting}.")
        self.limit = limit
        self.setting = setting


class FormTooLarge(PayloadTooLarge):
    """413 for a form within the byte limit whose parts are too many (or a text field too long)."""

    def __init__(self, parts, field_bytes):
        super().__init__(parts, "MAX_FORM_PARTS")
        self.description = (f"The form has more than {parts:,} parts, or a text field larger than {field_bytes:,} "
                            "bytes: no form of this site has that many. Send the form as the page builds it "
                            "(one file, a few fields), or ask the operator to raise GRIDMAP_MAX_FORM_PARTS.")


def init_app(app):
    """Give Werkzeug the largest limit (its own check before reading) and bound each request to its route's."""
    cfg = app.config
    cfg["MAX_CONTENT_LENGTH"] = max(cfg["MAX_BODY_BYTES"], cfg["MAX_EDIT_BYTES"],
                                    cfg["MAX_BODY_BYTES"] + max(PHOTO_ENDPOINTS.values()) * cfg["PHOTO_MAX_BYTES"],
                                    cfg["IMPORT_MAX_UPLOAD_BYTES"] + cfg["MAX_BODY_BYTES"])
    cfg["MAX_FORM_MEMORY_SIZE"] = cfg["MAX_BODY_BYTES"]
    # first of the before-request hooks: CSRF protection reads the form, so the limit must be set before it
    app.before_request_funcs.setdefault(None, []).insert(0, _bound)


def limit_for(endpoint):
    """(bytes, setting name) that bound a request to ``endpoint``."""
    cfg = current_app.config
    if endpoint in PHOTO_ENDPOINTS:
        return cfg["MAX_BODY_BYTES"] + PHOTO_ENDPOINTS[endpoint] * cfg["PHOTO_MAX_BYTES"], "PHOTO_MAX_BYTES"
    if endpoint in UPLOAD_ENDPOINTS:
        return cfg["IMPORT_MAX_UPLOAD_BYTES"] + cfg["MAX_BODY_BYTES"], "IMPORT_MAX_UPLOAD_BYTES"
    setting = "MAX_EDIT_BYTES" if endpoint in LARGE_BODY_ENDPOINTS else "MAX_BODY_BYTES"
    return cfg[setting], setting


def _bound():
    limit, setting = limit_for(request.endpoint)
    request.max_content_length = limit
    if request.endpoint in UPLOAD_ENDPOINTS:
        # Werkzeug counts its undecided buffer (up to a 64 KiB read past a part's start) against the
        # form memory limit, file parts included: a file upload needs room above one read
        request.max_form_memory_size = max(current_app.config["MAX_FORM_MEMORY_SIZE"], _UPLOAD_FORM_MEMORY)
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(limit, setting)
    for key, value in request.args.items(multi=True):
        check_text(key, "a query parameter name")
        check_text(value, key)
    for key, value in (request.view_args or {}).items():
        if isinstance(value, str):
            check_text(value, key)
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = request.form
        except RequestEntityTooLarge:
            if request.content_length is not None and request.content_length <= limit:
                raise FormTooLarge(current_app.config["MAX_FORM_PARTS"], request.max_form_memory_size) from None
            raise PayloadTooLarge(limit, setting) from None
        for key, value in form.items(multi=True):
            check_text(key, "a form field name")
            check_text(value, key)


def check_text(value, name):
    """Raise InvalidInput when ``value`` holds a character no field can store (named, with its position)."""
    found = _BAD_CHAR.search(value)
    if found:
        char = found.group()
        raise InvalidInput(N_("%(name)s holds the character U+%(char)s at position %(value)s, which no field accepts."),
                           fix=N_("Remove control characters (and unpaired UTF-16 surrogates) from it."),
                           # str(): a JSON body's path (values.x[0]) arrives as a lazily formatted _Index
                           details={"field": str(name), "position": found.start(), "character": f"U+{ord(char):04X}"},
                           params={"name": name, "char": format(ord(char), '04X'), "value": found.start()})
    return value


def json_body():
    """The request's JSON value, or None when it sent none (no body, or not ``application/json``).

    Nesting deeper than MAX_JSON_DEPTH is refused before parsing (Python's parser recurses, and
    a thousand ``[`` cost a stack), as is text that is not UTF-8, JSON that does not parse, the
    constants NaN and Infinity, and strings with characters no field holds."""
    if not request.is_json:
        return None
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise PayloadTooLarge(*limit_for(request.endpoint)) from None
    if not raw.strip():
        return None
    return parse_json(raw, max_depth=current_app.config["MAX_JSON_DEPTH"])


def parse_json(raw, *, max_depth):
    """Bytes → a JSON value, bounded and checked as :func:`json_body` describes."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InvalidInput(N_("The request body is not UTF-8 (byte %(start)s cannot be decoded)."),
                           fix=N_("Send JSON encoded as UTF-8."), details={"position": err.start},
                           params={"start": err.start}) from None
    deepest = json_depth(text)
    if deepest > max_depth:
        raise InvalidInput(N_("The JSON body nests %(deepest)s levels deep; at most %(max_depth)s are accepted."),
                           fix=N_("Send a flatter body: no field of this API nests that deep."),
                           details={"depth": deepest, "most": max_depth},
                           params={"deepest": deepest, "max_depth": max_depth})
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except ValueError as err:
        where = f" at line {err.lineno}, column {err.colno}" if hasattr(err, "lineno") else ""
        raise InvalidInput(N_("The request body is not valid JSON%(where)s: %(err)s."),
                           fix=N_("Send a JSON object with Content-Type: application/json."),
                           params={"where": where, "err": getattr(err, 'msg', err)}) from None
    _check_strings(value, "body")
    return value


def json_depth(text):
    """How deep arrays and objects nest in JSON ``text`` (brackets inside strings do not count)."""
    skeleton = _JSON_STRING.sub("", text).encode("utf-8")
    b = np.frombuffer(skeleton, dtype=np.uint8)
    if not b.size:
        return 0
    step = ((b == 0x5B) | (b == 0x7B)).astype(np.int32) - ((b == 0x5D) | (b == 0x7D)).astype(np.int32)
    return int(np.cumsum(step).max(initial=0))


def _no_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def _check_strings(value, path):
    # bounded by the body limit and the depth check, so plain recursion is safe; the path of an
    # item is only spelled out when it is bad (a 2 MiB body may hold half a million of them)
    if isinstance(value, str):
        check_text(value, path)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, f"a field name in {path}")
            _check_strings(item, key if path == "body" else f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, (str, dict, list)):
                _check_strings(item, _Index(path, i))


class _Index:
    """``path[i]``, formatted only when an error names it."""

    __slots__ = ("path", "i")

    def __init__(self, path, i):
        self.path, self.i = path, i

    def __str__(self):
        return f"{self.path}[{self.i}]"

    def __format__(self, spec):
        return format(str(self), spec)
