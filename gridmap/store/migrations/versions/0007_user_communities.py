"""user communities: the communities a dispatcher's account covers (least privilege by area)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 13:10:00

Written by hand to match gridmap/store/models.py. Existing dispatcher accounts get no rows: after
the upgrade they cover nothing until `gridmap set-communities USERNAME CODE…` says where they
work (least privilege fails closed; the refusal names the command).
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('user_community',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('community_code', sa.String(length=12), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['community_code'], ['community.code'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'community_code')
    )
    op.create_index('ix_user_community_community_code', 'user_community', ['community_code'])


def downgrade():
    op.drop_index('ix_user_community_community_code', table_name='user_community')
    op.drop_table('user_community')
