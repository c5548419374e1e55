"""One SMTP connection of the campaign sender, after the greeting, EHLO, STARTTLS and AUTH.

aiosmtplib opens the connection (TLS and authentication per settings, as for every other mail we send); the
sender then takes over its transport with this small protocol for the transactions themselves. Per copy the
library would parse both addresses with the e-mail package, take a lock and arm a ``wait_for`` for each of the
four replies; here a command is one write and each reply one future and one timer, which matters at thousands of
copies a second. Addresses come validated from the database (email-validator's ASCII form); a line break in a
command is refused all the same.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass

import aiosmtplib

from mailservice.config import Settings
from mailservice.mail import smtp

_MAX_LINE = 8192  # RFC 5321 4.5.3.1.5: reply lines are at most 512 octets; anything far longer is not SMTP


@dataclass(frozen=True)
class Reply:
    """A server reply: its code and its text (the lines of a multi-line reply joined by newlines)."""

    code: int
    message: str

    def __str__(self) -> str:
        return f"{self.code} {self.message}"


class LaneClosed(ConnectionError):
    """The connection is gone (closed by either side, or a reply was malformed)."""


class Lane(asyncio.Protocol):
    """An open SMTP connection used for one transaction after another (never two at once)."""

    def __init__(self, transport: asyncio.BaseTransport, timeout: float) -> None:
        self.transport = transport
        self.timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._lines: list[tuple[int, str]] = []  # the lines of a multi-line reply read so far
        self._replies: collections.deque[Reply] = collections.deque()  # replies nobody awaited yet
        self._waiter: asyncio.Future[Reply] | None = None
        self._closed = False

    @classmethod
    async def open(cls, settings: Settings) -> Lane:
        """Connect per settings (greeting, EHLO, STARTTLS, AUTH by aiosmtplib) and take over the connection."""
        client = smtp.client(settings)
        await client.connect()
        if client.is_ehlo_or_helo_needed:  # connect() says EHLO only when STARTTLS or AUTH needs it
            try:
                await client.ehlo()
            except aiosmtplib.SMTPHeloError:
                await client.helo()
        protocol = client.protocol
        if protocol is None or protocol.transport is None:  # pragma: no cover - connect() raises instead
            raise LaneClosed("connection lost")
        transport = protocol.transport
        lane = cls(transport, settings.smtp_timeout)
        transport.set_protocol(lane)
        return lane

    # -- asyncio.Protocol ------------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Collect complete replies; hand each to the waiting transaction, or keep it until one waits."""
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > _MAX_LINE:
                    self._fail(LaneClosed("reply line too long"))
                return
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[: end + 1]
            code_text, separator, text = line[:3], line[3:4], line[4:]
            if not code_text.isdigit() or separator not in (b" ", b"-", b""):
                self._fail(LaneClosed(f"malformed reply: {line[:80]!r}"))
                return
            self._lines.append((int(code_text), text.decode("utf-8", "surrogateescape")))
            if separator == b"-":
                continue
            reply = Reply(self._lines[-1][0], "\n".join(t for _c, t in self._lines))
            self._lines = []
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                self._waiter = None
                waiter.set_result(reply)
            else:
                self._replies.append(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone: a waiting transaction learns it at once."""
        self._fail(LaneClosed(f"connection lost: {exc}" if exc else "connection lost"))

    def _fail(self, exc: Exception) -> None:
        if not self._closed:
            self._closed = True
            self.transport.close()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    # -- the transaction ----------------------------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        """Whether the connection can carry another command."""
        return not self._closed and not self.transport.is_closing()

    def write(self, data: bytes) -> None:
        """Send bytes now (a command or the message); LaneClosed when the connection is gone."""
        if not self.is_connected:
            raise LaneClosed("connection lost")
        self.transport.write(data)  # type: ignore[attr-defined]

    async def reply(self) -> Reply:
        """The next reply (it may have arrived already); TimeoutError after the SMTP timeout."""
        if self._replies:
            return self._replies.popleft()
        if self._closed:
            raise LaneClosed("connection lost")
        waiter: asyncio.Future[Reply] = self._loop.create_future()
        self._waiter = waiter
        timer = self._loop.call_later(self.timeout, self._time_out, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()

    def _time_out(self, waiter: asyncio.Future[Reply]) -> None:
        if not waiter.done():
            self._waiter = None
            waiter.set_exception(TimeoutError("no reply from the SMTP server"))
            self.close()  # a late reply must not be taken for the next command's

    async def command(self, verb: bytes, argument: bytes = b"") -> Reply:
        """One command and its reply. A line break in the argument is refused (command injection)."""
        if b"\r" in argument or b"\n" in argument:
            raise ValueError("a line break in an SMTP command")
        self.write(verb + b" " + argument + b"\r\n" if argument else verb + b"\r\n")
        return await self.reply()

    def close(self) -> None:
        """Drop the connection (an unterminated DATA is discarded by the server, RFC 5321 4.1.1.4)."""
        if not self._closed:
            self._closed = True
            self.transport.close()

    async def quit(self) -> None:
        """Say goodbye politely when the connection is still usable; close it either way."""
        if self.is_connected:
            try:
                await self.command(b"QUIT")
            except (LaneClosed, TimeoutError, OSError):
                pass
        self.close()


# What connecting may raise: refused, unreachable, TLS or authentication failure.
CONNECT_ERRORS = (aiosmtplib.SMTPException, OSError)
