"""A HEAD is no download (RFC 9110 9.3.2: HEAD is GET without the content).

web/app.HeadAsGet answers HEAD as GET (defect U10), so a link checker or a browser's probe of a download runs the
download's route; the history archive counts its downloads, and a HEAD must not count (the console's audited
downloads: tests/test_tryout_dec6c.py, the letter on the letterhead). Both databases.
"""

from __future__ import annotations

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.history import service
from mailservice.history.models import HistoryExport
from tests.console_support import client_for
from tests.test_history import A, _export_for, two_clients


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
