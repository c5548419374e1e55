"""One typed settings object, read from the environment (prefix ``MAILSERVICE_``) and an optional ``.env``.

Every command and process reads the same object, so pointing ``MAILSERVICE_DATABASE_URL`` elsewhere works for
all of them. Outside development the object refuses to start with placeholder or missing secrets.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
import os
import re
import secrets
from collections import Counter
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

# Pydantic Settings' own models and ours are built without looking for Pydantic plugins (the service uses none):
# the look-up reads the entry points of every installed package, a tenth of a light command's start. An explicit
# PYDANTIC_DISABLE_PLUGINS is kept, and the models built later look for plugins as usual.
_PLUGINS = os.environ.get("PYDANTIC_DISABLE_PLUGINS")
os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"

from pydantic import Field, ValidationInfo, field_validator, model_validator  # noqa: E402
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict  # noqa: E402

from mailservice.mail.addresses import address_key  # noqa: E402  (pure: no import of the service)

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev", "development", "placeholder"}
# A signing key must resist guessing: at least this many characters and this many bits by estimate_entropy_bits
# (NIST SP 800-131A: 128-bit security for HMAC keys).
MIN_SECRET_LENGTH = 32
MIN_SECRET_BITS = 128


class Environment(StrEnum):
    """Two environments only: nothing skips the production checks but development itself (tests run there)."""

    development = "development"
    production = "production"


def _character_pool(value: str) -> int:
    """How many symbols the classes of characters in ``value`` hold (lower, upper, digits, other ASCII, else)."""
    pool = 0
    pool += 26 if any("a" <= c <= "z" for c in value) else 0
    pool += 26 if any("A" <= c <= "Z" for c in value) else 0
    pool += 10 if any(c.isascii() and c.isdigit() for c in value) else 0
    pool += 33 if any(c.isascii() and not c.isalnum() for c in value) else 0
    pool += 100 if any(not c.isascii() for c in value) else 0
    return max(pool, 1)


def _period(value: str) -> int:
    """The length of the shortest block that ``value`` repeats (``len(value)`` when it repeats none)."""
    n = len(value)
    for p in range(1, n):
        if all(value[i] == value[i % p] for i in range(p, n)):
            return p
    return n


def _shannon(symbols: list[object]) -> float:
    """Bits per symbol of the symbols' observed frequencies."""
    if not symbols:
        return 0.0
    n = len(symbols)
    return max(0.0, -sum((k / n) * math.log2(k / n) for k in Counter(symbols).values()))


def estimate_entropy_bits(value: str) -> float:
    """A conservative estimate of the guessing entropy of a key, in bits (pure).

    The least of four bounds: the length times the bits of its character classes; the key's shortest repeated
    block (``changeme`` x 4 is worth one ``changeme``); its Shannon entropy from the characters' frequencies
    (32 times ``a`` is worth nothing); and the same over the steps between neighbours (``abcdef...`` is worth
    little). A random ``secrets.token_urlsafe(48)`` scores well above 128 bits.
    """
    if not value:
        return 0.0
    per_char = math.log2(_character_pool(value))
    steps: list[object] = [ord(b) - ord(a) for a, b in itertools.pairwise(value)]
    return min(
        len(value) * per_char,
        _period(value) * per_char,
        len(value) * _shannon(list(value)),
        len(value) * _shannon(steps),
    )


KEY_ADVICE = 'создайте новый командой python3 -c "import secrets; print(secrets.token_urlsafe(48))"'


def secret_key_problem(key: str) -> str | None:
    """Why a signing key is unfit for production, in Russian, or None (pure)."""
    if key.lower() in PLACEHOLDER_SECRETS or any(word in key.lower() for word in ("changeme", "change-me")):
        return "— заглушка, а не ключ"
    if len(key) < MIN_SECRET_LENGTH:
        return f"короче {MIN_SECRET_LENGTH} символов"
    bits = estimate_entropy_bits(key)
    if bits < MIN_SECRET_BITS:
        return (
            f"слишком предсказуем: около {bits:.0f} бит энтропии, нужно не меньше {MIN_SECRET_BITS} "
            "(повторяющийся шаблон?)"
        )
    return None


# What pydantic's own refusals of a value mean, for an administrator reading `Ошибка в настройках` (its messages are
# English: "Input should be a valid integer").
_PYDANTIC_ERRORS = {
    "int_parsing": "нужно целое число",
    "int_from_float": "нужно целое число",
    "float_parsing": "нужно число",
    "bool_parsing": "нужно true или false",
    "greater_than_equal": "нужно не меньше {ge}",
    "less_than_equal": "нужно не больше {le}",
    "greater_than": "нужно больше {gt}",
    "less_than": "нужно меньше {lt}",
    "enum": "допустимо: {expected}",
    "literal_error": "допустимо: {expected}",
    "missing": "значение не задано",
    "json_invalid": "нужен список через запятую или JSON",
}
# Values never repeated back on the terminal or in a log: they may be (or hold) a password or a key.
_SECRET_FIELDS = ("password", "secret", "database_url", "dkim")


def explain_settings_error(errors: list[dict[str, object]]) -> str:
    """One Russian line for pydantic's ``ValidationError.errors()`` of :class:`Settings`: each refused setting by
    its variable name, with what it needs; our own checks already speak Russian and name their variable."""
    parts = []
    for error in errors:
        context = error.get("ctx") if isinstance(error.get("ctx"), dict) else {}
        assert isinstance(context, dict)
        if error.get("type") == "value_error" and "error" in context:
            parts.append(str(context["error"]))
            continue
        loc = error.get("loc") or ()
        field = str(loc[0]) if isinstance(loc, tuple) and loc else ""
        name = f"MAILSERVICE_{field.upper()}" if field else "настройки"
        expected = str(context.get("expected", "")).replace("'", "").replace(" or ", ", ")
        need = _PYDANTIC_ERRORS.get(str(error.get("type")), "значение недопустимо")
        need = need.format(**{**{str(k): v for k, v in context.items()}, "expected": expected})
        shown = "" if any(word in field for word in _SECRET_FIELDS) or "input" not in error else error["input"]
        value = f" «{shown}»" if isinstance(shown, str | int | float) and str(shown) else ""
        parts.append(f"{name}{value}: {need}")
    return " ".join("; ".join(parts).split())


class Security(StrEnum):
    ssl = "ssl"
    starttls = "starttls"
    none = "none"


def _is_this_machine(host: str) -> bool:
    """Whether a host name always means the machine that reads it (RFC 6761 6.3, RFC 1122 3.2.1.3, RFC 4291 2.5.3)."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


_RESERVED_TLDS = frozenset({"example", "test", "invalid", "localhost"})  # RFC 2606 2, RFC 6761 6


def _is_placeholder_host(host: str) -> bool:
    """A name reserved for examples and tests (RFC 2606, RFC 6761), or one with an ``example`` label."""
    labels = host.lower().rstrip(".").split(".")
    return labels[-1] in _RESERVED_TLDS or "example" in labels


def public_url_problem(url: str) -> str | None:
    """Why a production PUBLIC_URL cannot serve citizens, in Russian, or None (pure; empty is refused apart)."""
    parts = urlsplit(url.strip())
    try:
        host = parts.hostname or ""
    except ValueError:
        host = ""
    if parts.scheme.lower() not in {"http", "https"} or not host:
        return "— не адрес страницы; укажите адрес, по которому граждане открывают страницы службы (https://…)"
    if _is_placeholder_host(host):
        # RFC 2606 and 6761 reserve these names for examples: .env.example's own «info.example.gov.ru» among them.
        return (
            "— адрес-образец, а не адрес службы: ссылки в письмах гражданам никуда бы не вели; "
            "укажите адрес, по которому граждане открывают страницы службы (https://…)"
        )
    if _is_this_machine(host):
        # Every link in every letter would lead back to the reader's own computer, which no citizen can open.
        return (
            "ведёт на эту же машину: ссылки в письмах гражданам открывались бы на их собственном компьютере; "
            "укажите адрес, по которому граждане открывают страницы службы (https://…)"
        )
    if parts.scheme.lower() != "https":
        # Status, history and unsubscribe links carry tokens, and staff log in through the same address: over plain
        # HTTP anyone on the way reads them (152-FZ art. 19: personal data protected in transit).
        return (
            "— без https: ссылки с личными данными и вход сотрудников шли бы по сети открытыми; "
            "укажите https-адрес обратного прокси"
        )
    return None


# Letters, digits and hyphens (RFC 1123 2.1), and the underscore that container and /etc/hosts names often hold.
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


def host_problem(host: str) -> str | None:
    """Why a server's name cannot be connected to, in Russian, or None (pure).

    An IP address, or a domain name whose labels are letters, digits and hyphens (RFC 1123 2.1; an internationalised
    name in its IDNA form, RFC 5890). Checked at start-up: a name the resolver refuses to encode (``smtp..mail.ru``)
    fails only on the first connection, as an error that is neither a refusal nor a time-out."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return None
    try:
        ascii_name = host.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        ascii_name = ""
    if not ascii_name or len(ascii_name) > 253 or not all(_LABEL.fullmatch(label) for label in ascii_name.split(".")):
        return "— не имя сервера и не IP-адрес; проверьте, нет ли лишних точек, пробелов или знаков"
    return None


def local_url(host: str, port: int) -> str:
    """The web app's address as a link: a wildcard host (listen everywhere) is reached on this machine."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - a host to listen on, turned into one to open
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:  # an IPv6 address in a URL is bracketed (RFC 3986 3.2.2)
        host = f"[{host}]"
    return f"http://{host}:{port}"


class Settings(BaseSettings):
    """All configuration of the service; see README for what each value means."""

    model_config = SettingsConfigDict(
        env_prefix="MAILSERVICE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: Environment = Environment.development
    data_dir: Path = Path("var")
    database_url: str = ""  # empty: SQLite file in data_dir
    # The department's disclosure site that staff edit (`site new`); empty: data_dir/site, created from the
    # packaged skeleton on first use or by `mailservice site init`.
    site_dir: Path | None = None
    timezone: str = "Asia/Novosibirsk"
    # The address people open the web pages at (links in e-mails, the banner of `run`). Empty: the web app's own
    # http://WEB_HOST:WEB_PORT (:func:`local_url`); behind a proxy set it to the proxy's https address.
    public_url: str = ""
    # The disclosure site's public address (QR code, open data links); the site's mkdocs.yml reads it too.
    site_url: str = ""
    department_name: str = "Департамент имущества и земельных отношений Новосибирской области"
    # The name in the dative case («согласие Департаменту …»); empty: the first word of the name declined.
    department_name_dative: str = ""
    # Its postal address goes into every answer (8-FZ art. 19); required outside development, no default invented.
    department_address: str = ""
    department_phones: str = "238-60-02, 238-60-62"

    # Signing: the first key signs, every key verifies (rotation).
    secret_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # IMAP intake
    imap_host: str = ""
    imap_port: int = 993
    imap_user: str = ""
    imap_password: str = ""
    imap_security: Security = Security.ssl
    imap_folder: str = "INBOX"
    imap_processed_folder: str = "Processed"
    imap_poll_interval: float = 60.0
    imap_idle_timeout: float = 290.0  # RFC 2177: re-issue IDLE at least every 29 minutes; we do it far sooner
    imap_batch_size: int = 200
    imap_ca_file: str = ""  # extra CA bundle for a private IMAP server; certificate checks are never turned off

    # Outgoing SMTP
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_security: Security = Security.none
    smtp_timeout: float = 30.0
    smtp_ca_file: str = ""
    from_address: str = "info@mailservice.localhost"
    from_name: str = "Департамент имущества и земельных отношений НСО"
    outbox_max_attempts: int = 12
    outbox_batch_size: int = 50

    # Inbound SMTP/LMTP receiver and the development sink (make run)
    receiver_host: str = "127.0.0.1"
    receiver_port: int = 2525
    receiver_lmtp: bool = False
    sink_host: str = "127.0.0.1"
    sink_port: int = 1025
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    # Proxies (IP addresses or networks, comma-separated) whose X-Forwarded-For names the client. Empty: none, the
    # peer of the connection is the client (a local process cannot claim another address).
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Intake limits
    max_message_bytes: int = 30 * 1024 * 1024
    max_attachment_bytes: int = 15 * 1024 * 1024
    # Automatic replies (acknowledgements) to one address per hour; anyone can write in anyone's name, so more
    # letters are registered without one (a note on the request says so). 0: no limit.
    ack_limit_per_hour: int = Field(default=5, ge=0)
    # Processes that parse and classify fetched messages while this one writes the previous batch (the CPU-heavy,
    # database-free half of intake). None: one per CPU but one; 0: everything in this process.
    intake_workers: int | None = Field(default=None, ge=0, le=64)
    # Dedicated addresses of the commands by e-mail (empty: none). Mail to one of them is that command whatever it
    # says; elsewhere only the strict forms of the README are commands (intake/commands.py).
    subscribe_address: str = ""
    unsubscribe_address: str = ""
    history_address: str = ""
    # Forwarded appeals (issue 13): the domains of bodies (comma-separated; empty: off) whose forwards of a citizen's
    # letter are registered under the citizen, when our receiving server's Authentication-Results, with this
    # authserv-id, proves the body's domain (intake/authres.py).
    forwarding_bodies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    trusted_authserv_id: str = ""

    # Legal policy (RULES.md)
    appeal_by_email: Literal["register", "redirect_only"] = "register"
    due_shift: Literal["previous", "next", "none"] = "previous"
    due_soon_working_days: int = 3
    calendar_override_file: Path | None = None
    history_retention_years: int = 5

    # --- mailings ---
    # RFC 2919 List-Id namespace (a domain we control); empty: "lists." + the domain of from_address.
    list_id: str = ""
    # mailto: address for List-Unsubscribe (RFC 2369); empty: from_address (intake reads it).
    mailing_unsubscribe_address: str = ""
    mailing_rate_per_minute: int = 600  # all workers together; 0 = no limit
    mailing_concurrency: int = 8  # SMTP connections per worker process
    mailing_batch_size: int = 200  # deliveries claimed at a time
    # Processes that send one campaign together (`campaign send`, sharing it as separate workers would); empty: one
    # per two CPUs (the database and the relay usually share the machine). Campaigns of one batch use one process.
    mailing_processes: int | None = Field(default=None, ge=1, le=64)
    mailing_confirm_hours: int = 168  # life of the double opt-in link
    mailing_purge_after_days: int = 7  # personal data destroyed this long after withdrawal (152-FZ: <= 30)
    mailing_limit_per_address: int = 3  # subscribe requests per address per hour
    mailing_limit_per_ip: int = 30  # subscribe requests per IP per hour
    mailing_worker_timeout: float = 120.0  # a worker silent this long is dead; its claims are reconciled
    dkim_selector: str = ""
    dkim_domain: str = ""  # empty: the domain of from_address
    dkim_private_key_file: Path | None = None  # DKIM is on when this is set (or sign at the MTA instead)

    # --- spreadsheets read (the process register) ---
    spreadsheet_max_rows: int = Field(default=10_000, ge=1)
    spreadsheet_max_columns: int = Field(default=100, ge=16)  # the template has 16
    spreadsheet_max_merged: int = Field(default=1_000, ge=0)
    spreadsheet_max_unpacked_mb: int = Field(default=64, ge=1)

    # --- the staff's working day (issue 17) ---
    # Daily reminders to assignees and unit heads: at this hour of the department's day, working days only, listing
    # requests whose control date is at most this many working days away (and overdue ones, forwarding and
    # extension notices due).
    reminder_hour: int = Field(default=9, ge=0, le=23)
    reminder_working_days: int = Field(default=3, ge=0, le=30)
    # Heads of units: "Отдел аренды=head@dizo.ru; Отдел земли=land@dizo.ru" (unit as typed on requests = address).
    unit_heads: str = ""
    # The head of department: the monthly report, and reminders of requests that name no unit and no assignee.
    head_of_department_email: str = ""
    # Hour of the first working day of a month when the monthly report goes out; the retention run's hour.
    monthly_report_hour: int = Field(default=9, ge=0, le=23)
    retention_hour: int = Field(default=2, ge=0, le=23)

    # --- feedback ---
    feedback_limit_per_ip: int = 10  # ratings from the anonymous site form per IP per hour; 0 = no limit

    # --- letters by post (clients without e-mail): the signatory when the member of staff who acted has none ---
    letter_signatory_position: str = "Начальник отдела"
    letter_signatory_name: str = ""

    # --- the site's request form (/request) ---
    request_limit_per_ip: int = Field(default=5, ge=0)  # requests per IP per hour; 0 = no limit
    request_min_fill_seconds: int = Field(default=5, ge=0)  # a form sent sooner was filled by a program
    request_max_files: int = Field(default=5, ge=0, le=20)
    request_max_file_bytes: int = Field(default=10 * 1024 * 1024, ge=1)  # each file; all together: max_attachment_bytes

    # --- processes ---
    # MAILSERVICE_PROCESS_OFFICERS (issue 9) is gone: the officers are console accounts with the role process_officer
    # (issue 18). A value still set in the environment is ignored (extra="ignore").

    @field_validator("secret_keys", "trusted_proxies", "forwarding_bodies", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"MAILSERVICE_TRUSTED_PROXIES: «{item}» — не IP-адрес и не сеть") from None
        return value

    @field_validator("smtp_host", "imap_host")
    @classmethod
    def _check_host(cls, value: str, info: ValidationInfo) -> str:
        # An empty IMAP host: no mailbox to read (mail comes by the receiver); an empty SMTP host sends nowhere.
        problem = host_problem(value) if value or info.field_name == "smtp_host" else None
        if problem is not None:
            raise ValueError(f"MAILSERVICE_{(info.field_name or '').upper()} «{value}» {problem}")
        return value

    @model_validator(mode="after")
    def _derive_public_url(self) -> Settings:
        # In production an empty value stays empty and is refused (_refuse_placeholders), never derived.
        if not self.public_url.strip() and self.environment is Environment.development:
            self.public_url = local_url(self.web_host, self.web_port)
        return self

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.environment is Environment.development:
            return self
        # The messages are an administrator's first words from the service: Russian, naming the variable to set.
        if not self.secret_keys:
            raise ValueError(
                f"MAILSERVICE_SECRET_KEYS не задан: в рабочем режиме нужен ключ подписи ссылок; {KEY_ADVICE}"
            )
        for number, key in enumerate(self.secret_keys, start=1):
            problem = secret_key_problem(key)
            if problem is not None:
                raise ValueError(f"MAILSERVICE_SECRET_KEYS: ключ № {number} {problem}; {KEY_ADVICE}")
        if not self.department_address.strip():
            raise ValueError(
                "MAILSERVICE_DEPARTMENT_ADDRESS не задан: укажите почтовый адрес департамента, "
                "он нужен в каждом ответе (8-ФЗ, ст. 19)"
            )
        if not self.public_url.strip():
            # Every status, joining, history and unsubscribe link would lead to this machine's own address,
            # which no citizen can open: letters that look sent but do not serve.
            raise ValueError(
                "MAILSERVICE_PUBLIC_URL не задан: ссылки в письмах вели бы на "
                f"{local_url(self.web_host, self.web_port)}, адрес этой машины; укажите адрес, по которому "
                "граждане открывают страницы службы (https://…)"
            )
        link_problem = public_url_problem(self.public_url)
        if link_problem is not None:
            raise ValueError(f"MAILSERVICE_PUBLIC_URL «{self.public_url}» {link_problem}")
        sender_domain = self.from_address.rpartition("@")[2].strip().lower().rstrip(".")
        if not sender_domain:
            raise ValueError(
                "MAILSERVICE_FROM_ADDRESS не задан: укажите адрес департамента, с которого уходят письма и на который "
                "отвечают граждане"
            )
        if sender_domain == "localhost" or sender_domain.endswith(".localhost"):
            # RFC 6761 6.3: .localhost is never a real domain; replies bounce and receivers reject the letters.
            raise ValueError(
                f"MAILSERVICE_FROM_ADDRESS «{self.from_address}» — адрес для разработки, ответить на него нельзя: "
                "укажите адрес департамента, с которого уходят письма"
            )
        if self.imap_host and self.imap_security is Security.none and self.imap_host not in {"127.0.0.1", "localhost"}:
            raise ValueError(
                f"MAILSERVICE_IMAP_SECURITY=none: IMAP без шифрования к удалённому серверу {self.imap_host} "
                "в рабочем режиме запрещён; укажите ssl или starttls"
            )
        login = bool(self.smtp_user or self.smtp_password)
        if login and self.smtp_security is Security.none and not _is_this_machine(self.smtp_host):
            # The login (RFC 4954 AUTH PLAIN or LOGIN) would cross the network in the clear, as IMAP's would above.
            raise ValueError(
                f"MAILSERVICE_SMTP_SECURITY=none: вход на удалённый сервер отправки {self.smtp_host} без шифрования "
                "в рабочем режиме запрещён (пароль шёл бы по сети открытым); укажите starttls или ssl"
            )
        return self

    # Derived values -------------------------------------------------------------------------------------------

    @property
    def tz(self) -> ZoneInfo:
        """The department's time zone: it decides what "today" is for every deadline."""
        return ZoneInfo(self.timezone)

    @property
    def effective_database_url(self) -> str:
        """The configured database, or the embedded SQLite file under ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'mailservice.sqlite3').resolve()}"

    @property
    def effective_site_dir(self) -> Path:
        """The live site folder (mkdocs.yml, sections.yml, docs/): ``site_dir`` or ``data_dir/site``."""
        return self.site_dir or self.data_dir / "site"

    @property
    def blob_dir(self) -> Path:
        """Content-addressed store of raw messages and attachments."""
        return self.data_dir / "blobs"

    @property
    def own_addresses(self) -> frozenset[str]:
        """The service's own mailboxes, case-folded: the address it sends from, the mailbox it reads (when the login
        is an address), the List-Unsubscribe ``mailto:`` and the commands' dedicated addresses. A letter From one of
        them is never answered automatically (RFC 3834 section 2: a responder must not reply to itself). Keyed as
        every address is compared (mail/addresses.py: case, NFC, an IDN domain as Unicode)."""
        addresses = (
            self.from_address,
            self.imap_user,
            self.mailing_unsubscribe_address,
            self.subscribe_address,
            self.unsubscribe_address,
            self.history_address,
        )
        return frozenset(address_key(a) for a in addresses if "@" in a)

    @property
    def unit_head_map(self) -> dict[str, str]:
        """``unit_heads`` read as {unit (lower case, single spaces): address}; malformed parts are skipped."""
        heads: dict[str, str] = {}
        for part in self.unit_heads.split(";"):
            unit, sep, address = part.rpartition("=")
            if sep and unit.strip() and "@" in address:
                heads[" ".join(unit.split()).lower()] = address.strip()
        return heads

    def signing_keys(self) -> list[str]:
        """Keys for itsdangerous, newest first.

        In development a random key is created once under ``data_dir`` so that links survive a restart and no
        secret ever sits in the repository.
        """
        if self.secret_keys:
            return list(self.secret_keys)
        key_file = self.data_dir / "secret_key"
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            # Created owner-only, never readable for a moment under the umask as write-then-chmod would leave it.
            try:
                fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it meanwhile
                pass
            else:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(secrets.token_urlsafe(48))
        return [key_file.read_text(encoding="utf-8").strip()]


if _PLUGINS is None:
    del os.environ["PYDANTIC_DISABLE_PLUGINS"]
else:
    os.environ["PYDANTIC_DISABLE_PLUGINS"] = _PLUGINS


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests call ``get_settings.cache_clear()`` after changing the environment)."""
    return Settings()
