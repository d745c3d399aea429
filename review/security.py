"""Operator passwords (argon2) and per-session CSRF tokens."""

from __future__ import annotations

import secrets
from collections.abc import MutableMapping
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from review.errors import OperatorError
from schema.tables import Operator

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


def authenticate(session: Session, name: str, password: str) -> Operator | None:
    """The active operator with this name and password, or None. Rehashes an outdated hash."""
    operator = session.scalar(select(Operator).where(Operator.name == name.strip()))
    if operator is None or not operator.active:
        verify_password(_DUMMY_HASH, password)
        return None
    if not verify_password(operator.password_hash, password):
        return None
    if _hasher.check_needs_rehash(operator.password_hash):
        operator.password_hash = _hasher.hash(password)
        session.commit()
    return operator


def create_operator(session: Session, name: str, password: str, *, replace: bool = False) -> Operator:
    """Create an operator (or, with ``replace``, set a new password for an existing one)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise OperatorError("an operator name has 1 to 100 characters")
    password_hash = hash_password(password)
    operator = session.scalar(select(Operator).where(Operator.name == name))
    if operator is not None and not replace:
        raise OperatorError(f"operator {name!r} exists already (use --update to set a new password)")
    if operator is None:
        operator = Operator(name=name, password_hash=password_hash, active=True)
        session.add(operator)
    else:
        operator.password_hash = password_hash
        operator.active = True
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise OperatorError(f"operator {name!r} exists already") from exc
    return operator


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
