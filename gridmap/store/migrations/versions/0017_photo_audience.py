"""photo audience: which step of an incident a photo shows, and whether the report's link holder sees it

Revision ID: 0017
Revises: 0016 (0015_import_batches)
Create Date: 2026-12-03 19:00:00

Written by hand to match gridmap/store/models.py (Photo.stage, Photo.reporter_sees). A resident's
report photos stay on their status page; a worker's resolve photos are shown there only when the
worker chose so at the resolve. Before this revision both were stored alike and both were shown:
photos stored at or after their incident's first resolve are the worker's, and they become staff
photos (not shown) — no worker was asked, so none is published by default.
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('photo') as batch:
        batch.add_column(sa.Column('stage', sa.String(length=16), nullable=False, server_default='report'))
        batch.add_column(sa.Column('reporter_sees', sa.Boolean(), nullable=False, server_default=sa.true()))
    op.execute(sa.text(
        "UPDATE photo SET stage = 'resolve', reporter_sees = :no WHERE owner_kind = 'incident' AND EXISTS "
        "(SELECT 1 FROM incident_event e WHERE e.incident_id = photo.owner_id AND e.action = 'resolve' "
        "AND e.at <= photo.created_at)").bindparams(no=False))


def downgrade():
    with op.batch_alter_table('photo') as batch:
        batch.drop_column('reporter_sees')
        batch.drop_column('stage')
