"""session generation: logging out ends the session on the server, not only in the browser

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 13:20:00

Written by hand to match gridmap/store/models.py. Each login stores the account's generation in the
signed session; logout, a new password or a new role bumps it, so an older cookie (a copied one too)
no longer signs anyone in. Existing accounts start at 0.
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('app_user') as batch:
        batch.add_column(sa.Column('session_generation', sa.Integer(), nullable=False, server_default='0'))


def downgrade():
    with op.batch_alter_table('app_user') as batch:
        batch.drop_column('session_generation')
