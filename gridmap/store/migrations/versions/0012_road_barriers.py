"""road barriers: the access code also names the barrier nodes on a road, so it grows past 32 characters

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 16:30:00

Written by hand to match gridmap/store/models.py (Road.access). A bollard or a locked gate is a
node, not a road: the code names it by its index in the line and the modes it closes
("barrier@3=car", gridmap.geo.roads.barrier_words), one word a barrier, so a footway with a few
bollards outgrows 32 characters. 1,024 holds some sixty barriers (the reader drops any beyond).
Roads imported before this revision keep their code and carry no barrier: import them again to
read their barrier nodes.
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('road') as batch:
        batch.alter_column('access', existing_type=sa.String(length=32), type_=sa.String(length=1024),
                           existing_nullable=False, existing_server_default='')


def downgrade():
    # a code longer than the old column is cleared (its closings with it) rather than fail the downgrade
    op.execute("UPDATE road SET access = '' WHERE length(access) > 32")
    with op.batch_alter_table('road') as batch:
        batch.alter_column('access', existing_type=sa.String(length=1024), type_=sa.String(length=32),
                           existing_nullable=False, existing_server_default='')
