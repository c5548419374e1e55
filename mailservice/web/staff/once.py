"""One-time tokens of console forms that create something (a request registered from a call, a visit, the post).

The form carries a random token from the page load; the submission records it in the same transaction as what it
creates. The same form sent again (a second press while the answer is slow, a lost answer, a browser's resend)
finds the token used and is shown what the first one created: one call gets one number, one acknowledgement and
one term (59-FZ art. 8, 8-FZ art. 18: the register holds each request once).
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailservice.web.staff.models import FormUse

TOKEN_CHARS = 64


class AlreadyUsed(Exception):
    """The form was sent before; ``object_id`` is what that submission created (None if it is not known)."""

    def __init__(self, object_id: int | None) -> None:
        super().__init__(object_id)
        self.object_id = object_id


def new_token() -> str:
    """A token for one page load of a form."""
    return secrets.token_urlsafe(24)


def _earlier(session: Session, token: str) -> FormUse | None:
    return session.scalars(
        select(FormUse).where(FormUse.token == token).execution_options(populate_existing=True)
    ).first()


def claim(session: Session, token: str, action: str, now: dt.datetime) -> FormUse:
    """Record the form's token as used in this transaction; :class:`AlreadyUsed` when a submission used it before.

    Two submissions at once: the token is the table's key, so on PostgreSQL the second insert waits for the first
    transaction and then fails (and sees its row); SQLite serialises the two transactions (BEGIN IMMEDIATE)."""
    earlier = _earlier(session, token)
    if earlier is not None:
        raise AlreadyUsed(earlier.object_id)
    use = FormUse(token=token, action=action, used_at=now)
    try:
        with session.begin_nested():
            session.add(use)
    except IntegrityError:
        earlier = _earlier(session, token)
        raise AlreadyUsed(earlier.object_id if earlier is not None else None) from None
    return use
