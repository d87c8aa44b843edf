"""Alembic environment: runs on the connection the Store hands over (see Store.upgrade)."""
from alembic import context

from gridmap.store.db import include_object
from gridmap.store.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    from sqlalchemy import create_engine
    connection = create_engine(config.get_main_option("sqlalchemy.url")).connect()

context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite", compare_type=True, include_object=include_object)
with context.begin_transaction():
    context.run_migrations()
