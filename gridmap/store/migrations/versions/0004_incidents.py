"""incidents: routing, deadlines and duplicates on incident; audit trail, whistle tasks, service ledger,
SOS devices and API keys

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 10:00:00

Written by hand to match gridmap/store/models.py (checked with compare_metadata on SQLite and PostGIS).
New NOT NULL columns on incident carry server defaults so that rows written before 0004 upgrade.
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _postgis():
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.add_column(sa.Column('level', sa.String(length=16), nullable=False, server_default='grid'))
        batch_op.add_column(sa.Column('department', sa.String(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('vetoed', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('priority', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('deadline_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('duplicate_of', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('source', sa.String(length=16), nullable=False, server_default='api'))
        batch_op.add_column(sa.Column('reporter_email', sa.String(length=128), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('address', sa.String(length=256), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('resident_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('lon', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('lat', sa.Float(), nullable=True))
        batch_op.create_foreign_key('fk_incident_duplicate_of', 'incident', ['duplicate_of'], ['id'],
                                    ondelete='SET NULL')
        batch_op.create_foreign_key('fk_incident_resident_id', 'resident', ['resident_id'], ['id'],
                                    ondelete='SET NULL')
        batch_op.create_index(batch_op.f('ix_incident_duplicate_of'), ['duplicate_of'], unique=False)
        batch_op.create_index('ix_incident_category_reported', ['category', 'reported_at'], unique=False)
        batch_op.create_index('ix_incident_status_level', ['status', 'level'], unique=False)

    op.create_table('incident_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('from_level', sa.String(length=16), nullable=True),
    sa.Column('to_level', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_incident_event_incident_id'), 'incident_event', ['incident_id'], unique=False)

    op.create_table('whistle_task',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('department', sa.String(length=64), nullable=False),
    sa.Column('blown_by', sa.String(length=64), nullable=False),
    sa.Column('blown_at', sa.DateTime(), nullable=False),
    sa.Column('report_by', sa.DateTime(), nullable=False),
    sa.Column('reported_at', sa.DateTime(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_whistle_task_incident_id'), 'whistle_task', ['incident_id'], unique=False)

    op.create_table('service_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('resident_id', sa.Integer(), nullable=True),
    sa.Column('household_id', sa.Integer(), nullable=True),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('skill', sa.String(length=32), nullable=False),
    sa.Column('hours', sa.Float(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('recorded_by', sa.String(length=64), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteer.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['resident_id'], ['resident.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_service_record_volunteer_id'), 'service_record', ['volunteer_id'], unique=False)
    op.create_index(op.f('ix_service_record_incident_id'), 'service_record', ['incident_id'], unique=False)

    op.create_table('sos_device',
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('resident_id', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('registered_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['resident_id'], ['resident.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('device_id')
    )
    op.create_index(op.f('ix_sos_device_resident_id'), 'sos_device', ['resident_id'], unique=False)

    op.create_table('api_key',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=12), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash'),
    sa.UniqueConstraint('name')
    )


def downgrade():
    op.drop_table('api_key')
    op.drop_index(op.f('ix_sos_device_resident_id'), table_name='sos_device')
    op.drop_table('sos_device')
    op.drop_index(op.f('ix_service_record_incident_id'), table_name='service_record')
    op.drop_index(op.f('ix_service_record_volunteer_id'), table_name='service_record')
    op.drop_table('service_record')
    op.drop_index(op.f('ix_whistle_task_incident_id'), table_name='whistle_task')
    op.drop_table('whistle_task')
    op.drop_index(op.f('ix_incident_event_incident_id'), table_name='incident_event')
    op.drop_table('incident_event')
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_status_level')
        batch_op.drop_index('ix_incident_category_reported')
        batch_op.drop_index(batch_op.f('ix_incident_duplicate_of'))
        batch_op.drop_constraint('fk_incident_resident_id', type_='foreignkey')
        batch_op.drop_constraint('fk_incident_duplicate_of', type_='foreignkey')
        for column in ('lat', 'lon', 'resident_id', 'address', 'reporter_email', 'source', 'duplicate_of',
                       'deadline_at', 'priority', 'vetoed', 'department', 'level'):
            batch_op.drop_column(column)
