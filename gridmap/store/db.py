"""Engines and transactions: SQLite (WAL, busy timeout, foreign keys) or PostgreSQL + PostGIS."""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from ..errors import InvalidInput
from .races import RACE_ERRORS, conflict_for
from .retired import hide_retired

MIGRATIONS = Path(__file__).with_name("migrations")
log = logging.getLogger(__name__)


class Store:
    """The database behind one app: an engine, a session factory and the migrations."""

    def __init__(self, url):
        try:
            self.url = make_url(url)
        except Exception:
            raise InvalidInput(f"Database URL {url!r} cannot be parsed.",
                               fix="Use sqlite:///path/to/file.db or postgresql+psycopg://user@host/dbname.") from None
        if self.url.get_backend_name() not in ("sqlite", "postgresql"):
            raise InvalidInput(f"Database {self.url.get_backend_name()!r} is not supported.",
                               fix="Use SQLite (default) or PostgreSQL with PostGIS.")
        kwargs = {}
        if self.is_sqlite:
            database = self.url.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
            # GeoAlchemy2 teaches SQLAlchemy to reflect PostGIS types; on SQLite it is never needed
            # (store/types.py loads it lazily), so only a PostGIS store pays its import here
            import geoalchemy2  # noqa: F401
        self.engine = create_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        hide_retired(self.sessions)

    @property
    def is_sqlite(self):
        return self.url.get_backend_name() == "sqlite"

    @property
    def is_postgis(self):
        return self.url.get_backend_name() == "postgresql"

    @contextlib.contextmanager
    def transaction(self) -> Session:
        """A session whose work is committed together at the end, or not at all.

        A race lost to another writer leaves as :class:`~gridmap.errors.Conflict` (409, "reload and
        try again"; see :mod:`.races`), whether it surfaced at a flush inside the block or at the
        commit on leaving it; by then the transaction is rolled back. Other database errors are
        bugs and leave as they are.
        """
        try:
            with self.sessions() as session, session.begin():
                yield session
        except RACE_ERRORS as err:
            conflict = conflict_for(err)
            if conflict is None:
                raise
            log.info("a race lost to another writer, answered as a conflict: %s", err)
            raise conflict from err

    def session(self) -> Session:
        return self.sessions()

    def upgrade(self):
        """Create the schema or bring it up to the newest migration."""
        with self.engine.begin() as conn:
            if self.is_postgis:
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
            from alembic import command  # Alembic (with Mako and Pygments) costs ~0.3 s: only here

            command.upgrade(_alembic_config(conn), "head")

    def current_revision(self):
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def dispose(self):
        self.engine.dispose()


POSTGIS_TABLES = frozenset({"spatial_ref_sys", "geometry_columns", "geography_columns"})


def include_object(obj, name, type_, reflected, compare_to):
    """Keep PostGIS's own tables out of autogenerate, which would otherwise drop them."""
    return not (type_ == "table" and reflected and compare_to is None and name in POSTGIS_TABLES)


def _alembic_config(connection=None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
