"""A HEAD is no download (RFC 9110 9.3.2: HEAD is GET without the content).

web/app.HeadAsGet answers HEAD as GET (defect U10), so a link checker or a browser's probe of a download runs the
download's route; README "What is logged" lists files downloaded, and the history archive counts its downloads.
Nothing reached anyone on a HEAD, so neither is written. Both databases.
"""

from __future__ import annotations

from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.history import service
from mailservice.history.models import HistoryExport
from mailservice.inforequests.models import PostalLetter
from mailservice.web.staff.auth import Role
from mailservice.web.staff.models import AuditEntry
from tests.console_support import add_staff, client_for, login
from tests.test_channels import _submit, fast_form  # noqa: F401  (fast_form: a fixture)
from tests.test_history import A, _export_for, two_clients


def test_a_head_of_a_letter_is_not_logged_as_its_download(fast_form: Settings) -> None:  # noqa: F811
    http = client_for(fast_form)
    sent = _submit(
        http,
        {
            "name": "Белова Нина Ивановна",
            "postal_address": "630091, г. Новосибирск, ул. Мичурина, д. 12, кв. 4",
            "subject": "График приёма",
            "text": "Прошу сообщить график личного приёма граждан в департаменте.",
        },
    )
    assert sent.status_code == 200
    add_staff(fast_form, "op@dizo.test", Role.operator)
    login(http, "op@dizo.test")
    with session_scope(fast_form) as session:
        letter_id = session.scalars(select(PostalLetter.id)).one()
    for ext in ("docx", "pdf"):
        head = http.head(f"/staff/letters/{letter_id}.{ext}")
        assert (head.status_code, head.content) == (200, b""), ext
    with session_scope(fast_form) as session:
        assert not session.scalars(select(AuditEntry).where(AuditEntry.action == "letter_download")).all()
    assert http.get(f"/staff/letters/{letter_id}.pdf").status_code == 200
    with session_scope(fast_form) as session:
        logged = session.scalars(select(AuditEntry).where(AuditEntry.action == "letter_download")).all()
        assert [(a.object_id, a.details) for a in logged] == [(letter_id, {"format": "pdf"})]


def test_a_head_of_the_history_archive_counts_no_download(settings: Settings) -> None:
    two_clients(settings)
    export = _export_for(settings, A)
    path = f"/history/download/{service.download_token(settings, export)}/archive.zip"
    http = client_for(settings)
    head = http.head(path)
    assert (head.status_code, head.content) == (200, b"")
    with session_scope(settings) as session:
        row = session.get_one(HistoryExport, export.id)
        assert (row.download_count, row.downloaded_at) == (0, None)
    assert http.get(path).status_code == 200
    with session_scope(settings) as session:
        assert session.get_one(HistoryExport, export.id).download_count == 1
