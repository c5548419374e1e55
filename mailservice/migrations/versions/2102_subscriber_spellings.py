"""subscriber spellings: subscribers an earlier version made for two spellings of one mailbox become one

Before defect U9 was fixed, «Ivan@example.org» and «ivan@example.org» could be two subscribers, each with its own
lists. Since then one mailbox is one subscriber (found by ``email_hash``, the hash of the case-folded address), and
this migration merges the rows made before, group by group of the same hash among the subscribers still on file:
- the oldest row stays (the one ``find_subscriber`` already took), the others lose address and name (``purged_at``
  set: they are never mailed) but stay as rows, since the consent log, append-only, keeps pointing at them: the
  consent log of every spelling is kept as it was;
- per list, a withdrawal in any spelling wins over every consent given before it (152-FZ art. 9 part 2: a withdrawn
  consent stays withdrawn; RULES: nothing is sent after a withdrawal): those subscriptions are withdrawn, each with
  a «withdrawn» record in the consent log naming the withdrawal it follows. Only a consent given after the last
  withdrawal (a new one, confirmed again) stands;
- the row that stays gets the union of the lists still consented: a subscription of another spelling moves to it,
  or, when it has its own (withdrawn or lapsed) row for that list, that row takes the consent, logged with a
  reference to the record that proves it. A moved or copied consent's old row stays active on the emptied row, so
  that an unsubscribe link in a letter already sent withdraws the mailbox (the withdrawal covers every row of the
  same hash);
- with no list left active and a withdrawal among them, the address is on the suppression list.

Revision ID: 2102_subscriber_spellings
Revises: 2001_subscription_confirm_nonce
Create Date: 2026-12-06 13:20:00
"""

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import mailservice.db

revision: str = "2102_subscriber_spellings"
down_revision: str | Sequence[str] | None = "2001_subscription_confirm_nonce"  # the mailings branch
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = mailservice.db.UTCDateTime(timezone=True)
_subscribers = sa.table(
    "mailing_subscribers",
    sa.column("id", sa.Integer()),
    sa.column("email", sa.String()),
    sa.column("email_ascii", sa.String()),
    sa.column("email_hash", sa.String()),
    sa.column("name", sa.String()),
    sa.column("purged_at", _TIME),
)
_subscriptions = sa.table(
    "mailing_subscriptions",
    sa.column("id", sa.Integer()),
    sa.column("subscriber_id", sa.Integer()),
    sa.column("list_id", sa.Integer()),
    sa.column("status", sa.String()),
    sa.column("requested_at", _TIME),
    sa.column("confirm_nonce", sa.String()),
    sa.column("confirmed_at", _TIME),
    sa.column("withdrawn_at", _TIME),
    sa.column("withdrawn_via", sa.String()),
)
_LOG_FIELDS = (
    "email_hash", "method", "source", "ip", "user_agent", "purpose", "data_processed", "operator", "term",
    "withdrawal_method", "consent_version", "consent_sha256", "detail",
)  # fmt: skip
_log = sa.table(
    "mailing_consent_log",
    sa.column("id", sa.Integer()),
    sa.column("at", _TIME),
    sa.column("kind", sa.String()),
    sa.column("subscriber_id", sa.Integer()),
    sa.column("subscription_id", sa.Integer()),
    sa.column("list_id", sa.Integer()),
    *(sa.column(name, sa.Text()) for name in _LOG_FIELDS),
)
_suppressions = sa.table(
    "mailing_suppressions",
    sa.column("email_hash", sa.String()),
    sa.column("reason", sa.String()),
    sa.column("at", _TIME),
    sa.column("detail", sa.Text()),
)
LIVE = ("active", "pending")
METHOD = "merge"  # the consent log's method of the records this migration adds


def _given_at(row: Any) -> dt.datetime:
    """When the subscription's consent was last given: its confirmation, else its request."""
    moment = row.confirmed_at or row.requested_at
    assert isinstance(moment, dt.datetime)
    return moment


def _last_record(conn: sa.Connection, subscription_id: int, kinds: tuple[str, ...]) -> Any:
    c = _log.c
    query = sa.select(_log).where(c.subscription_id == subscription_id, c.kind.in_(kinds))
    return conn.execute(query.order_by(c.at.desc(), c.id.desc()).limit(1)).first()


def _append(
    conn: sa.Connection, proof: Any, *, kind: str, subscription: Any, keeper: Any, now: dt.datetime, detail: str
) -> None:
    """A consent log record for a change made here, with the terms of the record that proves it (``proof``)."""
    fields = {name: (getattr(proof, name) if proof is not None else "") or "" for name in _LOG_FIELDS}
    fields |= {"email_hash": keeper.email_hash, "method": METHOD, "source": "", "ip": "", "user_agent": ""}
    conn.execute(
        _log.insert().values(
            at=now,
            kind=kind,
            subscriber_id=keeper.id,
            subscription_id=subscription.id,
            list_id=subscription.list_id,
            **(fields | {"detail": detail[:2000]}),
        )
    )


def _merge_list(conn: sa.Connection, keeper: Any, rows: list[Any], now: dt.datetime) -> bool:
    """Merge one list's subscriptions of one mailbox (module docstring); whether it stays consented."""
    s = _subscriptions.c
    withdrawals = [r for r in rows if r.status == "withdrawn" and r.withdrawn_at is not None]
    last = max(withdrawals, key=lambda r: (r.withdrawn_at, r.id)) if withdrawals else None
    standing = [r for r in rows if r.status in LIVE and (last is None or _given_at(r) > last.withdrawn_at)]
    kept = {r.id for r in standing}
    for row in rows:
        if row.status in LIVE and row.id not in kept:
            assert last is not None
            conn.execute(
                _subscriptions.update()
                .where(s.id == row.id)
                .values(status="withdrawn", withdrawn_at=now, withdrawn_via=METHOD)
            )
            _append(
                conn, _last_record(conn, last.id, ("withdrawn",)), kind="withdrawn", subscription=row, keeper=keeper,
                now=now,
                detail=f"Согласие отозвано {last.withdrawn_at:%d.%m.%Y %H:%M} UTC в подписке № {last.id} того же "
                "адреса в другом написании; отзыв распространён на эту подписку при объединении записей.",
            )  # fmt: skip
    if not standing:
        return False
    winner = max(standing, key=lambda r: (r.status == "active", _given_at(r), r.id))
    if winner.subscriber_id == keeper.id:
        return winner.status == "active"
    own = next((r for r in rows if r.subscriber_id == keeper.id), None)
    if own is None:
        conn.execute(_subscriptions.update().where(s.id == winner.id).values(subscriber_id=keeper.id))
        return winner.status == "active"
    # The row that stays has its own row for this list, withdrawn before the consent or lapsed: it takes the consent.
    conn.execute(
        _subscriptions.update()
        .where(s.id == own.id)
        .values(
            status=winner.status,
            requested_at=winner.requested_at,
            confirm_nonce=winner.confirm_nonce,
            confirmed_at=winner.confirmed_at,
            withdrawn_at=None,
            withdrawn_via="",
        )
    )
    kind = "confirmed" if winner.status == "active" else "given"
    _append(
        conn, _last_record(conn, winner.id, ("confirmed", "imported", "given")), kind=kind, subscription=own,
        keeper=keeper, now=now,
        detail=f"Согласие перенесено при объединении записей из подписки № {winner.id} того же адреса в другом "
        f"написании (дано {_given_at(winner):%d.%m.%Y %H:%M} UTC).",
    )  # fmt: skip
    return winner.status == "active"


def upgrade() -> None:
    conn = op.get_bind()
    b, s = _subscribers.c, _subscriptions.c
    now = mailservice.db.utcnow()
    doubled = (
        sa.select(b.email_hash)
        .where(b.email.is_not(None), b.purged_at.is_(None))
        .group_by(b.email_hash)
        .having(sa.func.count() > 1)
    )
    for (address_hash,) in conn.execute(doubled).all():
        people = conn.execute(
            sa.select(_subscribers)
            .where(b.email_hash == address_hash, b.email.is_not(None), b.purged_at.is_(None))
            .order_by(b.id)
        ).all()
        keeper, others = people[0], people[1:]
        rows = conn.execute(
            sa.select(_subscriptions).where(s.subscriber_id.in_([p.id for p in people])).order_by(s.id)
        ).all()
        by_list: dict[int, list[Any]] = {}
        for row in rows:
            by_list.setdefault(row.list_id, []).append(row)
        consented = [_merge_list(conn, keeper, listed, now) for listed in by_list.values()]
        name = keeper.name or next((p.name for p in reversed(others) if p.name), "")
        conn.execute(_subscribers.update().where(b.id == keeper.id).values(name=name))
        conn.execute(
            _subscribers.update()
            .where(b.id.in_([p.id for p in others]))
            .values(email=None, email_ascii=None, name="", purged_at=now)
        )
        # Any list withdrawn in some spelling (the rows as read before the merge) and none active now.
        withdrawn = any(row.status == "withdrawn" for row in rows)
        known = conn.execute(sa.select(_suppressions.c.email_hash).where(_suppressions.c.email_hash == address_hash))
        if withdrawn and not any(consented) and known.first() is None:
            conn.execute(
                _suppressions.insert().values(
                    email_hash=address_hash, reason="withdrawn", at=now, detail="объединение записей одного адреса"
                )
            )


def downgrade() -> None:
    pass  # merged rows stay merged: the addresses removed from the duplicates are not brought back
