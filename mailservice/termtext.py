"""Text from outside made inert for a terminal.

A citizen's subject, name or letter printed by the command line could carry an ANSI escape sequence (``\\x1b[31m``,
or worse: one that retitles the window, moves the cursor over earlier lines, or writes a hyperlink), another control
character, or Unicode bidirectional controls that reorder what staff see. Every such character is shown as its
escape (``\\x1b``, ``\\u202e``), so it is visible and does nothing. Rich markup (``[bold]``, ``[link=...]``) in text
printed through Rich is made literal by :func:`rich_text`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.text import Text

# C0 controls but TAB and LF, DEL, C1 controls, and the bidirectional controls (LRE..RLO, LRI..PDI, LRM, RLM, ALM).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")
_CONTROL_LINE = re.compile("[\n\t]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: object, *, multiline: bool = False) -> str:
    """``text`` with every control character shown as its escape (pure); LF and TAB kept when ``multiline``."""
    value = _CONTROL.sub(_escape, str(text))
    return value if multiline else _CONTROL_LINE.sub(_escape, value)


def rich_text(text: object) -> Text:
    """A Rich ``Text`` of ``text`` made inert: control characters escaped and no markup interpreted."""
    from rich.text import Text

    return Text(inert(text))


__all__ = ["inert", "rich_text"]
