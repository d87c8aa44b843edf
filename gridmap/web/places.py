"""Names in the page's language: places in English on English pages, the plan names gridmap generated in either.

What the services return names places as the store holds them, in Chinese, and generated plans
by an English template (:mod:`gridmap.plans.names`). Rather than teach every page builder the
page's language, one pass here rewrites what a page is about to show: a template's context before
it renders (Flask's ``before_render_template``) and a JSON answer before it leaves. It knows the
shapes those names travel in:

- a place: ``{"code": "210213013004", "name": "城志社区", …}`` (a 6- to 15-digit code) — on
  English pages its ``name_en`` from the store, else the pinyin form (:func:`gridmap.geo.names.english`);
  ``community_name``/``street_name``/``district_name``/``grid_name`` beside their codes likewise, and
  ``community``/``street``/``district`` when they hold a Chinese name rather than a code;
- a plan: ``{"name": "copy of plan 7", "name_template": …, "name_params": …}`` — its template said
  in the page's language, in Chinese too.

Objects other than dicts and lists (ORM rows, frames) pass untouched; the services' data is never
changed in place (a snapshot's dicts are shared by every request): what changes is copied.
"""
import json
import re

from flask import before_render_template, current_app, g
from flask_babel import get_locale
from sqlalchemy import select

from ..geo.names import english, has_han
from ..store import models as m
from .common import localized, store

_PLACE_CODE = re.compile(r"\d{6,15}")
_NAMED = {"community_name": "community_code", "street_name": "street_code", "district_name": "district_code",
          "grid_name": "grid_code"}
#: JSON answers larger than this are left as they are (tiles, big GeoJSON): a walk over them would cost more than it says.
MAX_JSON_BYTES = 4 * 2**20


def init_app(app):
    before_render_template.connect(_rewrite_context, app)
    app.after_request(_rewrite_json)
    app.jinja_env.filters["place"] = place


def english_page():
    locale = get_locale()
    return bool(locale) and locale.language == "en"


def place(name, code=None):
    """A place's name in the page's language (a Jinja filter: ``{{ c.name|place(c.code) }}``)."""
    if not english_page() or not isinstance(name, str) or not has_han(name):
        return name
    return _english(name, code)


def named(value):
    """``value`` for a map of the page: a frame's ``name`` column (grids, communities) or a dict's,
    list's names in the page's language; the caller's frame is never changed."""
    if not english_page():
        return in_page_language(value) if isinstance(value, (dict, list, tuple)) else value
    if hasattr(value, "columns") and "name" in value.columns:
        codes = value["code"] if "code" in value.columns else [None] * len(value)
        out = value.copy()
        out["name"] = [_english(n, c) if isinstance(n, str) and has_han(n) else n for n, c in zip(value["name"], codes)]
        return out
    return in_page_language(value) if isinstance(value, (dict, list, tuple)) else value


def _english(name, code):
    official, by_name = _official()
    return official.get(str(code)) or english(name, by_name)


def in_page_language(value):
    """``value`` with the names it carries in the page's language (a copy where anything changed)."""
    return _walk(value, english_page())


def _walk(value, en):
    if isinstance(value, list):
        out = [_walk(v, en) for v in value]
        return out if any(a is not b for a, b in zip(out, value)) else value
    if isinstance(value, tuple):
        out = tuple(_walk(v, en) for v in value)
        return out if any(a is not b for a, b in zip(out, value)) else value
    if not isinstance(value, dict):
        return value
    out = {k: _walk(v, en) for k, v in value.items()}
    name = out.get("name")
    if out.get("name_template"):
        out["name"] = localized(out["name_template"], out.get("name_params") or {})
    elif en and isinstance(name, str) and has_han(name) and _PLACE_CODE.fullmatch(str(out.get("code") or "")):
        out["name"] = _english(name, out["code"])
    if en:
        for key in ("community", "street", "district"):  # a place named beside something else (a courtyard's community)
            if isinstance(out.get(key), str) and has_han(out[key]):
                out[key] = _english(out[key], None)
        for key, code_key in _NAMED.items():
            text = out.get(key)
            if isinstance(text, str) and has_han(text):
                out[key] = _english(text, out.get(code_key))
    changed = any(out[k] is not value[k] for k in value)
    return out if changed else value


def _official():
    """(code → English name, Chinese name → English name) of every district, street and community, read once a request."""
    if "gridmap_names_en" not in g:
        by_code, by_name = {}, {}
        with store().session() as session:
            for model in (m.District, m.Street, m.Community):
                for code, name, en in session.execute(select(model.code, model.name, model.name_en)):
                    if en:
                        by_code[code] = en
                        by_name.setdefault(name, en)
        g.gridmap_names_en = (by_code, by_name)
    return g.gridmap_names_en


def _rewrite_context(sender, template, context, **_):
    # the page's own data only: Flask's config, session, request and g are no page's names
    for key, value in list(context.items()):
        if type(value) in (dict, list, tuple) and key not in ("config", "session", "request", "g"):
            context[key] = in_page_language(value)


def _rewrite_json(response):
    if (response.mimetype not in ("application/json", "application/geo+json") or response.direct_passthrough
            or response.is_streamed):
        return response
    data = response.get_data()
    en = english_page()
    if len(data) > MAX_JSON_BYTES or not (en or b'"name_template"' in data):
        return response
    try:
        body = json.loads(data)
    except ValueError:
        return response
    rewritten = _walk(body, en)
    if rewritten is not body:
        response.set_data(current_app.json.dumps(rewritten) + "\n")  # written as jsonify writes it
    return response
