"""Retention: what is older than the term after the client's last interaction is anonymised or deleted.

Seed 004 p. 4 keeps the interaction history for five years (``settings.history_retention_years``); 152-FZ
art. 5 part 7 wants personal data destroyed or anonymised once the term of keeping them has run out. A client
under a legal hold (``Client.legal_hold``: a court case, an audit) is kept whole, and so is a client with a
request still open.

What is kept after anonymisation is what the register and the statistics need: request numbers, dates,
channels, types, topics, statuses, refusal grounds, ratings. What goes: names, addresses, phones, texts,
subjects, the original messages and attachments (blob files are deleted once nothing else refers to them),
history exports.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.feedback.models import FeedbackResponse
from mailservice.history.models import HistoryExport
from mailservice.inforequests.lifecycle import OPEN_STATUSES
from mailservice.inforequests.models import (
    Attachment,
    Client,
    ClientContact,
    Event,
    IdentityCheck,
    MergeSuggestion,
    PostalLetter,
    Request,
)
from mailservice.intake.models import Bounce, IntakeEntry
from mailservice.outbox import OutboxMessage
from mailservice.web.staff import audit, auth

# An expired export link is kept a month for support questions, then its row (it holds the address) goes.
EXPORT_ROW_GRACE = dt.timedelta(days=30)
# A request still in work keeps its client; one never registered (spam, mistakes) does not.
ACTIVE = [s.value for s in OPEN_STATUSES]


def retention_cutoff(now: dt.datetime, years: int) -> dt.datetime:
    """The moment ``years`` years before ``now``; 29 February falls back to 28 February (pure)."""
    try:
        return now.replace(year=now.year - years)
    except ValueError:
        return now.replace(year=now.year - years, day=28)


@dataclass
class RetentionReport:
    """What one run did (or, dry, would do)."""

    dry_run: bool
    cutoff: dt.datetime
    clients: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    open_requests: list[int] = field(default_factory=list)
    requests: int = 0
    events: int = 0
    attachments: int = 0
    intake_entries: int = 0
    outbox_messages: int = 0
    exports: int = 0
    feedback: int = 0
    bounces: int = 0
    blobs: int = 0
    sessions: int = 0
    login_attempts: int = 0

    def lines(self) -> list[str]:
        """The report in Russian, one fact per line."""
        head = "Пробный запуск: ничего не изменено." if self.dry_run else "Выполнено."
        ids = ", ".join(map(str, self.clients[:50])) + (" …" if len(self.clients) > 50 else "")
        out = [
            head,
            f"Граница хранения: последнее взаимодействие до {self.cutoff:%d.%m.%Y}.",
            f"Клиентов обезличено: {len(self.clients)}" + (f" (№ {ids})" if self.clients else ""),
            f"Запросов обезличено: {self.requests}; событий: {self.events}",
            f"Вложений удалено: {self.attachments}; исходных писем обезличено: {self.intake_entries}; "
            f"исходящих писем: {self.outbox_messages}",
            f"Файлов удалено из хранилища: {self.blobs}",
            f"Выгрузок истории удалено: {self.exports}; отзывов обезличено: {self.feedback}; "
            f"записей о недоставке: {self.bounces}",
            f"Сессий сотрудников удалено: {self.sessions}; записей о попытках входа: {self.login_attempts}",
        ]
        if self.held:
            out.append(f"Не тронуты (удержание): клиенты № {', '.join(map(str, self.held))}")
        if self.open_requests:
            out.append("Не тронуты (есть незавершённые запросы): клиенты № " + ", ".join(map(str, self.open_requests)))
        return out


def _expired_clients(session: Session, cutoff: dt.datetime) -> list[Client]:
    last_event = select(Event.client_id, func.max(Event.at).label("last_at")).group_by(Event.client_id).subquery()
    return list(
        session.scalars(
            select(Client)
            .outerjoin(last_event, last_event.c.client_id == Client.id)
            .where(
                Client.anonymised_at.is_(None),
                Client.last_interaction_at < cutoff,
                or_(last_event.c.last_at.is_(None), last_event.c.last_at < cutoff),
            )
            .order_by(Client.id)
        )
    )


def _anonymise_client(
    session: Session, client: Client, now: dt.datetime, report: RetentionReport, dead_blobs: set[str]
) -> None:
    request_ids = list(session.scalars(select(Request.id).where(Request.client_id == client.id)))
    events = list(session.scalars(select(Event).where(Event.client_id == client.id)))
    addresses = [c.value for c in client.contacts if c.kind == "email"]
    intake_ids = {e.intake_id for e in events if e.intake_id is not None}
    if request_ids:
        intake_ids |= set(session.scalars(select(IntakeEntry.id).where(IntakeEntry.request_id.in_(request_ids))))
    outbox_ids = {e.outbox_id for e in events if e.outbox_id is not None}
    if request_ids:
        outbox_ids |= set(session.scalars(select(OutboxMessage.id).where(OutboxMessage.request_id.in_(request_ids))))

    client.name = client.organisation = client.postal_address = ""
    client.anonymised_at = now
    session.execute(delete(ClientContact).where(ClientContact.client_id == client.id))
    session.expire(client, ["contacts"])
    # The fact of an identity check stays (who, when, which document type); what was given then goes.
    session.execute(
        update(IdentityCheck).where(IdentityCheck.client_id == client.id).values(email=None, phone=None, note="")
    )
    session.execute(
        delete(MergeSuggestion).where(
            or_(MergeSuggestion.client_id == client.id, MergeSuggestion.other_id == client.id)
        )
    )
    report.clients.append(client.id)

    for event in events:
        event.comment = ""
        event.data = {}
    report.events += len(events)
    if request_ids:
        report.requests += len(request_ids)
        session.execute(
            update(Request)
            .where(Request.id.in_(request_ids))
            .values(
                subject="",
                text="",
                reply_email=None,
                reply_email_key=None,
                reply_name="",
                reply_to_claimed=None,
                thread_root=None,
                classification={},
            )
        )
        attachments = list(session.scalars(select(Attachment).where(Attachment.request_id.in_(request_ids))))
        dead_blobs.update(a.sha256 for a in attachments)
        for att in attachments:
            session.delete(att)
        report.attachments += len(attachments)
    # Letters posted to the client (issue 16): the number and date stay (the outgoing register); the words go.
    for letter in session.scalars(select(PostalLetter).where(PostalLetter.client_id == client.id)):
        dead_blobs.update(d for d in (letter.docx_sha256, letter.pdf_sha256) if d)
        letter.addressee = letter.body = letter.docx_sha256 = letter.pdf_sha256 = ""
        letter.attachments = []
    # Ratings stay; the words go: survey answers through the request, thanks by e-mail through the client too.
    own_feedback = FeedbackResponse.client_id == client.id
    report.feedback += int(
        session.execute(
            update(FeedbackResponse)
            .where(or_(own_feedback, FeedbackResponse.request_id.in_(request_ids)) if request_ids else own_feedback)
            .values(comment="", email=None)
        ).rowcount  # type: ignore[attr-defined]
        or 0
    )
    for entry in session.scalars(select(IntakeEntry).where(IntakeEntry.id.in_(intake_ids))) if intake_ids else []:
        _anonymise_entry(entry, dead_blobs)
        report.intake_entries += 1
    if outbox_ids:
        report.outbox_messages += int(
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(outbox_ids), OutboxMessage.status.in_(["sent", "failed"]))
                .values(raw=b"", recipients="", subject="")
            ).rowcount  # type: ignore[attr-defined]
            or 0
        )
    report.exports += int(
        session.execute(delete(HistoryExport).where(HistoryExport.client_id == client.id)).rowcount  # type: ignore[attr-defined]
        or 0
    )
    if addresses:
        report.bounces += int(
            session.execute(delete(Bounce).where(Bounce.address.in_(addresses))).rowcount  # type: ignore[attr-defined]
            or 0
        )


def _anonymise_entry(entry: IntakeEntry, dead_blobs: set[str]) -> None:
    # The raw message goes; an empty raw_sha256 records that it is gone (readers treat it as missing).
    if entry.raw_sha256:
        dead_blobs.add(entry.raw_sha256)
    entry.raw_sha256 = ""
    entry.from_addr = entry.envelope_from = entry.message_id = None
    entry.subject = ""


def _still_referenced(session: Session, digests: set[str]) -> set[str]:
    if not digests:
        return set()
    used = set(session.scalars(select(Attachment.sha256).where(Attachment.sha256.in_(digests))))
    used |= set(session.scalars(select(IntakeEntry.raw_sha256).where(IntakeEntry.raw_sha256.in_(digests))))
    used |= set(session.scalars(select(PostalLetter.docx_sha256).where(PostalLetter.docx_sha256.in_(digests))))
    used |= set(session.scalars(select(PostalLetter.pdf_sha256).where(PostalLetter.pdf_sha256.in_(digests))))
    return used


def run(session: Session, settings: Settings, now: dt.datetime, *, dry_run: bool) -> tuple[RetentionReport, set[str]]:
    """Anonymise and delete in the caller's transaction; returns the report and the blob files to delete.

    The caller deletes the files only after its transaction committed (:func:`delete_blobs`), so a failed run
    never leaves rows pointing at missing files. With ``dry_run`` the caller rolls back instead.
    """
    cutoff = retention_cutoff(now, settings.history_retention_years)
    report = RetentionReport(dry_run=dry_run, cutoff=cutoff.astimezone(settings.tz))
    dead_blobs: set[str] = set()
    for client in _expired_clients(session, cutoff):
        if client.legal_hold:
            report.held.append(client.id)
            continue
        if session.scalar(
            select(Request.id).where(Request.client_id == client.id, Request.status.in_(ACTIVE)).limit(1)
        ):
            report.open_requests.append(client.id)
            continue
        _anonymise_client(session, client, now, report, dead_blobs)
    session.flush()

    # Messages that never became a client's (quarantined, bounces, auto-replies, routed elsewhere).
    for entry in session.scalars(
        select(IntakeEntry).where(
            IntakeEntry.received_at < cutoff, IntakeEntry.request_id.is_(None), IntakeEntry.raw_sha256 != ""
        )
    ):
        _anonymise_entry(entry, dead_blobs)
        report.intake_entries += 1
    report.bounces += int(session.execute(delete(Bounce).where(Bounce.at < cutoff)).rowcount or 0)  # type: ignore[attr-defined]
    report.outbox_messages += int(
        session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.created_at < cutoff,
                OutboxMessage.ref_type.in_(["history_export", "feedback_survey"]),
                OutboxMessage.status.in_(["sent", "failed"]),
                OutboxMessage.recipients != "",
            )
            .values(raw=b"", recipients="", subject="")
        ).rowcount  # type: ignore[attr-defined]
        or 0
    )
    report.feedback += int(
        session.execute(
            update(FeedbackResponse)
            .where(
                FeedbackResponse.created_at < cutoff,
                FeedbackResponse.source.in_(["site", "qr"]),
                or_(FeedbackResponse.email.is_not(None), FeedbackResponse.comment != ""),
            )
            .values(comment="", email=None)
        ).rowcount  # type: ignore[attr-defined]
        or 0
    )
    report.exports += int(
        session.execute(delete(HistoryExport).where(HistoryExport.expires_at < now - EXPORT_ROW_GRACE)).rowcount  # type: ignore[attr-defined]
        or 0
    )
    report.sessions, report.login_attempts = auth.purge(session, now)
    session.flush()
    dead_blobs.discard("")
    doomed = dead_blobs - _still_referenced(session, dead_blobs)
    report.blobs = len(doomed)
    return report, doomed


def delete_blobs(settings: Settings, digests: set[str]) -> int:
    """Delete blob files (after the database no longer refers to them); returns how many were there."""
    store = BlobStore(settings.blob_dir)
    deleted = 0
    for digest in digests:
        try:
            path = store.path(digest)
        except ValueError:
            continue
        if path.exists():
            path.unlink()
            deleted += 1
    return deleted


JOB = "retention"
WORKER = "обработчик очереди (worker)"  # who started a daily run, in its report and the audit log
HAND_PERIOD_PREFIX = "h"  # a run started by hand: "h" and its start in milliseconds (job_runs.period holds 16)


def _kept(report: RetentionReport, by: str) -> dict[str, object]:
    """What a run leaves in ``job_runs``: the report staff read, its figures and who or what started it."""
    return {
        "lines": report.lines(),
        "clients": len(report.clients),
        "requests": report.requests,
        "events": report.events,
        "attachments": report.attachments,
        "blobs": report.blobs,
        "by": by,
    }


def _audit(session: Session, run_id: int, now: dt.datetime, report: RetentionReport, by: str) -> None:
    """An audit entry for a real run, in its transaction (it exists exactly when the destruction does): the audit
    log, not only the run's report, shows who destroyed personal data and when (Roskomnadzor order No. 179)."""
    audit.record(
        session,
        now=now,
        actor=by,
        action="retention_run",
        object_type="retention_run",
        object_id=run_id,
        details={"clients": len(report.clients), "requests": report.requests},
    )


def hand_run(settings: Settings, now: dt.datetime, *, by: str) -> RetentionReport:
    """A real run started by hand (``retention run``), kept in ``job_runs`` with its report like the worker's:
    destroying personal data must be provable afterwards (152-FZ art. 21 part 7; the act of destruction)."""
    from mailservice import jobruns
    from mailservice.db import session_scope

    with session_scope(settings) as session:
        claimed = None
        moment = now
        while claimed is None:  # two runs within a millisecond: the later takes the next one
            claimed = jobruns.claim(session, JOB, f"{HAND_PERIOD_PREFIX}{int(moment.timestamp() * 1000)}", now)
            moment += dt.timedelta(milliseconds=1)
        report, doomed = run(session, settings, now, dry_run=False)
        jobruns.finish(claimed, now, _kept(report, by))
        _audit(session, claimed.id, now, report, by)
    delete_blobs(settings, doomed)  # after the commit: no row points at a missing file
    return report


def scheduled_run(settings: Settings, now: dt.datetime) -> int:
    """The worker's daily run (issue 17): once per local day from ``RETENTION_HOUR`` on, the run claimed in
    ``job_runs`` (several workers run it once) and its report kept there; returns the clients anonymised."""
    from mailservice import jobruns
    from mailservice.db import session_scope

    local = now.astimezone(settings.tz)
    if local.hour < settings.retention_hour:
        return 0
    with session_scope(settings) as session:
        claimed = jobruns.claim(session, JOB, local.date().isoformat(), now)
        if claimed is None:
            return 0
        report, doomed = run(session, settings, now, dry_run=False)
        jobruns.finish(claimed, now, _kept(report, WORKER))
        _audit(session, claimed.id, now, report, WORKER)
    delete_blobs(settings, doomed)  # after the commit: no row points at a missing file
    return len(report.clients)
