"""road one-way: the direction a vehicle may take along each road

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 14:00:00

Written by hand to match gridmap/store/models.py (Road.oneway). The road's class is already kept
as ``kind`` (OSM ``highway``); ``oneway`` is "yes" (along the line only), "-1" (against it),
"no" or "" (not said: the class decides, see gridmap.geo.roads.IMPLIED_ONEWAY). Roads imported
before this revision read "": two-way unless they are motorways.
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('road') as batch:
        batch.add_column(sa.Column('oneway', sa.String(length=3), nullable=False, server_default=''))


def downgrade():
    with op.batch_alter_table('road') as batch:
        batch.drop_column('oneway')
