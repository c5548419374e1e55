"""Staff accounts, login limits and sessions, function by function (README, "Staff console" and "Security model").

The console tests (tests/test_console.py, tests/security/test_surface_login.py) go through the login page; these call
:mod:`mailservice.web.staff.auth` with a chosen ``now`` and read back what it stores, on both databases. Every value
is the README's (``tests/documented.py``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.web.staff import auth
from mailservice.web.staff.auth import AuthError, Role
from mailservice.web.staff.models import LoginAttempt, StaffSession, StaffUser
from tests import documented
from tests.conftest import make_env, reset_caches

# A deprecated library call in the auth module fails here, before the library drops it (Row.tuple(), SQLAlchemy 2.1).
pytestmark = pytest.mark.filterwarnings("error::DeprecationWarning")

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
OWNER = "owner@dizo.test"
PASSWORD = "correct horse battery"
IP = "203.0.113.7"
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str) -> Iterator[Settings]:
    """Both backends, one operator account."""
    settings = make_env(monkeypatch, tmp_path, db_url)
    with session_scope(settings) as session:
        auth.create_user(session, email=OWNER, role=Role.operator, password=PASSWORD, now=T0)
    yield settings
    reset_caches()


def _failures(
    session: Session, n: int, *, at: dt.datetime, email: str = OWNER, ip: str = IP, step: dt.timedelta = SECOND
) -> None:
    """``n`` failed attempts recorded as the login would, one ``step`` apart from ``at`` on."""
    for k in range(n):
        session.add(LoginAttempt(at=at + k * step, email=email, ip=ip, success=False))
    session.flush()


def _login(settings: Settings, now: dt.datetime, password: str = PASSWORD, ip: str = IP) -> auth.LoginResult:
    with session_scope(settings) as session:
        return auth.authenticate(session, email=OWNER, password=password, ip=ip, now=now)


# Pure rules ----------------------------------------------------------------------------------------------------


def test_the_wait_after_each_failure_follows_the_readme() -> None:
    free = documented.LOGIN_FREE_FAILURES
    assert [auth.account_ip_delay(n) for n in range(free)] == [dt.timedelta(0)] * free
    waits = [auth.account_ip_delay(free + k) for k in range(len(documented.LOGIN_WAITS))]
    assert waits == list(documented.LOGIN_WAITS)
    assert auth.account_ip_delay(free + 40) == auth.account_ip_delay(10**6) == documented.LOGIN_WAITS[-1]


def test_login_wait_is_the_longer_of_the_two_limits() -> None:
    now = T0 + dt.timedelta(hours=1)

    def wait(ip_n: int, oldest: dt.datetime | None, account_n: int, last: dt.datetime | None) -> dt.timedelta:
        return auth.login_wait(
            failures_for_ip=ip_n,
            oldest_ip_failure=oldest,
            failures_for_account_ip=account_n,
            last_account_ip_failure=last,
            now=now,
        )

    per_ip, window = documented.LOGIN_FAILURES_PER_ADDRESS, documented.LOGIN_ADDRESS_WINDOW
    assert wait(0, None, 0, None) == dt.timedelta(0)
    assert wait(per_ip - 1, now - SECOND, 0, None) == dt.timedelta(0)
    assert wait(per_ip, now - dt.timedelta(minutes=5), 0, None) == window - dt.timedelta(minutes=5)
    assert wait(per_ip + 5, None, 0, None) == dt.timedelta(0)  # nothing to wait for without its oldest failure
    free = documented.LOGIN_FREE_FAILURES
    assert wait(0, None, free, now - 20 * SECOND) == documented.LOGIN_FIRST_WAIT - 20 * SECOND
    assert wait(0, None, free - 1, now - 20 * SECOND) == dt.timedelta(0)
    assert wait(per_ip, now - window + SECOND, free + 2, now - SECOND) == documented.LOGIN_WAITS[2] - SECOND
    assert wait(0, None, free, now - dt.timedelta(hours=1)) == dt.timedelta(0)  # long past: never negative


def test_password_length_is_the_readmes() -> None:
    short, longest = documented.PASSWORD_MIN_CHARS, documented.PASSWORD_MAX_CHARS
    with pytest.raises(AuthError) as refused:
        auth.check_password_policy("x" * (short - 1))
    assert str(refused.value) == f"Пароль должен быть не короче {short} символов"
    auth.check_password_policy("x" * short)
    auth.check_password_policy("x" * longest)
    with pytest.raises(AuthError) as refused:
        auth.check_password_policy("x" * (longest + 1))
    assert str(refused.value) == "Пароль слишком длинный"


def test_addresses_tokens_and_passwords() -> None:
    assert auth.normalise_email("  Owner@Dizo.TEST ") == OWNER
    assert auth.tokens_equal("токен-1", "токен-1") and not auth.tokens_equal("токен-1", "токен-2")
    assert auth.token_digest("токен") == hashlib.sha256("токен".encode()).hexdigest()
    stored = auth.hash_password(PASSWORD)
    assert stored.startswith("$argon2id$") and auth.verify_password(stored, PASSWORD)
    assert not auth.verify_password(stored, PASSWORD + "!") and not auth.verify_password("broken", PASSWORD)


# Accounts ------------------------------------------------------------------------------------------------------


def test_an_account_is_stored_lower_cased_active_and_hashed(db: Settings) -> None:
    with session_scope(db) as session:
        user = auth.get_user_by_email(session, "OWNER@dizo.test")
        assert user is not None and user.email == OWNER
        assert (user.role, user.name, user.position, user.active) == ("operator", "", "", True)
        assert (user.created_at, user.password_changed_at, user.last_login_at) == (T0, T0, None)
        assert auth.verify_password(user.password_hash, PASSWORD)
        other = auth.create_user(
            session, email="Chief@Dizo.test", role=Role.administrator, password=PASSWORD, now=T0, name="Иванова",
            position="Начальник отдела",
        )  # fmt: skip
        # The position is printed under the answers this account signs (8-FZ art. 19).
        assert (other.email, other.role, other.name, other.position) == (
            "chief@dizo.test", "administrator", "Иванова", "Начальник отдела"
        )  # fmt: skip
        assert auth.get_user_by_email(session, "nobody@dizo.test") is None


def test_an_account_is_refused_a_bad_or_taken_address(db: Settings) -> None:
    longest = StaffUser.__table__.c.email.type.length  # type: ignore[attr-defined]
    with session_scope(db) as session:
        for address, message in (
            ("no-at-sign", "Неверный адрес: 'no-at-sign'"),
            ("Owner@DIZO.test", "Сотрудник с адресом owner@dizo.test уже есть"),
        ):
            with pytest.raises(AuthError) as refused:
                auth.create_user(session, email=address, role=Role.operator, password=PASSWORD, now=T0)
            assert str(refused.value) == message
        too_long = "a" * (longest - len("@dizo.test") + 1) + "@dizo.test"
        with pytest.raises(AuthError):
            auth.create_user(session, email=too_long, role=Role.operator, password=PASSWORD, now=T0)
        auth.create_user(session, email=too_long[1:], role=Role.operator, password=PASSWORD, now=T0)
        with pytest.raises(AuthError):
            auth.create_user(session, email="new@dizo.test", role=Role.operator, password="short", now=T0)
        assert session.scalar(select(func.count(StaffUser.id))) == 2


def test_a_new_password_ends_that_accounts_sessions_only(db: Settings) -> None:
    later = T0 + dt.timedelta(hours=1)
    with session_scope(db) as session:
        user = auth.get_user_by_email(session, OWNER)
        other = auth.create_user(session, email="other@dizo.test", role=Role.operator, password=PASSWORD, now=T0)
        assert user is not None
        auth.open_session(session, user, ip=IP, user_agent="UA", now=T0)
        kept = auth.open_session(session, other, ip=IP, user_agent="UA", now=T0)
        with pytest.raises(AuthError):
            auth.set_password(session, user, "short", later)
        auth.set_password(session, user, "another long password", later)
        session.flush()
        assert user.password_changed_at == later and auth.verify_password(user.password_hash, "another long password")
        assert session.scalars(select(StaffSession.user_id)).all() == [other.id]
        assert auth.load_session(session, kept, later) is not None


# Login --------------------------------------------------------------------------------------------------------


def test_a_login_is_recorded_and_only_the_right_password_of_an_active_account_passes(db: Settings) -> None:
    assert _login(db, T0, password="wrong password!").user is None
    ok = _login(db, T0 + SECOND)
    assert ok.user is not None and not ok.blocked and ok.retry_after == dt.timedelta(0)
    with session_scope(db) as session:
        user = auth.get_user_by_email(session, OWNER)
        assert user is not None and user.last_login_at == T0 + SECOND
        attempts = session.scalars(select(LoginAttempt).order_by(LoginAttempt.id)).all()
        assert [(a.at, a.email, a.ip, a.success) for a in attempts] == [
            (T0, OWNER, IP, False),
            (T0 + SECOND, OWNER, IP, True),
        ]
        user.active = False
    assert _login(db, T0 + 2 * SECOND).user is None  # a disabled account, even with its password
    with session_scope(db) as session:
        result = auth.authenticate(session, email="nobody@dizo.test", password=PASSWORD, ip=IP, now=T0)
        assert result.user is None and not result.blocked


def test_a_long_address_or_ip_is_cut_to_the_columns(db: Settings) -> None:
    email_chars = LoginAttempt.__table__.c.email.type.length  # type: ignore[attr-defined]
    ip_chars = LoginAttempt.__table__.c.ip.type.length  # type: ignore[attr-defined]
    with session_scope(db) as session:
        auth.authenticate(session, email="x" * 400 + "@dizo.test", password=PASSWORD, ip="9" * 100, now=T0)
    with session_scope(db) as session:
        attempt = session.scalars(select(LoginAttempt)).one()
        assert (attempt.email, attempt.ip) == (("x" * 400)[:email_chars], "9" * ip_chars)


def test_an_old_hash_is_upgraded_at_login(db: Settings) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with session_scope(db) as session:
        user = auth.get_user_by_email(session, OWNER)
        assert user is not None
        user.password_hash = weak
    assert _login(db, T0).user is not None
    with session_scope(db) as session:
        user = auth.get_user_by_email(session, OWNER)
        assert user is not None and user.password_hash != weak
        assert auth.verify_password(user.password_hash, PASSWORD) and "m=65536" in user.password_hash


def test_a_blocked_login_says_how_long_and_is_not_counted(db: Settings) -> None:
    free = documented.LOGIN_FREE_FAILURES
    with session_scope(db) as session:
        _failures(session, free, at=T0)
    last = T0 + (free - 1) * SECOND
    blocked = _login(db, last + 10 * SECOND)
    assert (blocked.user, blocked.blocked, blocked.retry_after) == (
        None,
        True,
        documented.LOGIN_FIRST_WAIT - 10 * SECOND,
    )
    with session_scope(db) as session:
        assert session.scalar(select(func.count(LoginAttempt.id))) == free
    assert _login(db, last + documented.LOGIN_FIRST_WAIT).user is not None  # the wait over: checked again


def test_the_address_limit_frees_the_address_when_its_twentieth_newest_failure_leaves(db: Settings) -> None:
    per_ip, window = documented.LOGIN_FAILURES_PER_ADDRESS, documented.LOGIN_ADDRESS_WINDOW
    with session_scope(db) as session:  # five more than the limit, other accounts, a second apart
        for k in range(per_ip + 5):
            _failures(session, 1, at=T0 + k * SECOND, email=f"nobody{k}@dizo.test")
    now = T0 + 60 * SECOND
    freed_at = T0 + 5 * SECOND + window  # the oldest five leave, then the twentieth newest
    assert _login(db, now).retry_after == freed_at - now
    assert _login(db, now, ip="203.0.113.8").user is not None  # another address is not held up
    assert _login(db, freed_at).user is not None


def test_the_twentieth_failure_from_an_address_closes_it_the_nineteenth_does_not(db: Settings) -> None:
    per_ip, window = documented.LOGIN_FAILURES_PER_ADDRESS, documented.LOGIN_ADDRESS_WINDOW
    with session_scope(db) as session:  # other accounts, so that the per-account wait does not come into it
        for k in range(per_ip - 1):
            _failures(session, 1, at=T0 + k * SECOND, email=f"nobody{k}@dizo.test")
    now = T0 + 60 * SECOND
    assert _login(db, now).user is not None  # one failure short of the limit (the success does not count)
    with session_scope(db) as session:
        _failures(session, 1, at=now - SECOND, email="nobody-last@dizo.test")
    blocked = _login(db, now)
    assert blocked.blocked and blocked.retry_after == T0 + window - now  # until the oldest of the twenty leaves


def test_successful_logins_never_count_toward_the_address_limit(db: Settings) -> None:
    with session_scope(db) as session:
        for k in range(documented.LOGIN_FAILURES_PER_ADDRESS + 1):
            session.add(LoginAttempt(at=T0 + k * SECOND, email=f"u{k}@dizo.test", ip=IP, success=True))
    assert _login(db, T0 + dt.timedelta(minutes=1)).user is not None


def test_account_failures_count_per_account_and_address_and_are_forgotten_after_a_day(db: Settings) -> None:
    free, memory = documented.LOGIN_FREE_FAILURES, documented.LOGIN_MEMORY
    now = T0 + dt.timedelta(days=2)
    with session_scope(db) as session:
        _failures(session, free, at=now - dt.timedelta(minutes=30), email="other@dizo.test")  # another account
        _failures(session, free, at=now - dt.timedelta(minutes=30), ip="198.51.100.1")  # from elsewhere
        _failures(session, 1, at=now - memory)  # exactly a day old: forgotten
        _failures(session, free - 1, at=now - 10 * SECOND)
    assert _login(db, now).user is not None


def test_a_success_from_that_address_clears_the_count_and_no_other_does(db: Settings) -> None:
    free = documented.LOGIN_FREE_FAILURES
    now = T0 + dt.timedelta(hours=3)
    with session_scope(db) as session:
        _failures(session, free, at=now - dt.timedelta(minutes=1))
        session.add(LoginAttempt(at=now - 30 * SECOND, email="other@dizo.test", ip=IP, success=True))
        session.add(LoginAttempt(at=now - 30 * SECOND, email=OWNER, ip="198.51.100.1", success=True))
    assert _login(db, now).blocked
    with session_scope(db) as session:
        session.add(LoginAttempt(at=now - 20 * SECOND, email=OWNER, ip=IP, success=True))
        _failures(session, free - 1, at=now - 10 * SECOND)
    assert _login(db, now).user is not None
    # Failures after the newest success (that login's) count again: the free ones used up, the address waits.
    with session_scope(db) as session:
        _failures(session, free, at=now + SECOND)
    last = now + free * SECOND
    assert _login(db, last + SECOND).retry_after == documented.LOGIN_FIRST_WAIT - SECOND


# Sessions -----------------------------------------------------------------------------------------------------


def _open(settings: Settings, *, ip: str = IP, user_agent: str = "UA") -> str:
    with session_scope(settings) as session:
        user = auth.get_user_by_email(session, OWNER)
        assert user is not None
        return auth.open_session(session, user, ip=ip, user_agent=user_agent, now=T0)


def _alive(settings: Settings, token: str, now: dt.datetime) -> bool:
    with session_scope(settings) as session:
        return auth.load_session(session, token, now) is not None


def test_a_session_stores_only_the_hash_of_its_token(db: Settings) -> None:
    token = _open(db, ip="9" * 100, user_agent="U" * 500)
    with session_scope(db) as session:
        row = session.scalars(select(StaffSession)).one()
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in row.token_hash
        assert (row.created_at, row.last_seen_at, row.expires_at) == (T0, T0, T0 + documented.SESSION_MAX)
        assert len(row.csrf_token) >= 43 and row.csrf_token != token  # 256 random bits, apart from the cookie
        ip_chars = StaffSession.__table__.c.ip.type.length  # type: ignore[attr-defined]
        ua_chars = StaffSession.__table__.c.user_agent.type.length  # type: ignore[attr-defined]
        assert (row.ip, row.user_agent) == ("9" * ip_chars, "U" * ua_chars)
        loaded = auth.load_session(session, token, T0)
        assert loaded is not None and loaded[1].email == OWNER
        assert auth.load_session(session, token + "x", T0) is None


def test_a_session_ends_when_idle_for_the_documented_time(db: Settings) -> None:
    idle = documented.SESSION_IDLE
    token = _open(db)
    assert _alive(db, token, T0 + idle - SECOND)
    other = _open(db)
    assert not _alive(db, other, T0 + idle)
    with session_scope(db) as session:  # the idle session is gone, the other stays
        assert session.scalar(select(func.count(StaffSession.id))) == 1


def test_a_session_ends_at_its_maximum_however_busy(db: Settings) -> None:
    token = _open(db)
    for hours in (4, 8, 11):
        assert _alive(db, token, T0 + dt.timedelta(hours=hours))
    assert _alive(db, token, T0 + documented.SESSION_MAX - SECOND)
    assert not _alive(db, token, T0 + documented.SESSION_MAX)


def test_a_page_view_counts_at_most_once_a_touch_interval(db: Settings) -> None:
    touch = documented.SESSION_TOUCH
    token = _open(db)
    with session_scope(db) as session:
        assert auth.load_session(session, token, T0 + touch - SECOND) is not None
        assert session.scalars(select(StaffSession.last_seen_at)).one() == T0
        loaded = auth.load_session(session, token, T0 + touch)
        assert loaded is not None and loaded[0].last_seen_at == T0 + touch


def test_a_disabled_account_has_no_session(db: Settings) -> None:
    token = _open(db)
    with session_scope(db) as session:
        user = auth.get_user_by_email(session, OWNER)
        assert user is not None
        user.active = False
    assert not _alive(db, token, T0 + SECOND)


def test_logout_ends_that_session_only(db: Settings) -> None:
    first, second = _open(db), _open(db)
    with session_scope(db) as session:
        auth.close_session(session, first)
    assert not _alive(db, first, T0) and _alive(db, second, T0)


def test_purge_deletes_what_is_past_its_time_and_says_how_many(db: Settings) -> None:
    kept = documented.LOGIN_ATTEMPTS_KEPT
    _open(db)
    now = T0 + documented.SESSION_MAX
    with session_scope(db) as session:
        expired = StaffSession(
            user_id=session.scalar(select(StaffUser.id)),
            token_hash="0" * 64,
            csrf_token="c",
            created_at=T0 - dt.timedelta(days=1),
            last_seen_at=T0 - dt.timedelta(days=1),
            expires_at=now - SECOND,
        )
        session.add(expired)
        _failures(session, 2, at=now - kept - 2 * SECOND)
        _failures(session, 1, at=now - kept)
        assert auth.purge(session, now) == (1, 2)
    with session_scope(db) as session:
        assert session.scalar(select(func.count(StaffSession.id))) == 1  # the one expiring this very moment stays
        assert session.scalar(select(func.count(LoginAttempt.id))) == 1
        assert auth.purge(session, now) == (0, 0)
