"""What preparing a letter gives the writing of it: its classification and its stored files.

Plain values, apart from the request service: intake's worker processes import these and nothing of the
database, the documents or the notices (:mod:`mailservice.intake.prepare`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailservice.inforequests.deadlines import Law


@dataclass(frozen=True)
class Labels:
    """Classification of a request as intake or staff decided it."""

    type: str = "info_request"
    topic: str = "other"
    urgency: str = "normal"
    appeal_kind: str | None = None
    needs_review: bool = False
    version: str = "default"
    details: dict[str, object] = field(default_factory=dict)

    @property
    def law(self) -> Law:
        """An appeal runs on 59-FZ; everything else that is registered on 8-FZ."""
        return Law.FZ59 if self.type == "appeal" else Law.FZ8


@dataclass(frozen=True)
class StoredFile:
    """An attachment already written to the blob store."""

    filename: str
    content_type: str
    size: int
    sha256: str
