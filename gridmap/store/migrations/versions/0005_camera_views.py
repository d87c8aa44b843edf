"""camera views: each camera's occlusion-aware view polygon, computed on import and stored

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 10:00:00

Written by hand to match gridmap/store/models.py (checked with compare_metadata on SQLite and PostGIS).
Existing cameras get their views from `gridmap init-db` (or `gridmap camera-views`) or the next import of cameras or
buildings; until then the snapshot falls back to the plain sector for them.
"""
from alembic import op
import sqlalchemy as sa

from gridmap.store.types import Geometry


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('camera_view',
    sa.Column('camera_id', sa.Integer(), nullable=False),
    sa.Column('computed_at', sa.DateTime(), nullable=False),
    sa.Column('geom', Geometry('GEOMETRY'), nullable=False),
    sa.ForeignKeyConstraint(['camera_id'], ['camera.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('camera_id')
    )


def downgrade():
    op.drop_table('camera_view')
