"""Login throttling: failed logins lock the account and the client address for a while.

Attempts are rows in the database, so every server process counts the same ones. The rule: when
``max_failures`` failed logins for one name (or ``max_failures_per_address`` from one address: a
larger limit, as several operators may share one behind a NAT) fall within ``window``, that name (or
address) is locked for ``lockout`` from the failure that reached the count. Logins during the lock
are refused without checking the password, and do not extend it. A successful login clears the
count of its name (not of its address, which may try other names).

An attempt is recorded (committed, as pending) *before* it counts the others and before its
password is checked, so parallel tries cannot slip past the count together: of any two, the one
recorded later counts the other. At most ``max_failures`` passwords of a name are checked before
it locks, however many requests arrive at once.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from review.settings import ReviewSettings
from review.timefmt import as_utc
from schema.tables import LoginAttempt, LoginOutcome

COUNTED = (LoginOutcome.failed, LoginOutcome.pending)
# Attempts are kept at least this long (they explain a lockout to an administrator).
KEEP_AT_LEAST = timedelta(days=1)


@dataclass(frozen=True)
class ThrottleRules:
    max_failures: int  # per name
    max_failures_per_address: int
    window: timedelta
    lockout: timedelta

    @classmethod
    def of(cls, settings: ReviewSettings) -> ThrottleRules:
        return cls(
            max_failures=settings.review_login_max_failures,
            max_failures_per_address=settings.review_login_max_failures_per_address,
            window=timedelta(minutes=settings.review_login_window_minutes),
            lockout=timedelta(minutes=settings.review_login_lockout_minutes),
        )


@dataclass(frozen=True)
class Attempt:
    """A recorded login attempt; ``locked_until`` when it was refused by a lockout."""

    id: int
    locked_until: datetime | None


def address_key(host: str | None) -> str:
    """The client address a lockout applies to: the address itself, or its /64 network for IPv6."""
    if not host:
        return "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def lock_end(
    attempts: Iterable[tuple[datetime, LoginOutcome]],
    rules: ThrottleRules,
    limit: int,
    *,
    success_clears: bool,
) -> datetime | None:
    """When the last lockout that ``attempts`` (oldest first) earned ends, or None if they earned none.

    ``limit`` failures within the rules' window earn one.
    """
    recent: deque[datetime] = deque()
    end: datetime | None = None
    for at, outcome in attempts:
        if end is not None and at < end:
            continue  # tried during a lock: refused unchecked (or racing it), so not counted
        if outcome == LoginOutcome.ok and success_clears:
            recent.clear()
        if outcome not in COUNTED:
            continue
        recent.append(at)
        while recent[0] <= at - rules.window:
            recent.popleft()
        if len(recent) >= limit:
            end = at + rules.lockout
            recent.clear()
    return end


def begin_attempt(session: Session, name: str, address: str, rules: ThrottleRules, now: datetime) -> Attempt:
    """Record an attempt (pending), then decide whether a lockout refuses it; commits."""
    row = LoginAttempt(name=name[:100], address=address, outcome=LoginOutcome.pending, at=now)
    session.add(row)
    session.commit()
    since = now - rules.window - rules.lockout
    earlier = session.execute(
        select(LoginAttempt.name, LoginAttempt.address, LoginAttempt.at, LoginAttempt.outcome)
        .where(
            or_(LoginAttempt.name == row.name, LoginAttempt.address == address),
            LoginAttempt.at >= since,
            LoginAttempt.id != row.id,
        )
        .order_by(LoginAttempt.at, LoginAttempt.id)
    ).all()
    by_name = [(as_utc(a.at), a.outcome) for a in earlier if a.name == row.name]
    by_address = [(as_utc(a.at), a.outcome) for a in earlier if a.address == address]
    ends = [
        lock_end(by_name, rules, rules.max_failures, success_clears=True),
        lock_end(by_address, rules, rules.max_failures_per_address, success_clears=False),
    ]
    locked_until = max((e for e in ends if e is not None and e > now), default=None)
    if locked_until is not None:
        row.outcome = LoginOutcome.locked
        session.commit()
    return Attempt(id=row.id, locked_until=locked_until)


def finish_attempt(session: Session, attempt_id: int, ok: bool, rules: ThrottleRules, now: datetime) -> None:
    """Record the outcome of a checked attempt, and forget attempts too old to matter; commits."""
    outcome = LoginOutcome.ok if ok else LoginOutcome.failed
    session.execute(update(LoginAttempt).where(LoginAttempt.id == attempt_id).values(outcome=outcome))
    keep = max(KEEP_AT_LEAST, rules.window + rules.lockout)
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - keep))
    session.commit()
