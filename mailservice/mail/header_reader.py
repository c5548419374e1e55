"""Reading the headers of one message defensively: decoded values, addresses, message ids and dates.

Every oddity becomes a defect text and reading goes on. Address structure is read before any encoded word is
decoded (see :meth:`_HeaderReader.addresses`). Pure: no I/O.
"""

from __future__ import annotations

import email.utils
import functools
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import Message

from mailservice.mail.fastpath import _fast_addresses, _fast_reader, _header_object
from mailservice.mail.headers import decode_bytes, decode_encoded_words, loose_address, normalise_address, one_line

_MAX_DEFECTS = 200
_MAX_HEADER_VALUE = 4000
# policy.default's header parser is quadratic on long values (a 50,000-word subject takes minutes);
# beyond this size the tolerant decoder alone reads the value.
_POLICY_MAX = 8192

# An undecodable byte as Python's parsers keep it (PEP 383 surrogate escape).
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
_LINE_BREAK = re.compile(r"\r?\n|\r")


def _fix_8bit(value: str) -> tuple[str, str | None]:
    """Turn raw 8-bit header bytes (kept by the parser as surrogate escapes) into text."""
    if not _ESCAPED_BYTE.search(value):
        return value, None
    data = value.encode("ascii", errors="surrogateescape")
    return decode_bytes(data)


def _unfold(value: str) -> str:
    return _LINE_BREAK.sub("", value) if "\n" in value or "\r" in value else value


_clean_line = one_line  # one display line (mail.headers.one_line)


class _HeaderReader:
    """Reads headers of one message defensively and collects what went wrong."""

    def __init__(self, msg: Message, defects: list[str]) -> None:
        self._defects = defects
        self._raw: dict[str, list[str]] = {}
        try:
            items: Iterable[tuple[str, str]] = list(msg.raw_items())
        except Exception as exc:  # a Message without raw_items (should not happen) or a broken store
            defects.append(f"headers unreadable: {type(exc).__name__}")
            items = []
        for name, value in items:
            self._raw.setdefault(str(name).strip().lower(), []).append(str(value))

    def __contains__(self, name: str) -> bool:
        return name in self._raw

    def raw(self, name: str) -> list[str]:
        """Raw values with 8-bit bytes decoded and folding removed, not RFC 2047-decoded."""
        out = []
        for value in self._raw.get(name, []):
            text, note = _fix_8bit(value)
            if note:
                self._note(f"{name}: {note}")
            out.append(_unfold(text))
        return out

    def _note(self, text: str) -> None:
        if len(self._defects) < _MAX_DEFECTS and text not in self._defects:
            self._defects.append(text)

    def text(self, name: str) -> list[str]:
        """Decoded values: policy.default first, the tolerant decoder when it fails or leaves words."""
        out: list[str] = []
        if name not in self._raw:
            return out
        fast = _fast_reader(name)
        for value in self.raw(name):
            # Same text as policy.default's, and for these values policy.default notes no defects either.
            decoded = fast(value) if fast is not None and len(value) <= _POLICY_MAX else None
            if decoded is None:
                decoded = self._policy_text(name, value)
            if "=?" in decoded or _ESCAPED_BYTE.search(decoded):
                decoded = decode_encoded_words(value)
            out.append(decoded[:_MAX_HEADER_VALUE] if name != "subject" else decoded)
        return out

    def _policy_text(self, name: str, value: str) -> str:
        try:
            if len(value) > _POLICY_MAX:
                raise ValueError(f"value of {len(value)} characters read without the full parser")
            header = _header_object(name, value)
            decoded = str(header)
            for defect in getattr(header, "defects", ()):
                self._note(f"{name}: {type(defect).__name__}: {defect}")
        except Exception as exc:  # policy.default raises on some broken headers; read the raw value instead
            self._note(f"{name}: {type(exc).__name__}: {str(exc)[:120]}")
            decoded = value
        return decoded

    def first_text(self, name: str) -> str | None:
        values = self.text(name)
        return values[0] if values else None

    def addresses(self, name: str) -> list[tuple[str, str]]:
        """(display name, addr-spec) pairs of an address header, with fallbacks for broken syntax.

        The structure is always read before any RFC 2047 word is decoded, so an encoded word is only ever text
        of a display name: ``=?utf-8?q?victim=40example=2Eru=0A?= <attacker@evil.test>`` is attacker@evil.test
        with the name "victim@example.ru" (DESIGN.md, attacker's review). Control characters a decoded name may
        carry (CR, LF, NUL: CVE-2024-6923) become spaces.
        """
        pairs: list[tuple[str, str]] = []
        for value in self.raw(name):
            plain = _fast_addresses(value) if len(value) <= _POLICY_MAX else None
            if plain is None:  # the fast reader is structural too, and sure of its answer when it gives one
                plain = self._masked_addresses(name, value)
            pairs.extend((_clean_line(display), spec.strip()) for display, spec in plain)
        return pairs

    def _policy_addresses(self, name: str, value: str, *, note: bool = True) -> list[tuple[str, str]]:
        """(display name, addr-spec) pairs as policy.default reads them; [] when it fails."""
        found: list[tuple[str, str]] = []
        try:
            if len(value) > _POLICY_MAX:
                raise ValueError(f"value of {len(value)} characters read without the full parser")
            header = _header_object(name, value)
            for addr in getattr(header, "addresses", ()):
                if isinstance(addr, Address):
                    found.append((addr.display_name or "", addr.addr_spec or ""))
        except Exception as exc:  # policy.default raises on some broken values (and on CR/LF in a decoded name)
            if note:
                self._note(f"{name}: {type(exc).__name__}: {str(exc)[:120]}")
            return []
        return found

    def _masked_addresses(self, name: str, value: str) -> list[tuple[str, str]]:
        """Addresses read with every encoded word replaced by a plain atom first (see :meth:`addresses`)."""
        masked = _MaskedWords(value)
        found = self._policy_addresses(name, masked.text)
        if not any(_PLAIN_SPEC.match(spec) for _, spec in found):
            found = [(n, a) for n, a in email.utils.getaddresses([masked.text]) if a] or found
            if not any(_PLAIN_SPEC.match(spec) for _, spec in found):
                loose = _LOOSE_ADDRESS.findall(masked.text)
                if loose:
                    display = masked.text.split(loose[0], 1)[0].strip(" <\"'")
                    found = [(display, loose[0])] + [("", a) for a in loose[1:]]
        if not masked.words:
            return found
        specs = [masked.restore(spec) for _, spec in found]
        # When the stdlib reads the same addresses from the value itself, the structure is confirmed; the display
        # names are decoded from the masked reading all the same, by RFC 2047 6.2 (white space between adjacent
        # encoded words is ignored: the stdlib keeps it, splitting a name cut mid-word by the sender's mailer).
        original = self._policy_addresses(name, value, note=False)
        if original and [spec for _, spec in original] == specs:
            return [
                (decode_encoded_words(masked.restore(display)) if display else fallback, spec)
                for (display, _), (fallback, spec) in zip(found, original, strict=True)
            ]
        if original or found:
            self._note(f"{name}: address read before decoding its encoded words")
        return [
            (decode_encoded_words(masked.restore(display)), spec)
            for (display, _), spec in zip(found, specs, strict=True)
        ]


# An encoded word as the masking reads it: no white space inside (RFC 2047 5), whatever its payload.
_MASKED_WORD = re.compile(r"=\?[^?\s]{1,80}\?[bBqQ]\?[^?\s]*\?=")


class _MaskedWords:
    """An address header with each encoded word replaced by a plain atom, and the way back.

    The atoms carry no "@" and a prefix the value does not contain, so whatever a word decodes to can never
    become (part of) an address; once the structure is read, :meth:`restore` puts the original words back for
    the display name to be decoded.
    """

    def __init__(self, value: str) -> None:
        self.words: list[str] = []
        self.text = value
        if "=?" not in value:
            return
        prefix = "QXEW"
        while prefix in value:
            prefix += "Q"
        self._atoms = re.compile(re.escape(prefix) + r"(\d+)Z")
        self.text = _MASKED_WORD.sub(lambda m: self._atom(prefix, m.group()), value)

    def _atom(self, prefix: str, word: str) -> str:
        self.words.append(word)
        return f"{prefix}{len(self.words) - 1}Z"

    def restore(self, text: str) -> str:
        """``text`` with the original words in place of the atoms."""
        if not self.words:
            return text
        return self._atoms.sub(lambda m: self.words[int(m.group(1))], text)


_PLAIN_SPEC = re.compile(r"^[^\s@<>]+@[^\s@<>]+$")
_LOOSE_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"']{1,64}@[^\s<>()\[\],;:\"']{1,255}")


@functools.lru_cache(maxsize=4096)
def _normalised_address(spec: str) -> str | None:
    """normalise_address, remembered: the office's own addresses and frequent senders recur in every batch."""
    return normalise_address(spec)


def _normalise(spec: str, defects: list[str], what: str) -> str | None:
    if not spec or "@" not in spec:
        return None
    strict = _normalised_address(spec)
    if strict is not None:
        return strict
    loose = loose_address(spec)
    if loose is not None and what in ("from", "sender", "reply-to") and len(defects) < _MAX_DEFECTS:
        defects.append(f"{what}: address {loose!r} accepted leniently (not valid for delivery)")
    return loose


_MSG_ID = re.compile(r"<\s*([^<>\s]+?)\s*>")


def _message_ids(values: list[str]) -> list[str]:
    ids: list[str] = []
    for value in values:
        found = _MSG_ID.findall(value)
        if not found:
            found = [tok.strip("<>,;") for tok in value.split() if "@" in tok]
        for item in found:
            item = item.strip()[:998]
            if item and item not in ids:
                ids.append(item)
    return ids


def _parse_date(value: str | None, defects: list[str]) -> datetime | None:
    if not value or not value.strip():
        return None
    candidates = [value, re.sub(r"\([^)]*\)", " ", value)]
    for candidate in candidates:
        try:
            parsed = email.utils.parsedate_to_datetime(" ".join(candidate.split()))
        except (TypeError, ValueError, IndexError, OverflowError):
            continue
        if parsed is None:
            continue
        if parsed.tzinfo is None:  # RFC 5322 3.3: "-0000" means UTC with no local zone information
            parsed = parsed.replace(tzinfo=UTC)
        try:
            return parsed.astimezone(UTC)
        except (OverflowError, ValueError):
            break
    defects.append(f"date: unparseable {value.strip()[:60]!r}")
    return None
