"""Export every record of a kind to a file, the fields the importer reads back."""
from __future__ import annotations

import geopandas as gpd
import pandas as pd
from sqlalchemy import select

from ..geo import io as geo_io
from ..store import models as m
from .layer import _kind


def export_file(store, kind, path):
    """Write every record of ``kind`` to ``path`` (format by extension). Returns the number written."""
    frame = export_frame(store, kind)
    geo_io.write_layer(frame, path)
    return len(frame)


def export_frame(store, kind):
    """Every record of ``kind`` as a WGS84 GeoDataFrame of the importer's fields (workers with their grids)."""
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


_EXPORTS = {
    "communities": (m.Community, ["code", "name", "street_code", "service_centre", "service_address", "service_phone"]),
    "grids": (m.Grid, ["code", "name", "plan_id"]),
    "buildings": (m.Building, ["id", "community_code", "address", "name", "households", "floors"]),
    "party-members": (m.PartyMember, ["id", "name", "phone", "in_service", "employer"]),
    "workers": (m.GridWorker, ["id", "name", "phone", "community_code"]),
    "volunteers": (m.Volunteer, ["id", "name", "phone", "skills", "available", "community_code"]),
    "responders": (m.Responder, ["id", "name", "kind", "phone", "skills", "available"]),
    "cameras": (m.Camera, ["id", "name", "channel", "bearing", "fov", "range_m", "community_code"]),
    "roads": (m.Road, ["id", "name", "kind", "oneway", "layer", "access"]),
    "department-grids": (m.DepartmentGrid, ["id", "department", "community_code", "code", "name"]),
}


def _export_value(v):
    return v
