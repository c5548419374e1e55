"""Whether a forwarding body is who its From says: the verdict our own receiving server wrote, never the sender's.

A letter's From is the sender's word. A body that forwards a citizen's appeal is trusted as that body (and the
appeal registered under its author, intake/forwarded_register.py) only when both hold:

1. the From address's domain is one of ``FORWARDING_BODIES`` (comma-separated domains; empty by default, so the
   rule is off), and
2. the message carries an ``Authentication-Results`` header (RFC 8601) that *our* receiving server added, its
   authserv-id equal to ``TRUSTED_AUTHSERV_ID``, saying ``dmarc=pass`` for that From domain (``header.from``) or
   ``dkim=pass`` with a signing domain (``header.d``) equal to the From domain or a parent of it.

Only the topmost header with our authserv-id counts. RFC 8601 section 5: a receiving server must remove (or
rename) any Authentication-Results carrying its own authserv-id that arrived with the message, since the sender
may have written them; headers are prepended on the way (RFC 5322 3.6, trace fields), so the one our server added
is above any copy that came from outside. A forged pass below ours, or a header with another server's id, proves
nothing. Pure functions of plain values; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

__all__ = ["PUBLIC_MAIL_DOMAINS", "ResInfo", "Results", "Trust", "forwarder_trust", "parse_results"]


# Public mail services (in Russia and abroad): their signatures prove an account, not a body, so listing one in
# FORWARDING_BODIES proves nothing.
PUBLIC_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yandex.ru",
        "ya.ru",
        "yandex.com",
        "mail.ru",
        "bk.ru",
        "list.ru",
        "inbox.ru",
        "internet.ru",
        "rambler.ru",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "icloud.com",
        "yahoo.com",
    }
)


@dataclass(frozen=True)
class ResInfo:
    """One result of an Authentication-Results header (RFC 8601 2.2 ``resinfo``): ``dkim=pass header.d=x``."""

    method: str
    result: str
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Results:
    """One Authentication-Results header: who wrote it (``authserv_id``) and what it says."""

    authserv_id: str
    results: tuple[ResInfo, ...]


@dataclass(frozen=True)
class Trust:
    """The verdict on a forwarder: ``trusted``, and why (English, for the intake journal)."""

    trusted: bool
    reason: str


def _strip_comments(value: str) -> str:
    """``value`` without RFC 5322 comments (nested parentheses; quoted strings and escapes kept as they are)."""
    out: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    for char in value:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(char)
            continue
        if char == "\\":
            escaped = True
            if depth == 0:
                out.append(char)
            continue
        if quoted:
            quoted = char != '"'
            out.append(char)
            continue
        if char == '"' and depth == 0:
            quoted = True
            out.append(char)
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
            out.append(" ")
        elif depth == 0:
            out.append(char)
    return "".join(out)


def _split(value: str, separator: str) -> list[str]:
    """Split on ``separator`` outside quoted strings."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


_METHOD = re.compile(r"^([A-Za-z0-9_.\-]+)(?:/\d+)?\s*=\s*([A-Za-z0-9_\-]+)$")
_PROPERTY = re.compile(r"^([A-Za-z0-9_\-]+)\.([A-Za-z0-9_.\-]+)\s*=\s*(.+)$")


def parse_results(value: str) -> Results | None:
    """Parse one header's value (RFC 8601 2.2); None when it has no authserv-id.

    ``authserv-id [version] ; method=result [reason=...] ptype.property=value ...`` with comments anywhere.
    Unreadable results are skipped: what cannot be read says nothing.
    """
    text = _strip_comments(" ".join(value.split()))
    head, *infos = _split(text, ";")
    words = head.split()
    if not words:
        return None
    results: list[ResInfo] = []
    for info in infos:
        tokens = [t for t in re.split(r"\s+(?=[^\s=]+\s*=)", info.strip()) if t]
        if not tokens:
            continue
        method = _METHOD.match(tokens[0].strip())
        if method is None:
            continue  # "none" (no result) or something unreadable
        properties: dict[str, str] = {}
        for token in tokens[1:]:
            prop = _PROPERTY.match(token.strip())
            if prop is not None:
                key = f"{prop.group(1).lower()}.{prop.group(2).lower()}"
                properties.setdefault(key, prop.group(3).strip().strip('"'))
        results.append(ResInfo(method.group(1).lower(), method.group(2).lower(), properties))
    return Results(words[0].strip('"').lower(), tuple(results))


def _domain(value: str) -> str:
    """A domain as compared here: lower-case, no trailing dot; the part after "@" of an address
    (RFC 8601 2.7.1 lets ``header.d`` and ``header.i`` carry an identity with a local part)."""
    return value.rpartition("@")[2].strip().rstrip(".").lower()


def _is_same_or_parent(signer: str, domain: str) -> bool:
    """``signer`` is ``domain`` or one of its parents with at least two labels (``nso.ru`` for ``mfc.nso.ru``;
    a bare top-level domain signs for nobody)."""
    if not signer or not domain:
        return False
    return signer == domain or (signer.count(".") >= 1 and domain.endswith("." + signer))


def forwarder_trust(
    from_addr: str | None,
    headers: Sequence[str],
    *,
    bodies: Collection[str],
    authserv_id: str,
) -> Trust:
    """Whether the sender is a forwarding body proven by our server's Authentication-Results.

    ``headers`` are the message's Authentication-Results values, topmost first (as they stand in the message).
    """
    if not bodies or not authserv_id.strip():
        return Trust(False, "forwarding bodies are not configured")
    if not from_addr or "@" not in from_addr:
        return Trust(False, "no sender address")
    domain = _domain(from_addr)
    if domain not in {_domain(body) for body in bodies}:
        return Trust(False, f"{domain} is not a forwarding body")
    if domain in PUBLIC_MAIL_DOMAINS:
        # Anyone can have an address there and a valid signature with it: a domain proves a body only when the
        # body alone holds it.
        return Trust(False, f"{domain} is a public mail service, no body's own domain")
    ours = authserv_id.strip().lower()
    # RFC 8601 section 5: only the topmost header with our authserv-id is our server's; any below it came from
    # outside and may be forged.
    topmost = next((r for r in map(parse_results, headers) if r is not None and r.authserv_id == ours), None)
    if topmost is None:
        return Trust(False, f"no Authentication-Results of {ours}")
    for info in topmost.results:
        if info.result != "pass":
            continue
        if info.method == "dmarc" and _domain(info.properties.get("header.from", "")) == domain:
            return Trust(True, f"dmarc=pass for {domain} by {ours}")
        if info.method == "dkim":
            signer = _domain(info.properties.get("header.d", "") or info.properties.get("header.i", ""))
            if _is_same_or_parent(signer, domain):
                return Trust(True, f"dkim=pass header.d={signer} by {ours}")
    return Trust(False, f"{ours} reports no dmarc or aligned dkim pass for {domain}")
