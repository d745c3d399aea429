"""Where the test services are: PostgreSQL (an admin URL), Redis, and the folder for artifacts."""

from __future__ import annotations

import os
from pathlib import Path

PG_ADMIN_URL = os.environ.get("DOCSORT_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("DOCSORT_TEST_REDIS", "redis://127.0.0.1:6379/0")
ARTIFACTS = Path(os.environ.get("DOCSORT_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))


def sqlalchemy_pg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)
