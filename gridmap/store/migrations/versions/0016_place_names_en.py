"""place names in English: name_en on districts, streets and communities

Revision ID: 0016
Revises: 0015 (0015_import_batches)
Create Date: 2026-12-03 19:00:00

English pages show a place's English name: the official one when an import gives it, else the
pinyin form of gridmap.geo.names (城志社区 → Chengzhi Community). Places already stored get the
pinyin form here, so no page ever meets a place without one.
"""
from alembic import op
import sqlalchemy as sa

from gridmap.geo.names import english


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

TABLES = ("district", "street", "community")


def upgrade():
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('name_en', sa.String(length=128), nullable=True))
    bind = op.get_bind()
    for table in TABLES:
        t = sa.table(table, sa.column('code', sa.String), sa.column('name', sa.String),
                     sa.column('name_en', sa.String))
        rows = bind.execute(sa.select(t.c.code, t.c.name)).all()
        if rows:
            bind.execute(t.update().where(t.c.code == sa.bindparam('b_code')).values(name_en=sa.bindparam('b_en')),
                         [{"b_code": code, "b_en": english(name or "")[:128]} for code, name in rows])


def downgrade():
    for table in reversed(TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('name_en')
