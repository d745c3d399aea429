from __future__ import annotations

from pathlib import Path

import pytest

from schema.errors import SettingsInvalid
from schema.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("DOCSORT_") and not key.startswith("DOCSORT_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_defaults_put_everything_under_the_data_dir(tmp_path: Path) -> None:
    s = load_settings(data_dir=tmp_path / "d")
    assert s.database_url == f"sqlite:///{tmp_path / 'd' / 'docsort.db'}"
    assert s.inbox_dir == tmp_path / "d" / "inbox"
    assert s.models_dir == tmp_path / "d" / "models"
    assert s.broker_url == "redis://localhost:6379/0"


def test_environment_variables_and_dotenv_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DOCSORT_LOG_LEVEL=debug\nDOCSORT_INBOX_DIR=/srv/scans\n")
    monkeypatch.setenv("DOCSORT_BROKER_URL", "redis://redis:6379/2")
    s = load_settings()
    assert s.log_level == "DEBUG"
    assert s.inbox_dir == Path("/srv/scans")
    assert s.broker_url == "redis://redis:6379/2"


def test_bad_log_level_names_the_variable_and_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCSORT_LOG_LEVEL", "loud")
    with pytest.raises(SettingsInvalid, match=r"DOCSORT_LOG_LEVEL='loud': use one of DEBUG, INFO"):
        load_settings()


def test_bad_database_url_says_what_a_good_one_looks_like(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCSORT_DATABASE_URL", "not a url")
    with pytest.raises(SettingsInvalid, match="is not a database URL"):
        load_settings()


def test_production_refuses_default_secret_and_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCSORT_ENVIRONMENT", "production")
    with pytest.raises(SettingsInvalid, match="DOCSORT_SECRET_KEY"):
        load_settings()
    monkeypatch.setenv("DOCSORT_SECRET_KEY", "x" * 32)
    with pytest.raises(SettingsInvalid, match="PostgreSQL in production"):
        load_settings()
    monkeypatch.setenv("DOCSORT_DATABASE_URL", "postgresql+psycopg://docsort@db/docsort")
    assert load_settings().environment == "production"
