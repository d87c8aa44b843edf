"""resident reports: photos, and the token hash of a report's public status page

Revision ID: 0013
Revises: 0012 (0012_road_barriers)
Create Date: 2026-12-03 16:00:00

Written by hand to match gridmap/store/models.py (Photo, ResidentReport). Photos are blobs in the
store rather than files in the instance folder: written in the report's transaction (a refused
report leaves nothing), served by every process and host on the database. The resident's contact
is the incident's existing reporter_name/reporter_phone.
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('photo',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_kind', sa.String(length=32), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.SmallInteger(), nullable=False),
    sa.Column('mime', sa.String(length=16), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_photo_owner', 'photo', ['owner_kind', 'owner_id'])
    op.create_table('resident_report',
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('incident_id'),
    sa.UniqueConstraint('token_hash')
    )


def downgrade():
    op.drop_table('resident_report')
    op.drop_index('ix_photo_owner', table_name='photo')
    op.drop_table('photo')
