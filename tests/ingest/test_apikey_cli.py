"""`docsort apikey`: a key printed once, only its hash stored; rotate and revoke take effect at once."""

from __future__ import annotations

import re
import subprocess

from sqlalchemy import select

from ingest.api_keys import authenticate, hash_key
from ingest.settings import IngestSettings
from ingest.signing import callback_secret
from schema import db
from schema.tables import ApiClient
from tests.support.ingest import DOCSORT, docsort_env

KEY_RE = re.compile(r"^(dsk_[0-9a-f]{8}_[A-Za-z0-9_-]{43})$", re.M)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DOCSORT), "apikey", *args], env=docsort_env(), capture_output=True, text=True)


def _key(out: str) -> str:
    found = KEY_RE.findall(out)
    assert len(found) == 1, out
    return str(found[0])


def test_apikey_create_prints_the_key_once_and_stores_only_its_hash(ingest_settings: IngestSettings) -> None:
    made = _run("create", "erp")
    assert made.returncode == 0, made.stderr
    key = _key(made.stdout)
    assert callback_secret(ingest_settings.secret_key, "erp") in made.stdout
    sessions = db.make_sessionmaker(db.make_engine(ingest_settings.database_url))
    with db.session_scope(sessions) as s:
        row = s.scalars(select(ApiClient)).one()
        assert row.key_hash == hash_key(key)
        assert all(key not in str(v) for v in (row.name, row.key_prefix, row.key_hash))
        assert authenticate(s, key) is not None and authenticate(s, key + "x") is None

    again = _run("create", "erp")
    assert again.returncode == 2 and "already exists" in again.stderr

    rotation = _run("rotate", "erp").stdout
    rotated = _key(rotation)
    with db.session_scope(sessions) as s:
        assert authenticate(s, key) is None
        assert authenticate(s, rotated) is not None
    # the callback signing secret is rotated with the key: the old one is neither printed nor valid
    new_secret = callback_secret(ingest_settings.secret_key, "erp", 1)
    assert new_secret in rotation and callback_secret(ingest_settings.secret_key, "erp") not in rotation
    assert _run("revoke", "erp").returncode == 0
    with db.session_scope(sessions) as s:
        assert authenticate(s, rotated) is None
    listed = _run("list").stdout
    assert listed.startswith("erp\tdsk_") and "revoked" in listed
    sessions.kw["bind"].dispose()
