"""What each role's page shows, as plain data: one module per page, built from the services, no Flask.

- :mod:`.resident` — the resident's map of a community and its grid
- :mod:`.dispatcher` — the dispatcher's panel, map layers and statistics page
- :mod:`.dashboard` — the city dashboard: KPIs by area, category, worker and period, the trend chart
- :mod:`.planner` — the planner's choices, map layers and camera coverage page
- :mod:`.board` — a grid's printable notice board
- :mod:`.worker` — the grid worker's workbench: inbox, people, patrol
"""
