"""API keys of the jobs API: made here, shown once, kept only as a hash.

A key is ``dsk_<8 hex>_<43 url-safe chars>`` (256 random bits). ``api_clients.key_prefix`` holds the
``dsk_<8 hex>`` part to find the row; ``key_hash`` holds ``sha256:<hex>`` of the whole key. A key this
random needs no slow password hash; the comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from schema.errors import DocsortError
from schema.tables import ApiClient, utcnow

KEY_MARK = "dsk_"


class ApiKeyError(DocsortError):
    """An API client cannot be created or changed (name taken, unknown name)."""


@dataclass(frozen=True)
class NewKey:
    key: str
    prefix: str
    key_hash: str


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str | None:
    """The lookup part of a well-formed key, else None."""
    if not key.startswith(KEY_MARK):
        return None
    prefix, sep, rest = key[len(KEY_MARK) :].partition("_")
    if not sep or len(prefix) != 8 or not rest:
        return None
    return KEY_MARK + prefix


def new_key() -> NewKey:
    key = f"{KEY_MARK}{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"
    prefix = key_prefix(key)
    assert prefix is not None
    return NewKey(key, prefix, hash_key(key))


def create_client(session: Session, name: str) -> tuple[ApiClient, str]:
    """A new client named ``name`` and its key (returned once; only its hash is stored)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ApiKeyError("a client name is 1 to 100 characters")
    if session.scalar(select(ApiClient.id).where(ApiClient.name == name)) is not None:
        raise ApiKeyError(
            f"an API client named {name!r} already exists (`docsort apikey rotate` gives it a new key)"
        )
    made = new_key()
    client = ApiClient(name=name, key_prefix=made.prefix, key_hash=made.key_hash)
    session.add(client)
    session.flush()
    return client, made.key


def authenticate(session: Session, key: str) -> ApiClient | None:
    """The active client whose key this is, or None."""
    prefix = key_prefix(key)
    if prefix is None:
        return None
    wanted = hash_key(key)
    found = None
    for client in session.scalars(
        select(ApiClient).where(ApiClient.key_prefix == prefix, ApiClient.revoked_at.is_(None))
    ):
        if hmac.compare_digest(client.key_hash, wanted):
            found = client
    return found


def revoke_client(session: Session, name: str) -> ApiClient:
    client = session.scalar(select(ApiClient).where(ApiClient.name == name))
    if client is None:
        raise ApiKeyError(f"no API client named {name!r}")
    if client.revoked_at is None:
        client.revoked_at = utcnow()
    return client


def rotate_client(session: Session, name: str) -> tuple[ApiClient, str]:
    """A new key and callback signing secret for an existing client (revoked or not); the old key stops
    working at once, and callbacks sent from now on are signed with the new secret."""
    client = session.scalar(select(ApiClient).where(ApiClient.name == name))
    if client is None:
        raise ApiKeyError(f"no API client named {name!r}")
    made = new_key()
    client.key_prefix, client.key_hash, client.revoked_at = made.prefix, made.key_hash, None
    client.secret_version = (client.secret_version or 0) + 1  # the callback signing secret changes too
    return client, made.key
