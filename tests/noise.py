"""A noise model of real mail for the classifier's tests: what a hurried writer and a web mail program do to a
letter. Deterministic for a given seed.

Rates (the share of words touched) follow what was measured on real regional mail: 2.6% of words misspelt; we
apply a little more (4%), half as a neighbouring key on the ЙЦУКЕН keyboard, half as a dropped letter. On top of
that, a letter may lose its punctuation, be written in capitals or in lower case, and arrive as HTML only
(paragraphs, ``&nbsp;``), which intake turns back into text with mail/quotes.html_to_text.
"""

from __future__ import annotations

import html
import random
import re

from mailservice.mail.quotes import html_to_text

_ROWS = ("йцукенгшщзхъ", "фывапролджэ", "ячсмитьбю")
# Keys next to each other in a row, and the ones above and below (shifted half a key, as on a real keyboard).
NEIGHBOURS: dict[str, str] = {}
for _r, _row in enumerate(_ROWS):
    for _i, _key in enumerate(_row):
        near = [_row[j] for j in (_i - 1, _i + 1) if 0 <= j < len(_row)]
        for _other in (_r - 1, _r + 1):
            if 0 <= _other < len(_ROWS):
                near += [_ROWS[_other][j] for j in (_i - 1, _i, _i + 1) if 0 <= j < len(_ROWS[_other])]
        NEIGHBOURS[_key] = "".join(sorted(set(near)))

TYPO_RATE = 0.04
_WORD_RE = re.compile(r"[А-Яа-яЁё]{4,}")
_PUNCT_RE = re.compile(r"[.,!?;:«»\"()—–-]")


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word))  # the first letter is rarely wrong
    if rng.random() < 0.5:
        return word[:i] + word[i + 1 :]  # a dropped letter
    lower = word[i].lower()
    if lower not in NEIGHBOURS:
        return word
    new = rng.choice(NEIGHBOURS[lower])
    return word[:i] + (new.upper() if word[i].isupper() else new) + word[i + 1 :]


def misspell(text: str, rng: random.Random, rate: float = TYPO_RATE) -> str:
    """Typos in about ``rate`` of the words of four letters or more."""
    return _WORD_RE.sub(lambda m: _typo(m.group(0), rng) if rng.random() < rate else m.group(0), text)


def as_html_only(text: str) -> str:
    """The body as web mail sends it (paragraphs, the first spaces as ``&nbsp;``), read back the way intake does."""
    paragraphs = [line for line in text.split("\n") if line.strip()]
    markup = "".join(f"<p>{html.escape(p).replace(' ', '&nbsp;', 2)}</p>" for p in paragraphs) or "<p></p>"
    return html_to_text(f"<html><body>{markup}<div>&nbsp;</div></body></html>")


def noisy(subject: str, body: str, rng: random.Random) -> tuple[str, str]:
    """One noisy version of a letter: typos always; punctuation lost in a third of letters; capitals or lower
    case in a tenth each; HTML only in a fifth."""
    subject, body = misspell(subject, rng), misspell(body, rng)
    if rng.random() < 1 / 3:
        subject, body = _PUNCT_RE.sub("", subject), _PUNCT_RE.sub("", body)
    case = rng.random()
    if case < 0.1:
        subject, body = subject.upper(), body.upper()
    elif case < 0.2:
        subject, body = subject.lower(), body.lower()
    if rng.random() < 0.2:
        body = as_html_only(body)
    return subject, body
