"""The import's fields: renaming columns to ours, converting each field by type, problems per row."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InvalidInput, N_
from ..geo.errors import problem_lines
from ..geo import validate as geo_validate

_TRUE = {"1", "true", "t", "yes", "y", "是", "在职", "available", "可用"}
_FALSE = {"0", "false", "f", "no", "n", "否", "", "unavailable", "不可用", "nan", "none"}

# OSM tags and common spellings map onto our fields without --field.
_ALIASES = {
    "kind": ("highway", "type"),
    "floors": ("building:levels", "levels", "层数", "楼层数", "楼层"),
    "households": ("hh", "户数"),
    "name": ("名称", "姓名"),
    "name_en": ("english_name", "name_english", "英文名", "英文名称"),
    "street_name_en": ("street_english_name",),
    "district_name_en": ("district_english_name",),
    "address": ("地址", "addr"),
    "phone": ("电话", "手机"),
}


def parse_field_map(pairs):
    """Turn ``["name=NAME_ZH", "households=TOTPOP20"]`` into ``{"name": "NAME_ZH", …}``."""
    out = {}
    for pair in pairs or ():
        ours, sep, theirs = pair.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise InvalidInput(N_("--field %(pair)s is not of the form name=COLUMN."),
                               fix=N_("Write e.g. --field households=TOTPOP20."),
                               params={"pair": repr(pair)})
        out[ours.strip()] = theirs.strip()
    return out


def rename(frame, spec, fields):
    missing = {ours: theirs for ours, theirs in fields.items() if theirs not in frame.columns}
    if missing:
        ours, theirs = next(iter(missing.items()))
        raise InvalidInput(N_("--field %(ours)s=%(theirs)s: the file has no column %(theirs2)s."),
                           fix=N_("Its columns are %(value)s."),
                           params={"ours": ours, "theirs": theirs, "theirs2": repr(theirs),
                                   "value": [c for c in frame.columns if c != frame.geometry.name]})
    rename = {theirs: ours for ours, theirs in fields.items()}
    # a column already called like a field the user takes from another column is not that field:
    # kept, it would stand beside the chosen one under the same name
    displaced = [ours for ours in fields if ours in frame.columns and ours not in rename]
    if displaced:
        frame = frame.drop(columns=displaced)
    lower = {str(c).lower(): c for c in frame.columns}
    for f in spec.fields:
        if f.name in fields or f.name in frame.columns:
            continue
        for alias in _ALIASES.get(f.name, ()):
            if alias in lower and lower[alias] not in rename:
                rename[lower[alias]] = f.name
                break
        else:
            # not a column the user mapped already (--field address=NAME must not become name)
            if f.name.lower() in lower and lower[f.name.lower()] not in rename:
                rename[lower[f.name.lower()]] = f.name
    if spec.name == "buildings" and "address" not in frame.columns and "address" not in rename.values():
        frame = _osm_address(frame)
    return frame.rename(columns=rename)


def _osm_address(frame):
    # The OSM reader composed each building's address as its locale writes it (addr:full, street and
    # number, address points inside it, its name); the rest keep their OSM object so every building
    # can still be found and later corrected.
    if "osm_id" not in frame.columns:
        return frame
    frame = frame.copy()
    composed = frame.get("osm_address", pd.Series("", index=frame.index)).fillna("").astype(str)
    kind = frame.get("osm_type", pd.Series("way", index=frame.index)).fillna("way").astype(str)
    frame["address"] = composed.where(composed != "", "OSM " + kind + " " + frame["osm_id"].astype(str))
    return frame


def check_required_columns(spec, raw):
    cols = [c for c in raw.frame.columns if c != raw.frame.geometry.name]
    for f in spec.fields:
        if f.required and f.name not in raw.frame.columns:
            raise InvalidInput(
                N_("%(source)s: the required column %(name)s for %(name2)s is missing."),
                fix=N_("The file has the columns %(cols)s; name the one to use with --field %(name3)s=COLUMN."),
                params={"source": raw.source, "name": repr(f.name), "name2": spec.name, "cols": cols, "name3": f.name})


def convert_fields(spec, frame):
    """Each of ``spec``'s fields converted to its type, vectorised; a Problem for every bad cell."""
    problems = []
    frame = frame.copy()
    rows = frame["_row"].to_numpy()
    names = labels(frame)

    def flag(bad, f, col, says, fix, code, **params):
        # ``says`` is a template of its own (with %(field)s and %(value)s): one sentence a language
        for i in np.flatnonzero(np.asarray(bad)):
            problems.append(problem(rows[i], names[i], f.name, col.iloc[i], says, fix, code=code,
                                    field=f.name, value=_show(col.iloc[i]), **params))

    for f in spec.fields:
        if f.name not in frame.columns:
            frame[f.name] = f.default
            continue
        col = frame[f.name]
        text = col.astype(str).str.strip().where(col.notna(), "")
        text = text.where(~text.str.lower().isin(["nan", "none", "<na>"]), "")
        if f.required:
            for i in np.flatnonzero((text == "").to_numpy()):
                problems.append(problem(rows[i], names[i], f.name, "", N_("%(field)s is empty"),
                                        N_("Fill in %(field)s for this feature."), code="required_empty",
                                        field=f.name))
        if f.type in ("int", "float"):
            num = pd.to_numeric(text.where(text != "", np.nan), errors="coerce")
            bad = (text != "") & num.isna()
            if f.type == "int":
                bad |= num.notna() & (num != np.floor(num.fillna(0)))
            if f.low is not None:
                bad |= num.notna() & ((num < f.low) | (num > f.high))
            if f.low is not None:
                flag(bad, f, col, N_("%(field)s %(value)s is not a valid %(type)s between %(low)s and %(high)s"),
                     N_("Write a number between %(low)s and %(high)s."), "number_out_of_range",
                     type=f.type, low=f"{f.low:g}", high=f"{f.high:g}")
            else:
                flag(bad, f, col, N_("%(field)s %(value)s is not a valid %(type)s"), N_("Write a number."),
                     "not_a_number", type=f.type)
            if f.type == "int":
                frame[f.name] = [None if pd.isna(v) else int(v) for v in num] if f.default is None \
                    else num.fillna(f.default).astype("int64")
            else:
                frame[f.name] = num
        elif f.type == "bool":
            low = text.str.lower()
            flag(~low.isin(_TRUE | _FALSE), f, col, N_("%(field)s %(value)s is not yes/no"),
                 N_("Write true or false."), "not_yes_no")
            frame[f.name] = np.where(low == "", bool(f.default), low.isin(_TRUE))
        elif f.type in ("code12", "code15"):
            n = 12 if f.type == "code12" else 15
            text = text.str.replace(r"\.0$", "", regex=True)  # codes read as floats from spreadsheets
            flag((text != "") & ~text.str.fullmatch(rf"\d{{{n}}}"), f, col,
                 N_("%(field)s %(value)s is not a %(digits)s-digit code"),
                 N_("Write the %(digits)s-digit code, digits only."), "bad_code", digits=n)
            frame[f.name] = text
        elif f.type == "choice":
            flag((text != "") & ~text.isin(f.choices), f, col, N_("%(field)s %(value)s is not known"),
                 N_("Use one of %(choices)s."), "unknown_choice", choices=list(f.choices))
            frame[f.name] = text
        elif f.type == "list":
            frame[f.name] = text.str.replace("；", ";").str.replace(",", ";").str.replace("，", ";") \
                .map(lambda s: ";".join(p.strip() for p in s.split(";") if p.strip()))
        else:
            frame[f.name] = text
    return frame, problems


def labels(frame):
    for c in ("code", "address", "name", "id"):
        if c in frame.columns:
            return frame[c].astype(str).fillna("").to_numpy()
    return np.array([None] * len(frame), dtype=object)


def problem(row, label, fieldname, value, message, fix, /, *, code="problem", **params):
    """One bad feature: ``message`` and ``fix`` are ``N_`` templates filled from ``params``, ``code`` names the kind."""
    return geo_validate.Problem(row=int(row), feature=None if label in (None, "") else str(label),
                                field=fieldname, value=_plain(value), message=message, fix=fix, code=code,
                                params={k: _plain(v) for k, v in params.items()})


def _show(value):
    value = _plain(value)
    return f'"{value}"' if isinstance(value, str) else str(value)


def _plain(value):
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


def rejection(spec, source, problems, total):
    shown = [p.to_dict() for p in sorted(problems, key=lambda p: (p.row, p.field))]
    rows = len({p["row"] for p in shown})
    return InvalidInput(
        N_("%(source)s: %(rejected)s of %(total)s features cannot be imported as %(kind)s; nothing was written.\n"
           "%(lines)s"),
        fix=N_("Fix these features and import again, or pass --skip-invalid to import the others."),
        details={"problems": shown[:200], "rejected": rows, "total": total},
        params={"source": source, "rejected": rows, "total": total, "kind": spec.name,
                "lines": problem_lines(shown)})
