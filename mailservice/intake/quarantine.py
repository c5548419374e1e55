"""Letters intake could not take (the quarantine): listing them, and letting one through again after a fix or
with the author's address staff read in the letter itself (console and CLI share these).

A letter with no usable sender (a whole "Name <addr>" put in one encoded word, say) must still be registered: a
person wrote it (59-FZ art. 8). Staff look at it and type the address; the address is recorded as typed, and
proves nothing (README, "Security model").
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.intake.actions import ActionError
from mailservice.intake.models import IntakeEntry, Outcome
from mailservice.intake.pipeline import IntakeResult, Source, process_batch, process_raw
from mailservice.intake.prepare import Limits, prepare
from mailservice.mail.headers import normalise_address

__all__ = ["quarantined", "release"]


def quarantined(session: Session) -> list[IntakeEntry]:
    """Quarantined letters staff have not dealt with yet, oldest first."""
    return list(
        session.scalars(
            select(IntakeEntry)
            .where(IntakeEntry.outcome == Outcome.quarantined, IntakeEntry.resolved_at.is_(None))
            .order_by(IntakeEntry.id)
        )
    )


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
        if entry.resolved_at is not None:
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
            entry.resolved_at, entry.resolved_by = utcnow(), actor
    return result
