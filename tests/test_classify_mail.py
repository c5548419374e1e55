"""The classifier on mail that looks real (issue 13): the held-out fifth of the packaged sets, a noise model,
the letters outside the remit, common words in context, and long letters.

The model is trained once on the training part (evaluate.split) and every figure is measured on the held-out
part, which it never saw. Thresholds are the ones the README documents, not constants of the code under test.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from mailservice.classify.engine import PACKAGED_SETS, Classifier
from mailservice.classify.evaluate import evaluate, read_datasets, split
from mailservice.classify.model import Example
from mailservice.classify.rules import load_rules
from mailservice.classify.text import analyze
from tests.noise import noisy
from tests.trained import fit_once

# README, "Классификатор": the targets of needs_review on the held-out part.
TARGET_FLAGGED_AT_MOST = 0.35
TARGET_UNFLAGGED_RIGHT_AT_LEAST = 0.95
# What the classifier reaches today (README says so too): a floor that catches a regression.
FLOOR_TYPE_AND_TOPIC = 0.75
# The department's own topics: a letter outside the remit must not get one.
DEPARTMENT_TOPICS = {
    "land",
    "lease",
    "privatization",
    "cadastral_value",
    "state_services",
    "legal_acts",
    "reports",
    "personnel",
}


@pytest.fixture(scope="module")
def parts() -> tuple[list[Example], list[Example]]:
    return split(read_datasets(PACKAGED_SETS))


@pytest.fixture(scope="module")
def classifier(parts: tuple[list[Example], list[Example]], train_cache: Path) -> Classifier:
    # The model `classify evaluate` fits on the same training part (tests/test_classify_cli.py): fitted once a run.
    rules = load_rules()
    return Classifier(rules, fit_once(train_cache, parts[0], rules_version=rules.version))


@pytest.fixture(scope="module")
def report(classifier: Classifier, parts: tuple[list[Example], list[Example]]) -> dict[str, Any]:
    return evaluate(classifier, parts[1])


def test_held_out_part_is_large_enough_to_mean_something(report: dict[str, Any]) -> None:
    assert report["n"] >= 300


def test_needs_review_meets_the_documented_targets(report: dict[str, Any]) -> None:
    # Issue 13 point 3: type and topic flagged apart (rules.yaml review_margins); a letter is flagged when either
    # is, and "right" counts the decisions left unflagged. Met on 6 December (round 5): 34.8% and 96.1% (README).
    assert report["needs_review_share"] <= TARGET_FLAGGED_AT_MOST, report["needs_review_share"]
    assert report["unflagged_accuracy"] >= TARGET_UNFLAGGED_RIGHT_AT_LEAST, report["unflagged_accuracy"]


def test_needs_review_means_something(report: dict[str, Any]) -> None:
    # An unflagged decision is right more often than a decision taken at random from all (the flag sorts), and
    # the decisions themselves have not fallen below what they reached.
    accuracy = report["axis_accuracy"]
    every_decision = (accuracy["type"] + accuracy["topic"]) / 2
    assert report["unflagged_accuracy"] > every_decision + 0.03, (report["unflagged_accuracy"], every_decision)
    assert max(report["flagged_share"].values()) <= report["needs_review_share"], report["flagged_share"]
    assert accuracy["type_and_topic"] >= FLOOR_TYPE_AND_TOPIC, accuracy


def test_decisions_hold_under_noise(classifier: Classifier, parts: tuple[list[Example], list[Example]]) -> None:
    # Typos in 4% of words (real mail: 2.6%), lost punctuation, capitals, HTML only (tests/noise.py). Required:
    # at most 8% of the decisions change and accuracy drops by at most 3 points. Both are well under the share
    # of decisions already wrong on clean text (about 22%): noise must not become the main source of error.
    rng = random.Random(13)
    held_out = parts[1]
    same = right_clean = right_noisy = 0
    for example in held_out:
        clean = classifier.classify(example.subject, example.body)
        dirty = classifier.classify(*noisy(example.subject, example.body, rng))
        same += (clean.type.label, clean.topic.label) == (dirty.type.label, dirty.topic.label)
        right_clean += (clean.type.label, clean.topic.label) == (example.type, example.topic)
        right_noisy += (dirty.type.label, dirty.topic.label) == (example.type, example.topic)
    n = len(held_out)
    assert same / n >= 0.92, same / n
    assert right_noisy / n >= right_clean / n - 0.03, (right_clean / n, right_noisy / n)


def test_letters_outside_the_remit_rarely_get_a_department_topic(
    classifier: Classifier, parts: tuple[list[Example], list[Example]]
) -> None:
    outside = [e for e in parts[1] if e.topic == "outside"]
    assert len(outside) >= 50
    topics = [classifier.classify(e.subject, e.body).topic.label for e in outside]
    assert sum(t == "outside" for t in topics) / len(topics) >= 0.85
    assert sum(t in DEPARTMENT_TOPICS for t in topics) / len(topics) <= 0.1


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("", "Ямы на участке дороги Новосибирск — Колывань, пробил колесо. Кто ответит?"),
        ("Земля для рассады", "Какую землю купить для рассады томатов?"),
        ("", "Ремонт дороги"),
        ("", "Оборваны провода"),
    ],
)
def test_a_stray_word_does_not_make_a_letter_the_departments(classifier: Classifier, subject: str, body: str) -> None:
    assert classifier.classify(subject, body).topic.label == "outside"


def test_rules_alone_do_not_take_a_road_section_for_land() -> None:
    rules_only = Classifier(load_rules())
    result = rules_only.classify("", "Прошу отремонтировать участок дороги у дома 5 по ул. Ленина.")
    assert result.topic.label == "outside", result.topic.reasons


# Issue 13 p. 3: a common word of the department's topics in a letter about something else (docs/labelling.md,
# "Topic", step 1). Written for these tests, not taken from the packaged sets.
STRAY_WORD_LETTERS = [
    ("Участковый", "Наш участковый уполномоченный не берёт трубку, соседи шумят каждую ночь. Куда жаловаться?"),
    ("", "Где посмотреть адрес моего избирательного участка на выборах в сентябре?"),
    ("", "Участковый терапевт отказывается прийти к отцу на дом, говорит, не его участок."),
    ("Съём жилья", "Снимаю комнату в Бердске, хозяйка требует съехать через неделю и не отдаёт залог. Что делать?"),
    ("", "Хотим снять зал в кафе на юбилей мамы, подскажите, сколько стоит аренда и к кому обратиться?"),
    ("", "Арендую помещение под магазин в ТЦ «Галактика», собственник поднял плату вдвое. Законно ли это?"),
    ("", "Хочу взять в аренду участок лесного фонда под пасеку. Куда обращаться?"),
    ("Баня", "Можно ли поставить баню на своём участке в двух метрах от забора? Соседка против."),
    ("", "Соседский участок зарос бурьяном, собственник не появляется пять лет. Кто может его заставить?"),
]
# The same words where the department's property is meant (docs/labelling.md, "Topic", steps 2 and 3).
DEPARTMENT_LETTERS_WITH_THE_SAME_WORDS = [
    ("", "Прошу продлить договор аренды земельного участка под ЛПХ в с. Ярково, срок истекает в марте.", "lease"),
    ("", "Снимаем зал в здании областной собственности на ул. Кирова, 5. Прошу продлить договор аренды.", "lease"),
    ("", "Прошу предоставить земельный участок многодетной семье, мы стоим в очереди с 2019 года.", "land"),
    ("", "Соседний участок государственный, по нему единственный проезд к нашему дому. Прошу дать сервитут.", "land"),
]


@pytest.mark.parametrize(("subject", "body"), STRAY_WORD_LETTERS)
def test_rules_alone_give_a_stray_word_letter_the_topic_not_ours(subject: str, body: str) -> None:
    result = Classifier(load_rules()).classify(subject, body)
    assert result.topic.label == "outside", result.topic.reasons


@pytest.mark.parametrize(("subject", "body"), STRAY_WORD_LETTERS)
def test_a_stray_word_letter_gets_no_department_topic(classifier: Classifier, subject: str, body: str) -> None:
    result = classifier.classify(subject, body)
    assert result.topic.label not in DEPARTMENT_TOPICS, result.topic.reasons


@pytest.mark.parametrize(("subject", "body", "topic"), DEPARTMENT_LETTERS_WITH_THE_SAME_WORDS)
def test_the_same_words_stay_the_departments_when_its_property_is_meant(
    classifier: Classifier, subject: str, body: str, topic: str
) -> None:
    assert Classifier(load_rules()).classify(subject, body).topic.label == topic
    assert classifier.classify(subject, body).topic.label == topic


@pytest.mark.parametrize(
    ("subject", "body", "type_"),
    [
        # A «?» does not make a complaint a request for information.
        ("Жалоба", "Третий месяц жду ответа на заявление о продлении аренды участка. Сколько можно?", "appeal"),
        # «Спасибо» at the end does not make a complaint feedback.
        ("", "Полгода не могу добиться перерасчёта арендной платы, ваши специалисты не отвечают. Спасибо.", "appeal"),
        # «Отписались» is a brush-off answer, not a subscription.
        ("", "Мне отписались, что вопрос на контроле. Прошу разобраться с моим заявлением о выкупе участка.", "appeal"),
        # «Вопрос» in a complaint about one's own plot.
        ("Вопрос", "Вопрос по моему участку: сосед захватил часть, прошу принять меры.", "appeal"),
    ],
)
def test_common_words_need_context(classifier: Classifier, subject: str, body: str, type_: str) -> None:
    assert classifier.classify(subject, body).type.label == type_


def test_a_long_letter_is_read_at_its_start_and_its_end() -> None:
    filler = "Излагаю обстоятельства дела подробно, как они были. " * 250  # about 13,000 characters
    text = analyze("", f"Здравствуйте.\n{filler}\nПрошу предоставить копию договора аренды земельного участка.")
    assert "прошу предоставить копию договора аренды" in text.text
    # What is analysed stops growing at about 6,000 characters, whatever the length of the letter.
    longer = analyze("", filler * 4)
    assert len(text.text) <= 6_100 and len(longer.text) <= 6_100
    assert len(analyze("", "Коротко. " * 100).text) == len("коротко. " * 100) - 1
