"""A courtyard or community loaded with its footprints, cameras and stored views; its coverage report and choices."""
from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
from shapely.geometry import mapping
from sqlalchemy import func, or_, select

from .. import settings
from ..errors import InvalidInput, N_, NotFound
from ..geo.crs import metric_for
from ..geo.viewshed import view_polygons
from ..store import models as m
from .stats import coverage
from .views import stored_views

# Buildings are found by their representative point; a footprint reaching into the area from
# farther than this (about 1 km) cannot exist in a residential courtyard or community.
_MARGIN_DEG = 0.01


@dataclass
class Place:
    """A courtyard or community loaded from the store for coverage work, in a local metric CRS."""
    kind: str  # "courtyard" or "community"
    name: str  # label shown to people
    metric: object  # the local metric frame (gridmap.geo.crs.Metric) of everything below
    area: object  # shapely geometry, metres
    footprints: gpd.GeoSeries  # building footprints near the area, metres
    cameras: gpd.GeoDataFrame  # id, name, bearing, fov, range_m; points in metres
    records: list  # the Camera rows, in ``cameras`` order
    stored_views: list = None  # their stored WGS84 view polygons (None where stale), same order

    @property
    def crs(self):
        return self.metric.crs


def load_place(session, name):
    """Load a courtyard (by name) or a community (by code or name) with its buildings and cameras.

    Raises
    ------
    NotFound
        When no courtyard or community has that name or code.
    """
    yard = session.execute(select(m.Courtyard).where(m.Courtyard.name == name).order_by(m.Courtyard.id)).scalars().first()
    if yard is not None:
        if yard.geom is None or yard.geom.is_empty:
            raise InvalidInput(N_('Courtyard "%(name)s" has no outline, so its coverage cannot be measured.'),
                               fix=N_("Import the courtyard's boundary, or ask for its community's coverage (its 12-digit "
                                      "code)."),
                               params={"name": yard.name})
        kind, label, area_ll = "courtyard", yard.name, yard.geom
        cam_filter = m.Camera.courtyard_id == yard.id
    else:
        comm = session.execute(select(m.Community).where(or_(m.Community.code == name, m.Community.name == name))
                               .order_by(m.Community.code)).scalars().first()
        if comm is None:
            raise NotFound(N_('No courtyard or community is called "%(name)s".'),
                           fix=N_("Give a courtyard name, a 12-digit community code or a community name (`gridmap export "
                                  "communities x.csv` lists them)."),
                           params={"name": name})
        kind, label, area_ll = "community", f"{comm.name} ({comm.code})", comm.geom
        cam_filter = m.Camera.community_code == comm.code
    cams = session.execute(select(m.Camera).where(cam_filter).order_by(m.Camera.id)).scalars().all()
    x0, y0, x1, y1 = area_ll.bounds
    rows = session.execute(select(m.Building.geom).where(
        m.Building.lon.between(x0 - _MARGIN_DEG, x1 + _MARGIN_DEG),
        m.Building.lat.between(y0 - _MARGIN_DEG, y1 + _MARGIN_DEG))).scalars().all()
    metric = metric_for(area_ll.centroid)
    crs = metric.crs
    area = metric.project([area_ll])[0]
    footprints = gpd.GeoSeries(metric.project(list(rows)), crs=crs) if rows else gpd.GeoSeries([], crs=crs)
    footprints = footprints[footprints.intersects(area.buffer(200))] if len(footprints) else footprints
    cameras = gpd.GeoDataFrame({"id": [c.id for c in cams], "name": [c.name for c in cams],
                                "bearing": [c.bearing for c in cams], "fov": [c.fov for c in cams],
                                "range_m": [c.range_m for c in cams]},
                               geometry=[c.geom for c in cams], crs=4326)
    cameras = metric.frame(cameras)
    stored = stored_views(session, [c.id for c in cams])
    return Place(kind, label, metric, area, footprints, cameras, list(cams), [stored.get(c.id) for c in cams])


def report_for(session, name, *, min_blind_m2=None, geometries=False):
    """Coverage report of a courtyard (by name) or a community (by code or name) from the store.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
    name : str
        Courtyard name, community code or community name.
    min_blind_m2 : float, optional
        Smallest blind spot listed; default the ``BLIND_SPOT_MIN_M2`` setting.
    geometries : bool, default False
        Also return the shapes, in WGS84 as GeoJSON geometry dicts, for maps and JSON answers.

    Returns
    -------
    dict
        ``kind``, ``name``, ``cameras``, ``public_m2``, ``percent``, ``blind_count``, ``blind_m2``
        (the spots of at least ``min_blind_m2``), ``blind_total_m2`` (all blind space: the 0-camera
        area of ``overlap`` exactly), ``min_blind_m2``, ``largest_blind`` ``(lon, lat, m2)`` or None, ``overlap`` ``[(count, m2)]``.
        With ``geometries``: ``views``, one dict per camera in camera-id order (``id``, ``name``,
        ``bearing``, ``fov``, ``range_m``, ``lon``, ``lat`` of the camera, ``view_m2`` public space
        it sees, ``only_m2`` seen by it alone, ``geometry`` its occlusion-aware view or None when
        it sees nothing); ``blind_spots``, largest first (``geometry``, ``m2``, ``lon``, ``lat`` of
        its centroid, as in ``largest_blind``); ``area``, the courtyard's or community's outline.

    Raises
    ------
    NotFound
        When no courtyard or community has that name or code.
    """
    place = load_place(session, name)
    views = _place_views(place)
    r = coverage(place.cameras, place.area, place.footprints, min_blind_m2=min_blind_m2, views=views)
    largest = None
    if r["blind_spots"]:
        spot = r["blind_spots"][0]
        c = place.metric.unproject([spot.centroid])[0]
        largest = (c.x, c.y, spot.area)
    out = {"kind": place.kind, "name": place.name, "cameras": len(place.cameras), "public_m2": r["public_m2"],
           "percent": r["percent"], "blind_count": len(r["blind_spots"]), "blind_m2": r["blind_m2"],
           "blind_total_m2": r["blind_total_m2"],
           "min_blind_m2": settings.default("BLIND_SPOT_MIN_M2") if min_blind_m2 is None else float(min_blind_m2),
           "largest_blind": largest, "overlap": [(c, a) for c, a, _ in r["overlap"]]}
    if geometries:
        out.update(_report_geometries(place, views, r))
    return out


def _place_views(place):
    """The metric view polygons of a place's cameras, in ``place.cameras`` order.

    The one place a report gets its views from, so that reading stored views instead of
    computing them changes nothing else.
    """
    stored = place.stored_views or []
    if len(stored) == len(place.cameras) and all(g is not None for g in stored):
        # what dispatch answers with: the views the last import stored
        return gpd.GeoSeries(place.metric.project(stored), crs=place.crs, index=place.cameras.index)
    return view_polygons(place.cameras, place.footprints)


def _report_geometries(place, views, r):
    """Views, blind spots and the outline in WGS84 GeoJSON, for :func:`report_for`."""
    def wgs84(geoms):
        return place.metric.unproject(list(geoms))

    spots = r["blind_spots"]
    ll_views = wgs84(views.values) if len(views) else []
    ll_spots = wgs84(spots) if spots else []
    centres = wgs84([p.centroid for p in spots]) if spots else []
    cams = []
    for i, rec in enumerate(place.records):
        g = ll_views[i]
        cams.append({"id": rec.id, "name": rec.name, "bearing": float(rec.bearing), "fov": float(rec.fov),
                     "range_m": float(rec.range_m), "lon": float(rec.geom.x), "lat": float(rec.geom.y),
                     "view_m2": r["per_camera"][i]["view_m2"], "only_m2": r["per_camera"][i]["only_m2"],
                     "geometry": None if g is None or g.is_empty else mapping(g)})
    blind = [{"geometry": mapping(g), "m2": float(p.area), "lon": float(c.x), "lat": float(c.y)}
             for g, p, c in zip(ll_spots, spots, centres)]
    return {"views": cams, "blind_spots": blind, "area": mapping(wgs84([place.area])[0])}


def place_choices(session):
    """Courtyards and communities a coverage report can be asked for, with their camera counts.

    Returns
    -------
    dict
        ``courtyards``: ``name``, ``community`` (its community's name), ``cameras``, by community
        code then name, each name once (:func:`load_place` takes the first courtyard of a name);
        ``communities``: ``code``, ``name``, ``cameras``, by code.
    """
    by_yard = dict(session.execute(select(m.Camera.courtyard_id, func.count()).group_by(m.Camera.courtyard_id)).all())
    by_comm = dict(session.execute(select(m.Camera.community_code, func.count())
                                   .group_by(m.Camera.community_code)).all())
    comms = session.execute(select(m.Community.code, m.Community.name).order_by(m.Community.code)).all()
    names = dict(comms)
    # a courtyard the importer made from a building's or camera's `courtyard` field has no outline
    # until one is imported: there is no area to report on, so it is not offered
    yards = session.execute(select(m.Courtyard.id, m.Courtyard.name, m.Courtyard.community_code)
                            .where(m.Courtyard.geom.is_not(None)).order_by(m.Courtyard.id)).all()
    first = {}
    for yid, yname, code in yards:
        first.setdefault(yname, (yid, code or ""))
    courtyards = [{"name": n, "community": names.get(code, ""), "cameras": by_yard.get(yid, 0)}
                  for n, (yid, code) in sorted(first.items(), key=lambda kv: (kv[1][1], kv[0]))]
    return {"courtyards": courtyards,
            "communities": [{"code": c, "name": n, "cameras": by_comm.get(c, 0)} for c, n in comms]}
