"""Letters intake could not take (the quarantine): listing them, and letting one through again after a fix or
with the author's address staff read in the letter itself (console and CLI share these).

A letter with no usable sender (a whole "Name <addr>" put in one encoded word, say) must still be registered: a
person wrote it (59-FZ art. 8). Staff look at it and type the address; the address is recorded as typed, and
proves nothing (README, "Security model").

Junk with no sender (spam without a From passes many mail servers) is no appeal and gets no number (59-FZ art. 8
registers appeals): staff set it aside (:func:`set_aside`), as the held queue's advertising is confirmed as spam.
It is kept with who set it aside and when, and its raw letter stays until retention anonymises the journal after
the history term, as every letter that never became a request; one set aside by mistake can still be released.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.intake.actions import ActionError
from mailservice.intake.models import IntakeEntry, Outcome, Resolution
from mailservice.intake.pipeline import IntakeResult, Source, process_batch, process_raw
from mailservice.intake.prepare import Limits, prepare
from mailservice.mail.headers import normalise_address

__all__ = ["View", "count", "listed", "release", "set_aside"]


class View(StrEnum):
    """Which quarantined letters a list shows."""

    waiting = "waiting"  # not dealt with yet
    not_appeal = "not_appeal"  # set aside as no appeal


def _condition(view: View) -> ColumnElement[bool]:
    quarantined = IntakeEntry.outcome == Outcome.quarantined
    if view is View.not_appeal:
        return quarantined & (IntakeEntry.resolution == Resolution.not_appeal)
    return quarantined & IntakeEntry.resolved_at.is_(None)


def count(session: Session, view: View = View.waiting) -> int:
    """How many quarantined letters the view holds."""
    return int(session.scalar(select(func.count()).select_from(IntakeEntry).where(_condition(view))) or 0)


def listed(
    session: Session, view: View = View.waiting, *, offset: int = 0, limit: int | None = None
) -> list[IntakeEntry]:
    """Quarantined letters of the view, oldest first; ``offset``/``limit`` give one page (five years of junk is
    too many to load for every visit)."""
    query = select(IntakeEntry).where(_condition(view)).order_by(IntakeEntry.id).offset(offset).limit(limit)
    return list(session.scalars(query))


def set_aside(session: Session, entry_id: int, *, actor: str, now: dt.datetime) -> IntakeEntry:
    """Staff set a quarantined letter aside as no appeal (junk): recorded with who and when, kept, no number.

    Raises :class:`ActionError` (Russian) when the row is not a quarantined letter waiting to be dealt with.
    """
    entry = session.get(IntakeEntry, entry_id)
    if entry is None or entry.outcome != Outcome.quarantined:
        raise ActionError(f"В карантине нет строки {entry_id}")
    if entry.resolved_at is not None:
        raise ActionError(f"Строка {entry_id} уже разобрана ({entry.resolved_by})")
    entry.resolved_at, entry.resolved_by, entry.resolution = now, actor[:200], Resolution.not_appeal
    return entry


def release(settings: Settings, entry_id: int, *, actor: str, sender: str | None = None) -> IntakeResult:
    """Take a quarantined letter through intake again, keeping its journal row (resolved once it got through).

    ``sender``: the author's address staff typed after reading the letter, used only when the letter gives none.
    Raises :class:`ActionError` (Russian) when there is nothing to release or the address is not an address.
    """
    address = None
    if sender is not None and sender.strip():
        address = normalise_address(sender.strip())
        if address is None:
            raise ActionError(f"Неверный адрес электронной почты: {sender.strip()[:100]}")
    with session_scope(settings) as session:
        entry = session.get(IntakeEntry, entry_id)
        if entry is None or entry.outcome != Outcome.quarantined:
            raise ActionError(f"В карантине нет строки {entry_id}")
        # A letter set aside as no appeal by mistake may still be released.
        if entry.resolved_at is not None and entry.resolution != Resolution.not_appeal:
            raise ActionError(f"Строка {entry_id} уже разобрана ({entry.resolved_by})")
        try:
            raw = BlobStore(settings.blob_dir).get(entry.raw_sha256)
        except (FileNotFoundError, ValueError):
            raise ActionError("Исходное письмо не сохранилось") from None
        source = Source("file", envelope_from=entry.envelope_from)
    if address is None:
        result = process_raw(settings, raw, source)
    else:
        store = BlobStore(settings.blob_dir)
        prepared = prepare(raw, source.envelope_from, Limits.of(settings), store, sender=address)
        store.sync()
        result = process_batch(settings, [(raw, source)], prepared=[prepared])[0]
    with session_scope(settings) as session:
        entry = session.get(IntakeEntry, entry_id)
        assert entry is not None
        if result.outcome != Outcome.quarantined:
            entry.resolved_at, entry.resolved_by, entry.resolution = utcnow(), actor, Resolution.released
    return result
