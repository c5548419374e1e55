"""A new letter that names an earlier request of its author («Дополнение к обращению № 2026-000001»).

Such a letter is registered as a request of its own (it may add a new question, and the law gives it its own term);
staff get an internal note on it, «Упоминает обращение № 2026-000001», linked in the console, and the reverse note on
the earlier request, so they can answer the two together or merge them by hand. Nothing is merged automatically.

Identity is proven, not matched: the notes are written only when the letter comes from an address proven to be the
client's, and only for that client's own requests. A number of another client's request, or any number named from
an unproven address, leaves no trace: a note would tell whoever typed the number that it exists.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.inforequests.models import Client, Request
from mailservice.inforequests.notes import internal_note

__all__ = ["mentioned_numbers", "note_mentions"]

# A registration number (README: «YYYY-NNNNNN»), not part of a longer run of digits and dashes (a phone, a date).
_NUMBER = re.compile(r"(?<![\d-])(\d{4}-\d{6})(?![\d-])")
# Where a letter names what it adds to: its subject and its first lines («Дополнение к обращению № …», «по
# обращению № …»), not a number quoted further down.
FIRST_LINES = 5
MAX_NUMBERS = 5


def mentioned_numbers(subject: str, text: str) -> list[str]:
    """The registration numbers the subject and the first non-empty lines of ``text`` name, in order, once each
    (pure)."""
    lines = [line for line in text.splitlines() if line.strip()][:FIRST_LINES]
    found: list[str] = []
    for number in _NUMBER.findall("\n".join([subject, *lines])):
        if number not in found:
            found.append(number)
    return found[:MAX_NUMBERS]


def note_mentions(
    session: Session, request: Request, client: Client, address: str, numbers: list[str], now: dt.datetime
) -> list[Request]:
    """Write the notes linking ``request`` and the earlier requests of ``client`` that ``numbers`` name, when
    ``address`` (the letter's From) is proven to be the client's; returns the requests noted (see module doc)."""
    if not numbers or not client.proven_email(address):
        return []
    earlier = list(
        session.scalars(
            select(Request).where(Request.client_id == client.id, Request.number.in_(numbers)).order_by(Request.number)
        )
    )
    earlier = [old for old in earlier if old is not request]
    if not earlier:
        return []
    if request.id is None:
        session.flush()  # the reverse note links to the new request: it needs its id
    for old in earlier:
        later = request.number or "без номера (ждёт регистрации)"
        for on, other, comment in (
            (request, old, f"Упоминает обращение № {old.number}"),
            (old, request, f"Упомянуто в обращении № {later}"),
        ):
            internal_note(session, client, on, now, comment, mentions={"request_id": other.id, "number": other.number})
    return earlier
