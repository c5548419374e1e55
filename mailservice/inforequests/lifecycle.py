"""The request lifecycle as pure rules: statuses, allowed transitions, refusal grounds, channels.

Nothing here touches the database; :mod:`mailservice.inforequests.service` applies these rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Channel(StrEnum):
    """Every point of contact of seed 004 p. 7 (and p. 4: the phone enquiry service counts too)."""

    email = "email"
    phone = "phone"
    visit = "visit"
    post = "post"
    social = "social"
    web = "web"


CHANNEL_NAMES = {
    Channel.email: "электронная почта",
    Channel.phone: "телефон",
    Channel.visit: "личный приём",
    Channel.post: "почта",
    Channel.social: "социальные сети",
    Channel.web: "официальный сайт",
}

ORAL_CHANNELS = frozenset({Channel.phone, Channel.visit})


class Status(StrEnum):
    """Where a request stands. ``received`` is before registration (no number yet)."""

    received = "received"
    registered = "registered"
    in_progress = "in_progress"
    clarification_requested = "clarification_requested"
    extended = "extended"
    forwarded = "forwarded"
    answered = "answered"
    refused = "refused"
    closed = "closed"


STATUS_NAMES = {
    Status.received: "получен",
    Status.registered: "зарегистрирован",
    Status.in_progress: "на рассмотрении",
    Status.clarification_requested: "запрошено уточнение",
    Status.extended: "срок продлён",
    Status.forwarded: "перенаправлен",
    Status.answered: "дан ответ",
    Status.refused: "отказано",
    Status.closed: "закрыт",
}

# Statuses staff may set by hand; received/registered are set by registration only.
STAFF_SETTABLE = frozenset(
    {
        Status.in_progress,
        Status.clarification_requested,
        Status.extended,
        Status.forwarded,
        Status.answered,
        Status.refused,
        Status.closed,
    }
)

# The term runs in these statuses: overdue and due-soon flags apply.
OPEN_STATUSES = frozenset(
    {Status.registered, Status.in_progress, Status.clarification_requested, Status.extended, Status.forwarded}
)

# A citizen's reply to a request in one of these statuses joins it; otherwise it starts a new linked request
# (an answer was given or the matter ended, so a new question has its own legal term).
JOINABLE_STATUSES = OPEN_STATUSES | {Status.received}

_WORKING = (
    Status.in_progress,
    Status.clarification_requested,
    Status.extended,
    Status.forwarded,
    Status.answered,
    Status.refused,
)
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.received: frozenset({Status.registered, Status.closed}),
    Status.registered: frozenset(_WORKING),
    Status.in_progress: frozenset(_WORKING) - {Status.in_progress},
    Status.clarification_requested: frozenset((*_WORKING, Status.closed)) - {Status.clarification_requested},
    Status.extended: frozenset(
        {Status.in_progress, Status.clarification_requested, Status.forwarded, Status.answered, Status.refused}
    ),
    # Forwarded in full: the holder answers; we close. Forwarded in part: we still answer our part.
    Status.forwarded: frozenset({Status.answered, Status.refused, Status.closed, Status.in_progress}),
    Status.answered: frozenset({Status.closed, Status.in_progress}),
    Status.refused: frozenset({Status.closed, Status.in_progress}),
    Status.closed: frozenset({Status.in_progress}),
}


@dataclass(frozen=True)
class RefusalGround:
    """A legal ground for refusing (8-FZ art. 20) or for leaving an appeal unanswered (59-FZ art. 11)."""

    code: str
    law: str
    title: str
    send_reply: bool = True
    # The ground says the request lacks these (of "name", "address": an e-mail or postal address, "contact": an
    # address, a fax or a phone): it is refused for a request that has them all (:func:`check_missing`).
    missing: tuple[str, ...] = ()


REFUSAL_GROUNDS: dict[str, RefusalGround] = {
    g.code: g
    for g in (
        RefusalGround(
            "8fz-20-1-1", "8-fz", "Запрос не позволяет установить запрашиваемую информацию (ст. 20 ч. 1 п. 1 8-ФЗ)"
        ),
        RefusalGround(
            "8fz-20-1-2",
            "8-fz",
            "В запросе не указан почтовый адрес, адрес электронной почты, номер факса или телефона для ответа "
            "(ст. 20 ч. 1 п. 2 8-ФЗ)",
            send_reply=False,
            missing=("contact",),
        ),
        RefusalGround(
            "8fz-20-1-3",
            "8-fz",
            "Запрашиваемая информация не относится к деятельности департамента (ст. 20 ч. 1 п. 3 8-ФЗ)",
        ),
        RefusalGround(
            "8fz-20-1-4",
            "8-fz",
            "Запрашиваемая информация относится к информации ограниченного доступа (ст. 20 ч. 1 п. 4 8-ФЗ); "
            "указать ограничивающий акт и предоставить общедоступную часть",
        ),
        RefusalGround(
            "8fz-20-1-5", "8-fz", "Запрашиваемая информация ранее предоставлялась пользователю (ст. 20 ч. 1 п. 5 8-ФЗ)"
        ),
        RefusalGround(
            "8fz-20-1-6",
            "8-fz",
            "Запрос требует правовой оценки актов или аналитической работы, не связанной с правами заявителя "
            "(ст. 20 ч. 1 п. 6 8-ФЗ)",
        ),
        RefusalGround(
            "8fz-20-2", "8-fz", "Информация опубликована в СМИ или размещена в сети Интернет (ст. 20 ч. 2 8-ФЗ)"
        ),
        RefusalGround(
            "59fz-11-1",
            "59-fz",
            "Не указаны фамилия гражданина или адрес для ответа (ст. 11 ч. 1 59-ФЗ)",
            send_reply=False,
            missing=("name", "address"),
        ),
        RefusalGround("59fz-11-2", "59-fz", "Обжалуется судебное решение: обращение возвращается (ст. 11 ч. 2 59-ФЗ)"),
        RefusalGround(
            "59fz-11-3",
            "59-fz",
            "Обращение содержит нецензурные либо оскорбительные выражения, угрозы (ст. 11 ч. 3 59-ФЗ)",
        ),
        # Parts 4 and 4.1: no answer, and the appeal is not forwarded; the citizen is told within 7 days of
        # registration (under part 4 only when the name and the postal address can be read).
        RefusalGround(
            "59fz-11-4",
            "59-fz",
            "Текст обращения не поддаётся прочтению, ответ на обращение не даётся (ст. 11 ч. 4 59-ФЗ)",
        ),
        RefusalGround(
            "59fz-11-4-1",
            "59-fz",
            "Текст обращения не позволяет определить суть предложения, заявления или жалобы, ответ на обращение "
            "не даётся (ст. 11 ч. 4.1 59-ФЗ)",
        ),
        RefusalGround(
            "59fz-11-5",
            "59-fz",
            "Вопрос, на который заявителю неоднократно давались ответы по существу (ст. 11 ч. 5 59-ФЗ)",
        ),
        # Part 5.1: the answer is published on the official site; the citizen is told its address within 7 days.
        RefusalGround(
            "59fz-11-5-1",
            "59-fz",
            "Ответ на поставленный вопрос размещён на официальном сайте (ст. 11 ч. 5.1 59-ФЗ)",
        ),
        # Part 6: the citizen is told that an answer on the merits would disclose a secret protected by law.
        RefusalGround(
            "59fz-11-6",
            "59-fz",
            "Ответ по существу не может быть дан без разглашения сведений, составляющих государственную или иную "
            "охраняемую федеральным законом тайну (ст. 11 ч. 6 59-ФЗ)",
        ),
    )
}


class RefusedAction(ValueError):
    """An action on a request refused; the message is Russian and shown to staff as is.

    ``field`` names what staff must give (``comment``, ``ground``): the console shows its form, the CLI adds the
    option (``--comment``), so neither shows the other's words."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class TransitionError(RefusedAction):
    """A status change the rules do not allow."""


def check_transition(current: Status, target: Status, *, law: str, ground: str | None = None) -> None:
    """Raise :class:`TransitionError` unless ``current -> target`` is allowed with the given ground."""
    if target not in TRANSITIONS[current]:
        raise TransitionError(f"Переход «{STATUS_NAMES[current]}» → «{STATUS_NAMES[target]}» не допускается")
    if target is Status.refused:
        if not ground:
            raise TransitionError("Для отказа нужно указать правовое основание", field="ground")
        refusal = REFUSAL_GROUNDS.get(ground)
        if refusal is None:
            raise TransitionError(f"Неизвестное основание отказа: {ground}")
        if refusal.law != law:
            raise TransitionError(f"Основание {ground} относится к {refusal.law}, а запрос рассматривается по {law}")
    elif ground:
        raise TransitionError("Основание указывается только при отказе")


_MISSING_NAMES = {
    "name": "фамилия заявителя",
    "address": "адрес для ответа (электронной почты или почтовый)",
    "contact": "способ связи для ответа (адрес электронной почты, почтовый адрес, телефон или факс)",
}


def check_missing(ground: str, present: frozenset[str]) -> None:
    """Raise :class:`TransitionError` when ``ground`` says the request lacks something it has.

    ``present`` holds what the request gives: "name", "address" (an e-mail or postal address) and "contact" (an
    address, a phone or a fax). Such a ground means no reply is sent, so a wrong choice would leave a citizen who
    can be answered without one, silently (59-FZ art. 11 part 1, 8-FZ art. 20 part 1 p. 2).
    """
    refusal = REFUSAL_GROUNDS.get(ground)
    if refusal is None or not refusal.missing or not all(item in present for item in refusal.missing):
        return
    has = " и ".join(_MISSING_NAMES[item] for item in refusal.missing)
    raise TransitionError(
        f"Основание «{refusal.title}» не подходит: в запросе есть {has}. По этому основанию заявителю ничего не "
        "направляется, поэтому выберите другое основание или дайте ответ."
    )


class EventKind(StrEnum):
    """Kinds of interaction-history events."""

    message_in = "message_in"  # a message from the client (any channel)
    message_out = "message_out"  # a message to the client
    registered = "registered"
    status_changed = "status_changed"
    classified = "classified"
    note = "note"
    bounce = "bounce"
    reminder = "reminder"  # a daily reminder to staff listed this request (issue 17; internal)


# The names of the events of a request's history, as staff read them (console, `requests show`, the archive).
EVENT_NAMES: dict[str, str] = {
    EventKind.message_in: "Сообщение клиента",
    EventKind.message_out: "Сообщение департамента",
    EventKind.registered: "Регистрация",
    EventKind.status_changed: "Изменение статуса",
    EventKind.note: "Отметка",
    EventKind.bounce: "Письмо не доставлено",
    EventKind.classified: "Классификация",
    EventKind.reminder: "Напоминание сотрудникам",
}


# What staff are asked to check on a flagged request (issue 13 point 3): the decisions the classifier flagged, read
# from the stored classification (engine.Classification.as_dict, "review"). A request classified before the flag
# named its decisions, or one the classifier failed on, names none: the whole classification is to check.
REVIEW_NOTES = {
    ("type",): "проверить тип",
    ("topic",): "проверить тему",
    ("type", "topic"): "проверить тип и тему",
}
REVIEW_NOTE_ALL = "проверить классификацию"


def review_note(needs_review: bool, classification: object) -> str:
    """The Russian note of what to check on a request flagged for review; empty when it is not flagged."""
    if not needs_review:
        return ""
    review = classification.get("review") if isinstance(classification, dict) else None
    return REVIEW_NOTES.get(tuple(review) if isinstance(review, list) else (), REVIEW_NOTE_ALL)
