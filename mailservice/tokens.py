"""Signed links: itsdangerous with one salt per purpose and key rotation.

The payload of an itsdangerous token is readable (base64), not encrypted: put opaque ids in it, never an address
or a name. The first key in ``MAILSERVICE_SECRET_KEYS`` signs; every key verifies, so a key can be retired by
moving it to the end of the list and later removing it.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import json
import zlib
from enum import StrEnum
from typing import Any

from itsdangerous import BadData, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from mailservice.config import Settings


class Purpose(StrEnum):
    """Every kind of signed link; the value is the salt, so a token for one purpose never passes as another."""

    subscribe_confirm = "mailservice.subscribe-confirm.v1"
    unsubscribe = "mailservice.unsubscribe.v1"
    history_download = "mailservice.history-download.v1"
    history_verify = "mailservice.history-verify.v1"  # console issue: confirm an address before sending
    feedback = "mailservice.feedback.v1"
    wg_approve = "mailservice.wg-approve.v1"
    wg_sign = "mailservice.wg-sign.v1"
    wg_ballot = "mailservice.wg-ballot.v1"
    wg_verify = "mailservice.wg-verify.v1"
    wg_instruction = "mailservice.wg-instruction.v1"  # issue 18: the assignee reports on an instruction
    process_approval = "mailservice.process-approval.v1"
    staff_session = "mailservice.staff-session.v1"
    request_form = "mailservice.request-form.v1"  # issue 16: when the site's request form was opened
    request_status = "mailservice.request-status.v1"  # issue 16: the status page of one request
    request_claim = "mailservice.request-claim.v1"  # F12: the owner of a typed address joins a form request
    console_form = "mailservice.console-form.v1"  # a console form's one-time token, timed (web/staff/once.py)


class TokenError(Exception):
    """A token that is tampered, truncated, signed for another purpose, unknown or expired."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.expired = expired


def _keys(settings: Settings) -> list[str]:
    keys = settings.signing_keys()
    # itsdangerous signs with the *last* key of the list and verifies with all; our setting lists newest first.
    return list(reversed(keys))


def sign(settings: Settings, purpose: Purpose, payload: Any) -> str:
    """A URL-safe token for ``payload`` (JSON-serialisable opaque ids) that never expires by itself.

    The token itsdangerous' ``URLSafeSerializer`` makes, by :class:`Minter` (intake signs a status link for every
    acknowledgement: building a serializer per token was a twentieth of writing a request)."""
    return Minter(settings, purpose)(payload)


def sign_timed(settings: Settings, purpose: Purpose, payload: Any) -> str:
    """A URL-safe token carrying its signing time; check its age with :func:`load_timed`."""
    return URLSafeTimedSerializer(_keys(settings), salt=purpose.value).dumps(payload)


def load(settings: Settings, purpose: Purpose, token: str) -> Any:
    """The payload of a token made by :func:`sign`, or :class:`TokenError`."""
    try:
        return URLSafeSerializer(_keys(settings), salt=purpose.value).loads(token)
    except BadData as exc:
        raise TokenError("invalid token") from exc


def load_timed(settings: Settings, purpose: Purpose, token: str, max_age_s: int) -> Any:
    """The payload of a token made by :func:`sign_timed` no longer than ``max_age_s`` ago, or :class:`TokenError`."""
    try:
        return URLSafeTimedSerializer(_keys(settings), salt=purpose.value).loads(token, max_age=max_age_s)
    except SignatureExpired as exc:
        raise TokenError("expired token", expired=True) from exc
    except BadData as exc:
        raise TokenError("invalid token") from exc


def load_with_time(settings: Settings, purpose: Purpose, token: str) -> tuple[Any, dt.datetime]:
    """The payload of a token made by :func:`sign_timed` and when it was signed (UTC), or :class:`TokenError`; the
    caller judges the age against its own clock (``now``)."""
    try:
        payload, signed = URLSafeTimedSerializer(_keys(settings), salt=purpose.value).loads(
            token, return_timestamp=True
        )
    except BadData as exc:
        raise TokenError("invalid token") from exc
    return payload, signed


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@functools.lru_cache(maxsize=64)
def _keyed_mac(secret: str, salt: str) -> hmac.HMAC:
    """The HMAC-SHA1 state keyed for one secret and purpose, to be copied per token (never updated itself)."""
    # itsdangerous' own key derivation (HMAC-SHA1 tokens): needed to give the same tokens, not a choice made here.
    derived = hashlib.sha1(salt.encode("utf-8") + b"signer" + secret.encode("utf-8")).digest()  # noqa: S324
    return hmac.new(derived, digestmod=hashlib.sha1)


class Minter:
    """Signs many tokens of one purpose, each the same string :func:`sign` gives (itsdangerous' format).

    itsdangerous builds a serializer, derives the key and sets up the HMAC for every token; a campaign signs one
    token per recipient and intake one per acknowledgement, so here the key is derived and the HMAC keyed once
    per key and purpose, and each token copies that state.
    The format: compact JSON (zlib-compressed and marked with a leading dot when that is shorter), URL-safe
    base64 without padding, a dot, and the URL-safe base64 of HMAC-SHA1 under SHA1(salt + "signer" + key).
    """

    def __init__(self, settings: Settings, purpose: Purpose) -> None:
        self._mac = _keyed_mac(_keys(settings)[-1], purpose.value)  # the newest key signs

    def __call__(self, payload: Any) -> str:
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        compressed = zlib.compress(data)
        body = b"." + _b64(compressed) if len(compressed) < len(data) - 1 else _b64(data)
        mac = self._mac.copy()
        mac.update(body)
        return (body + b"." + _b64(mac.digest())).decode("ascii")
