"""Grid plans: generations of a community's grids, validated, diffed, edited, exported, crosswalked.

A published plan is never edited in place (MapIt's generations): a draft is copied, edited and
published in its place, the old one retired with ``valid_to``.

- :mod:`.records` — a plan by id, a community's plans, a plan's summary
- :mod:`.generations` — create, copy, publish; the codes a community has used
- :mod:`.rules` — validation rules as data, each finding located
- :mod:`.export` — each grid's households, workers and branch; files and GeoJSON
- :mod:`.changes` — what changes grid between two plans
- :mod:`.editing` — redraw, move, split, merge, restore on a draft, the tiling kept exact
- :mod:`.departments` — departments' legacy grids against the unified grids
- :mod:`.draft` — a draft from an automatic partition
- :mod:`.publishing` — what a publish will do, for the planner to confirm
"""
import importlib

# Where each name lives. The package root imports none of them up front (PEP 562): the rules and the
# crosswalk pull in geopandas, scipy and the assigner (about 2 s), which `gridmap plan list` or a
# page listing plans never needs; each name's module is imported the first time it is asked for.
_HOMES = {
    "crosswalk": "departments", "write_csv": "departments",
    "diff": "changes", "diff_rows": "changes",
    "draft_from_partition": "draft",
    "publish_preview": "publishing", "worker_moves": "publishing",
    **dict.fromkeys(["EDITS", "apply_edit", "merge", "move_buildings", "plan_state", "redraw", "set_grids",
                     "split"], "editing"),
    **dict.fromkeys(["GRID_TABLE_COLUMNS", "export_plan", "grid_table", "grids_geojson", "plan_detail"], "export"),
    **dict.fromkeys(["copy_plan", "create_plan", "publish", "publish_plan", "used_codes"], "generations"),
    **dict.fromkeys(["get_plan", "list_plans", "plan_summary"], "records"),
    **dict.fromkeys(["RULES", "Finding", "Limits", "Rule", "check_plan", "validate"], "rules"),
}


def __getattr__(name):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value  # asked once: later lookups are plain attribute reads
    return value


def __dir__():
    return sorted(set(globals()) | set(_HOMES))


__all__ = [
    "EDITS", "GRID_TABLE_COLUMNS", "RULES", "Finding", "Limits", "Rule", "apply_edit", "check_plan", "copy_plan",
    "create_plan", "crosswalk", "diff", "diff_rows", "draft_from_partition", "export_plan", "get_plan",
    "grid_table", "grids_geojson", "list_plans", "merge", "move_buildings", "plan_detail", "plan_state", "plan_summary",
    "publish", "publish_plan", "publish_preview", "redraw", "set_grids", "split", "used_codes", "validate", "worker_moves", "write_csv",
]
