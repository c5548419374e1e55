"""Staff accounts: roles, argon2id passwords, server-side sessions, CSRF tokens and the login rate limit.

Framework-free: these functions take a SQLAlchemy session and ``now`` and never commit; the FastAPI layer
(:mod:`mailservice.web.staff.deps`) and the CLI call them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from mailservice.mail.addresses import address_key
from mailservice.web.staff.models import LoginAttempt, StaffSession, StaffUser


class Role(StrEnum):
    """What a member of staff may do in the console."""

    operator = "operator"  # works the request queue
    publisher = "publisher"  # publishes disclosure documents (publishing issue)
    mailing_manager = "mailing_manager"  # runs consent-only mailings (mailings issue)
    administrator = "administrator"  # everything, plus staff accounts and the audit log
    # The officer responsible for client-centricity: the only one who changes the process register (seed 003,
    # appendix 2, section III; issue 18).
    process_officer = "process_officer"


ROLE_NAMES = {
    Role.operator: "оператор",
    Role.publisher: "публикатор",
    Role.mailing_manager: "менеджер рассылок",
    Role.administrator: "администратор",
    Role.process_officer: "ответственный за внедрение клиентоцентричности",
}

# Who may use which part of the console (other domains' routers pick the set that fits them).
ANY_ROLE = frozenset(Role)
OPERATE = frozenset({Role.operator, Role.administrator})
FEEDBACK_VIEW = frozenset({Role.operator, Role.mailing_manager, Role.administrator})
ADMIN = frozenset({Role.administrator})

SESSION_IDLE = dt.timedelta(hours=8)
SESSION_MAX = dt.timedelta(hours=12)
# Touch last_seen_at at most this often: a write per page view would serialise SQLite for nothing.
SESSION_TOUCH = dt.timedelta(minutes=1)

# Login throttling (OWASP Authentication Cheat Sheet, "account lockout" without locking the owner out): an
# address that fails too often is refused for a while; failures for one account from one address make that
# address wait longer and longer, while the owner logging in from elsewhere is not held up. README lists the values.
LOGIN_WINDOW = dt.timedelta(minutes=15)
MAX_FAILURES_PER_IP = 20  # any accounts, in LOGIN_WINDOW
FREE_FAILURES_PER_ACCOUNT_IP = 5  # then 1, 2, 4, 8... minutes between attempts from that address
ACCOUNT_IP_BASE_DELAY = dt.timedelta(minutes=1)
ACCOUNT_IP_MAX_DELAY = dt.timedelta(minutes=15)
ACCOUNT_IP_MEMORY = dt.timedelta(hours=24)  # failures older than this (or before a success) are forgotten
MIN_PASSWORD_LENGTH = 10

# argon2-cffi's defaults are RFC 9106's second recommended profile (argon2id, 64 MiB, t=3, p=4).
_hasher = PasswordHasher()
# A real hash of a random password: unknown accounts are checked against it so that timing does not tell
# which addresses have accounts.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AuthError(ValueError):
    """A refused staff operation; the message is Russian and shown as is."""


def normalise_email(email: str) -> str:
    """Staff log in with their address in any case; it is stored by its key (mail.addresses: lower-cased)."""
    return address_key(email)


def check_password_policy(password: str) -> None:
    """Raise :class:`AuthError` for a password too short to resist guessing (NIST SP 800-63B 5.1.1)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(f"Пароль должен быть не короче {MIN_PASSWORD_LENGTH} символов")
    if len(password) > 1024:
        raise AuthError("Пароль слишком длинный")


def hash_password(password: str) -> str:
    """An argon2id hash of the password (with its own salt and parameters)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches the hash; never raises for a wrong password or a broken hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def token_digest(token: str) -> str:
    """SHA-256 of a session token, as stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    """Constant-time comparison of two tokens (CSRF)."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


# Accounts ---------------------------------------------------------------------------------------------------


def get_user_by_email(session: Session, email: str) -> StaffUser | None:
    """The account with this address (any case)."""
    return session.scalar(select(StaffUser).where(StaffUser.email == normalise_email(email)))


def create_user(
    session: Session,
    *,
    email: str,
    role: Role,
    password: str,
    now: dt.datetime,
    name: str = "",
    position: str = "",
) -> StaffUser:
    """Create an account; refuses a taken address or a weak password."""
    address = normalise_email(email)
    if "@" not in address or len(address) > 320:
        raise AuthError(f"Неверный адрес: {email!r}")
    if get_user_by_email(session, address) is not None:
        raise AuthError(f"Сотрудник с адресом {address} уже есть")
    check_password_policy(password)
    user = StaffUser(
        email=address,
        role=role,
        name=name,
        position=position,
        password_hash=hash_password(password),
        active=True,
        created_at=now,
        password_changed_at=now,
    )
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, user: StaffUser, password: str, now: dt.datetime) -> None:
    """Change a password and end every session of the account (a stolen session dies with the old one)."""
    check_password_policy(password)
    user.password_hash = hash_password(password)
    user.password_changed_at = now
    session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))


# Login ------------------------------------------------------------------------------------------------------


def account_ip_delay(failures: int) -> dt.timedelta:
    """How long an address waits after its last failure for one account, given its failures in a row (pure)."""
    if failures < FREE_FAILURES_PER_ACCOUNT_IP:
        return dt.timedelta(0)
    steps = min(failures - FREE_FAILURES_PER_ACCOUNT_IP, 16)
    return min(ACCOUNT_IP_BASE_DELAY * 2**steps, ACCOUNT_IP_MAX_DELAY)


def login_wait(
    *,
    failures_for_ip: int,
    oldest_ip_failure: dt.datetime | None,
    failures_for_account_ip: int,
    last_account_ip_failure: dt.datetime | None,
    now: dt.datetime,
) -> dt.timedelta:
    """How long a login must wait before its password is even checked; zero when it may go ahead (pure)."""
    waits = [dt.timedelta(0)]
    if failures_for_ip >= MAX_FAILURES_PER_IP and oldest_ip_failure is not None:
        waits.append(oldest_ip_failure + LOGIN_WINDOW - now)
    if last_account_ip_failure is not None:
        waits.append(last_account_ip_failure + account_ip_delay(failures_for_account_ip) - now)
    return max(waits)


def _ip_failures(session: Session, ip: str, now: dt.datetime) -> tuple[int, dt.datetime | None]:
    """Failures from ``ip`` in the window, and (when over the limit) the failure whose leaving frees the address."""
    recent = (LoginAttempt.success.is_(False), LoginAttempt.ip == ip, LoginAttempt.at > now - LOGIN_WINDOW)
    count = int(session.scalar(select(func.count(LoginAttempt.id)).where(*recent)) or 0)
    if count < MAX_FAILURES_PER_IP:
        return count, None
    newest = session.scalars(
        select(LoginAttempt.at).where(*recent).order_by(LoginAttempt.at.desc()).limit(MAX_FAILURES_PER_IP)
    ).all()
    return count, newest[-1]


def _account_ip_failures(session: Session, email: str, ip: str, now: dt.datetime) -> tuple[int, dt.datetime | None]:
    """Failures for this account from this address since its last success (within the memory), and the last one."""
    pair = (LoginAttempt.email == email, LoginAttempt.ip == ip, LoginAttempt.at > now - ACCOUNT_IP_MEMORY)
    last_success = session.scalar(select(func.max(LoginAttempt.at)).where(*pair, LoginAttempt.success.is_(True)))
    failed = [*pair, LoginAttempt.success.is_(False)]
    if last_success is not None:
        failed.append(LoginAttempt.at > last_success)
    count, last = session.execute(select(func.count(LoginAttempt.id), func.max(LoginAttempt.at)).where(*failed)).one()
    return int(count or 0), last


@dataclass(frozen=True)
class LoginResult:
    """The outcome of a login: the account, or why not (``blocked``: rate-limited for ``retry_after``)."""

    user: StaffUser | None
    blocked: bool = False
    retry_after: dt.timedelta = dt.timedelta(0)


def authenticate(session: Session, *, email: str, password: str, ip: str, now: dt.datetime) -> LoginResult:
    """Check a login and record the attempt. While rate-limited the password is not even checked, and the refused
    attempt is not counted (the audit log has it): waiting is all it takes."""
    address = normalise_email(email)[:320]
    ip = ip[:64]
    ip_count, ip_oldest = _ip_failures(session, ip, now)
    account_count, account_last = _account_ip_failures(session, address, ip, now)
    wait = login_wait(
        failures_for_ip=ip_count,
        oldest_ip_failure=ip_oldest,
        failures_for_account_ip=account_count,
        last_account_ip_failure=account_last,
        now=now,
    )
    if wait > dt.timedelta(0):
        return LoginResult(None, blocked=True, retry_after=wait)
    user = get_user_by_email(session, address)
    ok = verify_password(user.password_hash if user else _DUMMY_HASH, password)
    ok = ok and user is not None and user.active
    session.add(LoginAttempt(at=now, email=address, ip=ip, success=ok))
    if not ok or user is None:
        return LoginResult(None)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = now
    return LoginResult(user)


def open_session(session: Session, user: StaffUser, *, ip: str, user_agent: str, now: dt.datetime) -> str:
    """Start a session for the user; returns the raw token for the cookie (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    session.add(
        StaffSession(
            user_id=user.id,
            token_hash=token_digest(token),
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + SESSION_MAX,
            ip=ip[:64],
            user_agent=user_agent[:300],
        )
    )
    session.flush()
    return token


def load_session(session: Session, token: str, now: dt.datetime) -> tuple[StaffSession, StaffUser] | None:
    """The live session and active account behind a raw token, or None (expired, idle, revoked, disabled)."""
    # One query for both (every console page asks): a round trip costs most under load, not the join.
    found = session.execute(
        select(StaffSession, StaffUser)
        .join(StaffUser, StaffUser.id == StaffSession.user_id)
        .where(StaffSession.token_hash == token_digest(token))
    ).one_or_none()
    if found is None:
        return None
    row, user = found
    if now >= row.expires_at or now - row.last_seen_at >= SESSION_IDLE:
        session.delete(row)
        return None
    if not user.active:
        return None
    if now - row.last_seen_at >= SESSION_TOUCH:
        row.last_seen_at = now
    return row, user


def close_session(session: Session, token: str) -> None:
    """Log out: forget the session."""
    session.execute(delete(StaffSession).where(StaffSession.token_hash == token_digest(token)))


def purge(session: Session, now: dt.datetime, keep_attempts: dt.timedelta = dt.timedelta(days=30)) -> tuple[int, int]:
    """Delete expired sessions and old login attempts; returns (sessions, attempts) deleted."""
    sessions = session.execute(delete(StaffSession).where(StaffSession.expires_at < now))
    attempts = session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - keep_attempts))
    return int(sessions.rowcount or 0), int(attempts.rowcount or 0)  # type: ignore[attr-defined]
