"""The rules alone (the classifier on its first day): each label, the reasons, the rule file syntax."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import cast

import pytest

from mailservice.classify.engine import Classifier
from mailservice.classify.evaluate import read_dataset
from mailservice.classify.model import TrainedModel
from mailservice.classify.prefilter import literals_apply, prefilters
from mailservice.classify.rules import RegexPattern, RulesError, RuleSet, load_rules, load_taxonomy
from mailservice.classify.text import AnalyzedText, analyze

DEV = Path(__file__).parent / "data" / "classify_dev.tsv"


@pytest.fixture(scope="module")
def rules_only() -> Classifier:
    return Classifier(load_rules())


# (subject, body, axis, expected label); the messages are not in the development set.
POSITIVE = [
    ("", "Прошу предоставить сведения о числе договоров аренды, заключённых в 2025 году.", "type", "info_request"),
    ("Жалоба", "Жалуюсь на бездействие отдела: мне не выдают мой договор. Прошу принять меры.", "type", "appeal"),
    ("", "Пришлите, пожалуйста, историю всех моих обращений к вам с ответами.", "type", "history_request"),
    ("", "Хочу отписаться от рассылки департамента.", "type", "subscription"),
    ("", "Спасибо за подробную консультацию, специалист всё объяснил.", "type", "feedback"),
    ("Акция!", "Скидка 50% на натяжные потолки, звоните!", "type", "other"),
    ("", "Прошу предоставить мне земельный участок под ИЖС как многодетной семье.", "topic", "land"),
    ("", "Прошу пересчитать арендную плату по договору аренды помещения.", "topic", "lease"),
    ("", "Когда будет утверждён прогнозный план приватизации областного имущества?", "topic", "privatization"),
    ("", "Не согласен с кадастровой стоимостью своего дома, она завышена.", "topic", "cadastral_value"),
    ("", "Можно ли подать заявление через портал Госуслуг или только в МФЦ?", "topic", "state_services"),
    ("", "Пришлите копию приказа об утверждении положения об отделе.", "topic", "legal_acts"),
    ("", "Прошу направить годовой отчёт о деятельности департамента.", "topic", "reports"),
    ("", "Есть ли вакансии в департаменте? Хочу участвовать в конкурсе на замещение должности.", "topic", "personnel"),
    ("", "Здравствуйте, подскажите адрес ближайшей поликлиники.", "topic", "outside"),
    ("", "Яма на дороге у дома 15 по ул. Садовой.", "topic", "outside"),
    ("Проверка связи", "тест", "topic", "other"),
    ("", "Судебное заседание по нашему делу назначено на 3 марта, прошу ответить до него.", "urgency", "urgent"),
    ("", "Ответ на мой запрос так и не пришёл, прошло уже 45 дней.", "urgency", "urgent"),
    ("", "СРОЧНО: прошу выдать копию договора аренды.", "urgency", "urgent"),
    ("", "Завтра аукцион по этому участку, прошу снять его с торгов.", "urgency", "urgent"),
    ("", "В здании трещина в несущей стене, есть угроза обрушения.", "urgency", "urgent"),
    ("", "Прошу предоставить план работы департамента на следующий год.", "urgency", "normal"),
    ("", "Это не срочно, но пришлите, пожалуйста, реквизиты.", "urgency", "normal"),
]


@pytest.mark.parametrize(("subject", "body", "axis", "expected"), POSITIVE)
def test_rules_find_each_label(rules_only: Classifier, subject: str, body: str, axis: str, expected: str) -> None:
    result = getattr(rules_only.classify(subject, body), axis)
    assert result.label == expected, result.reasons


def test_every_label_of_every_axis_has_a_positive_case() -> None:
    covered = {(axis, label) for _, _, axis, label in POSITIVE}
    taxonomy = load_taxonomy()
    for axis in ("type", "topic", "urgency"):
        for label in taxonomy[axis].labels:
            assert (axis, label) in covered, f"no positive case for {axis}={label}"


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("Прошу продлить договор аренды моего участка на новый срок.", "application"),
        ("Жалоба на незаконный отказ в выкупе моего помещения, прошу его отменить.", "complaint"),
        ("Предлагаю публиковать на сайте карту свободных участков, прошу рассмотреть.", "proposal"),
    ],
)
def test_appeal_kind(rules_only: Classifier, body: str, kind: str) -> None:
    result = rules_only.classify("", body)
    assert result.type.label == "appeal"
    assert result.appeal_kind == kind
    assert result.appeal_kind_name


def test_appeal_kind_only_for_appeals(rules_only: Classifier) -> None:
    assert rules_only.classify("", "Прошу предоставить отчёт о приватизации за 2024 год.").appeal_kind is None


def test_reasons_name_the_rule_and_its_weight(rules_only: Classifier) -> None:
    result = rules_only.classify("Срочно", "Прошу срочно предоставить копию договора аренды.")
    for axis in (result.type, result.topic, result.urgency):
        assert axis.reasons and all(reason.strip() for reason in axis.reasons)
        assert 0.0 <= axis.confidence <= 1.0
        assert axis.name  # Russian display name
    assert any("(+4.5)" in reason for reason in result.urgency.reasons)
    assert result.urgency.name == "Срочно"


def test_default_label_still_has_a_reason(rules_only: Classifier) -> None:
    result = rules_only.classify("", "Добрый день")
    assert result.topic.label == "other"
    assert result.topic.reasons == ["правила: совпадений нет, значение по умолчанию"]


def test_greetings_and_spam_are_never_urgent(rules_only: Classifier) -> None:
    text = "Поздравляем с Новым годом! Срочно приходите завтра на праздничный концерт."
    assert rules_only.rules.axes["urgency"].score(analyze("", text)).probabilities["urgent"] > 0.5
    result = rules_only.classify("", text)
    assert result.type.label == "other"
    assert result.urgency.label == "normal"
    assert "не оценивается" in result.urgency.reasons[0]


def test_outweighed_rules_are_shown(rules_only: Classifier) -> None:
    result = rules_only.classify("", "Срочный займ на карту без отказа, скидка только сегодня!")
    assert result.urgency.label == "normal"
    assert any("→ «Срочно»" in reason and "(+4.5)" in reason for reason in result.urgency.reasons)


def test_version_is_recorded(rules_only: Classifier) -> None:
    version = load_rules().version
    result = rules_only.classify("", "Прошу предоставить информацию.")
    assert result.version == f"rules-{version}"
    assert result.as_dict()["version"] == f"rules-{version}"


def test_type_and_topic_are_flagged_apart(rules_only: Classifier) -> None:
    # Issue 13 point 3: each decision is flagged by its own margin (rules.yaml review_margins); the request needs
    # review when either is, and says which. Rules alone never give a margin of 1 (no label without a rival).
    text = "Прошу направить годовой отчёт о деятельности департамента за 2024 год."
    cases = {(1.0, 0.0): ("type",), (0.0, 1.0): ("topic",), (1.0, 1.0): ("type", "topic"), (0.0, 0.0): ()}
    for (type_margin, topic_margin), expected in cases.items():
        rules = dataclasses.replace(rules_only.rules, review_margins={"type": type_margin, "topic": topic_margin})
        result = Classifier(rules).classify("", text)
        assert result.review == expected, (type_margin, topic_margin)
        assert result.needs_review is bool(expected)
        assert result.as_dict()["review"] == list(expected)


def test_review_margins_need_both_axes(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("version: 1\nreview_margins: {type: 0.2}\naxes: {}\n")
    with pytest.raises(RulesError, match="review_margins"):
        load_rules(path)
    path.write_text("version: 1\nreview_margins: {type: 0.2, topic: 1.5}\naxes: {}\n")
    with pytest.raises(RulesError, match="от 0 до 1"):
        load_rules(path)
    path.write_text("version: 1\nreview_margins: {type: 0.2, topic: 0.3}\naxes: {}\n")
    assert load_rules(path).review_margins == {"type": 0.2, "topic": 0.3}


def test_low_confidence_goes_to_review(rules_only: Classifier) -> None:
    clear = rules_only.classify("", "Прошу направить годовой отчёт о деятельности департамента за 2024 год.")
    assert not clear.needs_review
    vague = rules_only.classify("", "по поводу вчерашнего")
    assert vague.needs_review


# The rule file syntax ------------------------------------------------------------------------------------------


def write_rules(tmp_path: Path, type_rules: str, version: str = "7") -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(f"version: {version}\naxes:\n  type:\n    prior: {{other: 1.0}}\n    rules:\n{type_rules}")
    return path


def hits(path: Path, body: str) -> list[str]:
    rules = load_rules(path)
    return [hit.shown for hit in rules.score(analyze("", body))["type"].hits]


def test_lemma_pattern_matches_any_form_in_order_within_the_gap(tmp_path: Path) -> None:
    path = write_rules(
        tmp_path,
        '      - {label: info_request, weight: 2, any: ["предоставить информация|сведение"]}\n',
    )
    assert hits(path, "Предоставьте, пожалуйста, информацию") == ["предоставьте пожалуйста информацию"]
    assert hits(path, "предоставить нам любые сведения") == ["предоставить нам любые сведения"]  # two between
    assert hits(path, "предоставить мне в письменной форме сведения") == []  # four words between
    assert hits(path, "информацию прошу предоставить") == []  # order matters


def test_prefix_exact_form_and_regex_patterns(tmp_path: Path) -> None:
    path = write_rules(
        tmp_path,
        '      - {label: info_request, weight: 1, name: префикс, any: ["приватиз*"]}\n'
        '      - {label: info_request, weight: 1, name: форма, any: ["=сообщите"]}\n'
        '      - {label: appeal, weight: 1, name: номер, any: [{re: "№\\\\s?\\\\d+"}]}\n',
    )
    assert hits(path, "Приватизационный план") == ["префикс"]
    assert hits(path, "Сообщите сроки") == ["форма"]
    assert hits(path, "Она сообщила сроки") == []
    assert hits(path, "договор № 45") == ["номер"]


def test_all_patterns_must_match_together(tmp_path: Path) -> None:
    path = write_rules(
        tmp_path,
        '      - {label: appeal, weight: 1, name: оба, all: ["суд", {re: "\\\\d+ декабря"}]}\n',
    )
    assert hits(path, "суд 5 декабря") == ["оба"]
    assert hits(path, "суд скоро") == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('      - {label: nonsense, weight: 1, any: ["слово"]}\n', "неизвестная метка"),
        ('      - {label: appeal, weight: 1, any: [{re: "(("}]}\n', "неверное регулярное выражение"),
        ("      - {label: appeal, weight: 1}\n", "нет шаблонов"),
        ('      - {label: appeal, weight: много, any: ["слово"]}\n', "ожидалось число"),
        ('      - {label: appeal, wieght: 1, any: ["слово"]}\n', "неизвестные ключи"),
    ],
)
def test_bad_rule_files_are_refused_with_a_reason(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(RulesError, match=message):
        load_rules(write_rules(tmp_path, body))


def test_rules_file_needs_a_version(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("axes: {}\n")
    with pytest.raises(RulesError, match="version"):
        load_rules(path)


def test_packaged_rules_refer_only_to_known_labels() -> None:
    rules = load_rules()
    for axis in rules.axes.values():
        assert axis.rules, f"axis {axis.axis.key} has no rules"
        for rule in axis.rules:
            assert rule.label in axis.axis.labels


# Compiled rules and regular expression prefilters ----------------------------------------------------------------


def one_by_one(rules: RuleSet, text: AnalyzedText) -> dict[str, list[tuple[str, float, str]]]:
    """What every rule gives when matched on its own (the plain definition the compiled rules must equal)."""
    result = {}
    for key, axis in rules.axes.items():
        found = []
        for rule in axis.rules:
            shown = rule.match(text)
            if shown is not None:
                found.append((rule.label, rule.weight, shown))
        result[key] = found
    return result


@pytest.mark.parametrize("shout", [False, True])
def test_compiled_rules_give_what_each_rule_gives(shout: bool) -> None:
    rules = load_rules()
    for example in read_dataset(DEV)[::3]:
        text = analyze(example.subject, example.body)
        if shout:  # upper case and a look-alike letter: prefilters must stand aside
            text = dataclasses.replace(text, text=text.text.upper().replace("В", "ᲀ"))
        scores = rules.score(text)
        expected = one_by_one(rules, text)
        for key, axis_scores in scores.items():
            assert [(hit.label, hit.weight, hit.shown) for hit in axis_scores.hits] == expected[key]
            assert axis_scores.scores == rules.axes[key].scores_of(axis_scores.hits).scores


@pytest.mark.parametrize(
    ("source", "needs"),
    [
        (r"\bсрочн\w*|\bнеотложн\w*", (("неотложн", "срочн"),)),
        (r"\bма[яй]\b", (("май", "мая"),)),
        (r"\bне\s+(\S+\s+){0,2}?получ(ил|ила)", (("получила", "получил"), ("не",))),
        (r"(?i:Срочно)|x\d+", ()),  # a local flag: no prefilter
    ],
)
def test_regex_needs_literals_every_match_contains(source: str, needs: tuple[tuple[str, ...], ...]) -> None:
    assert prefilters(re.compile(source, re.IGNORECASE | re.MULTILINE))[0] == needs


@pytest.mark.parametrize(
    ("source", "text"),
    [
        (r"\bсрочно\b", "это срочно"),
        (r"\bСРОЧНО\b", "это срочно"),  # upper case in the pattern: no case-sensitive twin
        (r"во?т", "ᲀот"),  # a look-alike letter: literals do not apply to the text
        (r"[а-я]+ ли\b", "так ли"),
        (r"[А-Я]+ ли\b", "так ли"),
        (r"[^а-я]ли", "1ли"),
        (r"s+", "ſ"),
        (r"\d{1,2}\.\d{1,2}", "на 12.05 в 10.00"),
    ],
)
def test_regex_prefilters_never_change_a_match(source: str, text: str) -> None:
    plain = re.compile(source, re.IGNORECASE | re.MULTILINE)
    pattern = RegexPattern(source, plain, *prefilters(plain))
    for candidate in (text, text.upper(), "ничего похожего", ""):
        found = plain.search(candidate)
        expected = " ".join(found.group(0).split()) if found else None
        assert pattern.match_text(candidate, literals_apply(candidate)) == expected


class _SureModel:
    """A model that reads every letter as a history request (what the seed model did with «Обращение», G2)."""

    model_id = "stub"

    def predict(self, text: AnalyzedText) -> dict[str, dict[str, float]]:
        return {"type": {"history_request": 0.96, "appeal": 0.02, "other": 0.02}}


def test_a_label_that_needs_a_rule_is_not_given_by_the_model_alone() -> None:
    """README, "Classifier": the model alone never types a letter as a history request (`needs_rule`)."""
    rules = load_rules()
    assert "history_request" in rules.axes["type"].needs_rule
    sure = Classifier(rules, cast(TrainedModel, _SureModel()))
    for subject in ("Обращение", "Обращение в департамент", "Заявление"):
        scanned = sure.classify(subject, "")
        assert scanned.type.label == "appeal", (subject, scanned.type.reasons)
        assert scanned.needs_review
    # A letter that asks for its history in words the rules know still is one.
    asked = sure.classify("Обращение", "Прошу предоставить историю моих обращений за 2025 год.")
    assert asked.type.label == "history_request"
    # Without `needs_rule` the model's word would stand (the rule file decides, not the code).
    free = Classifier(
        dataclasses.replace(
            rules, axes={**rules.axes, "type": dataclasses.replace(rules.axes["type"], needs_rule=frozenset())}
        ),
        cast(TrainedModel, _SureModel()),
    )
    assert free.classify("Обращение", "").type.label == "history_request"


def test_needs_rule_names_labels_of_its_axis(tmp_path: Path) -> None:
    path = write_rules(tmp_path, '      - {label: appeal, weight: 1, any: ["жалоба"]}\n')
    prior = "    prior: {other: 1.0}\n"
    path.write_text(path.read_text().replace(prior, prior + "    needs_rule: [nonsense]\n"))
    with pytest.raises(RulesError, match="needs_rule"):
        load_rules(path)
