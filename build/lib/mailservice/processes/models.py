"""Register versions and their rows, status history, change requests and their approvals.

Every version keeps a full copy of its rows: the register is small (hundreds of rows) and "later versions are
kept" (seed 003, appendix 2, section II), so any version can be exported exactly as it was.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailservice.db import Base, utcnow


class RegisterVersion(Base):
    """One version of the register: made by an import, a status change or an applied change request."""

    __tablename__ = "process_register_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(320))
    source: Mapped[str] = mapped_column(String(32))  # import | status | change_request
    source_name: Mapped[str] = mapped_column(String(255), default="")  # file name or change request number
    reason: Mapped[str] = mapped_column(Text, default="")
    catalogue_version: Mapped[str] = mapped_column(String(40))
    # The officer's approval (the initial version: after the units concerned agreed; later ones: when made).
    approved_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    approved_by: Mapped[str] = mapped_column(String(320), default="")

    rows: Mapped[list[RegisterRow]] = relationship(
        back_populates="version", order_by="RegisterRow.position", cascade="all, delete-orphan"
    )


class RegisterRow(Base):
    """One process of one version, with the template's columns."""

    __tablename__ = "process_register_rows"
    __table_args__ = (UniqueConstraint("version_id", "process_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("process_register_versions.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    process_id: Mapped[str] = mapped_column(String(64))
    life_situation: Mapped[str] = mapped_column(Text, default="")
    service_name: Mapped[str] = mapped_column(Text)
    regulating_act: Mapped[str] = mapped_column(Text, default="")
    process_group: Mapped[str] = mapped_column(Text, default="")
    process_name: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32))
    client: Mapped[str] = mapped_column(Text, default="")
    client_value: Mapped[str] = mapped_column(Text, default="")
    input_data: Mapped[str] = mapped_column(Text, default="")
    output_result: Mapped[str] = mapped_column(Text, default="")
    links: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [[target id, kind], ...]
    kind: Mapped[str] = mapped_column(String(16), default="")
    digital_access: Mapped[str] = mapped_column(Text, default="")
    custom: Mapped[bool] = mapped_column(Boolean, default=False)
    catalogue_id: Mapped[str | None] = mapped_column(String(8), default=None)

    version: Mapped[RegisterVersion] = relationship(back_populates="rows")


class StatusChange(Base):
    """A change of a process's re-engineering status: who, when, why, and the version it made."""

    __tablename__ = "process_status_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(320))
    from_status: Mapped[str | None] = mapped_column(String(32), default=None)
    to_status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    version_id: Mapped[int] = mapped_column(ForeignKey("process_register_versions.id"), index=True)


class ChangeRequest(Base):
    """A process owner's request to add, remove or change a process or to move it to another status."""

    __tablename__ = "process_change_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # add | remove | change | status
    process_id: Mapped[str] = mapped_column(String(64), index=True)
    proposal: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # cells by column code, or {"status": ...}
    grounds: Mapped[str] = mapped_column(Text)
    submitted_by: Mapped[str] = mapped_column(String(320))
    submitted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    base_version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    decided_by: Mapped[str] = mapped_column(String(320), default="")
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    applied_version_id: Mapped[int | None] = mapped_column(ForeignKey("process_register_versions.id"), default=None)

    approvals: Mapped[list[Approval]] = relationship(
        back_populates="change_request", order_by="Approval.id", cascade="all, delete-orphan"
    )


class Approval(Base):
    """One unit's answer to a change request, given through a signed link in its e-mail."""

    __tablename__ = "process_approvals"
    __table_args__ = (UniqueConstraint("change_request_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    change_request_id: Mapped[int] = mapped_column(
        ForeignKey("process_change_requests.id", ondelete="CASCADE"), index=True
    )
    unit: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(320))
    nonce: Mapped[str] = mapped_column(String(32))
    asked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"), default=None)
    decision: Mapped[str | None] = mapped_column(String(16), default=None)  # approve | object
    decided_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    comment: Mapped[str] = mapped_column(Text, default="")
    ip: Mapped[str] = mapped_column(String(64), default="")

    change_request: Mapped[ChangeRequest] = relationship(back_populates="approvals")
