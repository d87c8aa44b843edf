"""The import border: read a file, validate every feature and field, write all of it in one transaction or nothing."""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Integer, delete, insert, select

from . import plans
from .catalog import RESPONDER_KINDS
from .errors import Conflict, InvalidInput
from .geo import io as geo_io
from .geo import validate as geo_validate
from .geo.crs import parse_crs
from .store import models as m
from .store.types import encode_many

POINT = {"Point"}
POLYGONAL = {"Polygon", "MultiPolygon"}
LINEAR = {"LineString", "MultiLineString"}
_TRUE = {"1", "true", "t", "yes", "y", "是", "在职", "available", "可用"}
_FALSE = {"0", "false", "f", "no", "n", "否", "", "unavailable", "不可用", "nan", "none"}


@dataclass(frozen=True)
class Field:
    name: str
    type: str = "str"  # str | int | float | bool | list | code12 | code15 | choice
    required: bool = False
    default: object = ""
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    help: str = ""


@dataclass(frozen=True)
class Kind:
    """What one KIND of `gridmap import KIND PATH` accepts and where it goes."""
    name: str
    geometry: frozenset
    fields: tuple
    writer: str
    geometry_required: bool = True
    help: str = ""

    def field(self, name):
        return next(f for f in self.fields if f.name == name)


_PHONE = Field("phone", help="contact phone")
_COMMUNITY = Field("community_code", "code12", help="12-digit community code; found from the location when absent")

KINDS = {k.name: k for k in [
    Kind("communities", frozenset(POLYGONAL), (
        Field("code", "code12", required=True, help="12-digit statistical code of the community"),
        Field("name", required=True),
        Field("street_code", "str", help="9- or 12-digit street code; derived from the community code when absent"),
        Field("street_name"), Field("district_code"), Field("district_name"),
        Field("service_centre"), Field("service_address"), Field("service_phone"),
    ), "_write_communities", help="community boundaries (社区)"),
    Kind("grids", frozenset(POLYGONAL), (
        Field("community_code", "code12", help="the community the grid belongs to; found by overlap when absent"),
        Field("name"),
        Field("code", "code15", help="15-digit grid code; numbered west→east, north→south when absent"),
    ), "_write_grids", help="grid polygons; each community's grids become one new plan"),
    Kind("buildings", frozenset(POLYGONAL | POINT), (
        Field("address", required=True, help="the address residents type to find their grid"),
        Field("households", "int", default=0, low=0, high=100000),
        Field("name"), Field("floors", "int", default=None, low=0, high=300),
        Field("courtyard"), _COMMUNITY,
    ), "_write_buildings", help="building footprints or points with addresses and household counts"),
    Kind("party-members", frozenset(POINT), (
        Field("name", required=True), _PHONE,
        Field("building_address", help="address of the building they live in, as imported"),
        Field("in_service", "bool", default=False, help="在职党员: true/false"),
        Field("employer"),
    ), "_write_party_members", help="party members and where they live"),
    Kind("workers", frozenset(POINT), (
        Field("name", required=True), _PHONE,
        Field("grids", "list", help="grid codes served, separated by ';'"), _COMMUNITY,
    ), "_write_workers", geometry_required=False, help="grid workers (网格员) and the grids they serve"),
    Kind("volunteers", frozenset(POINT), (
        Field("name", required=True), _PHONE,
        Field("skills", "list", help="skills separated by ';' e.g. 理发;维修"),
        Field("available", "bool", default=True), _COMMUNITY,
    ), "_write_volunteers", help="volunteers with skills and availability"),
    Kind("responders", frozenset(POINT), (
        Field("name", required=True),
        Field("kind", "choice", required=True, choices=tuple(RESPONDER_KINDS)), _PHONE,
        Field("skills", "list"), Field("available", "bool", default=True),
    ), "_write_responders", help="police, mediators, property management, utilities, medical, legal …"),
    Kind("cameras", frozenset(POINT), (
        Field("name", required=True), Field("channel"),
        Field("bearing", "float", required=True, low=0, high=360, help="degrees clockwise from north"),
        Field("fov", "float", required=True, low=1, high=360, help="horizontal field of view, degrees"),
        Field("range_m", "float", required=True, low=1, high=1000, help="how far the camera sees, metres"),
        Field("courtyard"), _COMMUNITY,
    ), "_write_cameras", help="cameras with position, bearing, field of view and range"),
    Kind("roads", frozenset(LINEAR), (
        Field("name"), Field("kind"),
    ), "_write_roads", help="roads and paths (barriers for partitioning, network for routing)"),
    Kind("department-grids", frozenset(POLYGONAL), (
        Field("community_code", "code12", help="the community the grid belongs to; found by overlap when absent"),
        Field("code", help="the department's own grid code, kept as given"),
        Field("name"),
    ), "_write_department_grids",
        help="one department's legacy grids (--department NAME), kept beside the unified plans for the crosswalk"),
]}

# OSM tags and common spellings map onto our fields without --field.
_ALIASES = {
    "kind": ("highway", "type"),
    "floors": ("building:levels", "levels"),
    "households": ("hh", "户数"),
    "name": ("名称", "姓名"),
    "address": ("地址", "addr"),
    "phone": ("电话", "手机"),
}


@dataclass
class Summary:
    kind: str
    source: str
    imported: int = 0
    repaired: list = field(default_factory=list)
    rejected: list = field(default_factory=list)  # Problem dicts
    seconds: float = 0.0
    notes: list = field(default_factory=list)

    def to_dict(self):
        return {"kind": self.kind, "source": self.source, "imported": self.imported,
                "repaired": len(self.repaired), "rejected": len(self.rejected),
                "problems": self.rejected[:50], "seconds": round(self.seconds, 3), "notes": self.notes}


def parse_field_map(pairs):
    """Turn ``["name=NAME_ZH", "households=TOTPOP20"]`` into ``{"name": "NAME_ZH", …}``."""
    out = {}
    for pair in pairs or ():
        ours, sep, theirs = pair.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise InvalidInput(f"--field {pair!r} is not of the form name=COLUMN.",
                               fix="Write e.g. --field households=TOTPOP20.")
        out[ours.strip()] = theirs.strip()
    return out


def read(kind, path, *, layer=None, crs=None, encoding=None, fields=None):
    """Read ``path`` for ``kind`` and return the raw layer, columns renamed to our field names."""
    spec = _kind(kind)
    fields = dict(fields or {})
    unknown = set(fields) - {f.name for f in spec.fields} - {"lon", "lat"}
    if unknown:
        raise InvalidInput(
            f"--field names {sorted(unknown)} are not fields of {kind}.",
            fix=f"{kind} has the fields {[f.name for f in spec.fields]}.")
    path = Path(path)
    if not spec.geometry_required and path.suffix.lower() == ".csv" and not _csv_has_coordinates(path, fields, encoding):
        frame = _read_plain_csv(path, encoding)
        raw = geo_io.RawLayer(frame=frame, crs=parse_crs(crs or 4326), source=str(path))
    else:
        raw = geo_io.read_layer(path, layer=layer, crs=crs, encoding=encoding,
                                lon=fields.pop("lon", None), lat=fields.pop("lat", None))
    fields.pop("lon", None)
    fields.pop("lat", None)
    raw.frame = _rename(raw.frame, spec, fields)
    return raw


def import_file(store, kind, path, *, layer=None, crs=None, encoding=None, fields=None,
                skip_invalid=False, publish=False, max_area_change=0.01, progress=None, department=None,
                limits=None):
    """Import one file. Raises InvalidInput listing every bad feature unless ``skip_invalid``.

    ``department`` names the department whose grids a ``department-grids`` file holds;
    ``limits`` (:class:`gridmap.plans.Limits`) are what ``publish`` validates grids against.
    """
    t0 = time.perf_counter()
    _check_department(kind, department)
    raw = read(kind, path, layer=layer, crs=crs, encoding=encoding, fields=fields)
    with store.transaction() as session:
        summary = import_layer(session, kind, raw, skip_invalid=skip_invalid, publish=publish,
                               max_area_change=max_area_change, progress=progress, department=department,
                               limits=limits)
    summary.seconds = time.perf_counter() - t0
    return summary


def import_layer(session, kind, raw, *, skip_invalid=False, publish=False, max_area_change=0.01, progress=None,
                 department=None, limits=None):
    """Validate ``raw`` (a RawLayer) as ``kind`` and write it with ``session`` (the caller commits)."""
    spec = _kind(kind)
    department = _check_department(kind, department)
    t0 = time.perf_counter()
    _check_required_columns(spec, raw)
    summary = Summary(kind, raw.source)
    if raw.frame.geometry.isna().all() and not spec.geometry_required:
        frame = raw.frame.copy()
        frame["_row"] = np.arange(1, len(frame) + 1)
        problems, repaired = [], []
    else:
        prepared = geo_validate.prepare(raw, allowed_types=set(spec.geometry), max_area_change=max_area_change)
        frame, problems, repaired = prepared.frame, list(prepared.problems), prepared.repaired
    frame, field_problems = _convert_fields(spec, frame)
    problems += field_problems
    writer = globals()[spec.writer]
    frame, ref_problems = writer(session, frame, dry_run=True, department=department)
    problems += ref_problems
    summary.repaired = list(repaired)
    summary.rejected = [p.to_dict() for p in sorted(problems, key=lambda p: (p.row, p.field))]
    if problems and not skip_invalid:
        raise _rejection(spec, raw.source, problems, len(raw.frame))
    bad_rows = {p.row for p in problems}
    if bad_rows:
        frame = frame[~frame["_row"].isin(bad_rows)]
    if frame.empty and len(raw.frame):
        raise InvalidInput(f"No feature of {raw.source} could be imported as {kind}.",
                           fix="See the listed problems.", details={"problems": summary.rejected[:50]})
    notes = writer(session, frame, dry_run=False, publish=publish, progress=progress, department=department,
                   limits=limits)
    if spec.name in ("cameras", "buildings") and len(frame):
        # a camera's view is cut by the footprints around it: new cameras need theirs, new buildings
        # may hide what nearby cameras saw; computed here so views and footprints commit together
        from . import coverage
        bounds = tuple(frame.total_bounds) if spec.name == "buildings" else None
        views = coverage.refresh_views(session, changed_bounds=bounds)
        if views:
            notes = list(notes or []) + [f"{views} camera views computed"]
    plans.bump_generation(session)  # web processes rebuild their snapshots with the new data
    summary.imported = len(frame)
    summary.notes = notes or []
    summary.seconds = time.perf_counter() - t0
    return summary


def export_file(store, kind, path):
    """Write every record of ``kind`` to ``path`` (format by extension). Returns the number written."""
    frame = export_frame(store, kind)
    geo_io.write_layer(frame, path)
    return len(frame)


def export_frame(store, kind):
    import geopandas as gpd
    spec = _kind(kind)
    model, columns = _EXPORTS[spec.name]
    with store.session() as session:
        rows = session.execute(select(model)).scalars().all()
        records = [{c: _export_value(getattr(r, c)) for c in columns} for r in rows]
        geoms = [r.geom for r in rows]
        if spec.name == "workers":
            links = session.execute(select(m.grid_worker_grid)).all()
            by_worker = {}
            for wid, code in links:
                by_worker.setdefault(wid, []).append(code)
            for rec, r in zip(records, rows):
                rec["grids"] = ";".join(sorted(by_worker.get(r.id, [])))
    frame = gpd.GeoDataFrame(pd.DataFrame.from_records(records, columns=columns + (["grids"] if spec.name == "workers" else [])),
                             geometry=gpd.GeoSeries(geoms, crs=4326), crs=4326)
    return frame.drop(columns=["id"], errors="ignore")


# --------------------------------------------------------------------------------------------
# reading helpers

def _check_department(kind, department):
    """The department name a department-grids import needs (stripped), and None for every other kind."""
    if kind != "department-grids":
        if department is not None:
            raise InvalidInput(f"--department {department!r} applies only to department-grids, not {kind}.",
                               fix="Leave --department out, or import department-grids.")
        return None
    name = (department or "").strip()
    if not name or len(name) > 64:
        raise InvalidInput(f"--department {department!r} must name the department in 1–64 characters.",
                           fix="Pass e.g. --department 综治 (or 公安, 民政, 城管 …).")
    return name


def _kind(kind):
    try:
        return KINDS[kind]
    except KeyError:
        raise InvalidInput(f"Import kind {kind!r} is not known.", fix=f"Use one of {sorted(KINDS)}.") from None


def _csv_has_coordinates(path, fields, encoding):
    cols = {c.strip().lower() for c in pd.read_csv(path, nrows=0, encoding=encoding or "utf-8-sig").columns}
    wanted = {fields.get("lon", "").lower(), "lon", "lng", "longitude", "x", "经度", "wkt", "geometry"}
    return bool(cols & wanted)


def _read_plain_csv(path, encoding):
    import geopandas as gpd
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding or "utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text.", fix="Pass --encoding GBK (or the file's encoding).") from None
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries([None] * len(df), crs=4326), crs=4326)


def _rename(frame, spec, fields):
    missing = {ours: theirs for ours, theirs in fields.items() if theirs not in frame.columns}
    if missing:
        ours, theirs = next(iter(missing.items()))
        raise InvalidInput(f"--field {ours}={theirs}: the file has no column {theirs!r}.",
                           fix=f"Its columns are {[c for c in frame.columns if c != frame.geometry.name]}.")
    rename = {theirs: ours for ours, theirs in fields.items()}
    lower = {str(c).lower(): c for c in frame.columns}
    for f in spec.fields:
        if f.name in fields or f.name in frame.columns:
            continue
        for alias in _ALIASES.get(f.name, ()):
            if alias in lower and lower[alias] not in rename:
                rename[lower[alias]] = f.name
                break
        else:
            if f.name.lower() in lower:
                rename[lower[f.name.lower()]] = f.name
    if spec.name == "buildings" and "address" not in frame.columns and "address" not in rename.values():
        frame = _osm_address(frame)
    return frame.rename(columns=rename)


def _osm_address(frame):
    # OSM buildings rarely carry full addresses: compose street + number, else name, else the OSM id,
    # so every building can still be found and later corrected.
    if "osm_id" not in frame.columns:
        return frame
    frame = frame.copy()
    street = frame.get("addr:street", pd.Series("", index=frame.index)).fillna("").astype(str)
    number = frame.get("addr:housenumber", pd.Series("", index=frame.index)).fillna("").astype(str)
    name = frame.get("name", pd.Series("", index=frame.index)).fillna("").astype(str)
    addr = (street + number).where((street + number) != "", name)
    frame["address"] = addr.where(addr != "", "OSM " + frame["osm_id"].astype(str))
    return frame


def _check_required_columns(spec, raw):
    cols = [c for c in raw.frame.columns if c != raw.frame.geometry.name]
    for f in spec.fields:
        if f.required and f.name not in raw.frame.columns:
            raise InvalidInput(
                f"{raw.source}: the required column {f.name!r} for {spec.name} is missing.",
                fix=f"The file has the columns {cols}; name the one to use with --field {f.name}=COLUMN.")


# --------------------------------------------------------------------------------------------
# field conversion: vectorised, problems collected per row

def _convert_fields(spec, frame):
    problems = []
    frame = frame.copy()
    rows = frame["_row"].to_numpy()
    labels = _labels(frame)
    for f in spec.fields:
        if f.name not in frame.columns:
            frame[f.name] = f.default
            continue
        col = frame[f.name]
        text = col.astype(str).str.strip().where(col.notna(), "")
        text = text.where(~text.str.lower().isin(["nan", "none", "<na>"]), "")
        if f.required:
            for i in np.flatnonzero((text == "").to_numpy()):
                problems.append(_problem(rows[i], labels[i], f.name, "", f"{f.name} is empty",
                                         f"Fill in {f.name} for this feature."))
        if f.type in ("int", "float"):
            num = pd.to_numeric(text.where(text != "", np.nan), errors="coerce")
            bad = (text != "") & num.isna()
            if f.type == "int":
                bad |= num.notna() & (num != np.floor(num.fillna(0)))
            if f.low is not None:
                bad |= num.notna() & ((num < f.low) | (num > f.high))
            for i in np.flatnonzero(bad.to_numpy()):
                rng = f" between {f.low:g} and {f.high:g}" if f.low is not None else ""
                problems.append(_problem(rows[i], labels[i], f.name, col.iloc[i],
                                         f"{f.name} {_show(col.iloc[i])} is not a valid {f.type}{rng}",
                                         f"Write a number{rng}."))
            if f.type == "int":
                frame[f.name] = [None if pd.isna(v) else int(v) for v in num] if f.default is None \
                    else num.fillna(f.default).astype("int64")
            else:
                frame[f.name] = num
        elif f.type == "bool":
            low = text.str.lower()
            bad = ~low.isin(_TRUE | _FALSE)
            for i in np.flatnonzero(bad.to_numpy()):
                problems.append(_problem(rows[i], labels[i], f.name, col.iloc[i],
                                         f"{f.name} {_show(col.iloc[i])} is not yes/no", "Write true or false."))
            frame[f.name] = np.where(low == "", bool(f.default), low.isin(_TRUE))
        elif f.type in ("code12", "code15"):
            n = 12 if f.type == "code12" else 15
            text = text.str.replace(r"\.0$", "", regex=True)  # codes read as floats from spreadsheets
            bad = (text != "") & ~text.str.fullmatch(rf"\d{{{n}}}")
            for i in np.flatnonzero(bad.to_numpy()):
                problems.append(_problem(rows[i], labels[i], f.name, col.iloc[i],
                                         f"{f.name} {_show(col.iloc[i])} is not a {n}-digit code",
                                         f"Write the {n}-digit code, digits only."))
            frame[f.name] = text
        elif f.type == "choice":
            bad = (text != "") & ~text.isin(f.choices)
            for i in np.flatnonzero(bad.to_numpy()):
                problems.append(_problem(rows[i], labels[i], f.name, col.iloc[i],
                                         f"{f.name} {_show(col.iloc[i])} is not known",
                                         f"Use one of {list(f.choices)}."))
            frame[f.name] = text
        elif f.type == "list":
            frame[f.name] = text.str.replace("；", ";").str.replace(",", ";").str.replace("，", ";") \
                .map(lambda s: ";".join(p.strip() for p in s.split(";") if p.strip()))
        else:
            frame[f.name] = text
    return frame, problems


def _labels(frame):
    for c in ("code", "address", "name", "id"):
        if c in frame.columns:
            return frame[c].astype(str).fillna("").to_numpy()
    return np.array([None] * len(frame), dtype=object)


def _problem(row, label, fieldname, value, message, fix):
    return geo_validate.Problem(row=int(row), feature=None if label in (None, "") else str(label),
                                field=fieldname, value=_plain(value), message=message, fix=fix)


def _show(value):
    value = _plain(value)
    return f'"{value}"' if isinstance(value, str) else str(value)


def _plain(value):
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


def _rejection(spec, source, problems, total):
    shown = sorted(problems, key=lambda p: (p.row, p.field))
    lines = [f"  feature {p.row}{f' ({p.feature})' if p.feature else ''}: {p.message}. {p.fix}" for p in shown[:20]]
    more = f"\n  … and {len(shown) - 20} more" if len(shown) > 20 else ""
    rows = len({p.row for p in problems})
    return InvalidInput(
        f"{source}: {rows} of {total} features cannot be imported as {spec.name}; nothing was written.\n"
        + "\n".join(lines) + more,
        fix="Fix these features and import again, or pass --skip-invalid to import the others.",
        details={"problems": [p.to_dict() for p in shown[:200]], "rejected": rows, "total": total})


# --------------------------------------------------------------------------------------------
# writers: (session, frame, dry_run) → with dry_run, resolve references and return problems;
# without, write. The frame reaching a writer is valid WGS84 with our field names.

def _write_communities(session, frame, dry_run, **_):
    if dry_run:
        problems = []
        dup = frame["code"].duplicated(keep="first")
        for i in np.flatnonzero(dup.to_numpy()):
            r = frame.iloc[i]
            problems.append(_problem(r["_row"], r["code"], "code", r["code"], f"code {r['code']} appears twice",
                                     "Give each community its own code, or merge the two outlines."))
        return frame, problems
    districts = {d.code: d for d in session.scalars(select(m.District))}
    streets = {s.code: s for s in session.scalars(select(m.Street))}
    existing = {c.code: c for c in session.scalars(select(m.Community))}
    for r in frame.itertuples(index=False):
        dcode = _pad12((r.district_code or r.code[:6]))
        scode = _pad12((r.street_code or r.code[:9]))
        if dcode not in districts:
            districts[dcode] = m.District(code=dcode, name=r.district_name or dcode)
            session.add(districts[dcode])
        elif r.district_name:
            districts[dcode].name = r.district_name
        if scode not in streets:
            streets[scode] = m.Street(code=scode, district_code=dcode, name=r.street_name or scode)
            session.add(streets[scode])
        elif r.street_name:
            streets[scode].name = r.street_name
        geom = _multi(r.geometry)
        c = existing.get(r.code)
        if c is None:
            c = existing[r.code] = m.Community(code=r.code)
            session.add(c)
        c.street_code, c.name, c.geom = scode, r.name, geom
        c.service_centre, c.service_address, c.service_phone = r.service_centre, r.service_address, r.service_phone
    session.flush()
    return [f"{len(frame)} communities in {len({_pad12(c[:9]) for c in frame['code']})} streets"]


def _write_grids(session, frame, dry_run, publish=False, progress=None, limits=None, **_):
    if dry_run:
        frame = frame.copy()
        problems = _resolve_community(session, frame, by="overlap")
        # A MultiPolygon grid must be one piece; a MultiPolygon of one part is fine.
        for i, g in enumerate(frame.geometry):
            if g is not None and g.geom_type == "MultiPolygon":
                if len(g.geoms) == 1:
                    frame.iloc[i, frame.columns.get_loc(frame.geometry.name)] = g.geoms[0]
                else:
                    r = frame.iloc[i]
                    problems.append(_problem(r["_row"], r.get("name"), "geometry", f"{len(g.geoms)} parts",
                                             f"grid has {len(g.geoms)} separate parts",
                                             "A grid must be one contiguous area: split it into grids or join the parts."))
        for i in np.flatnonzero(((frame["code"] != "") & frame["code"].duplicated()).to_numpy()):
            r = frame.iloc[i]
            problems.append(_problem(r["_row"], r["code"], "code", r["code"], "the grid code appears twice",
                                     "Give each grid its own code or leave codes empty to number them."))
        return frame, problems
    notes = []
    for code, part in frame.groupby("community_code", sort=True):
        plan = plans.create_plan(session, code, part, name=f"import {dt.date.today().isoformat()}")
        if publish:
            # Validated like any publish, no bypass for legacy files: a gap or an overlap makes
            # "which grid is this address in" wrong for residents. The whole import is refused.
            try:
                plans.publish(session, plan, limits=limits)
            except Conflict as err:
                raise Conflict(err.message.replace(f"Plan {plan.id} has", f"The grids of {code} have", 1),
                               fix="Nothing was written. Import without --publish to keep them as a draft "
                                   "(gridmap plan validate PLAN then lists each finding with its place), "
                                   "or fix the file and import again.", details=err.details) from None
        notes.append(f"{code}: plan {plan.id} with {len(part)} grids{' published' if publish else ' (draft)'}")
    return notes


def _write_buildings(session, frame, dry_run, progress=None, **_):
    if dry_run:
        frame = frame.copy()
        problems = _resolve_community(session, frame, by="point", required=False)
        return frame, problems
    frame = frame.copy()
    courtyards = _courtyard_ids(session, frame)
    pts = shapely.point_on_surface(frame.geometry.values)
    rows = pd.DataFrame({
        "community_code": frame["community_code"].replace("", None),
        "address": frame["address"], "name": frame["name"],
        "households": frame["households"].astype("int64"),
        "floors": frame["floors"],
        "courtyard_id": [courtyards.get((c, y)) for c, y in zip(frame["community_code"], frame["courtyard"])],
        "geom": encode_many(frame.geometry.values, session.bind.dialect.name),
        "lon": shapely.get_x(pts), "lat": shapely.get_y(pts),
    })
    _bulk_insert(session, m.Building, rows, progress)
    return [f"{int(rows['households'].sum())} households in {len(rows)} buildings"]


def _write_party_members(session, frame, dry_run, progress=None, **_):
    if dry_run:
        frame = frame.copy()
        problems = []
        by_address = dict(session.execute(select(m.Building.address, m.Building.id)).all())
        ids = []
        for r in frame.to_dict("records"):
            if r["building_address"] and r["building_address"] not in by_address:
                problems.append(_problem(r["_row"], r["name"], "building_address", r["building_address"],
                                         f"no building has the address {r['building_address']!r}",
                                         "Import the buildings first, or correct the address."))
            ids.append(by_address.get(r["building_address"]))
        frame["building_id"] = ids
        return frame, problems
    _insert_frame(session, m.PartyMember, frame, ["name", "phone", "building_id", "in_service", "employer"], progress)
    return []


def _write_workers(session, frame, dry_run, **_):
    if dry_run:
        frame = frame.copy()
        problems = [] if frame.geometry.isna().all() else _resolve_community(session, frame, by="point", required=False)
        for r in frame.to_dict("records"):
            for code in filter(None, r["grids"].split(";")):
                if len(code) != 15 or not code.isdigit():
                    problems.append(_problem(r["_row"], r["name"], "grids", code, f"grid code {code!r} is not 15 digits",
                                             "List 15-digit grid codes separated by ';'."))
        return frame, problems
    for r in frame.itertuples(index=False):
        w = m.GridWorker(name=r.name, phone=r.phone, community_code=r.community_code or None,
                         geom=getattr(r, "geometry", None))
        session.add(w)
        session.flush()
        codes = sorted(set(filter(None, r.grids.split(";"))))
        if codes:
            session.execute(insert(m.grid_worker_grid), [{"worker_id": w.id, "grid_code": c} for c in codes])
    return []


def _write_volunteers(session, frame, dry_run, progress=None, **_):
    if dry_run:
        frame = frame.copy()
        return frame, _resolve_community(session, frame, by="point", required=False)
    _insert_frame(session, m.Volunteer, frame, ["name", "phone", "skills", "available", "community_code"], progress)
    return []


def _write_responders(session, frame, dry_run, progress=None, **_):
    if dry_run:
        return frame, []
    _insert_frame(session, m.Responder, frame, ["name", "kind", "phone", "skills", "available"], progress)
    return []


def _write_cameras(session, frame, dry_run, progress=None, **_):
    if dry_run:
        frame = frame.copy()
        return frame, _resolve_community(session, frame, by="point", required=False)
    courtyards = _courtyard_ids(session, frame)
    _insert_frame(session, m.Camera, frame, ["name", "channel", "community_code", "fov", "range_m"], progress,
                  courtyard_id=[courtyards.get((c, y)) for c, y in zip(frame["community_code"], frame["courtyard"])],
                  bearing=frame["bearing"] % 360.0)
    return []


def _write_roads(session, frame, dry_run, progress=None, **_):
    if dry_run:
        return frame, []
    _insert_frame(session, m.Road, frame, ["name", "kind"], progress)
    return []


def _write_department_grids(session, frame, dry_run, department=None, **_):
    if dry_run:
        frame = frame.copy()
        return frame, _resolve_community(session, frame, by="overlap")
    # A department's new file replaces its earlier grids in the communities the file covers: its
    # legacy layer is one snapshot, and a second import of it must not count every grid twice.
    communities = sorted(set(frame["community_code"]))
    replaced = session.execute(delete(m.DepartmentGrid).where(
        m.DepartmentGrid.department == department,
        m.DepartmentGrid.community_code.in_(communities))).rowcount
    # the ORM, not a bulk insert: a department draws tens of grids per community, not millions
    session.add_all([m.DepartmentGrid(department=department, community_code=r.community_code, code=r.code,
                                      name=r.name, geom=_multi(r.geometry)) for r in frame.itertuples(index=False)])
    session.flush()
    notes = [f"{department}: {n} grids in {c}" for c, n in frame.groupby("community_code").size().items()]
    if replaced:
        notes.append(f"replaced {replaced} earlier {department} grids")
    return notes


def _insert_frame(session, model, frame, columns, progress=None, **computed):
    """Bulk-insert ``frame``'s ``columns`` plus ``computed`` ones and the encoded geometry."""
    rows = frame[columns].copy()
    if "community_code" in rows:
        rows["community_code"] = rows["community_code"].replace("", None)
    for name, values in computed.items():
        rows[name] = list(values) if not isinstance(values, pd.Series) else values.to_numpy()
    rows["geom"] = encode_many(frame.geometry.values, session.bind.dialect.name)
    _bulk_insert(session, model, rows.reset_index(drop=True), progress)


_EXPORTS = {
    "communities": (m.Community, ["code", "name", "street_code", "service_centre", "service_address", "service_phone"]),
    "grids": (m.Grid, ["code", "name", "plan_id"]),
    "buildings": (m.Building, ["id", "community_code", "address", "name", "households", "floors"]),
    "party-members": (m.PartyMember, ["id", "name", "phone", "in_service", "employer"]),
    "workers": (m.GridWorker, ["id", "name", "phone", "community_code"]),
    "volunteers": (m.Volunteer, ["id", "name", "phone", "skills", "available", "community_code"]),
    "responders": (m.Responder, ["id", "name", "kind", "phone", "skills", "available"]),
    "cameras": (m.Camera, ["id", "name", "channel", "bearing", "fov", "range_m", "community_code"]),
    "roads": (m.Road, ["id", "name", "kind"]),
    "department-grids": (m.DepartmentGrid, ["id", "department", "community_code", "code", "name"]),
}


def _export_value(v):
    return v


# --------------------------------------------------------------------------------------------

def _bulk_insert(session, model, rows, progress=None, chunk=50_000):
    """Insert a DataFrame whose columns are ``model``'s, geometry already encoded.

    Below the ORM on purpose: at a million rows its per-row bookkeeping cost five
    times the insert itself. PostgreSQL gets COPY; SQLite one executemany per chunk.
    """
    table = model.__table__
    cols = list(rows.columns)
    rows = rows.copy()
    for c in cols:
        # ids with gaps arrive as floats (NaN for None); PostgreSQL's COPY refuses "1.0" for an integer
        if isinstance(table.c[c].type, Integer) and rows[c].dtype.kind == "f":
            rows[c] = rows[c].astype("Int64")
    rows = rows.astype(object).where(rows.notna(), None)
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        names = ", ".join(f'"{c}"' for c in cols)
        with conn.connection.driver_connection.cursor() as cur:
            with cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
                for start in range(0, len(rows), chunk):
                    for row in rows.iloc[start:start + chunk].itertuples(index=False, name=None):
                        copy.write_row(row)
                    if progress:
                        progress(min(chunk, len(rows) - start))
        return
    sql = f'INSERT INTO "{table.name}" ({", ".join(cols)}) VALUES ({", ".join("?" * len(cols))})'
    for start in range(0, len(rows), chunk):
        conn.exec_driver_sql(sql, list(rows.iloc[start:start + chunk].itertuples(index=False, name=None)))
        if progress:
            progress(min(chunk, len(rows) - start))


def _courtyard_ids(session, frame):
    wanted = {(c or None, y) for c, y in zip(frame["community_code"], frame["courtyard"]) if y}
    have = {(c.community_code, c.name): c.id for c in session.scalars(select(m.Courtyard))}
    for key in sorted(wanted - set(have), key=str):
        cy = m.Courtyard(community_code=key[0], name=key[1])
        session.add(cy)
        session.flush()
        have[key] = cy.id
    return {(c or "", y): have.get((c or None, y)) for c, y in wanted}


def _resolve_community(session, frame, *, by, required=True):
    """Fill empty community_code from the community containing (point) or most overlapping (polygon) each feature."""
    problems = []
    known = dict(session.execute(select(m.Community.code, m.Community.geom)).all())
    given = frame["community_code"].fillna("")
    rows = frame["_row"].to_numpy()
    labels = _labels(frame)
    for i in np.flatnonzero(((given != "") & ~given.isin(list(known))).to_numpy()):
        problems.append(_problem(rows[i], labels[i], "community_code", given.iloc[i],
                                 f"community {given.iloc[i]} is not in the store",
                                 "Import the communities first, or correct the code."))
    todo = np.flatnonzero((given == "").to_numpy())
    if len(todo) and known:
        codes = list(known)
        tree = shapely.STRtree(list(known.values()))
        geoms = frame.geometry.values[todo]
        found = np.full(len(todo), "", dtype=object)
        if by == "point":
            probe = shapely.point_on_surface(geoms)
            g_idx, t_idx = tree.query(probe, predicate="intersects")
            hits = pd.DataFrame({"g": g_idx, "code": np.asarray(codes, dtype=object)[t_idx]})
            # on a shared boundary the lowest community code wins, the same rule as for grids
            first = hits.sort_values(["g", "code"]).drop_duplicates("g")
            found[first["g"].to_numpy()] = first["code"].to_numpy()
        else:
            g_idx, t_idx = tree.query(geoms, predicate="intersects")
            areas = shapely.area(shapely.intersection(geoms[g_idx], np.array(list(known.values()))[t_idx]))
            best = {}
            for gi, ti, a in zip(g_idx, t_idx, areas):
                if a > best.get(gi, (0, None))[0]:
                    best[gi] = (a, ti)
            for gi, (_, ti) in best.items():
                found[gi] = codes[ti]
        frame.loc[frame.index[todo], "community_code"] = found
    if required:
        for i in np.flatnonzero((frame["community_code"].fillna("") == "").to_numpy()):
            problems.append(_problem(rows[i], labels[i], "community_code", "",
                                     "the feature lies in no imported community",
                                     "Import the community boundary first, or give community_code."))
    return problems


def _multi(g):
    return g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g])


def _pad12(code):
    code = str(code)
    return code + "0" * (12 - len(code)) if len(code) < 12 else code
