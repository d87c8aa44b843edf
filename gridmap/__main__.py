"""The ``gridmap`` command (``python -m gridmap``): Flask's group with gridmap's commands, each loaded when invoked."""
from . import create_app
from .cli import LazyFlaskGroup
from .instance import create_bare_app

# gridmap.create_app imports the web app only when it is called (run, shell, routes, locate)
main = LazyFlaskGroup(create_app=create_bare_app, create_web_app=create_app, add_default_commands=True,
                      help="gridmap: grids, residents, party members, cameras and incidents on maps.")

if __name__ == "__main__":
    main()
