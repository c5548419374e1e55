"""The plain terminal table (mailservice/termtable.py): kept text is never cut, the rest folds or shortens, and
the table fits the width it is given."""

from __future__ import annotations

from mailservice.termtable import Column, Keep, Short, first_fitting, fold, render, shorten, text_width


def test_width_counts_terminal_cells() -> None:
    assert text_width("2026-000123") == 11
    assert text_width("Тема") == 4
    assert text_width("日本") == 4  # wide characters take two cells
    assert text_width("е\u0301") == 1  # a combining accent takes none


def test_fold_wraps_at_spaces_and_breaks_only_a_too_long_word() -> None:
    assert fold("Сведения о договорах аренды", 12) == ["Сведения о", "договорах", "аренды"]
    assert fold("Константинопольская", 10) == ["Константин", "опольская"]
    assert fold("", 5) == [""]


def test_shorten_ends_with_an_ellipsis_only_when_text_was_left_out() -> None:
    assert shorten("Часы приёма", 20, 1) == ["Часы приёма"]
    lines = shorten("Сведения о договорах аренды земельных участков", 12, 2)
    assert lines == ["Сведения о", "договорах…"] and all(text_width(x) <= 12 for x in lines)


def test_a_table_fits_and_keeps_its_numbers() -> None:
    columns = [Column("№"), Column("Клиент", 6, 2), Column("Тема", 6, 1)]
    rows = [[[Keep("2026-000123")], ["Константинопольская Александра"], [Short("Сведения о договорах аренды", 2)]]]
    for width in (80, 40, 34):
        table = render(columns, rows, width)
        assert max(text_width(line) for line in table.splitlines()) <= width, table
        assert "│ 2026-000123 │" in table, table


def test_text_from_outside_is_inert() -> None:
    table = render([Column("Тема")], [[["\x1b[31mкрасный\x1b[0m"]]], 80)
    assert "\x1b" not in table and "\\x1b[31mкрасный" in table


def test_the_first_layout_that_fits_is_chosen() -> None:
    wide = ([Column("a"), Column("b", 10, 1)], [[["x" * 30], ["y" * 30]]])
    narrow = ([Column("ab", 5, 1)], [[["x" * 30, "y" * 30]]])
    assert first_fitting([wide, narrow], 100)[0] is wide[0]
    assert first_fitting([wide, narrow], 40)[0] is narrow[0]
