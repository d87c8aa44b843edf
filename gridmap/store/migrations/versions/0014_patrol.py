"""patrol: a grid worker's patrols with their positions, check-ins at buildings, sent-once report receipts

Revision ID: 0014
Revises: 0013 (0013_resident_reports)
Create Date: 2026-12-03 16:10:00

Written by hand to match gridmap/store/models.py (Patrol, PatrolPoint, Checkin, ReportReceipt).
Check-ins and workbench reports carry the key the phone made when they were typed (unique), so a
queue replayed after a phone comes back online stores each once.
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('patrol',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('worker_id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('started_by', sa.String(length=64), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('distance_m', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['worker_id'], ['grid_worker.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_patrol_worker_id', 'patrol', ['worker_id'])
    op.create_table('patrol_point',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patrol_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('accuracy_m', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['patrol_id'], ['patrol.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_patrol_point_patrol_at', 'patrol_point', ['patrol_id', 'at'])
    op.create_table('checkin',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('worker_id', sa.Integer(), nullable=False),
    sa.Column('building_id', sa.Integer(), nullable=False),
    sa.Column('patrol_id', sa.Integer(), nullable=True),
    sa.Column('grid_code', sa.String(length=15), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('recorded_by', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['building_id'], ['building.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['patrol_id'], ['patrol.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['worker_id'], ['grid_worker.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key')
    )
    op.create_index('ix_checkin_worker_id', 'checkin', ['worker_id'])
    op.create_index('ix_checkin_building_at', 'checkin', ['building_id', 'at'])
    op.create_table('report_receipt',
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('idempotency_key')
    )


def downgrade():
    op.drop_table('report_receipt')
    op.drop_index('ix_checkin_building_at', table_name='checkin')
    op.drop_index('ix_checkin_worker_id', table_name='checkin')
    op.drop_table('checkin')
    op.drop_index('ix_patrol_point_patrol_at', table_name='patrol_point')
    op.drop_table('patrol_point')
    op.drop_index('ix_patrol_worker_id', table_name='patrol')
    op.drop_table('patrol')
