"""Operator passwords (argon2), server-side sessions, and per-session CSRF tokens."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

import anyio.to_thread
from anyio import CapacityLimiter
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from review.errors import OperatorError
from schema.tables import Operator, OperatorSession

MIN_PASSWORD_LENGTH = 8
CSRF_KEY = "csrf"

_hasher = PasswordHasher()
# Verified when the name is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise OperatorError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class PasswordCheck:
    """The outcome of one login's password check; ``new_hash`` when the stored hash is outdated."""

    ok: bool
    new_hash: str | None = None


def check_password(stored_hash: str | None, password: str) -> PasswordCheck:
    """Verify ``password``; with no stored hash (unknown name), verify a dummy so the time is the same."""
    if stored_hash is None:
        verify_password(_DUMMY_HASH, password)
        return PasswordCheck(ok=False)
    if not verify_password(stored_hash, password):
        return PasswordCheck(ok=False)
    new_hash = _hasher.hash(password) if _hasher.check_needs_rehash(stored_hash) else None
    return PasswordCheck(ok=True, new_hash=new_hash)


class PasswordChecks:
    """Password checks of one server process: at most ``limit`` at once, each in a worker thread.

    An argon2 check holds 64 MiB for its duration; logins beyond the limit wait for a slot without
    holding a thread, and the event loop never runs a hash.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._limiters: WeakKeyDictionary[asyncio.AbstractEventLoop, CapacityLimiter] = WeakKeyDictionary()

    def _limiter(self) -> CapacityLimiter:
        loop = asyncio.get_running_loop()  # a limiter belongs to one event loop
        if loop not in self._limiters:
            self._limiters[loop] = CapacityLimiter(self.limit)
        return self._limiters[loop]

    async def check(self, stored_hash: str | None, password: str) -> PasswordCheck:
        return await anyio.to_thread.run_sync(check_password, stored_hash, password, limiter=self._limiter())


def active_operator(session: Session, name: str) -> Operator | None:
    operator = session.scalar(select(Operator).where(Operator.name == name))
    return operator if operator is not None and operator.active else None


def _validated_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 100 or not name.isprintable():
        raise OperatorError("an operator name has 1 to 100 printable characters")
    return name


def create_operator(session: Session, name: str, password: str, *, replace: bool = False) -> Operator:
    """Create an operator (or, with ``replace``, set a new password for an existing one)."""
    name = _validated_name(name)
    password_hash = hash_password(password)
    operator = session.scalar(select(Operator).where(Operator.name == name))
    if operator is not None and not replace:
        raise OperatorError(f"operator {name!r} exists already (use `docsort operator passwd` to change it)")
    if operator is None:
        operator = Operator(name=name, password_hash=password_hash, active=True)
        session.add(operator)
    else:
        _set_hash(session, operator, password_hash)
        operator.active = True
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise OperatorError(f"operator {name!r} exists already") from exc
    return operator


def set_password(session: Session, name: str, password: str) -> Operator:
    """Give an existing operator a new password; every session of the operator ends."""
    password_hash = hash_password(password)
    operator = session.scalar(select(Operator).where(Operator.name == name.strip()))
    if operator is None:
        raise OperatorError(f"no operator named {name.strip()!r} (see `docsort operator list`)")
    _set_hash(session, operator, password_hash)
    session.commit()
    return operator


def _set_hash(session: Session, operator: Operator, password_hash: str) -> None:
    operator.password_hash = password_hash
    session.execute(delete(OperatorSession).where(OperatorSession.operator_id == operator.id))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, operator: Operator, now: datetime, lifetime: timedelta) -> str:
    """A new session for ``operator``: its token for the cookie. Expired sessions are deleted on the way."""
    token = secrets.token_urlsafe(32)
    session.execute(delete(OperatorSession).where(OperatorSession.expires_at <= now))
    row = OperatorSession(token_hash=_token_hash(token), operator_id=operator.id, expires_at=now + lifetime)
    session.add(row)
    session.commit()
    return token


def session_operator(session: Session, token: object, now: datetime) -> Operator | None:
    """The active operator whose live session ``token`` names, or None."""
    if not isinstance(token, str) or not token:
        return None
    return session.scalar(
        select(Operator)
        .join(OperatorSession, OperatorSession.operator_id == Operator.id)
        .where(
            OperatorSession.token_hash == _token_hash(token),
            OperatorSession.expires_at > now,
            Operator.active.is_(True),
        )
    )


def close_session(session: Session, token: object) -> None:
    """End the session ``token`` names (logout); a copy of its cookie no longer logs anyone in."""
    if isinstance(token, str) and token:
        session.execute(delete(OperatorSession).where(OperatorSession.token_hash == _token_hash(token)))
        session.commit()


def csrf_token(store: MutableMapping[str, Any]) -> str:
    """This session's CSRF token, made on first use."""
    token = store.get(CSRF_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        store[CSRF_KEY] = token
    return token


def csrf_valid(store: MutableMapping[str, Any], sent: object) -> bool:
    expected = store.get(CSRF_KEY)
    if not isinstance(expected, str) or not expected or not isinstance(sent, str):
        return False
    return secrets.compare_digest(expected.encode(), sent.encode())
