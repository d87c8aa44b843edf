"""road one-way and layer: the direction a vehicle may take along each road, the level it runs at

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 14:00:00

Written by hand to match gridmap/store/models.py (Road.oneway). The road's class is already kept
as ``kind`` (OSM ``highway``); ``oneway`` is "yes" (along the line only), "-1" (against it),
"no" or "" (not said: the class decides, see gridmap.geo.roads.IMPLIED_ONEWAY). ``layer`` is the
level (OSM layer, or -1 in a tunnel, 1 on a bridge): roads of different levels meet only at a
shared vertex. Roads imported before this revision read "" and 0.
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
        batch.add_column(sa.Column('layer', sa.SmallInteger(), nullable=False, server_default='0'))


def downgrade():
    with op.batch_alter_table('road') as batch:
        batch.drop_column('layer')
        batch.drop_column('oneway')
