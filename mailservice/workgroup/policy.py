"""What a group's regulation says beyond its deadlines: forms, frequency, audio, signatures, dissent, quorum.

RULES.md "Working-group decisions" distils seeds 000-003 into four profiles; :mod:`.deadlines` holds the terms in
days, this module the rest. Every value is a default a group may change (its ``settings`` JSON): the same keys
serve both layers, so ``{"copies_wd": 2, "monthly": false}`` overrides one deadline and one policy value.
Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mailservice.workgroup.deadlines import ProfileRules, get_profile

FORMS = ("in_person", "remote", "absentee")
FORM_NAMES = {
    "in_person": "очная",
    "remote": "дистанционная",
    "absentee": "заочная (письменный опрос)",
}
ROLES = ("chair", "deputy_chair", "secretary", "member", "invitee")
ROLE_NAMES = {
    "chair": "председатель",
    "deputy_chair": "заместитель председателя",
    "secretary": "секретарь",
    "member": "член рабочей группы",
    "invitee": "приглашённый",
}
# Who signs the minutes: the presiding member alone (seeds 000 p. 16, 002 p. 14) or chair, secretary and the
# members who took part (seed 001 p. 3.4).
SIGNERS = ("presiding", "all")
# Where a disagreement goes: into the minutes (seeds 000 p. 15, 001 p. 2.6) or to a conciliation meeting
# (seeds 002 p. 15, 003 app. 3 p. 10); in both cases the written dissent is kept and printed.
DISSENT = ("minutes", "conciliation")


@dataclass(frozen=True)
class GroupPolicy:
    """The non-deadline rules of one regulation."""

    # Meeting forms the regulation allows.
    forms: tuple[str, ...]
    # "не реже 1 раза в месяц" (seeds 000 p. 9, 002 p. 12): warn about a month without a meeting.
    monthly: bool
    # Forms that cannot be finished without an audio recording (seed 002 p. 12: "с обязательным ведением
    # аудиозаписи заседания", in person or remote alike).
    audio_required: tuple[str, ...]
    signers: str
    dissent: str
    # Seed 002 p. 14: the presiding member signs "на основании устного согласия членов рабочей группы".
    oral_consent: bool = False
    # Quorum: taking part × quorum_den ≥ members × quorum_num ("не менее половины", every seed).
    quorum_num: int = 1
    quorum_den: int = 2
    # Reminders go to the secretary and the chair this many working days before each deadline.
    reminder_wd: int = 1

    def __post_init__(self) -> None:
        bad = [f for f in self.forms if f not in FORMS] + [f for f in self.audio_required if f not in FORMS]
        if bad or not self.forms:
            raise ValueError(f"формы участия выбираются из {', '.join(FORMS)}: {bad or 'не указаны'}")
        if self.signers not in SIGNERS:
            raise ValueError(f"подписывает одно из: {', '.join(SIGNERS)}")
        if self.dissent not in DISSENT:
            raise ValueError(f"особое мнение: одно из {', '.join(DISSENT)}")
        for name in ("quorum_num", "quorum_den", "reminder_wd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative whole number, not {value!r}")
        if self.quorum_den == 0 or self.quorum_num > self.quorum_den:
            raise ValueError("кворум — дробь не больше 1 с ненулевым знаменателем")


POLICIES: dict[str, GroupPolicy] = {
    # Seed 000 p. 9: in person; decisions by written poll on the chair's order; at least monthly.
    "novosibirsk": GroupPolicy(
        forms=("in_person", "absentee"), monthly=True, audio_required=(), signers="presiding", dissent="minutes"
    ),
    # Seed 001: meetings as needed (3.1); the form is not regulated, so in person or remote; minutes signed by
    # chair, secretary and members (3.4); written dissent (2.6 ж).
    "astrakhan": GroupPolicy(
        forms=("in_person", "remote"), monthly=False, audio_required=(), signers="all", dissent="minutes"
    ),
    # Seed 002 p. 12, 14, 15.
    "federal": GroupPolicy(
        forms=("in_person", "remote"),
        monthly=True,
        audio_required=("in_person", "remote"),
        signers="presiding",
        dissent="conciliation",
        oral_consent=True,
    ),
    # Seed 003 appendix 3 p. 7, 9, 10: in person, remote or absentee; minutes "on the basis of the vote", whose
    # signatory is not named: the presiding member, as in the federal template it copies.
    "saratov": GroupPolicy(forms=FORMS, monthly=False, audio_required=(), signers="presiding", dissent="conciliation"),
}

_POLICY_FIELDS = {field.name for field in dataclasses.fields(GroupPolicy)}
_DEADLINE_FIELDS = {field.name for field in dataclasses.fields(ProfileRules)} - {"name"}
SETTING_KEYS = tuple(sorted(_POLICY_FIELDS | _DEADLINE_FIELDS))


@dataclass(frozen=True)
class GroupRules:
    """Everything the software applies to one group: its deadline terms and its policy."""

    profile: str
    terms: ProfileRules
    policy: GroupPolicy


def group_rules(profile: str, overrides: Mapping[str, Any] | None = None) -> GroupRules:
    """The named profile with a group's own values applied; unknown profiles or keys raise ValueError."""
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(SETTING_KEYS)
    if unknown:
        raise ValueError(f"неизвестные настройки рабочей группы: {', '.join(sorted(unknown))}")
    terms = get_profile(profile, {k: v for k, v in overrides.items() if k in _DEADLINE_FIELDS})
    changes = {k: v for k, v in overrides.items() if k in _POLICY_FIELDS}
    for key in ("forms", "audio_required"):
        if key in changes:
            changes[key] = tuple(changes[key])
    policy = dataclasses.replace(POLICIES[profile], **changes)
    return GroupRules(profile, terms, policy)


def parse_setting(key: str, text: str) -> Any:
    """A ``key=value`` from the command line as the typed value the group's settings store.

    Numbers are whole numbers (``none`` for "no such term"), ``forms`` and ``audio_required`` comma lists,
    ``monthly`` and ``oral_consent`` yes/no. Raises ValueError with the key named.
    """
    if key not in SETTING_KEYS:
        raise ValueError(f"нет такой настройки рабочей группы: {key!r}; есть: {', '.join(SETTING_KEYS)}")
    value = text.strip()
    if key in ("forms", "audio_required"):
        return [part.strip() for part in value.split(",") if part.strip()]
    if key in ("monthly", "oral_consent"):
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "да"):
            return True
        if lowered in ("0", "false", "no", "нет"):
            return False
        raise ValueError(f"{key} must be yes or no")
    if key in ("signers", "dissent"):
        return value
    if key in _DEADLINE_FIELDS and value.lower() in ("none", "null", "-", ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{key} must be a whole number, not {value!r}") from None


def settings_json(settings: Mapping[str, Any]) -> str:
    """A stable text form of a group's settings (for the log and the console)."""
    return json.dumps(dict(settings), ensure_ascii=False, sort_keys=True)


# Pure checks ---------------------------------------------------------------------------------------------------


def months_without_meetings(meeting_days: Iterable[dt.date], first: dt.date, last: dt.date) -> list[tuple[int, int]]:
    """Calendar months from ``first`` to ``last`` (both included) in which no meeting is held or planned."""
    held = {(day.year, day.month) for day in meeting_days}
    missing = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        if (year, month) not in held:
            missing.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return missing


def deadline_status(due: dt.date, done_on: dt.date | None, today: dt.date) -> str:
    """``kept`` (done on or before the due day), ``missed`` (done late, or not done after it) or ``pending``."""
    if done_on is not None:
        return "kept" if done_on <= due else "missed"
    return "missed" if today > due else "pending"
