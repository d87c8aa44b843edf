"""The application factory: the bare app of an instance, with the blueprints and the commands."""
from .cli import register_commands
from .instance import create_bare_app
from .web import register_blueprints


def create_app(config=None):
    """Build a gridmap web app: :func:`gridmap.instance.create_bare_app` with the blueprints and commands."""
    app = create_bare_app(config)
    register_blueprints(app)
    register_commands(app)
    return app
