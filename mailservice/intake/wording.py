"""Reading the wording of a short letter: normalised text, its sentences, greetings and sign-offs (pure).

The command recogniser (:mod:`mailservice.intake.commands`) and the thanks rule (:mod:`mailservice.intake.thanks`)
both ask "what does this short letter say, apart from the politeness around it?"; this module answers that once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "ASKS",
    "Segments",
    "normalise",
    "own_subject",
    "requests_something",
    "says_more",
    "segments",
    "strip_reply_prefix",
]

_PUNCTUATION = re.compile(r"[^\w\s?]+")
_SPACES = re.compile(r"\s+")
# A sentence ends at . ! ? … or a line break; "?" stays with its sentence (a question is never a command).
_SENTENCE_END = re.compile(r"(?<=[.!?…])(?<!\s[А-ЯЁA-Z]\.)\s+|\n+")  # not after an initial: «Петровой О. В.»
_REPLY_PREFIX = re.compile(r"^\s*((re|ответ|отв|aw|sv)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_NUMBER_TAG = re.compile(r"\[\s*(?:№|N|No\.?|#)\s*\d{4}-\d{6}\s*\]", re.IGNORECASE)
_GREETING = re.compile(
    r"(здравствуй(те)?|добрый (день|вечер)|доброе утро|доброго (дня|времени суток|утра|вечера)|привет(ствую)?|"
    r"hello|hi|dear \w+|уважаем\w*( \w+){0,3})"
    r"( (уважаем\w*|коллеги|сотрудники|господа|департамент)( \w+){0,3})?"
)
# A sign-off ends the letter: what follows is a name, a phone, "Sent from my iPhone".
_SIGN_OFF = re.compile(r"^(с уважением|с наилучшими пожеланиями|best regards|regards|kind regards)\b")
_DEVICE_FOOTER = re.compile(
    r"^(отправлено (с|из) \w+|sent from my \w+|получено с помощью|отправлено из мобильной почты)"
)


# A question or a wish the letter wants answered («?», «подскажите», «как быть», «куда обращаться», «можно ли»,
# «нужна консультация», «хочу ...»), on lower-case text. One definition: what may wait unregistered (intake/spam.py:
# advertising, list mail) and what is more than thanks or a command (below) read questions alike.
ASKS = (
    r"\?|\b(?:(?:под|рас)?скажите|(?:разъ|объ)ясните|уточните|посоветуйте|проконсультируйте|"
    r"(?:как|куда|где|откуда|к кому|у кого)\s+(?:мне|нам|можно|нужно|надо|быть|же|теперь|\w+(?:ть|ти|чь)(?:ся|сь)?)|"
    r"можно ли|могу ли|нельзя ли|возможно ли|нужно ли|нужн(?:а|ен|ы)|хочу|хотим|хотел(?:а|и)? бы|хотелось бы)\b"
)
# A request or a question of the sentence's own, on normalised text.
_REQUESTING = re.compile(
    rf"{ASKS}|\b(прошу|просим|просьба|требую|помогите|сообщите|ответьте|когда|почему|зачем|где|как же|сколько|"
    r"вопрос по|по поводу|нужн\w*|надо|необходим\w*|хотел\w*|хотелось|можно)\b"
)
# An objection or a complaint (sarcasm included: «спасибо за отписку»): more than thanks.
_OBJECTING = re.compile(
    r"\b(но|однако|только|хотя|а вот|правда|зато|отписк\w*|отписал\w*|"
    r"издевательств\w*|безобрази\w*|позор\w*|бездейств\w*|жалоб\w*|обжал\w*|прокуратур\w*|суд\w*|"
    r"не (получил\w*|ответил\w*|сделал\w*|решен\w*|решил\w*|помогл\w*|устраива\w*)|ничего|никто|никак|"
    r"опять|снова|до сих пор|так и не|еще|также|кроме того|дополнительно)\b"
)
# A request in the imperative («направьте», «пришлите», «дайте»); thanks and apologies use a few imperatives too.
_IMPERATIVE = re.compile(r"\b(?!(примите|передайте|извините|простите|здравствуйте)\b)\w+(ите|йте|ьте)\b")


def requests_something(original: str, plain: str) -> bool:
    """Whether a sentence (as written, and :func:`normalise`-d) asks or requests something: «?», «прошу», a
    question, an imperative. Beside a command it is a second matter: the letter is registered (tryout T7)."""
    return "?" in original or _REQUESTING.search(plain) is not None or _IMPERATIVE.search(plain) is not None


def says_more(original: str, plain: str) -> bool:
    """Whether a sentence requests (:func:`requests_something`), objects or complains: more than a thank-you."""
    return requests_something(original, plain) or _OBJECTING.search(plain) is not None


def normalise(text: str) -> str:
    """Lower case, ё as е, punctuation (but «?») as spaces, one space between words."""
    text = text.casefold().replace("ё", "е")
    return _SPACES.sub(" ", _PUNCTUATION.sub(" ", text)).strip()


def strip_reply_prefix(subject: str) -> tuple[str, bool]:
    """The subject without "Re:"/"Ответ:" prefixes and our number tag, and whether it had a reply prefix."""
    stripped = _REPLY_PREFIX.sub("", subject)
    return _NUMBER_TAG.sub(" ", stripped).strip(), stripped != subject


_FORWARD_PREFIX = re.compile(r"^\s*((fwd?|пересл|переслано)\s*:\s*)+", re.IGNORECASE)
_SUBJECT_WORDS = 10
_SUBJECT_CHARS = 100


def own_subject(subject: str, ours: Iterable[str], text: str) -> str:
    """The subject of a new request written in reply to one of our messages: without "Re:"/"Fwd:" prefixes and
    our number tag, and not the subject of one of ``ours`` (the messages we sent about the earlier request: «Re:
    [№ 2026-000022] Статус обращения: дан ответ» is no topic of the new question); then the first words of
    ``text`` (tryout G9)."""
    topic = subject
    while True:
        stripped = _FORWARD_PREFIX.sub("", strip_reply_prefix(topic)[0])
        if stripped == topic:
            break
        topic = stripped
    plain = normalise(topic)
    if plain and all(plain != normalise(strip_reply_prefix(sent)[0]) for sent in ours):
        return topic
    words: list[str] = []
    for original, _plain in segments(text[:2000], limit=_SUBJECT_WORDS).body:  # greetings aside
        words.extend(original.split())
        if len(words) > _SUBJECT_WORDS:
            break
    head = " ".join(words[:_SUBJECT_WORDS])
    cut = len(words) > _SUBJECT_WORDS
    if len(head) > _SUBJECT_CHARS:
        head, cut = head[:_SUBJECT_CHARS].rsplit(" ", 1)[0], True
    return head + "…" if cut else head


class Segments:
    """The sentences of a letter's own text, with greetings and everything from the sign-off on set apart."""

    def __init__(self, text: str, limit: int | None = None) -> None:
        self.body: list[tuple[str, str]] = []  # (as written, normalised)
        self.greetings = 0
        for part in _SENTENCE_END.split(text.replace("\r", "")):
            if limit is not None and len(self.body) >= limit:
                break
            original = part.strip()
            if not self.body and "," in original:
                # "Уважаемые сотрудники, прошу ...": the greeting before the comma is politeness, not content.
                head, tail = original.split(",", 1)
                if _GREETING.fullmatch(normalise(head)):
                    self.greetings += 1
                    original = tail.strip()
            if not original:
                continue
            plain = normalise(original)
            if not plain:
                continue  # a line of dashes or emoticons
            if _SIGN_OFF.match(plain) or _DEVICE_FOOTER.match(plain):
                break
            if not self.body and _GREETING.fullmatch(plain.replace("?", "").strip()):
                self.greetings += 1
                continue
            self.body.append((original, plain))

    @property
    def first(self) -> tuple[str, str] | None:
        """The first sentence after the greeting."""
        return self.body[0] if self.body else None


def segments(text: str, limit: int | None = None) -> Segments:
    """The sentences of ``text`` (see :class:`Segments`), the first ``limit`` of them when given."""
    return Segments(text, limit)
