"""The ``gridmap`` command (``python -m gridmap``): Flask's group with gridmap's commands and its app factory."""
from flask.cli import FlaskGroup

from .app import create_app

main = FlaskGroup(create_app=create_app, add_default_commands=True,
                  help="gridmap: grids, residents, party members, cameras and incidents on maps.")

if __name__ == "__main__":
    main()
