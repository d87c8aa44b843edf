"""What the resident's page shows: the map of a community, its highlighted grid and a located point."""
from __future__ import annotations

from ..errors import InvalidInput


def map_view(snapshot, *, community=None, grid=None, point=None):
    """The grids the resident's map draws, the grid to highlight and the point, checked against the
    published grids.

    Without ``community`` the grid's community is drawn, and without either every published grid.

    Returns
    -------
    dict
        ``grids`` (GeoDataFrame), ``highlight`` (grid code or None), ``point`` ((lon, lat) or None),
        ``communities`` (the snapshot's, for the labels).
    """
    grids = snapshot.grids
    if grid:
        row = grids[grids["code"] == grid]
        if row.empty:
            raise InvalidInput(f"grid={grid!r} is not a published grid.",
                               fix="Take the grid code from /api/v1/locate or /api/v1/grids.")
        community = community or row.iloc[0]["community_code"]
    if community:
        if not (grids["community_code"] == community).any():
            raise InvalidInput(f"community={community!r} has no published grids.",
                               fix="Take the community code from /api/v1/communities.")
        if grid and grids.loc[grids["code"] == grid, "community_code"].iloc[0] != community:
            raise InvalidInput(f"grid={grid!r} is not in community={community!r}.",
                               fix="Leave out community, or give the grid's own community.")
        grids = grids[grids["community_code"] == community]
    return {"grids": grids, "highlight": grid or None, "point": point, "communities": snapshot.communities}
