"""import batches: a source key per record, retired records, batches and what they changed

Revision ID: 0015
Revises: 0014 (0014_patrol)
Create Date: 2026-12-03 16:00:00

Written by hand to match gridmap/store/models.py (Sourced, ImportBatch, ImportChange). Records
imported before this revision have no source and no key: a later import of their file adds them
again once (there is nothing to match them by), and they stay live.
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

RECORD_TABLES = ("building", "party_member", "grid_worker", "volunteer", "responder", "camera", "road")


def upgrade():
    op.create_table(
        'import_batch',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('source', sa.String(length=256), nullable=False),
        sa.Column('mode', sa.String(length=16), nullable=False),
        sa.Column('user', sa.String(length=64), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.Column('created', sa.Integer(), nullable=False),
        sa.Column('updated', sa.Integer(), nullable=False),
        sa.Column('unchanged', sa.Integer(), nullable=False),
        sa.Column('retired', sa.Integer(), nullable=False),
        sa.Column('rejected', sa.Integer(), nullable=False),
        sa.Column('undone_at', sa.DateTime(), nullable=True),
        sa.Column('undone_by', sa.String(length=64), nullable=True),
    )
    op.create_index('ix_import_batch_kind', 'import_batch', ['kind'])
    op.create_table(
        'import_change',
        sa.Column('batch_id', sa.Integer(), sa.ForeignKey('import_batch.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('record_id', sa.Integer(), primary_key=True),
        sa.Column('action', sa.String(length=8), nullable=False),
        sa.Column('previous', sa.Text(), nullable=False),
    )
    op.create_index('ix_import_change_record', 'import_change', ['record_id'])
    for table in RECORD_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('source', sa.String(length=256), nullable=True))
            batch.add_column(sa.Column('source_key', sa.String(length=128), nullable=True))
            batch.add_column(sa.Column('batch_id', sa.Integer(), nullable=True))
            batch.add_column(sa.Column('retired_at', sa.DateTime(), nullable=True))
            batch.add_column(sa.Column('row_hash', sa.BigInteger(), nullable=True))
            batch.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='1'))
        op.create_index(f'ix_{table}_batch_id', table, ['batch_id'])
        live = sa.text('retired_at IS NULL')
        op.create_index(f'ux_{table}_source_key', table, ['source', 'source_key'], unique=True,
                        sqlite_where=live, postgresql_where=live)


def downgrade():
    for table in RECORD_TABLES:
        op.drop_index(f'ux_{table}_source_key', table_name=table)
        op.drop_index(f'ix_{table}_batch_id', table_name=table)
        with op.batch_alter_table(table) as batch:
            for column in ('version', 'row_hash', 'retired_at', 'batch_id', 'source_key', 'source'):
                batch.drop_column(column)
    op.drop_index('ix_import_change_record', table_name='import_change')
    op.drop_table('import_change')
    op.drop_index('ix_import_batch_kind', table_name='import_batch')
    op.drop_table('import_batch')
