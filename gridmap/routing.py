"""Road distances over imported roads: the graph of :mod:`gridmap.geo.roads` under its old name.

Scripts import ``gridmap.routing.RoadGraph``; the graph itself lives with the other pure geometry.
"""
from .geo.roads import EXCLUDED_KINDS, MODES, ROAD_CLASSES, SPEEDS_MPS, RoadGraph, eta_s  # noqa: F401
