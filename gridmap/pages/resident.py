"""What the resident's pages show: the community map with a grid and a point, what to report, a report's status.

The kinds of problem a resident may report there are Open311's public categories; a report's status
page is :func:`gridmap.dispatch.public_status` with its category named in the page's language.
"""
from __future__ import annotations

from .. import catalog, dispatch
from ..dispatch import georeport
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


def report_categories(*, english=False):
    """The kinds of problem a resident may report — the public categories Open311 offers — in the
    page's language: ``[{code, name}]``."""
    return [{"code": c.code, "name": c.en if english else c.zh}
            for c in catalog.INCIDENT_CATEGORIES if c.code in georeport.PUBLIC_CODES]


def report_status(session, snapshot, token, *, english=False):
    """What the status page of a resident's report shows (:func:`gridmap.dispatch.public_status`), its
    category named in the page's language; NotFound for a wrong token."""
    out = dispatch.public_status(session, snapshot, token)
    return {**out, "category_name": out["category_en"] if english else out["category_zh"]}
