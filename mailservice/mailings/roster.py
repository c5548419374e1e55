"""Import and export of subscribers as CSV: each imported row must carry its own evidence of consent (when, where,
which consent text), and the export is formula-safe."""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.mail.headers import safe_header_value
from mailservice.mailings import consent
from mailservice.mailings.consent import Evidence, MailAddress, parse_address
from mailservice.mailings.models import (
    ConsentEvent,
    ConsentText,
    MailingList,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Suppression,
)
from mailservice.mailings.subscribers import default_list, new_nonce
from mailservice.spreadsheets import restore_cell

log = logging.getLogger(__name__)


CSV_COLUMNS = ("email", "name", "list", "consent_at", "consent_source", "consent_text_version")


@dataclass
class ImportReport:
    """What an import did, and which lines it refused and why."""

    added: int = 0
    activated: int = 0
    unchanged: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)


def _parse_when(value: str, settings: Settings) -> dt.datetime | None:
    value = value.strip()
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            return None
        when = dt.datetime.combine(day, dt.time(12, 0))
    if when.tzinfo is None:
        when = when.replace(tzinfo=settings.tz)
    return when.astimezone(dt.UTC)


def _chunks(items: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class _Row:
    line: int
    address: MailAddress
    name: str
    mailing_list: MailingList
    when: dt.datetime
    source: str
    text: ConsentText


def _check_row(
    line: int,
    row: dict[str, str],
    settings: Settings,
    lists: dict[str, MailingList],
    default: MailingList,
    texts: dict[str, ConsentText],
    now: dt.datetime,
) -> _Row | str:
    """A valid row, or the reasons it is refused."""
    address = parse_address(row.get("email") or "")
    when = _parse_when(row.get("consent_at") or "", settings)
    source = (row.get("consent_source") or "").strip()
    version = (row.get("consent_text_version") or "").strip()
    slug = (row.get("list") or "").strip()
    name = (row.get("name") or "").strip()
    mailing_list = lists.get(slug) if slug else default
    problems = []
    if address is None:
        problems.append("некорректный адрес")
    if when is None:
        problems.append("нет даты согласия (consent_at)")
    elif when > now:
        problems.append("дата согласия в будущем")
    if not source:
        problems.append("нет источника согласия (consent_source)")
    if not version:
        problems.append("нет версии текста согласия (consent_text_version)")
    elif version not in texts:
        problems.append(f"неизвестная версия текста согласия {version!r} (добавьте её: --consent-text)")
    if mailing_list is None:
        problems.append(f"нет такого списка рассылки: {slug}")
    try:
        safe_header_value(name, max_len=200)
    except ValueError:
        problems.append("имя содержит переводы строк, управляющие символы или длиннее 200 символов")
    if problems:
        return "; ".join(problems)
    assert address is not None and when is not None and mailing_list is not None
    return _Row(line, address, name, mailing_list, when, source, texts[version])


def import_rows(
    session: Session,
    settings: Settings,
    rows: Iterable[tuple[int, dict[str, str]]],
    *,
    source_name: str,
    now: dt.datetime,
    skip_invalid: bool = False,
) -> ImportReport:
    """Import subscribers with their consent evidence; each row is refused with its reason when evidence is missing.

    Without ``skip_invalid`` nothing is imported when any row is refused. Addresses that withdrew (or are
    suppressed) are refused: an old file must not undo a withdrawal. Lookups are done in bulk.
    """
    report = ImportReport()
    default = default_list(session)
    lists = {m.slug: m for m in session.scalars(select(MailingList).where(MailingList.archived_at.is_(None)))}
    texts = {t.version: t for t in session.scalars(select(ConsentText))}
    valid: list[_Row] = []
    for line, row in rows:
        checked = _check_row(line, row, settings, lists, default, texts, now)
        if isinstance(checked, str):
            report.refused.append((line, checked))
        else:
            valid.append(checked)
    hashes = sorted({r.address.hash for r in valid})
    suppressed: set[str] = set()
    for chunk in _chunks(hashes):
        suppressed.update(session.scalars(select(Suppression.email_hash).where(Suppression.email_hash.in_(chunk))))
    # Subscribers by the hash of the address: two case spellings of one mailbox are one subscriber (mail.addresses).
    known: dict[str, Subscriber] = {}
    for chunk in _chunks(hashes):
        live = select(Subscriber).where(Subscriber.email_hash.in_(chunk), Subscriber.email.is_not(None))
        for found in session.scalars(live.order_by(Subscriber.id)):
            known.setdefault(found.email_hash, found)
    current: dict[tuple[int, int], Subscription] = {}
    subscriber_ids = [s.id for s in known.values()]
    for start in range(0, len(subscriber_ids), 500):
        for sub in session.scalars(
            select(Subscription).where(Subscription.subscriber_id.in_(subscriber_ids[start : start + 500]))
        ):
            current[(sub.subscriber_id, sub.list_id)] = sub
    accepted: list[_Row] = []
    for item in valid:
        existing = known.get(item.address.hash)
        subscription = current.get((existing.id, item.mailing_list.id)) if existing is not None else None
        if item.address.hash in suppressed or (
            subscription is not None and subscription.status == SubscriptionStatus.withdrawn
        ):
            report.refused.append((item.line, "адрес отозвал согласие или недоставим"))
        else:
            accepted.append(item)
    report.refused.sort()
    if report.refused and not skip_invalid:
        return report
    for start in range(0, len(accepted), 1000):
        _import_chunk(session, settings, accepted[start : start + 1000], known, current, report, source_name, now)
    return report


def _import_chunk(
    session: Session,
    settings: Settings,
    chunk: list[_Row],
    known: dict[str, Subscriber],
    current: dict[tuple[int, int], Subscription],
    report: ImportReport,
    source_name: str,
    now: dt.datetime,
) -> None:
    for item in chunk:
        subscriber = known.get(item.address.hash)
        if subscriber is None:
            subscriber = Subscriber(
                email=item.address.normalized,
                email_ascii=item.address.ascii,
                email_hash=item.address.hash,
                name=item.name,
            )
            session.add(subscriber)
            known[item.address.hash] = subscriber
        elif item.name and not subscriber.name:
            subscriber.name = item.name
    session.flush()
    changed: list[tuple[_Row, Subscriber, Subscription]] = []
    for item in chunk:
        subscriber = known[item.address.hash]
        key = (subscriber.id, item.mailing_list.id)
        subscription = current.get(key)
        if subscription is not None and subscription.status == SubscriptionStatus.active:
            report.unchanged += 1
            continue
        if subscription is None:
            subscription = Subscription(subscriber_id=subscriber.id, list_id=item.mailing_list.id, nonce=new_nonce())
            session.add(subscription)
            current[key] = subscription
            report.added += 1
        else:
            report.activated += 1
        subscription.status = SubscriptionStatus.active
        subscription.requested_at = now
        subscription.confirmed_at = item.when
        changed.append((item, subscriber, subscription))
    session.flush()
    for item, subscriber, subscription in changed:
        consent.record(
            session,
            settings,
            kind="imported",
            subscriber_id=subscriber.id,
            address_hash=item.address.hash,
            evidence=Evidence(
                method="import", source=item.source, detail=f"импорт из {source_name}, строка {item.line}"
            ),
            mailing_list=item.mailing_list,
            subscription_id=subscription.id,
            consent=item.text,
            at=item.when,
        )
    session.flush()


def read_csv(data: str) -> list[tuple[int, dict[str, str]]]:
    """Rows of an import file with their line numbers; ValueError when the header lacks a column or a line cannot
    be read (it names the line). A value our own export protected from spreadsheets loses its apostrophe."""
    reader = csv.DictReader(io.StringIO(data.lstrip("\ufeff"), newline=""))
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        missing = [
            c
            for c in ("email", "consent_at", "consent_source", "consent_text_version")
            if c not in (reader.fieldnames or [])
        ]
        if missing:
            raise ValueError(f"в заголовке CSV нет столбцов: {', '.join(missing)}")
        for row in reader:
            rows.append((reader.line_num, {k: restore_cell(v or "") for k, v in row.items() if k}))
    except csv.Error as exc:
        raise ValueError(f"строка {reader.line_num}: строка CSV не читается ({exc})") from None
    return rows


def export_rows(session: Session, *, list_slug: str | None = None, include_all: bool = False) -> list[dict[str, str]]:
    """Subscriptions with their consent evidence, in the import format (plus ``status``)."""
    query = (
        select(Subscription, Subscriber, MailingList)
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(Subscriber.purged_at.is_(None))
        .order_by(Subscription.id)
    )
    if not include_all:
        query = query.where(Subscription.status == SubscriptionStatus.active)
    if list_slug:
        query = query.where(MailingList.slug == list_slug)
    rows = session.execute(query).all()
    events: dict[int, list[ConsentEvent]] = {}
    ids = [s.id for s, _, _ in rows]
    for start in range(0, len(ids), 500):
        for event in session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.subscription_id.in_(ids[start : start + 500]))
            .order_by(ConsentEvent.id)
        ):
            assert event.subscription_id is not None
            events.setdefault(event.subscription_id, []).append(event)
    out = []
    for subscription, subscriber, mailing_list in rows:
        history = events.get(subscription.id, [])
        given = [e for e in history if e.kind in ("given", "imported")]
        effective = [e for e in history if e.kind in ("confirmed", "imported")]
        out.append(
            {
                "email": subscriber.email or "",
                "name": subscriber.name,
                "list": mailing_list.slug,
                "consent_at": (effective[-1].at if effective else subscription.requested_at).isoformat(),
                "consent_source": given[-1].source if given else "",
                "consent_text_version": (effective[-1].consent_version if effective else "")
                or (given[-1].consent_version if given else ""),
                "status": subscription.status,
            }
        )
    return out
