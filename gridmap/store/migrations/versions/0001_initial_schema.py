"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-27 21:38:55.286001
"""
from alembic import op
import sqlalchemy as sa
import gridmap.store.types


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def _postgis():
    # GiST indexes only mean something on PostGIS; on SQLite a B-tree over WKB would only slow imports.
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    op.create_table('district',
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_table('gridmap_meta',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=256), nullable=False),
    sa.Column('updated_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('responder',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('skills', sa.String(length=256), nullable=False),
    sa.Column('available', sa.Boolean(), nullable=False),
    sa.Column('geom', gridmap.store.types.Geometry('POINT'), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('responder', schema=None) as batch_op:
        if _postgis():
            batch_op.create_index('ix_responder_geom_gist', ['geom'], unique=False, postgresql_using='gist')
        batch_op.create_index(batch_op.f('ix_responder_kind'), ['kind'], unique=False)

    op.create_table('road',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('geom', gridmap.store.types.Geometry('GEOMETRY'), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('road', schema=None) as batch_op:
        if _postgis():
            batch_op.create_index('ix_road_geom_gist', ['geom'], unique=False, postgresql_using='gist')

    op.create_table('street',
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('district_code', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['district_code'], ['district.code'], ),
    sa.PrimaryKeyConstraint('code')
    )
    with op.batch_alter_table('street', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_street_district_code'), ['district_code'], unique=False)

    op.create_table('community',
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('street_code', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('service_centre', sa.String(length=128), nullable=False),
    sa.Column('service_address', sa.String(length=256), nullable=False),
    sa.Column('service_phone', sa.String(length=32), nullable=False),
    sa.Column('geom', gridmap.store.types.Geometry('MULTIPOLYGON'), nullable=False),
    sa.ForeignKeyConstraint(['street_code'], ['street.code'], ),
    sa.PrimaryKeyConstraint('code')
    )
    with op.batch_alter_table('community', schema=None) as batch_op:
        if _postgis():
            batch_op.create_index('ix_community_geom_gist', ['geom'], unique=False, postgresql_using='gist')
        batch_op.create_index(batch_op.f('ix_community_street_code'), ['street_code'], unique=False)

    op.create_table('courtyard',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_code', sa.String(length=12), nullable=True),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('geom', gridmap.store.types.Geometry('GEOMETRY'), nullable=True),
    sa.ForeignKeyConstraint(['community_code'], ['community.code'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('community_code', 'name')
    )
    with op.batch_alter_table('courtyard', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_courtyard_community_code'), ['community_code'], unique=False)

    op.create_table('grid_plan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_code', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=True),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['community_code'], ['community.code'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('grid_plan', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grid_plan_community_code'), ['community_code'], unique=False)

    op.create_table('grid_worker',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('community_code', sa.String(length=12), nullable=True),
    sa.Column('geom', gridmap.store.types.Geometry('POINT'), nullable=True),
    sa.ForeignKeyConstraint(['community_code'], ['community.code'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('grid_worker', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grid_worker_community_code'), ['community_code'], unique=False)

    op.create_table('incident',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('reporter_name', sa.String(length=64), nullable=False),
    sa.Column('reporter_phone', sa.String(length=32), nullable=False),
    sa.Column('community_code', sa.String(length=12), nullable=True),
    sa.Column('grid_code', sa.String(length=15), nullable=True),
    sa.Column('reported_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('geom', gridmap.store.types.Geometry('POINT'), nullable=False),
    sa.ForeignKeyConstraint(['community_code'], ['community.code'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_community_code'), ['community_code'], unique=False)
        if _postgis():
            batch_op.create_index('ix_incident_geom_gist', ['geom'], unique=False, postgresql_using='gist')
        batch_op.create_index(batch_op.f('ix_incident_grid_code'), ['grid_code'], unique=False)

    op.create_table('volunteer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('community_code', sa.String(length=12), nullable=True),
    sa.Column('skills', sa.String(length=256), nullable=False),
    sa.Column('available', sa.Boolean(), nullable=False),
    sa.Column('geom', gridmap.store.types.Geometry('POINT'), nullable=False),
    sa.ForeignKeyConstraint(['community_code'], ['community.code'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('volunteer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_volunteer_community_code'), ['community_code'], unique=False)
        if _postgis():
            batch_op.create_index('ix_volunteer_geom_gist', ['geom'], unique=False, postgresql_using='gist')

    op.create_table('app_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('display_name', sa.String(length=64), nullable=False),
    sa.Column('worker_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['worker_id'], ['grid_worker.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('username')
    )
    op.create_table('building',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_code', sa.String(length=12), nullable=True),
    sa.Column('courtyard_id', sa.Integer(), nullable=True),
    sa.Column('address', sa.String(length=256), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('households', sa.Integer(), nullable=False),
    sa.Column('floors', sa.Integer(), nullable=True),
    sa.Column('geom', gridmap.store.types.Geometry('GEOMETRY'), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['community_code'], ['community.code'], ),
    sa.ForeignKeyConstraint(['courtyard_id'], ['courtyard.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('building', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_building_address'), ['address'], unique=False)
        batch_op.create_index(batch_op.f('ix_building_community_code'), ['community_code'], unique=False)
        if _postgis():
            batch_op.create_index('ix_building_geom_gist', ['geom'], unique=False, postgresql_using='gist')

    op.create_table('camera',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('community_code', sa.String(length=12), nullable=True),
    sa.Column('courtyard_id', sa.Integer(), nullable=True),
    sa.Column('bearing', sa.Float(), nullable=False),
    sa.Column('fov', sa.Float(), nullable=False),
    sa.Column('range_m', sa.Float(), nullable=False),
    sa.Column('geom', gridmap.store.types.Geometry('POINT'), nullable=False),
    sa.ForeignKeyConstraint(['community_code'], ['community.code'], ),
    sa.ForeignKeyConstraint(['courtyard_id'], ['courtyard.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('camera', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_camera_community_code'), ['community_code'], unique=False)
        if _postgis():
            batch_op.create_index('ix_camera_geom_gist', ['geom'], unique=False, postgresql_using='gist')

    op.create_table('grid',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=15), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('geom', gridmap.store.types.Geometry('POLYGON'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['grid_plan.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('plan_id', 'code')
    )
    with op.batch_alter_table('grid', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grid_code'), ['code'], unique=False)
        if _postgis():
            batch_op.create_index('ix_grid_geom_gist', ['geom'], unique=False, postgresql_using='gist')
        batch_op.create_index(batch_op.f('ix_grid_plan_id'), ['plan_id'], unique=False)

    op.create_table('grid_worker_grid',
    sa.Column('worker_id', sa.Integer(), nullable=False),
    sa.Column('grid_code', sa.String(length=15), nullable=False),
    sa.ForeignKeyConstraint(['worker_id'], ['grid_worker.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('worker_id', 'grid_code')
    )
    with op.batch_alter_table('grid_worker_grid', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grid_worker_grid_grid_code'), ['grid_code'], unique=False)

    op.create_table('household',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('building_id', sa.Integer(), nullable=False),
    sa.Column('unit', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['building_id'], ['building.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('household', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_household_building_id'), ['building_id'], unique=False)

    op.create_table('party_organization',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('community_code', sa.String(length=12), nullable=False),
    sa.Column('grid_code', sa.String(length=15), nullable=True),
    sa.Column('building_id', sa.Integer(), nullable=True),
    sa.Column('courtyard_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['building_id'], ['building.id'], ),
    sa.ForeignKeyConstraint(['community_code'], ['community.code'], ),
    sa.ForeignKeyConstraint(['courtyard_id'], ['courtyard.id'], ),
    sa.ForeignKeyConstraint(['parent_id'], ['party_organization.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('party_organization', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_party_organization_community_code'), ['community_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_party_organization_grid_code'), ['grid_code'], unique=False)

    op.create_table('party_member',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('building_id', sa.Integer(), nullable=True),
    sa.Column('organization_id', sa.Integer(), nullable=True),
    sa.Column('in_service', sa.Boolean(), nullable=False),
    sa.Column('employer', sa.String(length=128), nullable=False),
    sa.Column('geom', gridmap.store.types.Geometry('POINT'), nullable=True),
    sa.ForeignKeyConstraint(['building_id'], ['building.id'], ),
    sa.ForeignKeyConstraint(['organization_id'], ['party_organization.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('resident',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('household_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('vulnerable', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('resident', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_resident_household_id'), ['household_id'], unique=False)



def downgrade():
    with op.batch_alter_table('resident', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_resident_household_id'))

    op.drop_table('resident')
    op.drop_table('party_member')
    with op.batch_alter_table('party_organization', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_party_organization_grid_code'))
        batch_op.drop_index(batch_op.f('ix_party_organization_community_code'))

    op.drop_table('party_organization')
    with op.batch_alter_table('household', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_household_building_id'))

    op.drop_table('household')
    with op.batch_alter_table('grid_worker_grid', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grid_worker_grid_grid_code'))

    op.drop_table('grid_worker_grid')
    with op.batch_alter_table('grid', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grid_plan_id'))
        if _postgis():
            batch_op.drop_index('ix_grid_geom_gist', postgresql_using='gist')
        batch_op.drop_index(batch_op.f('ix_grid_code'))

    op.drop_table('grid')
    with op.batch_alter_table('camera', schema=None) as batch_op:
        if _postgis():
            batch_op.drop_index('ix_camera_geom_gist', postgresql_using='gist')
        batch_op.drop_index(batch_op.f('ix_camera_community_code'))

    op.drop_table('camera')
    with op.batch_alter_table('building', schema=None) as batch_op:
        if _postgis():
            batch_op.drop_index('ix_building_geom_gist', postgresql_using='gist')
        batch_op.drop_index(batch_op.f('ix_building_community_code'))
        batch_op.drop_index(batch_op.f('ix_building_address'))

    op.drop_table('building')
    op.drop_table('app_user')
    with op.batch_alter_table('volunteer', schema=None) as batch_op:
        if _postgis():
            batch_op.drop_index('ix_volunteer_geom_gist', postgresql_using='gist')
        batch_op.drop_index(batch_op.f('ix_volunteer_community_code'))

    op.drop_table('volunteer')
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_grid_code'))
        if _postgis():
            batch_op.drop_index('ix_incident_geom_gist', postgresql_using='gist')
        batch_op.drop_index(batch_op.f('ix_incident_community_code'))

    op.drop_table('incident')
    with op.batch_alter_table('grid_worker', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grid_worker_community_code'))

    op.drop_table('grid_worker')
    with op.batch_alter_table('grid_plan', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grid_plan_community_code'))

    op.drop_table('grid_plan')
    with op.batch_alter_table('courtyard', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_courtyard_community_code'))

    op.drop_table('courtyard')
    with op.batch_alter_table('community', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_community_street_code'))
        if _postgis():
            batch_op.drop_index('ix_community_geom_gist', postgresql_using='gist')

    op.drop_table('community')
    with op.batch_alter_table('street', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_street_district_code'))

    op.drop_table('street')
    with op.batch_alter_table('road', schema=None) as batch_op:
        if _postgis():
            batch_op.drop_index('ix_road_geom_gist', postgresql_using='gist')

    op.drop_table('road')
    with op.batch_alter_table('responder', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_responder_kind'))
        if _postgis():
            batch_op.drop_index('ix_responder_geom_gist', postgresql_using='gist')

    op.drop_table('responder')
    op.drop_table('gridmap_meta')
    op.drop_table('district')
