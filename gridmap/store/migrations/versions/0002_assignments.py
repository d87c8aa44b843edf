"""assignment tables: building_grid, member_grid, contact_link, entity_grid, assignment_run

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 10:00:00

Written by hand to match gridmap/store/models.py (checked against autogenerate: no diff).
No geometry columns, hence no GiST indexes: positions stay on the entities.
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

_PLAN_FK = dict(ondelete='CASCADE')


def upgrade():
    op.create_table('building_grid',
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('building_id', sa.Integer(), nullable=False),
    sa.Column('grid_code', sa.String(length=15), nullable=False),
    sa.Column('share', sa.Float(), nullable=False),
    sa.Column('split', sa.Boolean(), nullable=False),
    sa.Column('shares', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['grid_plan.id'], **_PLAN_FK),
    sa.ForeignKeyConstraint(['building_id'], ['building.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('plan_id', 'building_id')
    )
    op.create_index('ix_building_grid_plan_grid', 'building_grid', ['plan_id', 'grid_code'], unique=False)

    op.create_table('member_grid',
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('grid_code', sa.String(length=15), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=True),
    sa.Column('distance_m', sa.Float(), nullable=False),
    sa.Column('outside', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['grid_plan.id'], **_PLAN_FK),
    sa.ForeignKeyConstraint(['member_id'], ['party_member.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['branch_id'], ['party_organization.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('plan_id', 'member_id')
    )
    op.create_index('ix_member_grid_plan_grid', 'member_grid', ['plan_id', 'grid_code'], unique=False)

    op.create_table('contact_link',
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('household_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('distance_m', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['grid_plan.id'], **_PLAN_FK),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['party_member.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('plan_id', 'household_id')
    )
    op.create_index('ix_contact_link_plan_member', 'contact_link', ['plan_id', 'member_id'], unique=False)

    op.create_table('entity_grid',
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('entity_kind', sa.String(length=16), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('grid_code', sa.String(length=15), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['grid_plan.id'], **_PLAN_FK),
    sa.PrimaryKeyConstraint('plan_id', 'entity_kind', 'entity_id')
    )
    op.create_index('ix_entity_grid_plan_grid', 'entity_grid', ['plan_id', 'grid_code'], unique=False)

    op.create_table('assignment_run',
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('ran_at', sa.DateTime(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['grid_plan.id'], **_PLAN_FK),
    sa.PrimaryKeyConstraint('plan_id')
    )


def downgrade():
    op.drop_table('assignment_run')
    op.drop_index('ix_entity_grid_plan_grid', table_name='entity_grid')
    op.drop_table('entity_grid')
    op.drop_index('ix_contact_link_plan_member', table_name='contact_link')
    op.drop_table('contact_link')
    op.drop_index('ix_member_grid_plan_grid', table_name='member_grid')
    op.drop_table('member_grid')
    op.drop_index('ix_building_grid_plan_grid', table_name='building_grid')
    op.drop_table('building_grid')
