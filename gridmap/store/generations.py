"""The published-data generation every web process watches: one counter in ``gridmap_meta``."""
from sqlalchemy import Integer, String, cast, text, update

from . import models as m

GENERATION_KEY = "published_generation"
# PostgreSQL LISTEN/NOTIFY channel: web processes listening on it load the new generation at once
CHANNEL = "gridmap_generation"


def bump_generation(session):
    """Move the snapshot generation on: every web process rebuilds its snapshot when it sees it.

    Publishing a plan and importing anything a snapshot holds (responders, cameras, buildings…)
    both call this. The increment is one UPDATE so two writers cannot both write N + 1.
    """
    done = session.execute(update(m.Meta).where(m.Meta.key == GENERATION_KEY).values(
        value=cast(cast(m.Meta.value, Integer) + 1, String), updated_at=m.utcnow()))
    if done.rowcount == 0:
        session.add(m.Meta(key=GENERATION_KEY, value="1"))
        session.flush()
    if session.get_bind().dialect.name == "postgresql":
        # delivered when (and only if) this transaction commits, so no listener sees a rolled-back bump
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


def generation(session):
    """The published-plan generation, 0 before the first publish."""
    row = session.get(m.Meta, GENERATION_KEY)
    return int(row.value) if row else 0
