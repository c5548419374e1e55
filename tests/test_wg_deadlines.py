"""Working-group deadlines for the four regulation profiles (seeds 000-003)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from mailservice.workdays import SHIPPED_OVERRIDE_FILE, Calendar
from mailservice.workgroup.deadlines import (
    DEADLINE_KEYS,
    PROFILES,
    ProfileRules,
    get_profile,
    meeting_deadlines,
)

D = dt.date
CAL = Calendar.from_files([SHIPPED_OVERRIDE_FILE])


def test_profiles_hold_the_seed_numbers() -> None:
    assert set(PROFILES) == {"novosibirsk", "astrakhan", "federal", "saratov"}
    # Fields: agenda_to_chair_wd, agenda_send_wd, written_opinion_days, minutes_wd, copies_wd.
    assert PROFILES["novosibirsk"] == ProfileRules("novosibirsk", 5, 3, None, 5, 3)  # seed 000 p. 11, 12, 16, 17
    assert PROFILES["astrakhan"] == ProfileRules("astrakhan", None, None, 1, None, 5)  # seed 001 p. 2.7, 3.4
    for name in ("federal", "saratov"):
        rules = PROFILES[name]
        assert rules == ProfileRules(name)  # chair approves, electronic distribution: no terms


def test_novosibirsk_rules_md_example() -> None:
    # RULES.md: meeting Wed 16.12.2026 -> 5 wd before = Wed 09.12, 3 before = Fri 11.12, minutes by Wed 23.12.
    result = meeting_deadlines(PROFILES["novosibirsk"], D(2026, 12, 16), CAL)
    assert tuple(result) == DEADLINE_KEYS
    assert result == {
        "agenda_to_chair_by": D(2026, 12, 9),
        "agenda_send_by": D(2026, 12, 11),
        "written_opinions_by": None,
        "minutes_by": D(2026, 12, 23),
        "copies_by": None,  # no signing date yet
    }
    signed = meeting_deadlines(PROFILES["novosibirsk"], D(2026, 12, 16), CAL, signed=D(2026, 12, 23))
    assert signed["copies_by"] == D(2026, 12, 28)  # 24, 25, 28


def test_novosibirsk_over_new_year() -> None:
    result = meeting_deadlines(PROFILES["novosibirsk"], D(2027, 1, 12), CAL, signed=D(2026, 12, 30))
    assert result["agenda_to_chair_by"] == D(2026, 12, 25)  # 11.01, 30.12, 29.12, 28.12, 25.12
    assert result["agenda_send_by"] == D(2026, 12, 29)
    assert result["minutes_by"] == D(2027, 1, 19)
    assert result["copies_by"] == D(2027, 1, 13)  # 11.01, 12.01, 13.01


def test_novosibirsk_counts_the_working_saturday() -> None:
    result = meeting_deadlines(PROFILES["novosibirsk"], D(2025, 11, 5), CAL)
    # Back from Wed 05.11.2025: 04.11 and 03.11 are off, Sat 01.11 works: 01.11, 31.10, 30.10, 29.10, 28.10.
    assert result["agenda_send_by"] == D(2025, 10, 30)
    assert result["agenda_to_chair_by"] == D(2025, 10, 28)


def test_astrakhan() -> None:
    result = meeting_deadlines(PROFILES["astrakhan"], D(2026, 12, 16), CAL, signed=D(2026, 12, 25))
    assert result == {
        "agenda_to_chair_by": None,
        "agenda_send_by": None,
        "written_opinions_by": D(2026, 12, 15),
        "minutes_by": None,
        "copies_by": D(2027, 1, 12),  # 28, 29, 30 (31.12 off), 11.01, 12.01
    }
    # "Not later than 1 day before" is a calendar day, even when it is a Sunday.
    monday = meeting_deadlines(PROFILES["astrakhan"], D(2026, 12, 14), CAL)
    assert monday["written_opinions_by"] == D(2026, 12, 13)


@pytest.mark.parametrize("name", ["federal", "saratov"])
def test_electronic_profiles_have_no_terms(name: str) -> None:
    result = meeting_deadlines(PROFILES[name], D(2026, 12, 16), CAL, signed=D(2026, 12, 17))
    assert result == dict.fromkeys(DEADLINE_KEYS)


def test_profile_numbers_are_overridable() -> None:
    custom = get_profile("federal", {"copies_wd": 2, "minutes_wd": 10})
    result = meeting_deadlines(custom, D(2026, 12, 16), CAL, signed=D(2026, 12, 18))
    assert result["copies_by"] == D(2026, 12, 22)
    assert result["minutes_by"] == D(2026, 12, 30)
    assert get_profile("novosibirsk") is PROFILES["novosibirsk"]
    longer = dataclasses.replace(PROFILES["novosibirsk"], agenda_send_wd=4)
    assert meeting_deadlines(longer, D(2026, 12, 16), CAL)["agenda_send_by"] == D(2026, 12, 10)
    assert PROFILES["novosibirsk"].agenda_send_wd == 3  # the default is untouched


def test_bad_profile_settings() -> None:
    with pytest.raises(ValueError, match="нет такого профиля рабочей группы: 'moscow'"):
        get_profile("moscow")
    with pytest.raises(ValueError, match="copy_wd"):
        get_profile("federal", {"copy_wd": 2})
    with pytest.raises(ValueError, match="minutes_wd"):
        dataclasses.replace(PROFILES["novosibirsk"], minutes_wd=-1)
