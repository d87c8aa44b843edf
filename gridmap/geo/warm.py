"""Compile every numba kernel ahead of the first request: `gridmap warm`, run by `make install` and `gridmap demo`.

The kernels are cached on disk per machine (``cache=True``, :mod:`gridmap.geo.jit`), but the first
process to use one compiles it: ~8 s for the point index alone, which a user met as a blank first
map after a fresh install. Warming runs each kernel once on a tiny input through the same code paths
(and so the same argument types) as real requests, so the cache holds exactly what they will load.
"""
import time

import geopandas as gpd
import numpy as np
import shapely

from .pointindex import PolygonIndex
from .roads import RoadGraph


def warm():
    """Compile (or load from the cache) the point index and road search kernels; returns the seconds taken."""
    t0 = time.perf_counter()
    squares = [shapely.box(121.60 + i * 0.01, 38.90, 121.61 + i * 0.01, 38.91) for i in range(3)]
    index = PolygonIndex(squares)
    index.lookup(np.array([121.605, 121.615, 121.7]), np.array([38.905, 38.905, 38.905]))
    lines = gpd.GeoSeries([shapely.LineString([(121.600, 38.900), (121.602, 38.900), (121.602, 38.902)]),
             shapely.LineString([(121.602, 38.900), (121.604, 38.900)])],
                          crs=4326)
    roads = RoadGraph.from_lines(lines)
    roads.distances_m(121.600, 38.900, [(121.604, 38.900), (121.602, 38.902)])
    return time.perf_counter() - t0
