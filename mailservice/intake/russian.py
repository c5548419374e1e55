"""Russian words for intake's journal as staff read it in the CLI (pure): outcome names and the reasons intake
records (in English, for the log and the journal's exports) for a letter it quarantines or does not register.

A reason not listed here is shown as recorded.
"""

from __future__ import annotations

import re

from mailservice.inforequests.lifecycle import STATUS_NAMES, Status
from mailservice.intake.models import Outcome
from mailservice.mail.triage import (
    HOLD_AUTO_GENERATED,
    HOLD_AUTO_SUBJECT,
    HOLD_CALENDAR_INVITATION,
    HOLD_CALENDAR_REPLY,
    HOLD_LIST_MAIL,
    HOLD_NULL_ENVELOPE,
    HOLD_OWN_ADDRESS,
    HOLD_SYSTEM_NOTICE,
    TRIAGE_HOLDS,
)

__all__ = ["OUTCOME_NAMES", "outcome_ru", "reason_ru"]

OUTCOME_NAMES: dict[Outcome, str] = {
    Outcome.new_request: "зарегистрировано",
    Outcome.reply: "ответ в переписке",
    Outcome.ignored_auto_reply: "автоответ, не регистрируется",
    Outcome.bounce: "уведомление о недоставке",
    Outcome.quarantined: "в карантине",
    Outcome.duplicate: "повтор уже полученного письма",
    Outcome.routed: "передано по назначению",
    Outcome.held: "ждёт решения сотрудника",
    Outcome.feedback: "благодарность, без нового обращения",
}

# ParseError reasons (mail/parse.py).
_PARSE_REASONS = {
    "empty message": "пустое письмо",
    "binary data, not an RFC 5322 message": "двоичные данные, а не письмо (RFC 5322)",
    "no header block: not an RFC 5322 message": "нет заголовков: это не письмо (RFC 5322)",
    "message structure nested too deeply": "слишком глубокая вложенность частей письма",
    "input is not bytes": "на входе не байты",
    "no usable sender address (From, Sender and Reply-To absent or invalid)": (
        "в письме нет адреса автора (поля From, Sender и Reply-To пусты или неверны): укажите адрес сами "
        "(intake release ID --sender АДРЕС)"
    ),
}

# Why a letter is held unregistered (intake/pipeline.py records TRIAGE_HOLDS' words, or the advertising one).
_HOLD_REASONS = {
    TRIAGE_HOLDS[HOLD_AUTO_SUBJECT]: "тема автоответа, а в письме ничего больше",
    TRIAGE_HOLDS[HOLD_LIST_MAIL]: "письмо из списка рассылки с вопросом",
    TRIAGE_HOLDS[HOLD_AUTO_GENERATED]: "автоматическое письмо с вопросом",
    TRIAGE_HOLDS[HOLD_CALENDAR_INVITATION]: "приглашение в календарь, в котором ни о чём не просят",
    TRIAGE_HOLDS[HOLD_CALENDAR_REPLY]: "ответ на приглашение в календарь с вопросом",
    TRIAGE_HOLDS[HOLD_NULL_ENVELOPE]: "пустой адрес возврата <> у письма с вопросом",
    TRIAGE_HOLDS[HOLD_OWN_ADDRESS]: "письмо от собственного адреса департамента",
    TRIAGE_HOLDS[HOLD_SYSTEM_NOTICE]: "автоматическое уведомление другой системы",
    "looks like advertising": "похоже на рекламу",
}

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^message larger than (\d+) bytes$"), "письмо больше {0} байт"),
    (re.compile(r"^unparseable: parser failure: (.*)$", re.S), "письмо не удалось разобрать (сбой разбора: {0})"),
    (re.compile(r"^internal error: (.*)$", re.S), "внутренняя ошибка программы: {0}"),
    (re.compile(r"^database integrity error$"), "ошибка целостности базы данных"),
    (
        re.compile(r"^same Message-ID and content as journal entry (\d+)$"),
        "то же письмо (тот же Message-ID и текст), что в строке журнала {0}",
    ),
    (
        re.compile(r"^sent again: same sender, subject, text and files as journal entry (\d+)$"),
        "то же письмо прислано ещё раз (тот же автор, тема, текст и файлы), что и в строке журнала {0}",
    ),
    (re.compile(r"^reply to (\S+)$"), "ответ по обращению {0}"),
    (re.compile(r"^thanks for (\S+): feedback, no new request$"), "благодарность за ответ {0}, без нового обращения"),
    (re.compile(r"^thanks to nothing of ours: feedback of the client, no request$"), "благодарность, без обращения"),
    (
        re.compile(r"^follow-up to (\S+) \(status (\S+)\): new linked request$"),
        "продолжение обращения {0} (состояние: {1}): новое связанное обращение",
    ),
    (re.compile(r"^held unregistered for staff: (.*)$", re.S), "ждёт решения сотрудника без регистрации: {0}"),
)


def outcome_ru(outcome: str) -> str:
    """The Russian name of an outcome (its code when unknown)."""
    try:
        return OUTCOME_NAMES[Outcome(outcome)]
    except ValueError:
        return outcome


def reason_ru(reason: str) -> str:
    """The Russian wording of a journal reason; a reason not known here comes back as recorded."""
    if reason.startswith("unparseable: ") and reason[len("unparseable: ") :] in _PARSE_REASONS:
        return "письмо не удалось разобрать: " + _PARSE_REASONS[reason[len("unparseable: ") :]]
    for pattern, wording in _PATTERNS:
        match = pattern.match(reason)
        if match:
            return wording.format(*(_status(group) for group in match.groups()))
    return reason


def _status(word: str) -> str:
    if word in _HOLD_REASONS:
        return _HOLD_REASONS[word]
    try:
        return STATUS_NAMES[Status(word)]
    except ValueError:
        return word
