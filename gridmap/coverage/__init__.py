"""Camera coverage: what cameras see, how much of a place's public space, where new cameras should go.

Everything measures in metres in a local frame (:func:`gridmap.geo.crs.metric_for`); a view is
the camera's sector minus what building footprints hide (:mod:`gridmap.geo.viewshed`).

- :mod:`.stats` — coverage of a place by given cameras: percentage, blind spots, overlap
- :mod:`.views` — each camera's view, stored when cameras or buildings change
- :mod:`.place` — a courtyard or community from the store and its coverage report
- :mod:`.placement` — candidate sites and the fewest new cameras reaching a target
- :mod:`.sites` — placement for a stored place, written as a file the importer takes
"""
from ..geo.viewshed import APEX_OFFSET_M, ARC_STEP_DEG, WALL_SNAP_M, Obstacles, view_polygon, view_polygons
from .place import Place, load_place, place_choices, report_for
from .placement import DEFAULT_BEARINGS, candidate_matrix, candidate_sites, place_cameras
from .sites import SITE_FORMATS, SITE_KINDS, check_sites_path, placement_for, write_sites
from .stats import coverage
from .views import camera_views_of, refresh_views, stored_views

__all__ = [
    "APEX_OFFSET_M", "ARC_STEP_DEG", "DEFAULT_BEARINGS", "Obstacles", "Place", "SITE_FORMATS", "SITE_KINDS",
    "WALL_SNAP_M", "camera_views_of", "candidate_matrix", "candidate_sites", "check_sites_path", "coverage",
    "load_place", "place_cameras", "place_choices", "placement_for", "refresh_views", "report_for", "stored_views",
    "view_polygon", "view_polygons", "write_sites",
]
