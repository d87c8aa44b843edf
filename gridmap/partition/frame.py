"""Coordinates: an isotropic ≈-metre work frame for the algorithm, a local metric CRS for the report."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pyproj
import shapely

from ..geo.crs import metric_for


class _Frame:
    """Work coordinates (≈ metres, isotropic) for the algorithm, and a local metric CRS for the report."""

    def __init__(self, crs, boundary):
        self.crs = crs
        c = boundary.centroid
        self.geographic = bool(crs is not None and crs.is_geographic)
        if self.geographic:
            # An affine stretch is isotropic to 1e-4 over a community and inverts exactly enough that
            # shared cell vertices stay shared after the way back.
            self.x0, self.y0 = c.x, c.y
            self.sx = 111_320.0 * math.cos(math.radians(c.y))
            self.sy = 110_574.0
        else:
            self.x0 = self.y0 = 0.0
            unit = 1.0
            if crs is not None:
                try:
                    unit = float(crs.axis_info[0].unit_conversion_factor)
                except (IndexError, AttributeError):
                    unit = 1.0
            self.sx = self.sy = unit
        self._to_metric = None
        if crs is not None:
            lon, lat = (c.x, c.y) if self.geographic else _transformer(crs, _WGS84).transform(c.x, c.y)
            self._to_metric = _transformer(crs, metric_for((float(lon), float(lat))).crs)

    def xy(self, geoms):
        """Work coordinates of points as an (n, 2) array."""
        xy = shapely.get_coordinates(np.asarray(geoms, dtype=object))
        return np.column_stack(((xy[:, 0] - self.x0) * self.sx, (xy[:, 1] - self.y0) * self.sy))

    def to_work(self, geoms):
        if not self.geographic and self.sx == 1.0:
            return geoms
        return shapely.transform(geoms, lambda c: np.column_stack(((c[:, 0] - self.x0) * self.sx,
                                                                   (c[:, 1] - self.y0) * self.sy)))

    def from_work(self, geoms):
        if not self.geographic and self.sx == 1.0:
            return geoms
        return shapely.transform(geoms, lambda c: np.column_stack((c[:, 0] / self.sx + self.x0,
                                                                   c[:, 1] / self.sy + self.y0)))

    def metric(self, geoms):
        """Geometries in the local metric CRS (metres), for areas and perimeters in the report."""
        geoms = np.asarray(geoms, dtype=object)
        if self._to_metric is None:
            return geoms
        return shapely.transform(geoms, lambda c: np.column_stack(self._to_metric.transform(c[:, 0], c[:, 1])))


_WGS84 = pyproj.CRS.from_epsg(4326)


@lru_cache(maxsize=64)
def _transformer(src, dst):
    # Building a transformer queries the PROJ database (tens of ms); communities repeat CRSs.
    return pyproj.Transformer.from_crs(src, dst, always_xy=True)
