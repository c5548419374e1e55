"""Real servers for the tests: Dovecot (IMAP) on a free loopback port, and an aiosmtpd sink.

Dovecot refuses to run its login processes as root, so the mail is owned by the ``dovecot`` user and logins run
as ``dovenull``; any user name logs in with the server's own password (a static passdb): each test takes a new
user, and a client that reached another test process's Dovecot is refused. TLS uses a throwaway self-signed
certificate that the client trusts through ``MAILSERVICE_IMAP_CA_FILE``: certificate checks stay on.
"""

from __future__ import annotations

import asyncio
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailservice.mail.sink import SinkHandler, start_sink


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0) -> None:
    """Block until something accepts connections on the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


DOVECOT_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = {uid}
last_valid_uid = {uid}
mail_location = maildir:{root}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
mail_fsync = never
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {ssl_port}
    ssl = yes
  }}
  process_min_avail = 1
}}
service anvil {{
  chroot =
}}
service stats {{
  chroot =
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
"""


@dataclass
class Dovecot:
    """A running Dovecot with one test user."""

    root: Path
    port: int
    ssl_port: int
    user: str = "intake@test.local"
    password: str = field(default_factory=lambda: f"pw-{uuid.uuid4().hex}")  # this server's, no other's
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def ca_file(self) -> Path:
        """The self-signed certificate to trust."""
        return self.root / "cert.pem"

    def env(self, security: str = "none") -> dict[str, str]:
        """MAILSERVICE_IMAP_* settings for this server."""
        port = {"ssl": self.ssl_port}.get(security, self.port)
        return {
            "MAILSERVICE_IMAP_HOST": "localhost" if security != "none" else "127.0.0.1",
            "MAILSERVICE_IMAP_PORT": str(port),
            "MAILSERVICE_IMAP_USER": self.user,
            "MAILSERVICE_IMAP_PASSWORD": self.password,
            "MAILSERVICE_IMAP_SECURITY": security,
            "MAILSERVICE_IMAP_CA_FILE": str(self.ca_file),
        }

    def reset_mailbox(self) -> None:
        """A new user with an empty mailbox for each test (a fresh UIDVALIDITY).

        A new name, not only an emptied folder: Dovecot may still be closing an IMAP session of the previous
        test (a killed poller's), and such a session writes its index into the folder it had open even after the
        folder was deleted and made again ("duplicate transaction log sequence" in dovecot.log), so the next test
        would find mailboxes that are not there.
        """
        self.user = f"intake-{uuid.uuid4().hex[:12]}@test.local"  # any name logs in with the password
        shutil.rmtree(self.root / "mail", ignore_errors=True)
        (self.root / "mail").mkdir()
        _chown_tree(self.root / "mail")

    def stop(self) -> None:
        """Stop the server."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _chown_tree(path: Path) -> None:
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam("dovecot")
    for dirpath, _dirs, files in os.walk(path):
        os.chown(dirpath, entry.pw_uid, entry.pw_gid)
        for name in files:
            os.chown(os.path.join(dirpath, name), entry.pw_uid, entry.pw_gid)


def dovecot_missing_reason() -> str | None:
    """Why Dovecot cannot be started here, or None when it can."""
    if shutil.which("dovecot") is None:
        return "dovecot is not installed (apt-get install dovecot-imapd); `make test` installs it when run as root"
    if os.geteuid() != 0:
        return "the Dovecot fixture needs root to run Dovecot's dovecot/dovenull users"
    try:
        pwd.getpwnam("dovecot")
        pwd.getpwnam("dovenull")
    except KeyError:
        return "the dovecot and dovenull users are missing (reinstall dovecot-core)"
    return None


def start_dovecot(root: Path) -> Dovecot:
    """Start Dovecot in ``root`` (created) and wait until it accepts connections."""
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    entry = pwd.getpwnam("dovecot")
    server = Dovecot(root=root, port=free_port(), ssl_port=free_port())
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir(exist_ok=True)
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    conf = root / "dovecot.conf"
    conf.write_text(
        DOVECOT_CONF.format(
            root=root,
            password=server.password,
            port=server.port,
            ssl_port=server.ssl_port,
            uid=entry.pw_uid,
            gid=entry.pw_gid,
        ),
        encoding="utf-8",
    )
    _chown_tree(root / "mail")
    _chown_tree(root / "home")
    server.process = subprocess.Popen(
        ["dovecot", "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_port(server.port)
        wait_port(server.ssl_port)
        # The ports were free when chosen, not necessarily when Dovecot bound them: another process may have taken
        # one meanwhile, and then the port answers while this Dovecot has exited. Only ours knows its password.
        with imaplib.IMAP4("127.0.0.1", server.port, timeout=30) as client:
            client.login(f"probe@{root.name}", server.password)
            client.logout()
    except (TimeoutError, OSError, imaplib.IMAP4.error):
        server.stop()
        log = (root / "dovecot.log").read_text(errors="replace") if (root / "dovecot.log").exists() else ""
        stderr = server.process.stderr.read().decode(errors="replace") if server.process.stderr else ""
        raise RuntimeError(f"Dovecot did not start:\n{stderr}\n{log[-3000:]}") from None
    return server


@dataclass
class Sink:
    """A running aiosmtpd sink."""

    folder: Path
    port: int
    handler: SinkHandler
    controller: object

    def messages(self) -> list[tuple[str, list[str], bytes]]:
        """Everything received so far: (mail_from, rcpt_tos, raw)."""
        return list(self.handler.messages)

    def clear(self) -> None:
        """Forget what was received."""
        self.handler.messages.clear()


def run_sink(folder: Path) -> Sink:
    """Start an SMTP sink on a free port."""
    port = free_port()
    controller = start_sink(folder, "127.0.0.1", port)
    return Sink(folder=folder, port=port, handler=controller.handler, controller=controller)


@dataclass
class Recorder:
    """An SMTP server that records each accepted copy with its arrival time; it may refuse or dawdle."""

    delay: float = 0.0
    refuse: dict[str, str] = field(default_factory=dict)  # address prefix -> RCPT reply (once for 4xx; 2xx accepts)
    refuse_mail: list[str] = field(default_factory=list)  # replies to the next MAIL commands, one each
    after_message: dict[str, str] = field(default_factory=dict)  # address prefix -> final reply (once for 4xx)
    hang_up_after: set[str] = field(default_factory=set)  # addresses whose message is taken, then no answer
    refuse_data: dict[str, str] = field(default_factory=dict)  # address -> reply to DATA instead of 354 (once)
    hang_up_at_data: set[str] = field(default_factory=set)  # addresses whose DATA gets a 354, then a hang-up (once)
    garble_after_354: set[str] = field(default_factory=set)  # DATA gets a 354 and a malformed line, then a hang-up
    hold_354: threading.Event | None = None  # the 354 of a garbled DATA waits for this (at most 60 s)
    on_mail: list[Callable[[], None]] = field(default_factory=list)  # called one per MAIL, before its reply
    hang_up_after_refusal: set[str] = field(default_factory=set)  # after refusing these at RCPT, end the connection
    drop_at_rcpt: set[str] = field(default_factory=set)  # RCPT of these ends the connection with no reply (once)
    silent_rset: bool = False  # RSET gets no answer until the client hangs up (at most 60 s)
    mails: int = 0  # MAIL commands received so far
    _hang_up: bool = False  # set by a refused RCPT of hang_up_after_refusal (one connection at a time)
    arrivals: list[tuple[str, float]] = field(default_factory=list)
    connections: int = 0  # SMTP connections opened to this server so far
    quits: int = 0  # QUIT commands received so far (RFC 5321 4.1.1.10: the client's orderly end of a connection)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        with self.lock:
            self.mails += 1
        if self.on_mail:
            self.on_mail.pop(0)()
        if self.refuse_mail:
            return self.refuse_mail.pop(0)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.drop_at_rcpt:
            self.drop_at_rcpt.discard(address)
            assert isinstance(server.transport, asyncio.Transport)
            server.transport.close()  # the reply below is never written: the connection is already gone
            return "250 OK"
        for prefix, reply in list(self.refuse.items()):
            if address.startswith(prefix):
                if reply.startswith("2"):  # accepted in other words (251: not local, will forward)
                    envelope.rcpt_tos.append(address)
                elif reply.startswith("4"):
                    del self.refuse[prefix]  # a temporary failure: accept the next try
                if address in self.hang_up_after_refusal:
                    self.hang_up_after_refusal.discard(address)
                    self._hang_up = True
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        for prefix, reply in list(self.after_message.items()):
            if any(rcpt.startswith(prefix) for rcpt in envelope.rcpt_tos):
                if reply.startswith("4"):
                    del self.after_message[prefix]
                return reply
        if self.hang_up_after.intersection(envelope.rcpt_tos):
            with self.lock:
                self.arrivals.extend((rcpt, time.time()) for rcpt in envelope.rcpt_tos)
            assert isinstance(server.transport, asyncio.Transport)
            server.transport.abort()  # the message is in, the connection drops before the 250
            return "421 4.4.2 Connection dropped"
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.arrivals.append((rcpt, time.time()))
        return "250 2.0.0 Accepted"

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.silent_rset:
            assert isinstance(server.transport, asyncio.Transport)
            deadline = time.monotonic() + 60
            while not server.transport.is_closing() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        return "250 OK"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.quits += 1
        return "221 Bye"

    def count(self, address: str) -> int:
        with self.lock:
            return sum(1 for rcpt, _at in self.arrivals if rcpt == address)


class RecorderServer(SMTP):
    """aiosmtpd's server with the Recorder's say over DATA itself (no handler hook runs before the 354)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        handler = self.event_handler
        assert isinstance(handler, Recorder)
        with handler.lock:
            handler.connections += 1
        super().connection_made(transport)

    async def smtp_RCPT(self, arg: str | None) -> None:
        await super().smtp_RCPT(arg)
        handler = self.event_handler
        assert isinstance(handler, Recorder)
        if handler._hang_up:  # the refusal is out: the server goes away before the client's RSET
            handler._hang_up = False
            assert isinstance(self.transport, asyncio.Transport)
            self.transport.close()

    async def smtp_DATA(self, arg: str) -> None:
        handler = self.event_handler
        assert isinstance(handler, Recorder) and self.envelope is not None
        for rcpt in self.envelope.rcpt_tos:
            if rcpt in handler.refuse_data:
                await self.push(handler.refuse_data.pop(rcpt))
                return
            if rcpt in handler.hang_up_at_data:
                handler.hang_up_at_data.discard(rcpt)
                # The 354 and the end of the connection in one go (no await between them to yield in): the sender
                # learns both before it could write, as when a server goes away right after inviting the message.
                assert isinstance(self.transport, asyncio.Transport)
                self.transport.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                self.transport.close()
                return
            if rcpt in handler.garble_after_354:
                handler.garble_after_354.discard(rcpt)
                await self._garble(handler)
                return
        await super().smtp_DATA(arg)

    async def _garble(self, handler: Recorder) -> None:
        """A 354, a line that is no SMTP reply and the end of the connection, in one write: the client takes the
        354 and, in the same read, drops the connection over the bad line, before it could write the message. With
        ``hold_354`` the 354 waits until the test opens the gate (a permanent refusal if it never does)."""
        assert isinstance(self.transport, asyncio.Transport)
        if handler.hold_354 is not None:
            deadline = time.monotonic() + 60
            while not handler.hold_354.is_set():
                if time.monotonic() > deadline:
                    await self.push("554 5.3.0 the test's gate never opened")
                    return
                await asyncio.sleep(0.005)
        self.transport.write(b"354 End data with <CR><LF>.<CR><LF>\r\n\x00garbled\r\n")
        self.transport.close()


class RecorderController(Controller):
    """Runs a :class:`RecorderServer` for a :class:`Recorder`."""

    def factory(self) -> SMTP:
        return RecorderServer(self.handler, **self.SMTP_kwargs)
