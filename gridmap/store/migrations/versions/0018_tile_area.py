"""tile areas: the city map's districts, streets, communities and grids per published generation

Revision ID: 0018
Revises: 0017 (0015_import_batches)
Create Date: 2026-12-03 19:00:00

Written by hand to match gridmap/store/models.py (TileArea). Empty until the first tile is asked
for; gridmap.tiles fills it per generation.
"""
from alembic import op
import sqlalchemy as sa

import gridmap.store.types


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def _postgis():
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    op.create_table(
        'tile_area',
        sa.Column('generation', sa.Integer(), nullable=False),
        sa.Column('level', sa.String(length=16), nullable=False),
        sa.Column('code', sa.String(length=15), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('households', sa.Integer(), nullable=False),
        sa.Column('workers', sa.Integer(), nullable=False),
        sa.Column('open_public', sa.Integer(), nullable=False),
        sa.Column('open_all', sa.Integer(), nullable=False),
        sa.Column('geom', gridmap.store.types.Geometry('GEOMETRY'), nullable=False),
        sa.PrimaryKeyConstraint('generation', 'level', 'code'),
    )
    if _postgis():
        op.create_index('ix_tile_area_geom_gist', 'tile_area', ['geom'], unique=False, postgresql_using='gist')


def downgrade():
    if _postgis():
        op.drop_index('ix_tile_area_geom_gist', table_name='tile_area')
    op.drop_table('tile_area')
