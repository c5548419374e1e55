"""Text that XML 1.0 can hold (section 2.2, "Char"): DOCX and XLSX are XML inside, and python-docx and openpyxl
refuse a control character outright, so one stray byte in a citizen's subject or a member's e-mailed opinion would
stop the whole document. Such characters carry no meaning in a letter; they are dropped here, in one place."""

from __future__ import annotations

import re

# Everything but TAB, LF, CR, U+0020-U+D7FF, U+E000-U+FFFD and U+10000-U+10FFFF (lone surrogates included).
_INVALID = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold (pure)."""
    return _INVALID.sub("", text)


__all__ = ["xml_safe"]
