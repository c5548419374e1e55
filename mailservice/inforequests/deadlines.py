"""Legal terms of information requests (8-FZ) and citizen appeals (59-FZ): pure date arithmetic, no database.

Both laws count calendar days from the registration date, starting the next day (Civil Code art. 191).
Whether a term ending on a non-working day moves (Civil Code art. 193) is not settled for these laws, so every
deadline keeps the legal due date and a control date on the production calendar (RULES.md "Deadlines on the
production calendar"); staff are warned by the control date; a request is overdue only after the legal date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from mailservice.workdays import Calendar

Shift = Literal["previous", "next", "none"]


class Law(StrEnum):
    """The law a request is handled under."""

    FZ8 = "8-fz"  # information request, Federal Law 09.02.2009 No. 8-FZ
    FZ59 = "59-fz"  # citizen appeal, Federal Law 02.05.2006 No. 59-FZ

    @property
    def label(self) -> str:
        """The law's short Russian name for messages."""
        return "Федеральный закон № 8-ФЗ" if self is Law.FZ8 else "Федеральный закон № 59-ФЗ"


class DeadlineError(ValueError):
    """A term or an extension the law does not allow; the message is in Russian for staff."""


@dataclass(frozen=True)
class Deadline:
    """The legal due date and the working day by which staff must have answered."""

    legal_due: dt.date
    control_date: dt.date


# 8-FZ art. 18 and 59-FZ art. 12 part 1: thirty days from registration.
ANSWER_DAYS = {Law.FZ8: 30, Law.FZ59: 30}
# 8-FZ art. 18: at most 15 days beyond the 30; 59-FZ art. 12 part 2: at most 30 more days.
MAX_EXTENSION_DAYS = {Law.FZ8: 15, Law.FZ59: 30}
# Both laws allow a single extension (59-FZ art. 12 part 2 "продлить ... не более чем на 30 дней";
# 8-FZ art. 18 names one deferral with one new date).
MAX_EXTENSIONS = {Law.FZ8: 1, Law.FZ59: 1}
# 8-FZ art. 18 (deferral and forwarding notices) and 59-FZ art. 8 part 3 (forwarding): seven days.
NOTICE_DAYS = 7
# 8-FZ art. 18 and 59-FZ art. 8 part 2: a written request is registered within three days of receipt.
REGISTRATION_DAYS = 3
# 59-FZ art. 8 part 3 (appeals) and 8-FZ art. 18 (requests): a letter outside the department's remit is forwarded
# to the competent body within seven days of registration, and the citizen told in the same term.
FORWARDING_DAYS = 7


def _after(day: dt.date, days: int) -> dt.date:
    """The last day of a term of ``days`` calendar days from ``day`` (Civil Code art. 191: next day)."""
    return day + dt.timedelta(days=days)


def max_extension_days(law: Law) -> int:
    """The longest extension the law allows, in calendar days."""
    return MAX_EXTENSION_DAYS[law]


def max_extensions(law: Law) -> int:
    """How many times the answer term may be extended."""
    return MAX_EXTENSIONS[law]


def answer_due(law: Law, registered: dt.date, extension_days: int = 0) -> dt.date:
    """The legal due date: registration + 30 days (+ the extension); registered 01.03 -> due 31.03."""
    if not 0 <= extension_days <= max_extension_days(law):
        raise DeadlineError(
            f"Продление на {extension_days} дн. невозможно: {law.label} допускает от 1 до "
            f"{max_extension_days(law)} дней."
        )
    return _after(registered, ANSWER_DAYS[law] + extension_days)


def notice_due(registered: dt.date) -> dt.date:
    """Last day for a forwarding or deferral/extension notice: 7 days after registration (both laws)."""
    return _after(registered, NOTICE_DAYS)


def forwarding_due(registered: dt.date) -> dt.date:
    """Last day to forward a letter outside the remit and tell the citizen: 7 days after registration."""
    return _after(registered, FORWARDING_DAYS)


def registration_due(received: dt.date, oral: bool = False) -> dt.date:
    """Last day to register a request: an oral one (phone, visit) on the day of receipt, a written or electronic
    one within 3 days after receipt (8-FZ art. 18, 59-FZ art. 8 part 2)."""
    return received if oral else _after(received, REGISTRATION_DAYS)


def registered_late(received: dt.date, registered: dt.date, oral: bool = False) -> bool:
    """Whether a request was registered after its registration term (the lateness is recorded, never hidden)."""
    return registered > registration_due(received, oral)


def term_start(received: dt.date, registered: dt.date, oral: bool = False) -> dt.date:
    """The day the answer term counts from: the registration date, but never later than the last lawful day of
    registration. A call entered two days after it came, or a letter left unregistered past its three days, gains
    no days from the delay: its term runs as if it had been registered in time (8-FZ art. 18)."""
    return min(registered, registration_due(received, oral))


def control_date(legal_due: dt.date, calendar: Calendar, shift: Shift) -> dt.date:
    """The working day staff aim at: on or before the legal date (``previous``), on or after it, or it."""
    if shift == "previous":
        return calendar.working_day_on_or_before(legal_due)
    if shift == "next":
        return calendar.working_day_on_or_after(legal_due)
    if shift == "none":
        return legal_due
    raise ValueError(f"unknown due_shift {shift!r}")


def deadline(
    law: Law, registered: dt.date, calendar: Calendar, shift: Shift = "previous", extension_days: int = 0
) -> Deadline:
    """The answer deadline of a request registered on ``registered``, with ``extension_days`` granted."""
    legal_due = answer_due(law, registered, extension_days)
    return Deadline(legal_due, control_date(legal_due, calendar, shift))


def latest_extended_deadline(law: Law, registered: dt.date, calendar: Calendar, shift: Shift) -> Deadline:
    """The latest deadline the law allows after the longest extension."""
    return deadline(law, registered, calendar, shift, max_extension_days(law))


def validate_extension(law: Law, registered: dt.date, today: dt.date, days: int, previous_extensions: int) -> None:
    """Raise `DeadlineError` unless extending by ``days`` on ``today`` is lawful.

    8-FZ art. 18: the deferral notice is due within 7 days of registration. 59-FZ art. 12 part 2 gives no
    notice term, but a term that has already run out cannot be extended, so the extension must come no later
    than the original due date.
    """
    limit = max_extension_days(law)
    if days <= 0:
        raise DeadlineError("Срок продления должен быть положительным числом дней.")
    if days > limit:
        raise DeadlineError(f"{law.label} допускает продление не более чем на {limit} дней (запрошено {days}).")
    if previous_extensions >= max_extensions(law):
        raise DeadlineError(f"Срок ответа уже продлевался; {law.label} допускает только одно продление.")
    if law is Law.FZ8:
        last = notice_due(registered)
        if today > last:
            raise DeadlineError(
                f"Уведомление об отсрочке ответа направляется в течение 7 дней со дня регистрации запроса "
                f"(не позднее {last:%d.%m.%Y}); этот срок истёк, отсрочка невозможна."
            )
    else:
        last = answer_due(law, registered)
        if today > last:
            raise DeadlineError(
                f"Срок рассмотрения обращения истёк {last:%d.%m.%Y}; продлить его после истечения нельзя."
            )


def is_overdue(deadline: Deadline, today: dt.date) -> bool:
    """Whether the legal due date has passed."""
    return today > deadline.legal_due


def is_due_soon(deadline: Deadline, today: dt.date, calendar: Calendar, working_days: int) -> bool:
    """Whether the control date is at most ``working_days`` working days ahead (or passed, not overdue)."""
    if is_overdue(deadline, today):
        return False
    return calendar.working_days_between(today, deadline.control_date) <= working_days
