"""The one key under which an e-mail address is compared, looked up and kept unique (pure, no imports of the service).

RFC 5321 2.4: the domain is case-insensitive; the local part may in theory be case-sensitive, but "exploiting the
case sensitivity of mailbox local-parts impedes interoperability and is discouraged", and every provider a
citizen uses delivers «Ivan@Mail.RU» and «ivan@mail.ru» to one mailbox (defect U9). So two spellings are one
mailbox: proof of one is proof of the other. Addresses are stored as the citizen wrote them (for display and for
sending); comparisons use :func:`address_key`.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["address_key", "contact_key", "phone_key", "same_address"]

_NOT_DIGIT = re.compile(r"\D")


def _domain_unicode(domain: str) -> str:
    """The domain with its punycode labels (``xn--``) decoded, as email-validator stores an IDN domain."""
    labels = []
    for label in domain.split("."):
        if label.lower().startswith("xn--"):
            try:
                label = label.encode("ascii").decode("idna")
            except UnicodeError:
                pass  # not valid punycode: compared as written
        labels.append(label)
    return ".".join(labels)


def address_key(address: str) -> str:
    """The comparison key of an e-mail address: NFC, IDN domain as Unicode, the whole lower-cased.

    The local part is lower-cased with ``str.lower`` too, Unicode ones (RFC 6531) included; the databases'
    ``lower()`` is not used, as SQLite's folds ASCII only.
    """
    text = address.strip().strip("<>").strip()
    if text.isascii() and "xn--" not in text.lower():
        return text.lower()  # the usual case: nothing to normalise
    text = unicodedata.normalize("NFC", text)
    local, at, domain = text.rpartition("@")
    if at:
        text = f"{local}@{_domain_unicode(domain.rstrip('.'))}"
    return text.lower()


def phone_key(phone: str) -> str:
    """The comparison key of a phone number: its digits, a Russian number in E.164 form (+7 and ten digits).

    Clerks type a number as the caller says it: «+7 913 555-12-34», «8 (913) 555-12-34» and «89135551234» are one
    number (the trunk prefix 8 is +7 within Russia), so one client (tryout W7). Other numbers keep their digits,
    with the «+» of an international one; text without digits is kept as written.
    """
    digits = _NOT_DIGIT.sub("", phone)
    if not digits:
        return phone.strip()
    if len(digits) == 11 and digits[0] in "78":
        return "+7" + digits[1:]
    if len(digits) == 10 and digits[0] == "9":  # a mobile number without its trunk prefix
        return "+7" + digits
    return ("+" if phone.strip().startswith("+") else "") + digits


def contact_key(kind: str | None, value: str | None) -> str:
    """The uniqueness key of a client's contact: an e-mail address by :func:`address_key`, a phone by
    :func:`phone_key`, others as written."""
    if value is None:
        return ""
    if kind == "email":
        return address_key(value)
    return phone_key(value) if kind == "phone" else value


def same_address(first: str | None, second: str | None) -> bool:
    """Whether two addresses name one mailbox (an empty one names none)."""
    return bool(first and second) and address_key(first or "") == address_key(second or "")
