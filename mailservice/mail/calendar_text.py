"""The words of a calendar invitation (iCalendar, RFC 5545): what a person typed in its title, place and description.

An invitation sent from a calendar may carry its whole text in the event's DESCRIPTION, with no text part of its
own (tryout T4); the parser then uses these words as the letter's text. Bounded: only the start of the object is
read, and the text is cut. Pure: no I/O.
"""

from __future__ import annotations

import re

__all__ = ["calendar_text"]

_READ_BYTES = 256 * 1024
_MAX_CHARS = 20_000
_FOLD = re.compile(r"\r?\n[ \t]")
_PROPERTY = re.compile(r"^(SUMMARY|LOCATION|DESCRIPTION)(?:;[^:\r\n]*)?:(.*)$", re.IGNORECASE | re.MULTILINE)
_ESCAPE = re.compile(r"\\([\\;,nN])")
_LABELS = {"SUMMARY": "Встреча", "LOCATION": "Место"}


def calendar_text(text: str) -> str:
    """The first event's title and place (labelled) and its description, from an iCalendar object's text."""
    text = _FOLD.sub("", text[:_READ_BYTES])  # RFC 5545 3.1: a line break and one blank continue a line
    start = text.upper().find("BEGIN:VEVENT")
    if start < 0:
        return ""
    end = text.upper().find("END:VEVENT", start)
    event = text[start : end if end > 0 else len(text)]
    found: dict[str, str] = {}
    for match in _PROPERTY.finditer(event):
        name = match.group(1).upper()
        value = _ESCAPE.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), match.group(2).rstrip("\r"))
        if value.strip() and name not in found:
            found[name] = value.strip()
    lines = [f"{label}: {found[name]}" for name, label in _LABELS.items() if name in found]
    if "DESCRIPTION" in found:
        lines += ["", found["DESCRIPTION"]] if lines else [found["DESCRIPTION"]]
    return "\n".join(lines)[:_MAX_CHARS]
