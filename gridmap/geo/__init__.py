"""Pure geometry: CRS and the metric frame, files, validation, point index, views, roads, addresses, codes.

Knows no Flask, no database and nothing else of gridmap (import-linter checks it).
"""
