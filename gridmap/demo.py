"""Load the Dalian demo made by geodata/dalian.py into the store, through the same border as any import."""
from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pandas as pd
from sqlalchemy import delete, insert, select

from . import accounts, importer, settings
from .errors import Conflict, InvalidInput
from .geo.crs import parse_crs
from .geo.io import RawLayer
from .store import models as m

GENERATOR = Path(__file__).resolve().parent.parent / "geodata" / "dalian.py"
DEMO_PASSWORD = "gridmap-demo"
DEMO_USERS = [("admin", "admin", "管理员"), ("planner", "planner", "规划员"),
              ("dispatcher", "dispatcher", "调度员"), ("worker", "grid_worker", "网格员")]

# Kinds in dependency order: buildings need communities, party members need buildings.
_ORDER = ["communities", "grids", "roads", "buildings", "party-members", "workers", "volunteers",
          "responders", "cameras"]
_FRAME = {"party-members": "party_members"}


def generate(seed=2026):
    """The generator's frames (dict of name → DataFrame/GeoDataFrame)."""
    if not GENERATOR.exists():
        raise InvalidInput(f"The demo generator {GENERATOR} is missing.",
                           fix="Run gridmap from a checkout of the project (make run installs it in place).")
    spec = importlib.util.spec_from_file_location("gridmap_geodata_dalian", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module.build(seed=seed)


def build(store, *, seed=2026, force=False, frames=None, limits=None, max_area_change=None):
    """Create the schema and fill it with the demo in one transaction. Returns report lines.

    ``limits`` (what the demo's plans are validated against when published) and
    ``max_area_change`` (the importer's repair limit) come from the app's settings; the settings'
    defaults when not given.
    """
    max_area_change = settings.default("IMPORT_MAX_AREA_CHANGE") if max_area_change is None else max_area_change
    t0 = time.perf_counter()
    store.upgrade()
    frames = frames if frames is not None else generate(seed)
    report = []
    with store.transaction() as session:
        if session.scalar(select(m.Community.code).limit(1)) is not None:
            if not force:
                raise Conflict("The database already holds data.", fix="Pass --force to replace it with the demo.")
            _clear(session)
        wgs84 = parse_crs(4326)
        for kind in _ORDER:
            frame = frames[_FRAME.get(kind, kind)]
            raw = RawLayer(frame=frame.copy(), crs=wgs84, source=f"demo:{kind}")
            summary = importer.import_layer(session, kind, raw, publish=(kind == "grids"), limits=limits,
                                            max_area_change=max_area_change)
            report.append(f"{kind}: {summary.imported}" + (f" ({'; '.join(summary.notes)})" if summary.notes else ""))
            if kind == "communities":
                _courtyards(session, frames["courtyards"])
        _households(session, frames["households"], frames["residents"])
        _party(session, frames["party_orgs"], frames["party_members"])
        every = session.scalars(select(m.Community.code).order_by(m.Community.code)).all()
        for username, role, name in DEMO_USERS:
            worker_id = session.scalar(select(m.GridWorker.id).order_by(m.GridWorker.id)) if role == "grid_worker" else None
            # the demo's dispatcher is the district's desk: it covers every demo community
            accounts.create_user(session, username, DEMO_PASSWORD, role, display_name=name, worker_id=worker_id,
                                 communities=every if role == "dispatcher" else ())
    report.append(f"households: {len(frames['households'])}, residents: {len(frames['residents'])}, "
                  f"party organisations: {len(frames['party_orgs'])}")
    report.append(f"demo users {', '.join(u for u, _, _ in DEMO_USERS)} with password {DEMO_PASSWORD!r}")
    report.append(f"built in {time.perf_counter() - t0:.1f} s")
    return report


def _clear(session):
    session.execute(delete(m.user_community))  # before the users and communities it names
    for model in [m.Incident, m.User, m.Resident, m.Household, m.PartyMember, m.PartyOrganization,
                  m.CameraView, m.Camera, m.Responder, m.Volunteer, m.GridWorker, m.Road, m.Building, m.Courtyard,
                  m.Grid, m.GridPlan, m.Community, m.Street, m.District, m.Meta]:
        session.execute(delete(model))
    session.execute(delete(m.grid_worker_grid))


def _courtyards(session, courtyards):
    session.execute(insert(m.Courtyard), [{"community_code": r.community_code, "name": r.name, "geom": r.geometry}
                                          for r in courtyards.itertuples(index=False)])


def _households(session, households, residents):
    ids = dict(session.execute(select(m.Building.address, m.Building.id)).all())
    hh = pd.DataFrame({"building_id": households["building_address"].map(ids), "unit": households["unit"],
                       "size": households["size"].astype(int)})
    if hh["building_id"].isna().any():
        bad = households.loc[hh["building_id"].isna(), "building_address"].iloc[0]
        raise InvalidInput(f"Demo household refers to unknown building {bad!r}.", fix="Fix geodata/dalian.py.")
    session.execute(insert(m.Household), hh.to_dict("records"))
    keys = {(b, u): i for i, b, u in session.execute(
        select(m.Household.id, m.Building.address, m.Household.unit).join(m.Building)).all()}
    res = [{"household_id": keys[(r.building_address, r.unit)], "name": r.name, "phone": r.phone,
            "vulnerable": bool(r.vulnerable)} for r in residents.itertuples(index=False)]
    if res:
        session.execute(insert(m.Resident), res)


def _party(session, orgs, members):
    buildings = dict(session.execute(select(m.Building.address, m.Building.id)).all())
    ids = {}
    for r in orgs.itertuples(index=False):  # parents come before children in the generator's order
        org = m.PartyOrganization(kind=r.kind, name=r.name, community_code=r.community_code,
                                  grid_code=r.grid_code or None, parent_id=ids.get(r.parent_key),
                                  building_id=buildings.get(r.building_address) if r.building_address else None)
        session.add(org)
        session.flush()
        ids[r.key] = org.id
    # party members were imported in frame order; attach each to its branch
    member_ids = session.scalars(select(m.PartyMember.id).order_by(m.PartyMember.id)).all()
    for mid, key in zip(member_ids, members["org_key"]):
        if key:
            session.get(m.PartyMember, mid).organization_id = ids[key]
