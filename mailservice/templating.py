"""Jinja2 environments for e-mails (plain text and HTML) and web pages, from the packaged templates/ folder."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from functools import lru_cache

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from mailservice.inforequests.lifecycle import review_note
from mailservice.resources import package_path

TEMPLATES_DIR = package_path("templates")

MONTHS_GENITIVE = (
    "января", "февраля", "марта", "апреля", "мая", "июня",
    "июля", "августа", "сентября", "октября", "ноября", "декабря",
)  # fmt: skip


def ru_date(value: dt.date | dt.datetime | None) -> str:
    """A date as Russians write it in letters: «25 ноября 2026 г.»."""
    if value is None:
        return ""
    return f"{value.day} {MONTHS_GENITIVE[value.month - 1]} {value.year} г."


def ru_short_date(value: dt.date | dt.datetime | None) -> str:
    """A date as DD.MM.YYYY."""
    return value.strftime("%d.%m.%Y") if value is not None else ""


def ru_plural(number: int, one: str, few: str, many: str) -> str:
    """The Russian form of a noun after ``number``: 1 день, 2 дня, 5 дней, 11 дней, 21 день."""
    if number % 10 == 1 and number % 100 != 11:
        return one
    if 2 <= number % 10 <= 4 and not 12 <= number % 100 <= 14:
        return few
    return many


def ru_hours(hours: int) -> str:
    """A duration given in hours as citizens read it: whole days in days («7 дней»), otherwise hours («36 часов»)."""
    if hours % 24 == 0:
        days = hours // 24
        return f"{days} {ru_plural(days, 'день', 'дня', 'дней')}"
    return f"{hours} {ru_plural(hours, 'час', 'часа', 'часов')}"


def ru_days(days: int) -> str:
    """A number of days in words: «1 день», «15 дней» (never «15 дн.» in a letter)."""
    return f"{days} {ru_plural(days, 'день', 'дня', 'дней')}"


# Legal forms written before or after an organisation's name (Civil Code; ИП, КФХ: an entrepreneur's business).
_LEGAL_FORMS = re.compile(
    r"(?<!\w)(?:ООО|ОАО|ЗАО|ПАО|НАО|АО|ИП|КФХ|МУП|ГУП|ФГУП|МУ|МБУ|МКУ|МАУ|ГБУ|ГКУ|ГАУ|ОГБУ|ОГКУ|ФГБУ|ФГКУ|ФГАУ|"
    r"АНО|НКО|ТСЖ|ТСН|СНТ|ДНТ|ОНТ|СНТСН|ЖСК|ГСК|СПК|НП)(?!\w)"
)
_ORGANISATION_WORDS = re.compile(
    r"(?<!\w)(?:общество|товарищество|предприниматель|учреждение|предприятие|администрация|ассоциация|кооператив|"
    r"партн[её]рство|корпорация|компания|фонд)(?!\w)",
    re.IGNORECASE,
)


def is_organisation(name: str) -> bool:
    """Whether ``name`` is clearly an organisation's (a legal form, «quoted» name), not a person's."""
    return bool(_LEGAL_FORMS.search(name) or _ORGANISATION_WORDS.search(name) or "«" in name)


# Russian patronymics (with the given name before them they are how a letter addresses a person): -ович, -евич,
# -ич (Ильич, Кузьмич) for a man; -овна, -евна, -ична (Ильинична) for a woman.
_PATRONYMIC = re.compile(r"^[А-ЯЁ][а-яё]+(?:(ович|евич|ич)|(овна|евна|ична))$")


def greeting(name: str | None, organisation: str | None = "", *, fallback: str = "Здравствуйте!") -> str:
    """The first line of a letter: «Уважаемый Иван Петрович!» or «Уважаемая Анна Ивановна!» for a person whose
    name has a patronymic, whatever the order of its words; «Здравствуйте, Аоки Юко!» for one whose name does not
    tell whether to write «Уважаемый» or «Уважаемая»; ``fallback`` otherwise.

    A patronymic is a word ending as one, after a word that does not (the given name): in «Иван Сергеевич
    Карпович» the surname ends like a patronymic too, and «Сергеевич» follows «Иван». An organisation (``name`` is
    the ``organisation`` given, or clearly an organisation's name: «ООО «Ромашка»», «ИП Сидоров К.П.») is not
    greeted as a person: the department does not know who reads the letter there, and «Уважаемые господа!» is not
    how it writes to citizens and businesses, so the neutral «Здравствуйте!» it uses for an unnamed sender serves (a
    letter on paper starts with no greeting at all, ``fallback=""``).
    """
    name, organisation = (name or "").strip(), (organisation or "").strip()
    if not name or name == organisation or is_organisation(name):
        return fallback
    # «ИВАНОВ ИВАН ИВАНОВИЧ» and «иванов иван иванович» as typed on a form: each word as a name is written.
    words = [word.capitalize() if word.isupper() or word.islower() else word for word in name.split()]
    for index in range(1, len(words)):
        found = _PATRONYMIC.match(words[index])
        if found and not _PATRONYMIC.match(words[index - 1]) and words[index - 1].isalpha():
            dear = "Уважаемый" if found.group(1) else "Уважаемая"
            return f"{dear} {words[index - 1]} {words[index]}!"
    return f"Здравствуйте, {name}!"


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The shared environment; HTML templates are autoescaped, text ones are not (by file extension)."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        # HTML templates are escaped; plain-text e-mails (.txt) are not HTML and must not be.
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["ru_date"] = ru_date
    env.filters["ru_short_date"] = ru_short_date
    env.filters["ru_hours"] = ru_hours
    env.filters["ru_days"] = ru_days
    env.globals["greeting"] = greeting
    env.globals["review_note"] = review_note
    return env


# Slotted rendering: a template rendered once with markers where the values that differ per letter go, then filled
# by substitution (intake's acknowledgements: one per letter, and the same text but for the number, dates, subject).
_MARK = "\x00"  # never in a template's text or in the settings it shows (verified when rendering)


def slot(name: str) -> str:
    """The marker standing for the value ``name`` in :func:`render_slotted`."""
    return f"{_MARK}{name}{_MARK}"


def _slot_or(date_filter: Callable[[dt.date | dt.datetime | None], str]) -> Callable[[object], str]:
    def apply(value: object) -> str:
        return value if isinstance(value, str) and value.startswith(_MARK) else date_filter(value)  # type: ignore[arg-type]

    return apply


@lru_cache(maxsize=1)
def _slot_environment() -> Environment:
    # Not a plain overlay: that copies the cache, whose templates keep the date filters of the shared environment.
    env = environment().overlay(cache_size=0)
    env.filters["ru_date"] = _slot_or(ru_date)
    env.filters["ru_short_date"] = _slot_or(ru_short_date)
    return env


def render_slotted(name: str, slots: frozenset[str], **context: object) -> list[str] | None:
    """``name`` rendered with ``context`` whose per-letter values are :func:`slot` markers: the text's pieces, the
    constant ones at even positions and the slots' names at odd ones (for :func:`fill`). None when the result is not
    made of exactly those (a marker character in the settings): render that letter normally then."""
    parts = _slot_environment().get_template(name).render(**context).split(_MARK)
    if len(parts) % 2 == 0 or any(part not in slots for part in parts[1::2]):
        return None
    return parts


def fill(parts: list[str], values: Mapping[str, str]) -> str:
    """The text of :func:`render_slotted` with each slot's value put in."""
    filled = parts.copy()
    for index in range(1, len(parts), 2):
        filled[index] = values[parts[index]]
    return "".join(filled)


def render(name: str, **context: object) -> str:
    """Render one template file by its path under templates/."""
    return environment().get_template(name).render(**context)
