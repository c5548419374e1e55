"""Attachment file names: made safe to store, show and offer for download.

Pure: no I/O. Used by the parser for attached parts and by every upload path (staff files, web requests, archives).
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata

__all__ = ["sanitize_filename"]

_WINDOWS_RESERVED = {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(10)} | {f"lpt{i}" for i in range(10)}
_FILENAME_BAD = re.compile(r'[<>:"|?*]')
_FILENAME_MAX_BYTES = 200
_EXTENSION_OVERRIDES = {
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "text/plain": ".txt",
    "text/html": ".html",
    "image/jpeg": ".jpg",
    "application/octet-stream": ".bin",
    "application/pkcs7-signature": ".p7s",
    "application/x-pkcs7-signature": ".p7s",
    "application/pkcs7-mime": ".p7m",
    "application/x-pkcs7-mime": ".p7m",
    "message/delivery-status": ".txt",
    "message/feedback-report": ".txt",
    "message/disposition-notification": ".txt",
    "message/global-delivery-status": ".txt",
    "text/rfc822-headers": ".txt",
}


def _extension_for(content_type: str) -> str:
    ctype = (content_type or "").lower().split(";", 1)[0].strip()
    return _EXTENSION_OVERRIDES.get(ctype) or mimetypes.guess_extension(ctype, strict=False) or ".bin"


def sanitize_filename(name: str | None, content_type: str) -> str:
    """Make an attachment name safe to store and show.

    Drops path parts ("../../etc/passwd" becomes "passwd"), control and bidirectional-override characters
    and characters Windows forbids; trims leading dots and spaces; prefixes reserved device names; limits the
    name to 200 UTF-8 bytes keeping the extension. Cyrillic and other letters are kept. Falls back to
    "attachment.<ext>" with the extension of ``content_type``.
    """
    cleaned = ""
    if name:
        text = unicodedata.normalize("NFC", str(name))
        text = text.replace("\\", "/").split("/")[-1]
        text = "".join(
            " " if ch in "\t\r\n" else ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in "\t\r\n"
        )
        text = _FILENAME_BAD.sub("_", text)
        text = " ".join(text.split())
        text = text.strip(" .")
        if text.split(".", 1)[0].lower() in _WINDOWS_RESERVED:
            text = "_" + text
        cleaned = _limit_filename(text)
    if not cleaned:
        return f"attachment{_extension_for(content_type)}"
    return cleaned


def _limit_filename(name: str) -> str:
    if len(name.encode("utf-8")) <= _FILENAME_MAX_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > 16:
        stem, ext = name, ""
    suffix = f".{ext}" if ext else ""
    budget = _FILENAME_MAX_BYTES - len(suffix.encode("utf-8"))
    while stem and len(stem.encode("utf-8")) > budget:
        stem = stem[:-1]
    return stem.rstrip(" .") + suffix
