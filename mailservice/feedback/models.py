"""Feedback surveys sent after an answer, and the answers (also from the public site's form)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mailservice.db import Base, utcnow


class FeedbackSurvey(Base):
    """The one survey e-mail of an answered request (unique per request: sent once)."""

    __tablename__ = "feedback_surveys"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    nonce: Mapped[str] = mapped_column(String(32))
    sent_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"), default=None)
    answered_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class FeedbackResponse(Base):
    """A rating from 1 to 5 with an optional comment, or a thank-you by e-mail (no rating) from a client."""

    __tablename__ = "feedback_responses"
    __table_args__ = (CheckConstraint("rating >= 1 AND rating <= 5", name="rating_range"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    source: Mapped[str] = mapped_column(String(16))  # survey | site | qr | phone | email
    survey_id: Mapped[int | None] = mapped_column(ForeignKey("feedback_surveys.id"), unique=True, default=None)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"), index=True, default=None)
    # The client a thank-you by e-mail came from (issue 13); survey answers reach the client through the request.
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"), index=True, default=None)
    channel: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str] = mapped_column(String(200), default="")
    # None for a thank-you by e-mail: it says it was glad, not how much (averages leave it out).
    rating: Mapped[int | None] = mapped_column(Integer, default=None)
    comment: Mapped[str] = mapped_column(Text, default="")
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    # Issue 17: who recorded a rating gathered by phone; when and by whom a site comment was answered.
    recorded_by: Mapped[str] = mapped_column(String(320), default="")
    answered_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    answered_by: Mapped[str] = mapped_column(String(320), default="")
