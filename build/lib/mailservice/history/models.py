"""Exports of a client's whole interaction history (seed 004 p. 4)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mailservice.db import Base, utcnow


class HistoryExport(Base):
    """One request for the history: to which verified address it goes, and its download link's state.

    The ZIP is built when it is downloaded, from the client's rows at that moment, so no second copy of the
    personal data sits on disk. ``nonce`` makes every link unique and lets one be revoked by changing it.
    """

    __tablename__ = "history_exports"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    via: Mapped[str] = mapped_column(String(16))  # email | web | staff
    address: Mapped[str] = mapped_column(String(320))
    # awaiting_verification -> ready; revoked when staff or retention end it
    status: Mapped[str] = mapped_column(String(24))
    nonce: Mapped[str] = mapped_column(String(32))
    verified_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    expires_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    downloaded_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    download_count: Mapped[int] = mapped_column(Integer, default=0)
    intake_id: Mapped[int | None] = mapped_column(ForeignKey("intake_journal.id"), default=None)
