"""Registering a request sent through the site's form: the same service as intake and staff entry (number, legal
term, classification, history, acknowledgement to the address given)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy.orm import Session

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.inforequests import service
from mailservice.inforequests.classification import labels_for
from mailservice.inforequests.lifecycle import Channel
from mailservice.inforequests.models import Request
from mailservice.inforequests.service import StoredFile
from mailservice.mail.parse import sanitize_filename
from mailservice.webrequests.form import FormFile, RequestForm, content_type_of

SUBJECT_WORDS = 12  # a request without a subject is shown by its first words


def subject_of(form: RequestForm) -> str:
    """The subject given, or the text's first words."""
    if form.subject:
        return form.subject
    words = form.text.split()
    return " ".join(words[:SUBJECT_WORDS]) + (" …" if len(words) > SUBJECT_WORDS else "")


def store_files(settings: Settings, files: Sequence[FormFile]) -> list[StoredFile]:
    """Write checked files to the blob store (the form's rules passed them)."""
    store = BlobStore(settings.blob_dir)
    stored = []
    for file in files:
        content_type = content_type_of(file.filename) or "application/octet-stream"
        stored.append(
            StoredFile(
                filename=sanitize_filename(file.filename, content_type),
                content_type=content_type,
                size=len(file.data),
                sha256=store.put(file.data),
            )
        )
    return stored


def register_web_request(
    session: Session,
    settings: Settings,
    form: RequestForm,
    *,
    email: str | None,
    files: Sequence[StoredFile],
    now: dt.datetime,
) -> Request:
    """Register a request from the form. The e-mail address typed is only claimed (README, "Security model"): it
    receives this request's acknowledgement and notices and proves nothing; a request without one is answered by
    post to the address given. The request always gets a record of its own with what the form says (anyone can
    type anyone's address); when the address is a client's, that client joins the request by the link of the
    acknowledgement (``inforequests.claims``)."""
    client = service.find_or_create_client(
        session,
        now=now,
        name=form.name,
        email=email,
        organisation=form.organisation,
        postal_address=form.postal_address,
    )
    subject = subject_of(form)
    return service.create_request(
        session,
        settings,
        now=now,
        client=client,
        channel=Channel.web,
        subject=subject,
        text=form.text,
        labels=labels_for(subject, form.text),
        received_at=now,
        reply_email=email,
        reply_name=form.name or form.organisation,
        attachments=files,
    )
