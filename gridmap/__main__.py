"""The ``gridmap`` command (``python -m gridmap``): Flask's group with gridmap's commands, each loaded when invoked."""
from .cli import LazyFlaskGroup

main = LazyFlaskGroup(add_default_commands=True,
                      help="gridmap: grids, residents, party members, cameras and incidents on maps.")

if __name__ == "__main__":
    main()
