"""Russian text preparation shared by rules and model: cleaning, tokens (razdel), lemmas (pymorphy3).

Lemmatising is the expensive step (pymorphy3 parses about 320 messages/s in plain Python; with its dictionaries
read by DAWG2's compiled code a new word costs a quarter of that); words repeat a lot across messages, so each
distinct word is parsed once per process and kept in a bounded cache. Tokenising is cached the same way, per
space-separated chunk of text.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import metadata

import pymorphy3
from razdel import tokenize
from razdel.segmenters.punct import DASHES

# What is looked at of a long letter: its start, where the request is usually stated, and its end, where a long
# letter often repeats what it asks for ("прошу ..."). A pasted contract or a forwarded thread in between would
# otherwise make one message cost as much as hundreds; this way the cost stops growing at about 6,000 characters
# (cleaning the whole text stays linear and cheap).
HEAD_CHARS = 4_000
TAIL_CHARS = 2_000

_WORD_RE = re.compile(r"\w", re.UNICODE)
_SPACE_RE = re.compile(r"[ \t\u00a0\u2000-\u200b]+")
# Lines that introduce the quoted original in a reply ("12.11.2025, 10:00, Иванов <a@b.ru> пишет:").
_ATTRIBUTION_RE = re.compile(r"^.{0,200}(пишет|писал\(а\)|написал\(а\)|wrote)\s*:\s*$", re.IGNORECASE)
# Everything below these lines is the earlier message of a reply, not what the writer says now.
_ORIGINAL_RE = re.compile(
    r"^\s*-{2,}\s*(исходное сообщение|original message|ответ на сообщение)\s*-{2,}\s*$", re.IGNORECASE
)
# RFC 3676 section 4.3: a line of "-- " starts the signature; mail clients often drop the trailing space.
_SIGNATURE_RE = re.compile(r"^--\s?$")
_REPLY_PREFIX_RE = re.compile(r"^\s*((re|fw|fwd|ответ|отв|пересл)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


@cache
def _morph() -> pymorphy3.MorphAnalyzer:
    # Loading the dictionaries takes a fraction of a second and some memory: do it once, on first use. Its two
    # INFO lines about dictionary paths would land in every staff command's output under the CLI's INFO logging.
    logging.getLogger("pymorphy3").setLevel(logging.WARNING)
    return pymorphy3.MorphAnalyzer()


@lru_cache(maxsize=200_000)
def lemma_forms(word: str) -> tuple[str, ...]:
    """Normal forms of a lower-case word, most probable parse first, ``ё`` as ``е`` (cached per word).

    A word out of context is often ambiguous ("все": "весь" or "всё"); rules match any of its forms, the model
    uses the first.
    """
    if not word.replace("-", "").isalpha():  # numbers, "8-фз", e-mail fragments stay as they are
        return (word,)
    forms: list[str] = []
    for parse in _morph().parse(word):
        form = str(parse.normal_form).replace("ё", "е")
        if form not in forms:
            forms.append(form)
    return tuple(forms) or (word,)


def lemma(word: str) -> str:
    """The most probable normal form of a lower-case word."""
    return lemma_forms(word)[0]


def normalize(text: str) -> str:
    """Lower case, ``ё`` as ``е``, runs of spaces collapsed; line breaks kept."""
    return _SPACE_RE.sub(" ", text.lower().replace("ё", "е"))


def strip_reply(body: str) -> str:
    """The writer's own words: drop quoted lines ("> ..."), the quoted original after an attribution line and
    the signature after "-- ". Returns the whole body when nothing would be left."""
    kept: list[str] = []
    for line in body.splitlines():
        stripped = line.strip()
        if _SIGNATURE_RE.match(stripped) or _ORIGINAL_RE.match(stripped) or _ATTRIBUTION_RE.match(stripped):
            break
        if stripped.startswith(">"):
            continue
        kept.append(line)
    result = "\n".join(kept).strip()
    return result if _WORD_RE.search(result) else body


def strip_reply_prefix(subject: str) -> str:
    """The subject without "Re:", "Fwd:", "Ответ:" prefixes."""
    return _REPLY_PREFIX_RE.sub("", subject).strip()


@dataclass(frozen=True)
class AnalyzedText:
    """One message prepared once and read by every rule and by the model."""

    text: str  # normalised subject and body, as regular expressions see it
    tokens: tuple[str, ...]  # word tokens (letters or digits), lower case
    lemmas: tuple[str, ...]  # one lemma per token
    index: dict[str, tuple[int, ...]] = field(compare=False, repr=False)  # token or any lemma -> positions

    @property
    def lemma_text(self) -> str:
        """Lemmas joined by spaces: the model's word features."""
        return " ".join(self.lemmas)


# razdel joins two atoms into one token only when nothing separates them, so a text's tokens are those of its
# space-separated chunks, with one exception: the dash, underscore, float and fraction rules ("8-фз", "1,5",
# "1/2") look two atoms away, which reaches the neighbouring chunk's edge atom when a chunk begins or ends
# with their delimiter. Only that atom's type matters, and its last (first) character has the same type, so a
# chunk tokenised with that character before (after) it gives the same tokens as in the whole text. Checked
# for this razdel release and rule list; any other falls back to tokenising whole texts.
_EDGE_CHARS = frozenset(DASHES + "_.,/\\")
_KNOWN_RULES = ["dash", "underscore", "float", "fraction", "punct", "other", "yahoo"]


def _razdel_known() -> bool:
    try:
        version = metadata.version("razdel")
    except metadata.PackageNotFoundError:
        return False
    return version == "0.5.0" and [getattr(rule, "name", None) for rule in tokenize.rules] == _KNOWN_RULES


_BY_CHUNK = _razdel_known()


# A run of one kind of razdel's atoms (Russian letters, Latin letters, digits): razdel makes it one token, alone.
_ONE_ATOM = re.compile(r"[а-яё]+|[a-z]+|[0-9]+", re.IGNORECASE)


@lru_cache(maxsize=100_000)
def _chunk_words(before: str, chunk: str, after: str) -> tuple[str, ...]:
    """Word tokens of ``chunk``; ``before``/``after``: the neighbours' edge characters where they matter."""
    if _ONE_ATOM.fullmatch(chunk):
        # Four in ten new chunks of real mail: a plain word needs no tokeniser (bench/intake.py). It has no edge
        # delimiter, so word_tokens gives it no neighbour's character either.
        return (chunk,)
    tokens = [token.text for token in tokenize(" ".join(part for part in (before, chunk, after) if part))]
    if before:
        del tokens[0]
    if after:
        del tokens[-1]
    return tuple(token for token in tokens if _WORD_RE.search(token))


def word_tokens(text: str) -> list[str]:
    """razdel's tokens of ``text`` that contain a letter or digit, in order."""
    if not _BY_CHUNK:
        return [token.text for token in tokenize(text) if _WORD_RE.search(token.text)]
    chunks = text.split()  # the white space razdel's atoms skip (both are Unicode white space)
    last = len(chunks) - 1
    words: list[str] = []
    for i, chunk in enumerate(chunks):
        before = chunks[i - 1][-1] if i > 0 and chunk[0] in _EDGE_CHARS else ""
        after = chunks[i + 1][0] if i < last and chunk[-1] in _EDGE_CHARS else ""
        words.extend(_chunk_words(before, chunk, after))
    return words


def clear_caches() -> None:
    """Forget parsed words and tokenised chunks (the state of a fresh process; for benchmarks)."""
    lemma_forms.cache_clear()
    _chunk_words.cache_clear()


def head_and_tail(text: str, head: int = HEAD_CHARS, tail: int = TAIL_CHARS) -> str:
    """The first ``head`` and last ``tail`` characters of a long text, each cut at white space so that no word
    is halved, joined by a line break; a text no longer than ``head + tail`` is returned whole."""
    if len(text) <= head + tail:
        return text
    start = text[:head]
    cut = max(start.rfind(" "), start.rfind("\n"))
    if cut > head // 2:
        start = start[:cut]
    end = text[-tail:]
    cut = min((i for i in (end.find(" "), end.find("\n")) if i >= 0), default=-1)
    if 0 <= cut < tail // 2:
        end = end[cut + 1 :]
    return f"{start}\n{end}"


def analyze(subject: str, body: str) -> AnalyzedText:
    """Clean, tokenise and lemmatise a message (subject first, then the body without quotes and signature; of a
    long body its start and end, see :data:`HEAD_CHARS`)."""
    text = normalize(f"{strip_reply_prefix(subject)[:500]}\n{head_and_tail(strip_reply(body))}").strip()
    tokens = tuple(word_tokens(text))
    forms = [lemma_forms(tok) for tok in tokens]
    lemmas = tuple(choices[0] for choices in forms)
    positions: dict[str, list[int]] = {}
    for pos, (tok, choices) in enumerate(zip(tokens, forms, strict=True)):
        for key in {tok, *choices}:
            positions.setdefault(key, []).append(pos)
    index = {key: tuple(value) for key, value in positions.items()}
    return AnalyzedText(text=text, tokens=tokens, lemmas=lemmas, index=index)
