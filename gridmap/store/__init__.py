"""Persistence: the SQLAlchemy schema, transactions, repository functions and migrations."""
from .db import Store  # noqa: F401
