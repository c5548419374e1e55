"""One-time tokens of console forms that create something (a request registered from a call, a visit, the post).

The form carries a token from the page load; the submission records it in the same transaction as what it
creates. The same form sent again (a second press while the answer is slow, a lost answer, a browser's resend)
finds the token used and is shown what the first one created: one call gets one number, one acknowledgement and
one term (59-FZ art. 8, 8-FZ art. 18: the register holds each request once).

A token is signed with the time of its page load and is accepted for :data:`MAX_AGE`, the longest a console session
lasts: a used token's row is kept that long and then purged (:func:`purge`, a daily job), since an older token is
refused by its age alone, with or without its row.
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailservice import tokens
from mailservice.config import Settings
from mailservice.web.staff.auth import SESSION_MAX
from mailservice.web.staff.models import FormUse

TOKEN_CHARS = 64  # the column's length; a token is about 60 (16 random characters, time, signature)
MAX_AGE = SESSION_MAX  # a form loaded in a session that has ended is stale: the staff member loads it afresh
JOB = "form-uses-purge"


class AlreadyUsed(Exception):
    """The form was sent before; ``object_id`` is what that submission created (None if it is not known)."""

    def __init__(self, object_id: int | None) -> None:
        super().__init__(object_id)
        self.object_id = object_id


class Stale(Exception):
    """The form's token is older than :data:`MAX_AGE`, or not one this service issued: it is not accepted."""


def new_token(settings: Settings) -> str:
    """A token for one page load of a form: a random part, signed with the time of the load."""
    token = tokens.sign_timed(settings, tokens.Purpose.console_form, secrets.token_urlsafe(12))
    assert len(token) <= TOKEN_CHARS
    return token


def _issued_at(settings: Settings, token: str) -> dt.datetime:
    try:
        return tokens.load_with_time(settings, tokens.Purpose.console_form, token)[1]
    except tokens.TokenError:
        raise Stale(token) from None


def _earlier(session: Session, token: str) -> FormUse | None:
    return session.scalars(
        select(FormUse).where(FormUse.token == token).execution_options(populate_existing=True)
    ).first()


def claim(session: Session, settings: Settings, token: str, action: str, now: dt.datetime) -> FormUse:
    """Record the form's token as used in this transaction; :class:`AlreadyUsed` when a submission used it before,
    :class:`Stale` when it is older than :data:`MAX_AGE` (its row may be purged by then) or was never issued.

    Two submissions at once: the token is the table's key, so on PostgreSQL the second insert waits for the first
    transaction and then fails (and sees its row); SQLite serialises the two transactions (BEGIN IMMEDIATE)."""
    earlier = _earlier(session, token)
    if earlier is not None:
        raise AlreadyUsed(earlier.object_id)
    if now - _issued_at(settings, token) > MAX_AGE:
        raise Stale(token)
    use = FormUse(token=token, action=action, used_at=now)
    try:
        with session.begin_nested():
            session.add(use)
    except IntegrityError:
        earlier = _earlier(session, token)
        raise AlreadyUsed(earlier.object_id if earlier is not None else None) from None
    return use


def purge(session: Session, now: dt.datetime) -> int:
    """Delete the rows of tokens :func:`claim` refuses by age anyway (used, hence issued, before ``now - MAX_AGE``):
    the table would otherwise keep one row per form ever sent. Returns the number deleted."""
    result = session.execute(delete(FormUse).where(FormUse.used_at < now - MAX_AGE))
    return int(getattr(result, "rowcount", 0) or 0)


def purge_due(settings: Settings, now: dt.datetime) -> int:
    """The worker's job: once per local day, purge the stale rows, the run recorded in job_runs."""
    from mailservice import jobruns
    from mailservice.db import session_scope

    with session_scope(settings) as session:
        run = jobruns.claim(session, JOB, now.astimezone(settings.tz).date().isoformat(), now)
        if run is None:
            return 0
        deleted = purge(session, now)
        jobruns.finish(run, now, {"deleted": deleted})
    return deleted
