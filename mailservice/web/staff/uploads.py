"""Files staff attach in the console (scans of a letter, a visitor's papers): read with a size limit, sanitised,
written to the blob store."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import UploadFile

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.inforequests.service import StoredFile
from mailservice.mail.parse import sanitize_filename
from mailservice.web.staff.actions import ConsoleError

MAX_UPLOAD_FILES = 20


def store_uploads(settings: Settings, uploads: Sequence[object]) -> list[StoredFile]:
    """Store the uploaded files (those with a name); all together at most ``max_attachment_bytes``."""
    limit = settings.max_attachment_bytes
    store = BlobStore(settings.blob_dir)
    stored: list[StoredFile] = []
    total = 0
    chosen = [u for u in uploads if isinstance(u, UploadFile) and u.filename]
    if len(chosen) > MAX_UPLOAD_FILES:
        raise ConsoleError(f"Не более {MAX_UPLOAD_FILES} файлов")
    for upload in chosen:
        assert isinstance(upload, UploadFile)
        data = upload.file.read(limit + 1 - total)
        total += len(data)
        if total > limit:
            raise ConsoleError(f"Файлы вместе больше {limit // (1024 * 1024)} МБ")
        content_type = upload.content_type or "application/octet-stream"
        if "/" not in content_type or any(c in content_type for c in "\r\n"):
            content_type = "application/octet-stream"
        stored.append(
            StoredFile(
                filename=sanitize_filename(upload.filename, content_type),
                content_type=content_type,
                size=len(data),
                sha256=store.put(data),
            )
        )
    return stored
