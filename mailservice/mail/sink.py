"""The development and test mail sink (aiosmtpd): keeps every message it receives, sends nothing on."""

from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def raw_content(envelope: Envelope) -> bytes:
    """The message exactly as received (``decode_data=False`` keeps bytes)."""
    data = envelope.original_content or envelope.content or b""
    return data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")


class SinkHandler:
    """Keeps every message it receives as ``NNNNNN.eml`` plus ``NNNNNN.json`` (envelope) in one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        existing = [int(p.stem) for p in self.folder.glob("*.eml") if p.stem.isdigit()]
        self._counter = itertools.count(max(existing, default=0) + 1)
        self._lock = threading.Lock()
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Store the message and answer 250."""
        raw = raw_content(envelope)
        with self._lock:
            number = next(self._counter)
            self.messages.append((envelope.mail_from or "", list(envelope.rcpt_tos), raw))
        stem = self.folder / f"{number:06d}"
        stem.with_suffix(".eml").write_bytes(raw)
        stem.with_suffix(".json").write_text(
            json.dumps({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos, "at": time.time()}),
            encoding="utf-8",
        )
        return "250 2.0.0 Stored in the development sink"


def start_sink(folder: Path, host: str, port: int) -> Controller:
    """Start a development/test mail sink that stores everything it receives in ``folder``."""
    controller = Controller(SinkHandler(folder), hostname=host, port=port, decode_data=False, enable_SMTPUTF8=True)
    controller.start()
    return controller
