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
"""
from .departments import crosswalk, write_csv
from .changes import diff, diff_rows
from .draft import draft_from_partition
from .editing import EDITS, apply_edit, merge, move_buildings, plan_state, redraw, set_grids, split
from .export import GRID_TABLE_COLUMNS, export_plan, grid_table, grids_geojson, plan_detail
from .generations import copy_plan, create_plan, publish, publish_plan, used_codes
from .records import get_plan, list_plans, plan_summary
from .rules import RULES, Finding, Limits, Rule, check_plan, validate

__all__ = [
    "EDITS", "GRID_TABLE_COLUMNS", "RULES", "Finding", "Limits", "Rule", "apply_edit", "check_plan", "copy_plan",
    "create_plan", "crosswalk", "diff", "diff_rows", "draft_from_partition", "export_plan", "get_plan",
    "grid_table", "grids_geojson", "list_plans", "merge", "move_buildings", "plan_detail", "plan_state", "plan_summary",
    "publish", "publish_plan", "redraw", "set_grids", "split", "used_codes", "validate", "write_csv",
]
