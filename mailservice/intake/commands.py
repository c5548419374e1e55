"""Commands by e-mail (subscribe, unsubscribe, ask for one's history): recognised only in an unambiguous form (pure).

A letter that merely mentions a mailing or a history is a citizen's request and must be registered (59-FZ art. 8
p. 2, 8-FZ art. 18): «отписались» is slang for a brush-off answer, and «дайте историю переписки по моему делу и
объясните ...» asks for an answer. So a message is a command only when

* it went to a dedicated address of that command (``MAILSERVICE_SUBSCRIBE_ADDRESS``, ``..._UNSUBSCRIBE_ADDRESS``,
  ``..._HISTORY_ADDRESS``; empty by default) alone among our addresses, or with another of ours but saying nothing
  of its own (no request or question, at most :data:`REST_LIMIT` characters): a question to the main address
  copied to a command address is a request (tryout G11); or its subject is the ``unsubscribe <token>`` of our own
  List-Unsubscribe ``mailto:`` (RFC 2369); or
* its subject or its first sentence (after a greeting) *is* one of the forms below, with case, punctuation and
  «ё» ignored, and everything else in the letter (apart from greetings, the sign-off and the signature) is at most
  :data:`REST_LIMIT` characters and asks nothing: no «?», no request or question of its own
  (:func:`mailservice.intake.wording.requests_something`; a sentence restating the command is none). «История
  обращений» above «Прошу направить копию ответа ...» is a request (tryout T7).

Anything else is registered; staff can turn a registered letter into its command in one action
(:func:`mailservice.intake.actions.convert_to_command`). The forms are listed in the README.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from mailservice.intake.wording import normalise, requests_something, segments, strip_reply_prefix

__all__ = [
    "COMMAND_NAMES",
    "REST_LIMIT",
    "Command",
    "CommandAddresses",
    "command_note",
    "form_of",
    "named",
    "read_command",
    "recognise",
]


class Command(StrEnum):
    """What a command letter asks for."""

    subscribe = "subscribe"
    unsubscribe = "unsubscribe"
    history = "history"


COMMAND_NAMES = {
    Command.subscribe: "подписка на рассылку",
    Command.unsubscribe: "отписка от рассылки",
    Command.history: "запрос истории обращений",
}

# What a command letter may say besides the command: «Спасибо», a name, a phone. Not a second matter.
REST_LIMIT = 120


@dataclass(frozen=True)
class CommandAddresses:
    """Dedicated addresses (empty: none) and our other addresses (the main one, the mailbox's login, the
    List-Unsubscribe ``mailto:``); mail to a dedicated address alone among ours is that command whatever it says."""

    subscribe: str = ""
    unsubscribe: str = ""
    history: str = ""
    others: tuple[str, ...] = ()

    def _dedicated(self) -> tuple[tuple[Command, str], ...]:
        return tuple(
            (command, address.strip().casefold())
            for command, address in (
                (Command.subscribe, self.subscribe),
                (Command.unsubscribe, self.unsubscribe),
                (Command.history, self.history),
            )
            if address.strip()
        )

    def commands_for(self, recipients: Iterable[str]) -> set[Command]:
        """The commands whose dedicated address is among ``recipients``."""
        wanted = {r.strip().casefold() for r in recipients if r}
        return {command for command, address in self._dedicated() if address in wanted}

    def others_among(self, recipients: Iterable[str]) -> bool:
        """Whether ``recipients`` hold one of our addresses that is not a dedicated one: one of :attr:`others`, or
        any address at the domain of a dedicated address (a department's address, whatever its mailbox)."""
        dedicated = {address for _command, address in self._dedicated()}
        ours = {o.strip().casefold() for o in self.others if "@" in o}
        domains = {address.rpartition("@")[2] for address in dedicated}
        for recipient in recipients:
            wanted = recipient.strip().casefold()
            if wanted and wanted not in dedicated and (wanted in ours or wanted.rpartition("@")[2] in domains):
                return True
        return False


# The forms, on normalised text (lower case, ё -> е, punctuation but «?» removed).
_POLITE = r"(?:(?:прошу|просим|пожалуйста|хочу|я хочу|хотел бы|хотела бы|я бы хотел|я бы хотела|прошу вас)\s+)*"
_PLEASE = r"(?:\s+пожалуйста)?"
_ME = r"(?:\s+(?:меня|мой адрес|мою почту|мой email|мой e mail))?"
_MAILING = (
    r"(?:(?:ваш\w*|эт\w+|новостн\w+|электронн\w+|email|e mail)\s+)?(?:рассылк[аиуе]|рассылок)"
    r"(?:\s+новостей)?(?:\s+департамента)?"
)
_NEWS = r"(?:ваши\s+|ваших\s+)?(?:новости|новостей|писем|письма|уведомлений)(?:\s+департамента)?"
_SUBSCRIBE = re.compile(
    rf"{_POLITE}(?:подписаться|подпишите{_ME}|подписать{_ME}|оформить подписку|оформите подписку){_PLEASE}"
    rf"(?:\s+на\s+(?:{_MAILING}|{_NEWS}))?"
    rf"|{_POLITE}(?:включите|добавьте|включить|добавить){_ME}{_PLEASE}\s+в\s+(?:список\s+)?{_MAILING}"
    rf"|{_POLITE}получать\s+{_MAILING}"
    rf"|подписка\s+на\s+{_MAILING}"
    r"|subscribe"
)
_UNSUBSCRIBE = re.compile(
    rf"{_POLITE}(?:отписаться|отпишите{_ME}|отписать{_ME}){_PLEASE}(?:\s+(?:от|из)\s+(?:{_MAILING}|{_NEWS}))?"
    rf"|{_POLITE}(?:исключите|удалите|уберите|исключить|удалить|убрать){_ME}{_PLEASE}\s+из\s+(?:списка\s+)?{_MAILING}"
    rf"|(?:отказываюсь|отказ)\s+от\s+{_MAILING}"
    rf"|отписка\s+от\s+{_MAILING}"
    rf"|{_POLITE}(?:прекратите|прекратить)\s+(?:{_MAILING}|присылать(?:\s+мне)?\s+(?:{_MAILING}|{_NEWS}))"
    rf"|{_POLITE}больше\s+не\s+(?:присылайте|отправляйте|направляйте)(?:\s+мне)?\s+(?:{_MAILING}|{_NEWS})"
    r"|unsubscribe"
)
_GIVE = (
    r"(?:предоставить|направить|выслать|прислать|отправить|дать|предоставьте|направьте|вышлите|пришлите|отправьте|"
    r"дайте)"
)
_HISTORY = re.compile(
    rf"{_POLITE}(?:{_GIVE}(?:\s+мне)?\s+)?(?:всю\s+|полную\s+)?(?:историю|история)\s+(?:моих\s+|всех\s+моих\s+|всех\s+|моего\s+)?"
    r"(?:обращений|взаимодействия|переписки|запросов)(?:\s+с\s+(?:департаментом|вами))?"
    r"|запрос\s+истории\s+(?:моих\s+)?(?:обращений|взаимодействия|переписки)"
)
_FORMS = ((Command.unsubscribe, _UNSUBSCRIBE), (Command.subscribe, _SUBSCRIBE), (Command.history, _HISTORY))
# The subject our List-Unsubscribe mailto: writes (mailings.subscribers.unsubscribe_mailto): a signed token.
_TOKEN_SUBJECT = re.compile(r"unsubscribe\s+[A-Za-z0-9_\-]{4,200}\.[A-Za-z0-9_\-]{27}", re.IGNORECASE)


# No form is longer than this (normalised); a longer sentence is never a command, whatever it starts with.
_LONGEST_FORM = 120
# The first sentence is looked for in this much of the text: a greeting and a command fit many times over.
_HEAD = 600


def form_of(plain: str) -> Command | None:
    """The command whose form the whole of ``plain`` (already :func:`normalise`-d) is, or None."""
    if len(plain) > _LONGEST_FORM:
        return None
    for command, pattern in _FORMS:
        if pattern.fullmatch(plain):
            return command
    return None


def named(subject: str, text: str) -> Command | None:
    """The command the subject or the first sentence of a letter *is* (in its strict form), whatever else the letter
    says; None when neither is, or they name two different commands.

    Not :func:`recognise`: a letter that also asks something is registered all the same. Intake still carries out
    a withdrawal it names (the safe direction: consent ends on the demand, 152-FZ art. 9 p. 2, 38-FZ art. 18 p. 1).
    """
    if _TOKEN_SUBJECT.fullmatch(subject.strip()):
        return Command.unsubscribe
    topic, _is_reply = strip_reply_prefix(subject)
    in_subject = form_of(normalise(topic)) if topic else None
    head = text[:_HEAD]
    first = segments(head, limit=1).first
    # A first sentence that runs past the head is longer than any form.
    cut = first is not None and len(text) > _HEAD and head.rstrip().endswith(first[0])
    in_first = form_of(first[1]) if first is not None and not cut else None
    if in_subject is not None and in_first is not None and in_subject != in_first:
        return None
    return in_subject or in_first


def _by_text(subject: str, text: str, command: Command | None) -> Command | None:
    """The command the letter is by its text alone; ``command`` is what :func:`named` gave for it."""
    if _TOKEN_SUBJECT.fullmatch(subject.strip()):
        return Command.unsubscribe
    if command is None:
        return None  # most letters: the rest of the text is never read
    topic, is_reply = strip_reply_prefix(subject)
    in_subject = form_of(normalise(topic)) if topic else None
    parts = segments(text)
    rest: list[str] = [] if in_subject is not None or not topic else [topic]
    # A subject of the letter's own that asks is a second matter; a reply's subject is our message's, not a request.
    if rest and not is_reply and _second_matter(command, topic, normalise(topic)):
        return None
    for original, plain in parts.body:
        found = form_of(plain)
        if found is None:
            if _second_matter(command, original, plain):
                return None  # a request of its own beside the command: registered, staff may convert it
            rest.append(original)
        elif found is not command:
            return None  # two different commands: staff decide
    said = " ".join(rest)
    if "?" in said or len(said) > REST_LIMIT:
        return None
    return command


# A request or a question beside a command's wording in one sentence: its own verb or question word. Not
# «хочу», «нужно», «прошу направить мне на почту»: those are how the command itself is asked for, and «она мне
# больше не нужна» is a reason for it.
_ASKS_BEFORE = re.compile(
    r"\?|\b(?:сообщите|ответьте|(?:под|рас)?скажите|(?:разъ|объ)ясните|уточните|когда|почему|зачем|сколько|где|"
    # «когда-то подписывался», «где-нибудь»: an indefinite word (its hyphen a space once normalised) asks nothing
    r"куда|каким образом|как быть)\b(?!\s+(?:то|нибудь|либо)\b)"
)
_ASKS_AFTER = re.compile(
    rf"{_ASKS_BEFORE.pattern}|\b(?:прошу|просим|просьба|сообщить|ответить|(?:разъ|объ)яснить|уточнить|"
    r"(?:под|рас)сказать|рассмотреть|проверить|разобраться|принять меры)\b"
)


def _second_matter(command: Command, original: str, plain: str) -> bool:
    """Whether a sentence requests something besides ``command``.

    A sentence without the command's wording that asks or requests is a second matter. One with it is when what
    comes after the wording asks or requests, or what comes before it asks: «Хочу отписаться от рассылки, а
    также прошу сообщить, когда будут торги» is a request (tryout of 7 December: such letters were carried out as
    the command and never registered). «Повторно прошу историю ...» and «Прошу направить мне на почту историю моих
    обращений» only restate it.
    """
    found = dict(_FORMS)[command].search(plain)
    if found is None:
        return requests_something(original, plain)
    before, after = plain[: found.start()], plain[found.end() :]
    return _ASKS_BEFORE.search(before) is not None or _ASKS_AFTER.search(after) is not None


def command_note(meant: Iterable[Command]) -> str:
    """The internal note on a letter registered although it went to a command's dedicated address."""
    names = ", ".join(f"«{COMMAND_NAMES[command]}»" for command in sorted(meant))
    return (
        f"Письмо направлено и на адрес команды {names}, но зарегистрировано как обращение: в нём есть и другое "
        "(своя просьба, вопрос или другая команда). Если отправитель просил только об этом, исполните письмо как "
        "команду («Исполнить как команду»)."
    )


def _says_its_own(subject: str, text: str) -> bool:
    """Whether a letter says something besides a command: a sentence (or a subject of its own) that asks or
    requests and is not itself a command's form, or more than :data:`REST_LIMIT` characters besides the forms."""
    topic, is_reply = strip_reply_prefix(subject)
    said = 0
    lines = [] if is_reply or not topic else [topic]  # a reply's subject is our message's, not the letter's
    for original in lines:
        plain = normalise(original)
        if form_of(plain) is None:
            if requests_something(original, plain):
                return True
            said += len(original) + 1
    for original, plain in segments(text).body:
        if form_of(plain) is not None:
            continue
        if requests_something(original, plain):
            return True
        said += len(original) + 1
        if said > REST_LIMIT + 1:
            return True
    return said > REST_LIMIT + 1


def recognise(
    subject: str,
    text: str,
    recipients: Iterable[str] = (),
    addresses: CommandAddresses | None = None,
) -> Command | None:
    """The command this message unambiguously is, or None (then it is a request and is registered).

    ``text`` is the letter's own text (without the quoted part); ``recipients`` are its To and Cc addresses.
    """
    return read_command(subject, text, recipients, addresses)[0]


def read_command(
    subject: str,
    text: str,
    recipients: Iterable[str] = (),
    addresses: CommandAddresses | None = None,
) -> tuple[Command | None, Command | None]:
    """What :func:`recognise` and :func:`named` say of a letter, its subject and first sentence read once (intake
    asks both of every letter)."""
    name = named(subject, text)
    by_text = _by_text(subject, text, name)
    addresses = addresses or CommandAddresses()
    recipients = list(recipients)
    dedicated = addresses.commands_for(recipients)
    if len(dedicated) > 1:
        return None, name  # sent to two command addresses at once: which one is meant is for staff
    if dedicated:
        [command] = dedicated
        if by_text is not None:
            return (command if by_text is command else None), name
        if addresses.others_among(recipients) and _says_its_own(subject, text):
            return None, name  # a question to the main address copied to a command address is a request (G11)
        return command, name
    return by_text, name
