"""Text preparation for the classifier: cleaning, tokens, lemmas."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pymorphy3.dawg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from razdel import tokenize

from mailservice.classify.text import (
    _chunk_words,
    analyze,
    lemma,
    lemma_forms,
    normalize,
    strip_reply,
    strip_reply_prefix,
    word_tokens,
)


def test_lemma_gives_the_normal_form_and_keeps_non_words() -> None:
    assert lemma("участка") == "участок"
    assert lemma("прошу") == "просить"
    assert lemma("отчёт") == "отчет"  # ё is written as е everywhere
    assert lemma("8-фз") == "8-фз"
    assert lemma("2025") == "2025"


def test_ambiguous_word_keeps_every_normal_form() -> None:
    forms = lemma_forms("все")
    assert "весь" in forms and "все" in forms


_PURE_PYTHON_LEMMAS = """
import json, sys
sys.modules["dawg"] = None  # what pymorphy3 does without its compiled reader: dawg_python
import pymorphy3.dawg
from mailservice.classify.text import lemma_forms
assert not pymorphy3.dawg.EXTENSION_AVAILABLE
print(json.dumps({word: lemma_forms(word) for word in json.loads(sys.stdin.read())}, ensure_ascii=False))
"""


def test_the_compiled_dictionary_reader_gives_the_pure_python_readers_lemmas() -> None:
    """Dictionaries are read by DAWG2's compiled code (pyproject.toml): new words cost a quarter; same lemmas."""
    from mailservice.classify.engine import PACKAGED_SETS
    from mailservice.classify.evaluate import read_datasets

    assert pymorphy3.dawg.EXTENSION_AVAILABLE
    words = sorted({t for e in read_datasets(PACKAGED_SETS)[::4] for t in analyze(e.subject, e.body).tokens})
    assert len(words) > 2000
    pure = subprocess.run(
        [sys.executable, "-c", _PURE_PYTHON_LEMMAS], input=json.dumps(words), capture_output=True, text=True, check=True
    )
    assert {word: list(lemma_forms(word)) for word in words} == json.loads(pure.stdout)


def test_normalize_lowercases_and_collapses_spaces() -> None:
    assert normalize("СРОЧНО  Ёлка\tи\u00a0всё") == "срочно елка и все"


def test_strip_reply_drops_quotes_attribution_and_signature() -> None:
    body = (
        "Ответ получил, спасибо.\n"
        "> Уважаемый заявитель, сообщаем о предоставлении информации\n"
        "--\n"
        "Иванов И.И., тел. 123\n"
    )
    assert strip_reply(body) == "Ответ получил, спасибо."
    reply = "Прошу ускорить.\n\n12.11.2025, 10:00, Департамент <info@example.ru> пишет:\nСообщаем, что ..."
    assert strip_reply(reply) == "Прошу ускорить."


def test_strip_reply_keeps_everything_when_only_quotes_remain() -> None:
    body = "> только цитата"
    assert strip_reply(body) == body


def test_subject_prefixes_are_removed() -> None:
    assert strip_reply_prefix("Re: RE[2]: Fwd: Запрос") == "Запрос"
    assert strip_reply_prefix("Ответ: Запрос № 5") == "Запрос № 5"


def test_analyze_indexes_tokens_and_lemmas_in_order() -> None:
    text = analyze("Re: Запрос", "Прошу предоставить копии приказов, 8-ФЗ!\n> цитата")
    assert text.tokens == ("запрос", "прошу", "предоставить", "копии", "приказов", "8-фз")
    assert text.lemmas == ("запрос", "просить", "предоставить", "копия", "приказ", "8-фз")
    assert text.index["просить"] == (1,)
    assert text.index["прошу"] == (1,)  # the written form is indexed too
    assert "цитата" not in text.index
    assert text.lemma_text == "запрос просить предоставить копия приказ 8-фз"


@pytest.mark.parametrize(
    "text",
    [
        "8-фз, т.е. 1,5 и 1/2 - a_b -b a- 1. ,5 ./ —тире— yahoo! :-) ... ?!",
        "- 5 -5 5- -а а- _а а_ 1 ,2 1, 2 1 /2 1/ 2 \\3 3\\ 4",
        "e-mail: ivanov@mail.ru, тел. +7 (383) 123-45-67; № 4601 от 06.11.2018",
        "ΔP Δσ mβж ½ ² ё Ё\u00a0слово\u2028строка\x1cещё",
        "",
    ],
)
def test_word_tokens_are_razdels(text: str) -> None:
    # Tokens come from cached chunks between spaces; they must be what razdel makes of the whole text.
    expected = [token.text for token in tokenize(text) if re.search(r"\w", token.text)]
    assert word_tokens(text) == expected


# Letters of both alphabets in both cases (razdel reads them case-blind), digits of several scripts, the delimiters
# its rules look across (dash, underscore, dot, comma, slash), other punctuation, letters of other alphabets, and
# white space: texts where a chunk is a plain word, a plain word beside a delimiter, or a mix.
_TEXT_CHARS = "абвгдеёжзЁЖЯabcxyzKQ0159\u0663\u07c2-\u2013\u2014_.,/\\!?:;()«»\"'@#№%+ΔσßÆæ\u017f\u212a\u00a0 \n\t"


@given(st.text(alphabet=_TEXT_CHARS, max_size=40))
def test_word_tokens_are_razdels_for_any_mix_of_words_and_delimiters(text: str) -> None:
    _chunk_words.cache_clear()  # every chunk tokenised anew: a plain word's shortcut included
    expected = [token.text for token in tokenize(text) if re.search(r"\w", token.text)]
    assert word_tokens(text) == expected
