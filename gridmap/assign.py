"""Assign residences, party members, cameras, volunteers and responders to grids; link contact households."""
from .geo.pointindex import points_to_grids  # noqa: F401  (public name outside tools rely on)
