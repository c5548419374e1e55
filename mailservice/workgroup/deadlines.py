"""Working-group deadlines around a meeting, per regulation profile (RULES.md "Working-group decisions").

"N working days before D" is the working day reached by counting N working days back from D, D not counted;
"within N working days after D" counts forward the same way (Civil Code art. 191: a term starts the next day).
Every number is a default that a group may change (`get_profile(name, overrides)` or `dataclasses.replace`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from mailservice.workdays import Calendar

DEADLINE_KEYS = ("agenda_to_chair_by", "agenda_send_by", "written_opinions_by", "minutes_by", "copies_by")


@dataclass(frozen=True)
class ProfileRules:
    """The terms of one regulation; None where the regulation sets no such term."""

    name: str
    # Agenda and materials to the chair for approval, working days before the meeting (seed 000 p. 11).
    agenda_to_chair_wd: int | None = None
    # Agenda and materials sent to members and invitees, working days before the meeting (seed 000 p. 12).
    agenda_send_wd: int | None = None
    # An absent member's written opinion reaches the secretary, calendar days before (seed 001 p. 2.7).
    written_opinion_days: int | None = None
    # Minutes drafted and passed for approval, working days after the meeting (seed 000 p. 16).
    minutes_wd: int | None = None
    # Copies of the signed minutes sent, working days after signing (seed 000 p. 17: 3; seed 001 p. 3.4: 5).
    # Seeds 002 p. 15 and 003 app. 3 p. 10 send them electronically with no term: None.
    copies_wd: int | None = None

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if field.name == "name":
                continue
            value = getattr(self, field.name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{field.name} must be a non-negative whole number of days or None, not {value!r}")


PROFILES: dict[str, ProfileRules] = {
    # Seed 000: Novosibirsk region, Department of Property and Land Relations.
    "novosibirsk": ProfileRules(
        "novosibirsk",
        agenda_to_chair_wd=5,
        agenda_send_wd=3,
        written_opinion_days=None,
        minutes_wd=5,
        copies_wd=3,
    ),
    # Seed 001: Astrakhan city administration; the minutes are signed at the meeting, so no drafting term.
    "astrakhan": ProfileRules("astrakhan", written_opinion_days=1, copies_wd=5),
    # Seed 002: federal template; the chair approves the agenda, minutes go out electronically.
    "federal": ProfileRules("federal"),
    # Seed 003 appendix 3: Saratov region; as the federal template.
    "saratov": ProfileRules("saratov"),
}


def get_profile(name: str, overrides: Mapping[str, int | None] | None = None) -> ProfileRules:
    """The named profile with a group's own numbers applied; unknown names or fields raise ValueError."""
    try:
        profile = PROFILES[name]
    except KeyError:
        raise ValueError(f"нет такого профиля рабочей группы: {name!r}; есть: {', '.join(PROFILES)}") from None
    if not overrides:
        return profile
    allowed = {field.name for field in dataclasses.fields(ProfileRules)} - {"name"}
    unknown = set(overrides) - allowed
    if unknown:
        raise ValueError(f"неизвестные настройки профиля: {', '.join(sorted(unknown))}")
    return dataclasses.replace(profile, **overrides)  # type: ignore[arg-type]


def meeting_deadlines(
    profile: ProfileRules, meeting: dt.date, calendar: Calendar, signed: dt.date | None = None
) -> dict[str, dt.date | None]:
    """The last day for each step around ``meeting``; None where the profile has no such term.

    ``copies_by`` needs the signing date of the minutes and stays None without it.
    """

    def before(days: int | None) -> dt.date | None:
        return None if days is None else calendar.add_working_days(meeting, -days)

    return {
        "agenda_to_chair_by": before(profile.agenda_to_chair_wd),
        "agenda_send_by": before(profile.agenda_send_wd),
        # "не позднее 1 дня до заседания": a calendar day, whatever the calendar says about it.
        "written_opinions_by": (
            None if profile.written_opinion_days is None else meeting - dt.timedelta(days=profile.written_opinion_days)
        ),
        "minutes_by": None if profile.minutes_wd is None else calendar.add_working_days(meeting, profile.minutes_wd),
        "copies_by": (
            None
            if signed is None or profile.copies_wd is None
            else calendar.add_working_days(signed, profile.copies_wd)
        ),
    }
