"""One typed settings object, read from the environment (prefix ``MAILSERVICE_``) and an optional ``.env``.

Every command and process reads the same object, so pointing ``MAILSERVICE_DATABASE_URL`` elsewhere works for
all of them. Outside development the object refuses to start with placeholder or missing secrets.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev", "development", "placeholder"}


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class Security(StrEnum):
    ssl = "ssl"
    starttls = "starttls"
    none = "none"


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
    public_url: str = "http://127.0.0.1:8000"
    # The disclosure site's public address (QR code, open data links); the site's mkdocs.yml reads it too.
    site_url: str = ""
    # Addresses of the reverse proxies whose X-Forwarded-For/-Proto the web app believes (comma-separated, or "*"):
    # behind a TLS proxy the per-address limits then see the client, not the proxy. Empty: no proxy trusted.
    trusted_proxies: str = ""
    department_name: str = "Департамент имущества и земельных отношений Новосибирской области"
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

    # Intake limits
    max_message_bytes: int = 30 * 1024 * 1024
    max_attachment_bytes: int = 15 * 1024 * 1024
    # Processes that parse and classify fetched messages while this one writes the previous batch (the CPU-heavy,
    # database-free half of intake). None: one per CPU but one; 0: everything in this process.
    intake_workers: int | None = Field(default=None, ge=0, le=64)

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
    mailing_concurrency: int = 4  # SMTP connections per worker process
    mailing_batch_size: int = 200  # deliveries claimed at a time
    mailing_confirm_hours: int = 168  # life of the double opt-in link
    mailing_purge_after_days: int = 7  # personal data destroyed this long after withdrawal (152-FZ: <= 30)
    mailing_limit_per_address: int = 3  # subscribe requests per address per hour
    mailing_limit_per_ip: int = 30  # subscribe requests per IP per hour
    mailing_worker_timeout: float = 120.0  # a worker silent this long is dead; its claims are reconciled
    dkim_selector: str = ""
    dkim_domain: str = ""  # empty: the domain of from_address
    dkim_private_key_file: Path | None = None  # DKIM is on when this is set (or sign at the MTA instead)

    # --- processes ---
    # E-mail addresses (comma-separated) of the officers responsible for client-centricity: only they change the
    # process register (seed 003, appendix 2, section III). Empty: nobody can change it.
    process_officers: str = ""

    @field_validator("secret_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.environment is Environment.development or self.environment is Environment.test:
            return self
        if not self.secret_keys:
            raise ValueError("MAILSERVICE_SECRET_KEYS must be set outside development")
        for key in self.secret_keys:
            if key.lower() in PLACEHOLDER_SECRETS or len(key) < 32:
                raise ValueError("MAILSERVICE_SECRET_KEYS holds a placeholder or a key shorter than 32 characters")
        if not self.department_address.strip():
            raise ValueError("MAILSERVICE_DEPARTMENT_ADDRESS (postal address for answers, 8-FZ art. 19) must be set")
        if self.imap_host and self.imap_security is Security.none and self.imap_host not in {"127.0.0.1", "localhost"}:
            raise ValueError("plain IMAP to a remote host is refused outside development")
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
            key_file.write_text(secrets.token_urlsafe(48), encoding="utf-8")
            key_file.chmod(0o600)
        return [key_file.read_text(encoding="utf-8").strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests call ``get_settings.cache_clear()`` after changing the environment)."""
    return Settings()
