"""abuse limits: shared request-limit counters and failed sign-ins per username

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 13:00:00

Written by hand to match gridmap/store/models.py (RateCounter, LoginLock). The counters live in
the store so that every web process on one database counts against the same limit.
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('rate_counter',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_index('ix_rate_counter_expires_at', 'rate_counter', ['expires_at'])
    op.create_table('login_lock',
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('lockouts', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(), nullable=True),
    sa.Column('last_failure_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('username')
    )
    op.create_index('ix_login_lock_last_failure_at', 'login_lock', ['last_failure_at'])


def downgrade():
    op.drop_index('ix_login_lock_last_failure_at', table_name='login_lock')
    op.drop_table('login_lock')
    op.drop_index('ix_rate_counter_expires_at', table_name='rate_counter')
    op.drop_table('rate_counter')
