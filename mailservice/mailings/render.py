"""Campaign messages: a staff-written Jinja2 template rendered once, each recipient's copy filled in from it.

Building an ``EmailMessage`` per recipient costs about a millisecond; a campaign is therefore rendered once with
placeholders for the personal values (``{{ unsubscribe_url }}``, ``{{ name }}``), its static headers are encoded
once by the standard library, and each copy is the static parts plus the recipient's values, quoted-printable
encoded by ``binascii`` (C). Before a campaign uses this path, the result for sample recipients is compared with a
full Jinja2 render; a template that treats the personal values in a way substitution cannot reproduce (a filter
on them) silently falls back to a full render per recipient. Pure: no database, no network.

Every copy carries ``List-Unsubscribe`` (https and mailto, RFC 2369), ``List-Unsubscribe-Post`` (RFC 8058),
``List-Id`` (RFC 2919), ``Precedence: bulk``, a Message-ID stable per (campaign, recipient), a text and an HTML
part; with a key configured, a DKIM signature covering those headers (dkimpy; RFC 8058 section 4 requires
List-Unsubscribe and List-Unsubscribe-Post to be signed).
"""

from __future__ import annotations

import binascii
import email.policy
import html
import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from functools import lru_cache
from pathlib import Path
from typing import Any

import dkim
from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from mailservice.config import Settings
from mailservice.db import utcnow
from mailservice.mail.headers import HeaderInjectionError, safe_header_value
from mailservice.templating import render, ru_date, ru_short_date

CRLF = "\r\n"
SAMPLE_URL = "https://example.invalid/unsubscribe/SAMPLE.token-_"
SAMPLE_NAMES = ("Иван Петрович <&> О'Нил", "")
DKIM_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
)
_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)»]")


class TemplateRefused(ValueError):
    """A campaign template (or subject) that must not be sent; the message says why, in Russian."""


def _environment(autoescape: bool) -> SandboxedEnvironment:
    # Staff write these templates: a sandbox keeps a template from reaching Python internals.
    env = SandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["ru_date"] = ru_date
    env.filters["ru_short_date"] = ru_short_date
    return env


_TEXT_ENV = _environment(False)
_HTML_ENV = _environment(True)


@lru_cache(maxsize=64)
def _compiled(source: str, html_mode: bool) -> Template:
    """A staff template compiled once per process (each pass renders it several times)."""
    return (_HTML_ENV if html_mode else _TEXT_ENV).from_string(source)


def text_to_html(text: str) -> str:
    """Plain text as simple HTML: escaped, links clickable, paragraphs kept."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()):
        escaped = html.escape(block, quote=True)
        linked = _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
        paragraphs.append("<p>" + linked.replace("\n", "<br>\n") + "</p>")
    return "\n".join(paragraphs)


@dataclass(frozen=True)
class CampaignSource:
    """What staff wrote: the subject, the text template and an optional HTML template."""

    subject: str
    text: str
    html: str | None
    list_title: str
    list_slug: str


@dataclass(frozen=True)
class PublicSettings:
    """What a campaign template may read of the settings: the department's public facts only. The settings
    themselves hold the signing keys (they sign every link: status, claim, unsubscribe, history download) and the
    mailbox passwords, and the sandbox does not hide ordinary attributes (defect U8)."""

    department_name: str
    department_name_dative: str
    department_address: str
    department_phones: str
    public_url: str
    site_url: str
    from_name: str
    from_address: str


def public_settings(settings: Settings) -> PublicSettings:
    """The settings a campaign template sees as ``{{ settings.… }}``; any other name is an error in the template."""
    return PublicSettings(**{name: getattr(settings, name) for name in PublicSettings.__dataclass_fields__})


def _context(settings: Settings, source: CampaignSource, name: str, url: str) -> dict[str, Any]:
    return {
        "settings": public_settings(settings),
        "subject": source.subject,
        "list_title": source.list_title,
        "name": name,
        # «Здравствуйте, Анна!» or, for a subscriber who gave no name, «Здравствуйте!» (never «Здравствуйте, !»).
        "greeting": f"Здравствуйте, {name}!" if name else "Здравствуйте!",
        "unsubscribe_url": url,
    }


def render_bodies(settings: Settings, source: CampaignSource, name: str, url: str) -> tuple[str, str]:
    """The text and HTML bodies for one recipient, by a full Jinja2 render (the reference the fast path matches)."""
    context = _context(settings, source, name, url)
    text = _compiled(source.text, False).render(context)
    if source.html is not None:
        body_html = _compiled(source.html, True).render(context)
    else:
        body_html = render("email/mailing_layout.html", subject=source.subject, body=Markup(text_to_html(text)))  # noqa: S704 - escaped inside
    return text, body_html


def validate(settings: Settings, source: CampaignSource) -> None:
    """Refuse a campaign before anything is sent: bad subject, template errors, no personal unsubscribe link."""
    try:
        safe_header_value(source.subject)
        safe_header_value(source.list_title)
    except HeaderInjectionError as exc:
        raise TemplateRefused(f"тема или название списка недопустимы: {exc}") from None
    if not source.subject.strip():
        raise TemplateRefused("у рассылки нет темы")
    for name in SAMPLE_NAMES:
        try:
            text, body_html = render_bodies(settings, source, name, SAMPLE_URL)
        except TemplateError as exc:
            line = getattr(exc, "lineno", None)
            where = f" (строка {line})" if line else ""
            raise TemplateRefused(f"ошибка в шаблоне{where}: {exc}") from None
        if SAMPLE_URL not in text:
            raise TemplateRefused("в тексте письма нет персональной ссылки для отписки {{ unsubscribe_url }}")
        if SAMPLE_URL not in body_html:
            raise TemplateRefused("в HTML-версии письма нет персональной ссылки для отписки {{ unsubscribe_url }}")


def _qp(text: str) -> bytes:
    """Quoted-printable (RFC 2045) with CRLF line ends, in C."""
    data = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", CRLF).encode("utf-8")
    return binascii.b2a_qp(data, istext=True)


class DkimSigner:
    """DKIM-Signature (RFC 6376) with dkimpy; relaxed/relaxed canonicalisation survives re-folding relays."""

    def __init__(self, selector: str, domain: str, private_key: bytes) -> None:
        self.selector = selector.encode("ascii")
        self.domain = domain.encode("idna")
        self.private_key = private_key
        # Fail now on a bad key rather than on the first recipient.
        dkim.sign(b"From: a@b.c\r\n\r\n", self.selector, self.domain, private_key, include_headers=[b"from"])

    def sign(self, message: bytes) -> bytes:
        """The message with its DKIM-Signature header in front."""
        signature = dkim.sign(
            message,
            self.selector,
            self.domain,
            self.private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(DKIM_HEADERS),
        )
        return signature + message


def signer_from_settings(settings: Settings) -> DkimSigner | None:
    """The DKIM signer when a key is configured, else None (a busy site may sign at its MTA instead)."""
    if settings.dkim_private_key_file is None:
        return None
    path = Path(settings.dkim_private_key_file)
    if not settings.dkim_selector:
        raise ValueError("MAILSERVICE_DKIM_SELECTOR is required with a DKIM key")
    domain = settings.dkim_domain or settings.from_address.rpartition("@")[2]
    return DkimSigner(settings.dkim_selector, domain, path.read_bytes())


def list_id_namespace(settings: Settings) -> str:
    """The RFC 2919 namespace: the setting, or ``lists.`` + our domain."""
    return settings.list_id or f"lists.{settings.from_address.rpartition('@')[2] or 'localhost'}"


@dataclass(frozen=True)
class Recipient:
    """The personal values of one copy."""

    subscription_id: int
    address: str  # ASCII form (IDN domain as punycode)
    name: str
    unsubscribe_url: str
    unsubscribe_mailto: str


class CampaignRenderer:
    """One campaign rendered once; :meth:`message` gives each recipient's bytes (CRLF, ready for DATA)."""

    def __init__(
        self,
        settings: Settings,
        source: CampaignSource,
        *,
        campaign_id: int,
        uid: str,
        signer: DkimSigner | None = None,
        subject_prefix: str = "",
    ) -> None:
        validate(settings, source)
        self.settings = settings
        self.source = source
        self.campaign_id = campaign_id
        self.uid = uid
        self.signer = signer
        self.domain = settings.from_address.rpartition("@")[2] or "localhost"
        self.boundary = f"=_mailing_{uid}"  # "=_" never occurs in quoted-printable text
        self._url_ph = f"https://unsubscribe.invalid/ZZU{uid}ZZ"
        self._name_ph = f"ZZN{uid}ZZ"
        self._static = self._static_headers(subject_prefix)
        self._date_minute = -1
        self._date_line = b""
        self._variants = {
            has_name: render_bodies(settings, source, self._name_ph if has_name else "", self._url_ph)
            for has_name in (True, False)
        }
        self.fast = all(self._fast_matches(name) for name in SAMPLE_NAMES)

    def _static_headers(self, subject_prefix: str) -> bytes:
        settings, source = self.settings, self.source
        skeleton = EmailMessage()
        username, _, domain = settings.from_address.rpartition("@")
        skeleton["From"] = Address(display_name=safe_header_value(settings.from_name), username=username, domain=domain)
        skeleton["Subject"] = safe_header_value((subject_prefix + source.subject).strip())
        skeleton["List-Id"] = (
            f"{safe_header_value(source.list_title)} <{source.list_slug}.{list_id_namespace(settings)}>"
        )
        skeleton["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        skeleton["Precedence"] = "bulk"
        # RFC 3834: automatic, so vacation responders stay silent; mailings are not replies.
        skeleton["Auto-Submitted"] = "auto-generated"
        skeleton["X-Auto-Response-Suppress"] = "All"
        skeleton["MIME-Version"] = "1.0"
        skeleton["Content-Type"] = f'multipart/alternative; boundary="{self.boundary}"'
        return b"".join(email.policy.SMTP.fold_binary(k, v) for k, v in skeleton.items())

    def _fast_matches(self, name: str) -> bool:
        reference = render_bodies(self.settings, self.source, name, SAMPLE_URL)
        return self._bodies(name, SAMPLE_URL) == reference

    def _bodies(self, name: str, url: str) -> tuple[str, str]:
        text, body_html = self._variants[bool(name)]
        text = text.replace(self._url_ph, url)
        body_html = body_html.replace(self._url_ph, html.escape(url, quote=True))
        if name:
            text = text.replace(self._name_ph, name)
            body_html = body_html.replace(self._name_ph, html.escape(name, quote=True))
        return text, body_html

    def message_id(self, subscription_id: int) -> str:
        """Stable per (campaign, recipient): a resend or a duplicate shows as one message in mail clients."""
        return f"mailing.{self.campaign_id}.{subscription_id}.{self.uid}@{self.domain}"

    def _date(self) -> bytes:
        now = utcnow()
        minute = int(now.timestamp()) // 60
        if minute != self._date_minute:
            self._date_minute = minute
            self._date_line = f"Date: {format_datetime(now)}{CRLF}".encode("ascii")
        return self._date_line

    def message(self, recipient: Recipient) -> bytes:
        """The full message for one recipient (signed when a DKIM key is configured)."""
        name = recipient.name
        try:
            safe_header_value(name, max_len=200)
        except HeaderInjectionError:
            name = ""  # never let a stored value break a header (CVE-2024-6923); the copy still goes out
        if self.fast:
            text, body_html = self._bodies(name, recipient.unsubscribe_url)
        else:
            text, body_html = render_bodies(self.settings, self.source, name, recipient.unsubscribe_url)
        to = formataddr((name, recipient.address), charset="utf-8") if name else recipient.address
        head = b"".join(
            (
                self._date(),
                self._static,
                f"To: {to}{CRLF}".encode("ascii"),
                f"Message-ID: <{self.message_id(recipient.subscription_id)}>{CRLF}".encode("ascii"),
                f"List-Unsubscribe: <{recipient.unsubscribe_url}>,{CRLF} <{recipient.unsubscribe_mailto}>{CRLF}".encode(
                    "ascii"
                ),
            )
        )
        boundary = self.boundary.encode("ascii")
        body = b"".join(
            (
                b"\r\n--" + boundary + b"\r\n",
                b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n',
                _qp(text),
                b"\r\n--" + boundary + b"\r\n",
                b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n',
                _qp(body_html),
                b"\r\n--" + boundary + b"--\r\n",
            )
        )
        raw = head + body
        return self.signer.sign(raw) if self.signer is not None else raw
