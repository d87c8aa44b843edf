"""incident kpi flags: escalated and whistled on the incident, and the dashboard's window indexes covering

Revision ID: 0020
Revises: 0019 (0019_kpi_indexes)
Create Date: 2026-12-03 20:05:00

Written by hand to match gridmap/store/models.py (Incident.escalated, Incident.whistled, KPI_COLUMNS).
The flags of the incidents already stored are filled from their history (an "escalate" step in
incident_event, a whistle_task row), so an old incident counts as it did before. The two window
indexes of 0019 are rebuilt with every column a dashboard figure reads; the downgrade puts them back
as they were and drops the flags.
"""
import sqlalchemy as sa
from alembic import op


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

# models.KPI_COLUMNS at this revision
KPI_COLUMNS = ["status", "category", "grid_code", "deadline_at", "resolved_at", "escalated", "whistled"]


def upgrade():
    # NOT NULL with a server default: both backends add it in place (SQLite without copying the table)
    op.add_column("incident", sa.Column("escalated", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("incident", sa.Column("whistled", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE incident SET escalated = TRUE WHERE id IN "
               "(SELECT incident_id FROM incident_event WHERE action = 'escalate')")
    op.execute("UPDATE incident SET whistled = TRUE WHERE id IN (SELECT incident_id FROM whistle_task)")
    op.drop_index("ix_incident_reported", table_name="incident")
    op.drop_index("ix_incident_community_reported", table_name="incident")
    op.create_index("ix_incident_reported", "incident", ["reported_at", "community_code", *KPI_COLUMNS])
    op.create_index("ix_incident_community_reported", "incident", ["community_code", "reported_at", *KPI_COLUMNS])


def downgrade():
    op.drop_index("ix_incident_community_reported", table_name="incident")
    op.drop_index("ix_incident_reported", table_name="incident")
    op.create_index("ix_incident_reported", "incident", ["reported_at"])
    op.create_index("ix_incident_community_reported", "incident", ["community_code", "reported_at"])
    op.drop_column("incident", "whistled")  # SQLite 3.35+ drops a column in place
    op.drop_column("incident", "escalated")
