"""gridmap: grids, residents, party members, cameras and incidents on maps, for community grid governance."""


def create_app(config=None):
    """Build a gridmap web app: :func:`gridmap.app.create_app`."""
    # The one import inside a function in gridmap, and on purpose: every ``import gridmap.<part>``
    # runs this file first, and the factory's module pulls in the whole app (Flask, Folium, the
    # blueprints, the commands). Imported only when an app is wanted, a script using gridmap.geo or
    # gridmap.partition does not load the web, and the package root stays out of the layers' graph.
    from .app import create_app as build

    return build(config)
