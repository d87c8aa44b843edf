"""Writers of an import: each kind's checked, converted frame into its tables, inside the caller's transaction.

Each ``write_<kind>(session, frame, progress=None, department=None, publish=False, limits=None)``
returns notes for the import's summary. The frame reaching a writer is valid WGS84 with our
field names and its references resolved (:mod:`.checks`).
"""
from __future__ import annotations

import datetime as dt

import pandas as pd
import shapely
from sqlalchemy import delete, insert, select

from .. import plans
from ..plans.names import import_name
from ..errors import Conflict, N_, Said
from ..geo.names import english
from ..geo.roads import access_codes, oneway_value, road_layer
from ..store import models as m
from ..store.types import encode_many
from .upsert import Batch, write_rows


def write_communities(session, frame, **_):
    districts = {d.code: d for d in session.scalars(select(m.District))}
    streets = {s.code: s for s in session.scalars(select(m.Street))}
    existing = {c.code: c for c in session.scalars(select(m.Community))}
    for r in frame.itertuples(index=False):
        dcode = _pad12((r.district_code or r.code[:6]))
        scode = _pad12((r.street_code or r.code[:9]))
        if dcode not in districts:
            districts[dcode] = m.District(code=dcode, name=r.district_name or dcode)
            session.add(districts[dcode])
        old = districts[dcode].name
        if r.district_name:
            districts[dcode].name = r.district_name
        _name_en(districts[dcode], r.district_name_en, old)
        if scode not in streets:
            streets[scode] = m.Street(code=scode, district_code=dcode, name=r.street_name or scode)
            session.add(streets[scode])
        old = streets[scode].name
        if r.street_name:
            streets[scode].name = r.street_name
        _name_en(streets[scode], r.street_name_en, old)
        geom = _multi(r.geometry)
        c = existing.get(r.code)
        if c is None:
            c = existing[r.code] = m.Community(code=r.code, name=r.name)
            session.add(c)
        old = c.name
        c.street_code, c.name, c.geom = scode, r.name, geom
        _name_en(c, r.name_en, old)
        c.service_centre, c.service_address, c.service_phone = r.service_centre, r.service_address, r.service_phone
    session.flush()
    return [f"{len(frame)} communities in {len({_pad12(c[:9]) for c in frame['code']})} streets"]


def _name_en(place, official, old_name):
    """An official English name from the file wins; a place without one gets the pinyin form of its name,
    anew when it is renamed (an official name stays until a file gives another)."""
    if official:
        place.name_en = official[:128]
    elif not place.name_en or (place.name != old_name and place.name_en == english(old_name or "")):
        place.name_en = english(place.name)[:128]


def write_grids(session, frame, publish=False, limits=None, **_):
    notes = []
    for code, part in frame.groupby("community_code", sort=True):
        plan = plans.create_plan(session, code, part, name=import_name(dt.date.today()))
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
        notes.append(Said(N_("%(community)s: plan %(plan)s with %(count)s grids published") if publish else
                          N_("%(community)s: plan %(plan)s with %(count)s grids (draft)"),
                          community=code, plan=plan.id, count=len(part)))
    return notes


def write_buildings(session, frame, progress=None, batch=None, **_):
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
    write_rows(session, m.Building, rows, batch, progress)
    return [f"{int(rows['households'].sum())} households in {len(rows)} buildings"]


def write_party_members(session, frame, progress=None, batch=None, **_):
    _insert_frame(session, m.PartyMember, frame, ["name", "phone", "building_id", "in_service", "employer"], progress,
                  batch)
    return []


def write_workers(session, frame, progress=None, batch=None, **_):
    batch = batch or Batch(id=None, mode="append", source=None)
    grids = [";".join(sorted(set(filter(None, g.split(";"))))) for g in frame["grids"]]
    geoms = frame.geometry.values if frame.geometry.notna().any() else [None] * len(frame)
    rows = pd.DataFrame({
        "name": frame["name"].to_numpy(), "phone": frame["phone"].to_numpy(),
        "community_code": frame["community_code"].replace("", None).to_numpy(),
        "geom": [None if g is None else encode_many([g], session.bind.dialect.name)[0] for g in geoms],
        # the grids served are part of what a re-import compares; written to the link table below
        "_grids": grids,
    })
    write_rows(session, m.GridWorker, rows, batch, progress, want_ids=True, extra=("_grids",))
    keys = range(len(rows)) if batch.mode == "append" or batch.keys is None else batch.keys
    links = {batch.ids[k]: g for k, g in zip(keys, grids) if k in batch.ids}
    if links:
        session.execute(delete(m.grid_worker_grid).where(m.grid_worker_grid.c.worker_id.in_(list(links))))
        pairs = [{"worker_id": wid, "grid_code": c} for wid, g in links.items() for c in filter(None, g.split(";"))]
        if pairs:
            session.execute(insert(m.grid_worker_grid), pairs)
    return []


def write_volunteers(session, frame, progress=None, batch=None, **_):
    _insert_frame(session, m.Volunteer, frame, ["name", "phone", "skills", "available", "community_code"], progress,
                  batch)
    return []


def write_responders(session, frame, progress=None, batch=None, **_):
    _insert_frame(session, m.Responder, frame, ["name", "kind", "phone", "skills", "available"], progress, batch)
    return []


def write_cameras(session, frame, progress=None, batch=None, **_):
    courtyards = _courtyard_ids(session, frame)
    _insert_frame(session, m.Camera, frame, ["name", "channel", "community_code", "fov", "range_m"], progress, batch,
                  courtyard_id=[courtyards.get((c, y)) for c, y in zip(frame["community_code"], frame["courtyard"])],
                  bearing=frame["bearing"] % 360.0)
    return []


def write_roads(session, frame, progress=None, batch=None, **_):
    _insert_frame(session, m.Road, frame, ["name", "kind"], progress, batch,
                  oneway=[oneway_value(o, j) for o, j in zip(frame["oneway"], frame["junction"])],
                  layer=[road_layer(*v) for v in zip(frame["layer"], frame["tunnel"], frame["bridge"])],
                  access=access_codes(frame))
    return []


def write_department_grids(session, frame, department=None, **_):
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
    notes = [Said(N_("%(department)s: %(count)s grids in %(community)s"), department=department, count=n, community=c)
             for c, n in frame.groupby("community_code").size().items()]
    if replaced:
        notes.append(Said(N_("replaced %(count)s earlier %(department)s grids"), count=replaced, department=department))
    return notes


def _insert_frame(session, model, frame, columns, progress=None, batch=None, **computed):
    """Write ``frame``'s ``columns`` plus ``computed`` ones and the encoded geometry as ``batch`` says."""
    rows = frame[columns].copy()
    if "community_code" in rows:
        rows["community_code"] = rows["community_code"].replace("", None)
    for name, values in computed.items():
        rows[name] = list(values) if not isinstance(values, pd.Series) else values.to_numpy()
    rows["geom"] = encode_many(frame.geometry.values, session.bind.dialect.name)
    write_rows(session, model, rows.reset_index(drop=True), batch, progress)


def _courtyard_ids(session, frame):
    wanted = {(c or None, y) for c, y in zip(frame["community_code"], frame["courtyard"]) if y}
    have = {(c.community_code, c.name): c.id for c in session.scalars(select(m.Courtyard))}
    for key in sorted(wanted - set(have), key=str):
        cy = m.Courtyard(community_code=key[0], name=key[1])
        session.add(cy)
        session.flush()
        have[key] = cy.id
    return {(c or "", y): have.get((c or None, y)) for c, y in wanted}


def _multi(g):
    return g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g])


def _pad12(code):
    code = str(code)
    return code + "0" * (12 - len(code)) if len(code) < 12 else code
