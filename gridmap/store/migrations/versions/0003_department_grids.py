"""department grids: each department's legacy grids, kept for the crosswalk to the unified plan

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 10:00:00

Written by hand to match gridmap/store/models.py (checked with compare_metadata: no diff).
"""
from alembic import op
import sqlalchemy as sa
import gridmap.store.types


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def _postgis():
    # GiST indexes only mean something on PostGIS; on SQLite a B-tree over WKB would only slow imports.
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    op.create_table('department_grid',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('department', sa.String(length=64), nullable=False),
    sa.Column('community_code', sa.String(length=12), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('geom', gridmap.store.types.Geometry('MULTIPOLYGON'), nullable=False),
    sa.Column('imported_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['community_code'], ['community.code'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('department_grid', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_department_grid_community_code'), ['community_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_department_grid_department'), ['department'], unique=False)
        if _postgis():
            batch_op.create_index('ix_department_grid_geom_gist', ['geom'], unique=False, postgresql_using='gist')


def downgrade():
    with op.batch_alter_table('department_grid', schema=None) as batch_op:
        if _postgis():
            batch_op.drop_index('ix_department_grid_geom_gist', postgresql_using='gist')
        batch_op.drop_index(batch_op.f('ix_department_grid_department'))
        batch_op.drop_index(batch_op.f('ix_department_grid_community_code'))

    op.drop_table('department_grid')
