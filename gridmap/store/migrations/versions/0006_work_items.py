"""work items: each community's own list of the incident categories it handles (社区工作事项清单)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:00:00

Written by hand to match gridmap/store/models.py. A community without rows takes the default list
of gridmap.catalog; `gridmap work-items load FILE` replaces the lists the file names.
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('work_item',
    sa.Column('community_code', sa.String(length=12), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['community_code'], ['community.code'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('community_code', 'category')
    )


def downgrade():
    op.drop_table('work_item')
