"""road access: the travel modes a road's OSM access tags close it to

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 15:00:00

Written by hand to match gridmap/store/models.py (Road.access). One short text column rather than
three booleans: the code (gridmap.geo.roads.access_value) lists the closed modes, "car" for
``motorcar=no``, "walk,ebike,car" for ``access=private``, and also carries ``oneway:bicycle``
("ebike-oneway=no"), which a boolean per mode could not; a new mode is a new word, not a new
column. Roads imported before this revision read "": open to every mode their class allows.
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('road') as batch:
        batch.add_column(sa.Column('access', sa.String(length=32), nullable=False, server_default=''))


def downgrade():
    with op.batch_alter_table('road') as batch:
        batch.drop_column('access')
