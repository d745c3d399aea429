"""An Intake on given settings, and the tiny model made active for ingest tests."""

from __future__ import annotations

import redis

from ingest.intake import Intake
from ingest.sender import CelerySender
from ingest.settings import IngestSettings
from schema import db
from tests.support.worker_proc import docsort_worker  # noqa: F401  (the fixture, for this suite)


def _clean_queue(client: redis.Redis, queue: str) -> None:
    client.delete(queue, f"_kombu.binding.{queue}", f"{queue}.unacked", f"{queue}.unacked_index")


def make_intake(settings: IngestSettings) -> Intake:
    sessions = db.make_sessionmaker(db.make_engine(settings.database_url))
    return Intake(settings, sessions, CelerySender(settings.broker_url, settings.job_queue))


def close_intake(made: Intake) -> None:
    made.sessions.kw["bind"].dispose()
    if isinstance(made.sender, CelerySender):
        made.sender.close()


def activate_tiny_model(settings: IngestSettings) -> None:
    """The tiny test model (dark/light) written into the models folder and made the active version."""
    from tests.support.tiny_model import make_tiny_model
    from worker.registry import activate

    make_tiny_model(settings.models_dir)
    engine = db.make_engine(settings.database_url)
    try:
        with db.session_scope(db.make_sessionmaker(engine)) as session:
            activate(session, settings.models_dir, "tiny", "1")
    finally:
        engine.dispose()
