"""Words of the full-text search, computed in Python for both databases (pure, no I/O).

A text becomes *terms*: lower-case words of letters and digits, ``ё`` as ``е``, each replaced by its most probable
lemma (pymorphy3, so «аренды» and «аренде» are both «аренда»), stop words left out (PostgreSQL's snowball lists, so
that both databases ignore the same words). The index stores the terms; a query is turned into terms the same way
and every one of them must be in a document. Only ``[0-9a-zа-я]`` reaches the database: a query cannot carry FTS
syntax (quotes, ``*``, ``NEAR``, parentheses are no more than separators or plain words).

Telephone numbers and registration numbers are also indexed as one run of digits (the last ten of a phone), so
«+7 (913) 000-00-01», «8 913 000 00 01» and «2026-000042» are found however they are typed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache

from markupsafe import Markup, escape

from mailservice.resources import package_path

_WORD_RE = re.compile(r"[0-9a-zа-я]+")
_TERM_RE = re.compile(r"^[0-9a-zа-я]+$")
_DIGITS_LIKE_RE = re.compile(r"^[\d\s\-()+.]+$")
MAX_WORD = 60  # longer "words" are noise (base64, hashes): not indexed, not searched
MAX_QUERY_CHARS = 200
MAX_QUERY_TERMS = 12


@cache
def stop_words() -> frozenset[str]:
    """Words neither indexed nor searched."""
    lines = package_path("data", "search_stopwords.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip().replace("ё", "е") for w in lines if w.strip() and not w.startswith("#"))


def _lemma(word: str) -> str:
    # Imported here: pymorphy3's dictionaries load on first use, never at the CLI's start.
    from mailservice.classify.text import lemma

    form = lemma(word) if word.isalpha() else word
    return form if _TERM_RE.match(form) else word


def words(text: str) -> Iterator[str]:
    """Lower-case words of a text, ``ё`` as ``е`` (no lemmas)."""
    return iter(_word_list(text))


def _word_list(text: str) -> list[str]:
    return [word for word in _WORD_RE.findall(text.lower().replace("ё", "е")) if len(word) <= MAX_WORD]


# Distinct words whose terms are remembered: indexing a request's text and its history repeats most words, and the
# poller that writes intake's batches does not classify (its lemma cache stays cold).
TERM_CACHE_SIZE = 100_000


@lru_cache(maxsize=TERM_CACHE_SIZE)
def term_of(word: str) -> str | None:
    """The term of one lower-case word, or None for a stop word (cached per word: it depends on nothing else)."""
    stop = stop_words()
    if word in stop:
        return None
    term = _lemma(word)
    return None if term in stop else term


def terms(text: str) -> list[str]:
    """The terms of a text, in order, repeats kept (they weigh in the ranking)."""
    # A list and map() rather than generators: the index of every request's text and history goes through here.
    return [term for term in map(term_of, _word_list(text)) if term is not None]


def digits_key(value: str) -> str | None:
    """One run of digits for a phone or a number typed any way: the last ten digits (a Russian number without
    its 8 or +7), or all of them when fewer; None when there are fewer than five."""
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) < 5:
        return None
    return digits[-10:]


def document_text(values: Iterable[str]) -> str:
    """The indexed form of several texts: their terms separated by spaces."""
    return " ".join(t for value in values if value for t in terms(value))


def query_terms(query: str) -> tuple[str, ...]:
    """The terms a query asks for (all must match), distinct, in the order typed; empty when nothing is left.

    A query made only of digits and phone punctuation is a phone or a registration number: its digits are one
    term.
    """
    query = query[:MAX_QUERY_CHARS]
    if _DIGITS_LIKE_RE.match(query.strip() or "x"):
        key = digits_key(query)
        if key is not None:
            return (key,)
    found: list[str] = []
    for term in terms(query):
        if term not in found:
            found.append(term)
    return tuple(found[:MAX_QUERY_TERMS])


@dataclass(frozen=True)
class Fragment:
    """Where a document matched: the field's Russian name and an escaped snippet with the words marked."""

    field: str
    html: Markup


def highlight(fields: Iterable[tuple[str, str]], wanted: Iterable[str], width: int = 160) -> Fragment | None:
    """The first field whose words include a wanted term, as an escaped snippet with ``<mark>`` around each
    matching word (pure). ``fields`` are (Russian name, text) in the order to try."""
    wanted_set = set(wanted)
    if not wanted_set:
        return None
    for name, text in fields:
        text = " ".join(text.split())
        if not text:
            continue
        spans = sorted(_matching_spans(text, wanted_set))
        if not spans:
            continue
        start = max(0, spans[0][0] - width // 3)
        end = min(len(text), start + width)
        if start > 0:  # begin at a word boundary
            space = text.find(" ", start, spans[0][0])
            start = space + 1 if space != -1 else start
        parts: list[str | Markup] = ["…" if start > 0 else ""]
        cursor = start
        for s, e in spans:
            if s < cursor or e > end:
                continue
            parts.append(text[cursor:s])
            parts.append(Markup("<mark>{}</mark>").format(text[s:e]))
            cursor = e
        parts.append(text[cursor:end])
        parts.append("…" if end < len(text) else "")
        html = Markup("").join(escape(p) for p in parts)
        return Fragment(name, html)
    return None


def _matching_spans(text: str, wanted: set[str]) -> Iterator[tuple[int, int]]:
    lowered = text.lower().replace("ё", "е")
    for match in _WORD_RE.finditer(lowered):
        word = match.group()
        if len(word) > MAX_WORD:
            continue
        if term_of(word) in wanted or word in wanted:
            yield match.span()
    key_parts = [w for w in wanted if w.isdigit() and len(w) >= 5]
    if key_parts:  # a phone or number typed with punctuation: mark the whole run
        for match in re.finditer(r"\+?[\d][\d\s\-()]{4,}\d", text):
            if digits_key(match.group()) in key_parts:
                yield match.span()
