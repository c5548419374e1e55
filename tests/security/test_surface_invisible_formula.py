"""A formula start hidden behind invisible characters (tryout of 6 December): a zero-width space, a direction mark
or embedding, an isolate or a byte order mark before ``=`` must not let a citizen's text run as a formula when
staff open an export (OWASP, "CSV Injection": such a cell starts with an apostrophe)."""

from __future__ import annotations

import csv
import io

import pytest

from mailservice.spreadsheets import csv_bytes, restore_cell, safe_cell

INVISIBLE = ["\u200b", "\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e"]
INVISIBLE += ["\u2066", "\u2067", "\u2068", "\u2069", "\ufeff"]


@pytest.mark.parametrize("hidden", INVISIBLE, ids=[f"U+{ord(c):04X}" for c in INVISIBLE])
@pytest.mark.parametrize("formula", ['=HYPERLINK("http://evil.test/","Подробнее")', "+1+1", "-2+3", "@SUM(1+1)"])
def test_a_formula_behind_invisible_characters_stays_text(hidden: str, formula: str) -> None:
    attack = hidden + " " + hidden + formula
    cell = safe_cell(attack)
    assert isinstance(cell, str) and cell.startswith("'"), repr(cell)
    assert restore_cell(cell) == attack  # our own export reads back as it was
    (row,) = csv.reader(io.StringIO(csv_bytes([[attack]]).decode("utf-8")))
    assert row == [cell]


@pytest.mark.parametrize("hidden", INVISIBLE, ids=[f"U+{ord(c):04X}" for c in INVISIBLE])
def test_text_behind_invisible_characters_is_left_alone(hidden: str) -> None:
    assert safe_cell(hidden + "Иванов") == hidden + "Иванов"
