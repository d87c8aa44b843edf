"""kpi indexes: the dashboard's aggregates by window, area and status, and escalations by action

Revision ID: 0019
Revises: 0018 (0015_import_batches)
Create Date: 2026-12-03 19:00:00

Written by hand to match gridmap/store/models.py (Incident, IncidentEvent). Indexes only: nothing to
move, and the downgrade drops them.
"""
import sqlalchemy as sa
from alembic import op


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

INDEXES = (("ix_incident_reported", "incident", ["reported_at"]),
           ("ix_incident_community_reported", "incident", ["community_code", "reported_at"]),
           ("ix_incident_grid_status", "incident", ["grid_code", "status"]),
           ("ix_incident_event_action_incident", "incident_event", ["action", "incident_id"]))


OPEN = "status IN ('reported', 'accepted', 'dispatched', 'in_progress')"  # models.OPEN_SQL at this revision


def upgrade():
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    op.create_index("ix_incident_open_area", "incident", ["community_code", "grid_code", "deadline_at"],
                    postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))


def downgrade():
    op.drop_index("ix_incident_open_area", table_name="incident")
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
