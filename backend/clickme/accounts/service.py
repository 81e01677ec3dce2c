"""Staff service functions: accounts, login with throttling, server-side sessions.

Failed logins are throttled per (email, address) and per address, each a hard limit in a
15-minute window; and per email, from every address together, by a backoff that doubles with each
failure. The backoff does not stop the right password from an address the user signed in from
before, so nobody can lock the admins out by failing on purpose from elsewhere.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from clickme.accounts import security
from clickme.accounts.models import LoginFailure, StaffKnownAddress, StaffSession, StaffUser
from clickme.accounts.schemas import StaffUserCreate, StaffUserOut, StaffUserUpdate
from clickme.core.db import utcnow
from clickme.core.errors import Conflict, Forbidden, NotFound, NotSignedIn, TooManyRequests

SESSION_LIFETIME = timedelta(hours=12)
SESSION_IDLE_TIMEOUT = timedelta(hours=2)
LAST_SEEN_RESOLUTION = timedelta(minutes=1)
THROTTLE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5  # from one address
MAX_FAILURES_PER_IP = 20
BACKOFF_AFTER_FAILURES = 5  # per email, from every address: then 1 s, 2 s, 4 s, ... 15 min


@dataclass(frozen=True)
class NewSession:
    """A session just opened: the raw token goes into the cookie and nowhere else."""

    token: str
    row: StaffSession


def find_user(session: Session, email: str) -> StaffUser | None:
    return session.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))


def emails_by_id(session: Session, user_ids: set[int]) -> dict[int, str]:
    """The staff members' emails by id (ids of deleted accounts are left out)."""
    rows = session.execute(select(StaffUser.id, StaffUser.email).where(StaffUser.id.in_(user_ids)))
    return {user_id: email for user_id, email in rows}


def create_user(session: Session, data: StaffUserCreate) -> StaffUser:
    if find_user(session, data.email) is not None:
        raise Conflict("email_taken", f"a staff account for {data.email} already exists")
    user = StaffUser(
        email=data.email, password_hash=security.hash_password(data.password), role=data.role
    )
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[StaffUserOut]:
    users = session.scalars(select(StaffUser).order_by(StaffUser.id)).all()
    return [StaffUserOut.model_validate(user, from_attributes=True) for user in users]


def _other_active_admins(session: Session, user: StaffUser) -> int:
    return session.execute(
        select(func.count(StaffUser.id)).where(
            StaffUser.role == "admin", StaffUser.disabled.is_(False), StaffUser.id != user.id
        )
    ).scalar_one()


def update_user(session: Session, user_id: int, changes: StaffUserUpdate) -> StaffUser:
    """Change a role or disable an account; the last active admin cannot be removed."""
    user = session.get(StaffUser, user_id)
    if user is None:
        raise NotFound("not_found", f"no staff account {user_id}")
    stops_being_admin = changes.role == "researcher" or changes.disabled is True
    if user.role == "admin" and stops_being_admin and _other_active_admins(session, user) == 0:
        raise Conflict("last_admin", "at least one active admin account must remain")
    if changes.role is not None:
        user.role = changes.role
    if changes.disabled is not None:
        user.disabled = changes.disabled
    if user.disabled:
        session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
    session.flush()
    return user


def _failures_since(session: Session, condition: Any, since: datetime) -> list[datetime]:
    return list(
        session.scalars(
            select(LoginFailure.at)
            .where(condition, LoginFailure.at > since)
            .order_by(LoginFailure.at)
        ).all()
    )


def _too_many_attempts(wait: timedelta) -> TooManyRequests:
    retry_after = max(1, math.ceil(wait.total_seconds()))
    return TooManyRequests(
        "too_many_attempts",
        f"too many failed logins: try again in {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


def _check_throttle(session: Session, email: str, ip_hash: str, now: datetime) -> None:
    """429 with the seconds to wait when this email from this address, or this address, has
    failed too often lately."""
    since = now - THROTTLE_WINDOW
    for condition, limit in (
        ((LoginFailure.key == email) & (LoginFailure.ip_hash == ip_hash), MAX_FAILURES_PER_EMAIL),
        (LoginFailure.ip_hash == ip_hash, MAX_FAILURES_PER_IP),
    ):
        failures = _failures_since(session, condition, since)
        if len(failures) >= limit:
            raise _too_many_attempts(failures[len(failures) - limit] + THROTTLE_WINDOW - now)


def email_backoff(session: Session, email: str, now: datetime) -> timedelta:
    """How long this email must still wait, whatever the address, after its failures from every
    address (nothing below BACKOFF_AFTER_FAILURES; then doubling from 1 s, at most the window)."""
    failures = _failures_since(session, LoginFailure.key == email, now - THROTTLE_WINDOW)
    if len(failures) < BACKOFF_AFTER_FAILURES:
        return timedelta(0)
    doublings = min(len(failures) - BACKOFF_AFTER_FAILURES, 20)
    backoff = min(timedelta(seconds=2**doublings), THROTTLE_WINDOW)
    return max(timedelta(0), failures[-1] + backoff - now)


def _is_known_address(session: Session, user: StaffUser | None, ip_hash: str) -> bool:
    if user is None:
        return False
    known = select(StaffKnownAddress.id).where(
        StaffKnownAddress.user_id == user.id, StaffKnownAddress.ip_hash == ip_hash
    )
    return session.scalar(known) is not None


def _remember_address(session: Session, user: StaffUser, ip_hash: str, now: datetime) -> None:
    known = session.scalar(
        select(StaffKnownAddress).where(
            StaffKnownAddress.user_id == user.id, StaffKnownAddress.ip_hash == ip_hash
        )
    )
    if known is None:
        session.add(StaffKnownAddress(user_id=user.id, ip_hash=ip_hash, last_login_at=now))
    else:
        known.last_login_at = now


def _record_failure(session: Session, email: str, ip_hash: str, now: datetime) -> None:
    session.execute(delete(LoginFailure).where(LoginFailure.at <= now - THROTTLE_WINDOW))
    session.add(LoginFailure(key=email, ip_hash=ip_hash, at=now))
    session.flush()


def authenticate(session: Session, email: str, password: str, ip_hash: str) -> StaffUser:
    """The user for these credentials; refusals are recorded (the caller keeps them)."""
    now = utcnow()
    _check_throttle(session, email, ip_hash, now)
    user = find_user(session, email)
    backoff = email_backoff(session, email, now)
    if backoff and not _is_known_address(session, user, ip_hash):
        raise _too_many_attempts(backoff)
    valid = security.verify_password(
        user.password_hash if user else security.dummy_hash(), password
    )
    if user is None or not valid:
        _record_failure(session, email, ip_hash, now)
        raise NotSignedIn("bad_credentials", "wrong email or password")
    if user.disabled:
        raise Forbidden("account_disabled", "this account is disabled")
    session.execute(delete(LoginFailure).where(LoginFailure.key == email))
    _remember_address(session, user, ip_hash, now)
    if security.needs_rehash(user.password_hash):
        user.password_hash = security.hash_password(password)
    return user


def open_session(session: Session, user: StaffUser) -> NewSession:
    """A fresh session (new token, new CSRF token); expired sessions are swept on the way."""
    now = utcnow()
    session.execute(delete(StaffSession).where(StaffSession.expires_at <= now))
    token = security.new_token()
    row = StaffSession(
        token_hash=security.token_hash(token),
        user_id=user.id,
        user=user,
        csrf_token=security.new_token(),
        created_at=now,
        expires_at=now + SESSION_LIFETIME,
        last_seen_at=now,
    )
    session.add(row)
    session.flush()
    return NewSession(token=token, row=row)


def close_session(session: Session, token: str | None) -> None:
    if token:
        session.execute(
            delete(StaffSession).where(StaffSession.token_hash == security.token_hash(token))
        )


def find_session(session: Session, token: str | None) -> StaffSession | None:
    """The live session of an enabled user for a cookie token (its last use noted), or None."""
    if not token or len(token) > 200:
        return None
    row = session.scalar(
        select(StaffSession).where(StaffSession.token_hash == security.token_hash(token))
    )
    now = utcnow()
    if row is None or row.user.disabled or row.expires_at <= now:
        return None
    if now - row.last_seen_at > SESSION_IDLE_TIMEOUT:
        return None
    if now - row.last_seen_at > LAST_SEEN_RESOLUTION:
        row.last_seen_at = now
    return row
