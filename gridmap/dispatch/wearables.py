"""SOS from registered wearables: a priority incident for the wearer, with people proposed; device registry."""
from __future__ import annotations

from sqlalchemy import select

from .. import catalog
from ..errors import Forbidden, InvalidInput, N_, NotFound
from ..store import models as m
from .incidents import iso, report
from .responders import propose

DEVICE_ID_MAX = 64


def sos(session, snapshot, *, device_id, lon, lat, time, actor, now=None, lists=None):
    """A registered wearable's alarm → a priority incident for its resident, with people proposed.

    Raises NotFound for an unregistered device and Forbidden for a deactivated one; nothing is
    written then. Returns ``(incident, proposal)``.
    """
    device = session.get(m.SosDevice, device_id)
    if device is None:
        raise NotFound(N_("Device %(device_id)s is not registered."),
                       fix=N_("Register the wearable for its resident before it is used."), details={"device_id": device_id},
                       params={"device_id": repr(device_id)})
    if not device.active:
        raise Forbidden(N_("Device %(device_id)s is deactivated."),
                        fix=N_("Reactivate it or register its replacement."),
                        details={"device_id": device_id},
                        params={"device_id": repr(device_id)})
    resident = session.get(m.Resident, device.resident_id)
    address = session.scalar(select(m.Building.address).join(m.Household, m.Household.building_id == m.Building.id)
                             .where(m.Household.id == resident.household_id)) or ""
    inc = report(session, snapshot, category=catalog.SOS_CATEGORY, lon=lon, lat=lat, actor=actor, now=now,
                 source="sos", lists=lists, priority=True, reporter_name=resident.name,
                 reporter_phone=resident.phone, resident_id=resident.id, address=address,
                 description=f"SOS from wearable {device_id} at {iso(time)}")
    # the gateway gets names and masked phones: it raises alarms, it does not need contact data;
    # dispatchers see the phones whole on GET /api/v1/incidents/<id>/responders
    return inc, propose(snapshot, inc)


def register_device(session, device_id, resident_id, *, active=True):
    """Register (or re-point, or deactivate with ``active=False``) a wearable for a resident."""
    device_id = (device_id or "").strip()
    if not device_id or len(device_id) > DEVICE_ID_MAX:
        raise InvalidInput(N_("device_id=%(device_id)s is not a device id of 1–%(DEVICE_ID_MAX)s characters."),
                           fix=N_("Use the id printed on the wearable, e.g. W-0001."),
                           params={"device_id": repr(device_id), "DEVICE_ID_MAX": DEVICE_ID_MAX})
    if session.get(m.Resident, int(resident_id)) is None:
        raise NotFound(N_("Resident %(resident_id)s does not exist."),
                       fix=N_("Register the device for a known resident."),
                       details={"resident_id": resident_id},
                       params={"resident_id": resident_id})
    device = session.get(m.SosDevice, device_id) or m.SosDevice(device_id=device_id)
    device.resident_id, device.active = int(resident_id), active
    session.add(device)
    session.flush()
    return device


def devices(session):
    """Every registered wearable with its resident's id and whether it is active, by device id."""
    rows = session.scalars(select(m.SosDevice).order_by(m.SosDevice.device_id)).all()
    return [{"device_id": d.device_id, "resident_id": d.resident_id, "active": d.active,
             "registered_at": iso(d.registered_at)} for d in rows]
