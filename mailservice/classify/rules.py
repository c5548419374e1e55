"""Weighted rules over lemmas and raw text, read from an editable YAML file (rules.yaml).

A rule gives its label a weight when it matches. Patterns are either lemma sequences ("предоставить
информация|сведение") matched in order with at most ``gap`` other words between neighbours, or regular
expressions (``{re: "..."}``) over the normalised text (lower case, ``ё`` as ``е``). Every axis starts from
its ``prior`` scores; the scores become probabilities by a softmax, so a label no rule mentions keeps some
mass.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import chain
from pathlib import Path
from typing import Any

from mailservice.classify.prefilter import holds_needs, literals_apply, prefilters
from mailservice.classify.taxonomy import (
    AXES,
    Axis,
    RulesError,
    Taxonomy,
    load_taxonomy,
)
from mailservice.classify.taxonomy import read_yaml as _read_yaml
from mailservice.classify.text import AnalyzedText, lemma, normalize
from mailservice.resources import package_path

DEFAULT_GAP = 2
_WORD_SPLIT_RE = re.compile(r"\s+")
DEFAULT_RULES_PATH = package_path("classify", "rules.yaml")


# Patterns ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Element:
    """One word position of a lemma pattern: any of the exact keys or any prefix."""

    keys: frozenset[str]
    prefixes: tuple[str, ...]

    def positions(self, text: AnalyzedText) -> Sequence[int]:
        index = text.index
        found = [index[key] for key in self.keys if key in index]
        for prefix in self.prefixes:
            found.extend(where for key, where in index.items() if key.startswith(prefix))
        if len(found) <= 1:  # the usual case: no match, or one word form (positions already sorted)
            return found[0] if found else ()
        return sorted(set(chain.from_iterable(found)))


@dataclass(frozen=True)
class LemmaPattern:
    """Words in order, each given by any word form (its lemma is looked up) or a prefix ending in ``*``."""

    source: str
    elements: tuple[_Element, ...]
    gap: int

    @classmethod
    def compile(cls, source: str, gap: int) -> LemmaPattern:
        elements = []
        for word in _WORD_SPLIT_RE.split(normalize(source).strip()):
            keys: set[str] = set()
            prefixes: list[str] = []
            for alternative in word.split("|"):
                if not alternative:
                    continue
                if alternative.endswith("*"):
                    prefixes.append(alternative[:-1])
                elif alternative.startswith("="):  # this exact word form only ("=сообщите", not "сообщила")
                    keys.add(alternative[1:])
                else:
                    keys.update({alternative, lemma(alternative)})
            if not keys and not prefixes:
                raise RulesError(f"пустой элемент в шаблоне {source!r}")
            elements.append(_Element(frozenset(keys), tuple(prefixes)))
        if not elements:
            raise RulesError("пустой шаблон")
        return cls(source=source, elements=tuple(elements), gap=gap)

    def match(self, text: AnalyzedText) -> str | None:
        """The matched words as written, or None."""
        first = self.elements[0].positions(text)
        if not first:
            return None
        return self.match_positions(text.tokens, first, [element.positions(text) for element in self.elements[1:]])

    def match_positions(self, tokens: Sequence[str], first: Sequence[int], rest: Sequence[Sequence[int]]) -> str | None:
        """:meth:`match` given the sorted positions of each element."""
        for start in first:
            end = start
            for positions in rest:
                i = bisect_right(positions, end)
                if i == len(positions) or positions[i] > end + 1 + self.gap:
                    break
                end = positions[i]
            else:
                return " ".join(tokens[start : end + 1])
        return None


@dataclass(frozen=True)
class RegexPattern:
    """A regular expression over the normalised text."""

    source: str
    regex: re.Pattern[str]
    # Literal strings some match must contain: every group needs one of its strings in the text. Checking them
    # is much cheaper than a search with IGNORECASE, and most expressions do not match most messages.
    needs: tuple[tuple[str, ...], ...] = ()
    # The same expression without IGNORECASE when it matches the same on texts literals apply to (all its
    # letters lower case): the re module searches those several times faster.
    case_sensitive: re.Pattern[str] | None = None

    def match(self, text: AnalyzedText) -> str | None:
        return self.match_text(text.text, literals_apply(text.text))

    def match_text(self, text: str, literals_apply: bool) -> str | None:
        """Search ``text``; with ``literals_apply`` (see :func:`_literals_apply`) skip it when a need is unmet."""
        if literals_apply and not self.may_match(text):
            return None
        return self.search(text, literals_apply)

    def may_match(self, text: str) -> bool:
        """Whether ``text`` has what :attr:`needs` says any match contains (exact only where literals apply)."""
        return holds_needs(text, self.needs)

    def search(self, text: str, literals_apply: bool = False) -> str | None:
        """The first match, spaces and line breaks collapsed, or None."""
        regex = self.case_sensitive if literals_apply and self.case_sensitive is not None else self.regex
        found = regex.search(text)
        return _SPACE_OR_BREAK.sub(" ", found.group(0)).strip() if found else None


_SPACE_OR_BREAK = re.compile(r"\s+")
Pattern = LemmaPattern | RegexPattern


def _compile_pattern(raw: object, gap: int, where: str) -> Pattern:
    if isinstance(raw, str):
        return LemmaPattern.compile(raw, gap)
    if isinstance(raw, dict) and set(raw) == {"re"} and isinstance(raw["re"], str):
        try:
            regex = re.compile(raw["re"], re.IGNORECASE | re.MULTILINE)
            needs, twin = prefilters(regex)
            return RegexPattern(source=raw["re"], regex=regex, needs=needs, case_sensitive=twin)
        except re.error as exc:
            raise RulesError(f"{where}: неверное регулярное выражение {raw['re']!r}: {exc}") from exc
    raise RulesError(f"{where}: шаблон должен быть строкой или {{re: ...}}, получено {raw!r}")


# Rules ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """Adds ``weight`` to ``label`` when a pattern of ``any`` (if given) and each pattern of ``all`` match."""

    name: str | None
    label: str
    weight: float
    any_of: tuple[Pattern, ...]
    all_of: tuple[Pattern, ...]

    def match(self, text: AnalyzedText) -> str | None:
        """What matched, for the reason shown to staff, or None."""
        shown: list[str] = []
        if self.any_of:
            for pattern in self.any_of:
                found = pattern.match(text)
                if found is not None:
                    shown.append(found)
                    break
            else:
                return None
        for pattern in self.all_of:
            found = pattern.match(text)
            if found is None:
                return None
            shown.append(found)
        return self.name or " … ".join(shown)


@dataclass(frozen=True)
class Hit:
    """A rule that matched a message."""

    label: str
    weight: float
    shown: str

    @property
    def reason(self) -> str:
        """Human-readable, e.g. «правило «срочно» (+3.0)»."""
        return f"правило «{self.shown}» ({self.weight:+.1f})"


@dataclass(frozen=True)
class AxisScores:
    """Rule scores of one axis for one message."""

    scores: Mapping[str, float]
    hits: tuple[Hit, ...]
    probabilities: Mapping[str, float]

    def hits_for(self, label: str) -> list[Hit]:
        """Matched rules for ``label``, strongest first."""
        return sorted((hit for hit in self.hits if hit.label == label), key=lambda hit: -abs(hit.weight))


@dataclass(frozen=True)
class AxisRules:
    """The rules of one axis and how their scores turn into probabilities."""

    axis: Axis
    rules: tuple[Rule, ...]
    prior: Mapping[str, float]
    temperature: float
    threshold: float
    model_weight: float
    default_for_types: frozenset[str] = frozenset()
    # Labels the model alone cannot give: one of them wins only when a rule of its own fired (rules.yaml).
    needs_rule: frozenset[str] = frozenset()

    def score(self, text: AnalyzedText) -> AxisScores:
        """Sum the weights of the matching rules per label and normalise them."""
        compiled = self._compiled
        return compiled.score(0, compiled.scan(text))

    def scores_of(self, hits: Sequence[Hit]) -> AxisScores:
        """The prior plus the weights of ``hits`` (matched rules in file order), and their probabilities."""
        scores = {label: self.prior.get(label, 0.0) for label in self.axis.labels}
        for hit in hits:
            scores[hit.label] += hit.weight
        return AxisScores(scores=scores, hits=tuple(hits), probabilities=softmax(scores, self.temperature))

    @cached_property
    def _compiled(self) -> _Compiled:
        return _Compiled([self])


def softmax(scores: Mapping[str, float], temperature: float) -> dict[str, float]:
    """Probabilities proportional to exp(score / temperature)."""
    top = max(scores.values())
    exps = {label: math.exp((value - top) / temperature) for label, value in scores.items()}
    total = sum(exps.values())
    return {label: value / total for label, value in exps.items()}


@dataclass(frozen=True)
class RuleSet:
    """All rules of the file, with the taxonomy they refer to."""

    version: str
    taxonomy: Taxonomy
    axes: Mapping[str, AxisRules]
    # Flag an axis' decision for review when its margin is under the axis' value here (keys: REVIEW_AXES);
    # None: each axis' confidence threshold flags.
    review_margins: Mapping[str, float] | None = None

    def score(self, text: AnalyzedText) -> dict[str, AxisScores]:
        """Rule scores of every axis."""
        compiled = self._compiled
        scan = compiled.scan(text)  # once for all axes
        return {key: compiled.score(i, scan) for i, key in enumerate(self.axes)}

    @cached_property
    def _compiled(self) -> _Compiled:
        return _Compiled(list(self.axes.values()))


# Compiled rules ----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Scan:
    """A message as compiled rules read it: where each word element occurs (by element id; absent elements are
    missing) and whether literal prefilters of regular expressions apply to its text."""

    text: AnalyzedText
    positions: dict[int, Sequence[int]]
    literals: bool  # see prefilter.literals_apply
    possible: list[bool]  # per regular expression: whether it may match (its literal prefilter passed)
    candidates: list[set[int]]  # per axis: the rules worth trying


class _LemmaCheck:
    """A lemma pattern by element ids."""

    __slots__ = ("first", "pattern", "rest")

    def __init__(self, pattern: LemmaPattern, ids: Sequence[int]) -> None:
        self.pattern = pattern
        self.first = ids[0]
        self.rest = tuple(ids[1:])

    def match(self, scan: _Scan) -> str | None:
        positions = scan.positions
        first = positions.get(self.first)
        if first is None:
            return None
        rest = []
        for element in self.rest:
            found = positions.get(element)
            if found is None:  # a word of the pattern is missing altogether
                return None
            rest.append(found)
        return self.pattern.match_positions(scan.text.tokens, first, rest)


class _RegexCheck:
    """A regular expression, numbered among the compiled ones."""

    __slots__ = ("number", "pattern")

    def __init__(self, pattern: RegexPattern, number: int) -> None:
        self.pattern = pattern
        self.number = number

    def match(self, scan: _Scan) -> str | None:
        return self.pattern.search(scan.text.text, scan.literals) if scan.possible[self.number] else None


_Check = _LemmaCheck | _RegexCheck


class _CompiledRule:
    """:meth:`Rule.match` over a scan."""

    __slots__ = ("all_of", "any_of", "rule")

    def __init__(self, rule: Rule, any_of: tuple[_Check, ...], all_of: tuple[_Check, ...]) -> None:
        self.rule = rule
        self.any_of = any_of
        self.all_of = all_of

    def match(self, scan: _Scan) -> str | None:
        shown: list[str] = []
        if self.any_of:
            for check in self.any_of:
                found = check.match(scan)
                if found is not None:
                    shown.append(found)
                    break
            else:
                return None
        for check in self.all_of:
            found = check.match(scan)
            if found is None:
                return None
            shown.append(found)
        return self.rule.name or " … ".join(shown)


class _Compiled:
    """The rules of some axes turned around for speed, with the same results as :meth:`Rule.match` one by one.

    Rather than every pattern searching the message's index, the message's own words and lemmas (a few dozen)
    are looked up among the patterns' elements, once for all axes; a rule is tried only when a pattern it cannot
    fire without may match: the pattern's first word occurs, or the literals its regular expression needs do.
    """

    def __init__(self, axes: Sequence[AxisRules]) -> None:
        self.axes = tuple(axes)
        self._ids: dict[_Element, int] = {}
        by_key: dict[str, list[int]] = {}
        by_prefix: dict[int, dict[str, list[int]]] = {}
        self.regexes: list[RegexPattern] = []
        opened_by: dict[int, list[tuple[int, int]]] = {}  # element id -> rules it may open
        self.opened_by_regex: list[tuple[int, int, int]] = []  # (regex, axis, rule)
        self.rules: list[tuple[_CompiledRule, ...]] = []
        for axis_no, axis in enumerate(self.axes):
            compiled: list[_CompiledRule] = []
            for rule_no, rule in enumerate(axis.rules):
                any_of = tuple(self._check(pattern, by_key, by_prefix) for pattern in rule.any_of)
                all_of = tuple(self._check(pattern, by_key, by_prefix) for pattern in rule.all_of)
                compiled.append(_CompiledRule(rule, any_of, all_of))
                # The rule cannot fire unless one of these matches.
                for check in any_of or all_of[:1]:
                    if isinstance(check, _LemmaCheck):
                        opened_by.setdefault(check.first, []).append((axis_no, rule_no))
                    else:
                        self.opened_by_regex.append((check.number, axis_no, rule_no))
            self.rules.append(tuple(compiled))
        self.by_key = {key: tuple(ids) for key, ids in by_key.items()}
        self.by_prefix = tuple(
            (length, {prefix: tuple(ids) for prefix, ids in table.items()}) for length, table in by_prefix.items()
        )
        self.opened_by = {element: tuple(rules) for element, rules in opened_by.items()}

    def _check(
        self, pattern: Pattern, by_key: dict[str, list[int]], by_prefix: dict[int, dict[str, list[int]]]
    ) -> _Check:
        if isinstance(pattern, RegexPattern):
            self.regexes.append(pattern)
            return _RegexCheck(pattern, len(self.regexes) - 1)
        ids = []
        for element in pattern.elements:
            element_id = self._ids.get(element)
            if element_id is None:
                element_id = self._ids[element] = len(self._ids)
                for key in element.keys:
                    by_key.setdefault(key, []).append(element_id)
                for prefix in element.prefixes:
                    by_prefix.setdefault(len(prefix), {}).setdefault(prefix, []).append(element_id)
            ids.append(element_id)
        return _LemmaCheck(pattern, ids)

    def scan(self, text: AnalyzedText) -> _Scan:
        """Where each element occurs (what :meth:`_Element.positions` gives, for every element at once), which
        regular expressions may match, and so which rules are worth trying."""
        found: dict[int, list[tuple[int, ...]]] = {}
        by_key = self.by_key
        by_prefix = self.by_prefix
        for key, where in text.index.items():
            ids = by_key.get(key, ())
            if by_prefix:
                ids = ids + tuple(chain.from_iterable(table.get(key[:length], ()) for length, table in by_prefix))
            for element in ids:
                lists = found.get(element)
                if lists is None:
                    found[element] = [where]
                else:
                    lists.append(where)
        positions: dict[int, Sequence[int]] = {
            element: lists[0] if len(lists) == 1 else sorted(set(chain.from_iterable(lists)))
            for element, lists in found.items()
        }
        string = text.text
        literals = literals_apply(string)
        if literals:
            possible = [regex.may_match(string) for regex in self.regexes]
        else:
            possible = [True] * len(self.regexes)
        candidates: list[set[int]] = [set() for _ in self.axes]
        opened_by = self.opened_by
        for element in positions:
            for axis_no, rule_no in opened_by.get(element, ()):
                candidates[axis_no].add(rule_no)
        for regex_no, axis_no, rule_no in self.opened_by_regex:
            if possible[regex_no]:
                candidates[axis_no].add(rule_no)
        return _Scan(text, positions, literals, possible, candidates)

    def score(self, axis_no: int, scan: _Scan) -> AxisScores:
        """:meth:`AxisRules.score` of the axis ``axis_no`` for a scanned message."""
        rules = self.rules[axis_no]
        hits = []
        for rule_no in sorted(scan.candidates[axis_no]):
            compiled = rules[rule_no]
            shown = compiled.match(scan)
            if shown is not None:
                hits.append(Hit(compiled.rule.label, compiled.rule.weight, shown))
        return self.axes[axis_no].scores_of(hits)


def _number(raw: object, where: str, default: float) -> float:
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise RulesError(f"{where}: ожидалось число, получено {raw!r}")
    return float(raw)


def _patterns(raw: object, gap: int, where: str) -> tuple[Pattern, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raw = [raw]
    return tuple(_compile_pattern(item, gap, where) for item in raw)


def _parse_axis(axis: Axis, raw: Mapping[str, Any], where: str) -> AxisRules:
    prior_raw = raw.get("prior") or {}
    if not isinstance(prior_raw, dict):
        raise RulesError(f"{where}.prior: ожидался словарь метка: число")
    prior = {}
    for label, value in prior_raw.items():
        if label not in axis.labels:
            raise RulesError(f"{where}.prior: неизвестная метка {label!r}")
        prior[str(label)] = _number(value, f"{where}.prior.{label}", 0.0)
    rules = []
    raw_rules = raw.get("rules") or []
    if not isinstance(raw_rules, list):
        raise RulesError(f"{where}.rules: ожидался список правил")
    for i, item in enumerate(raw_rules):
        at = f"{where}.rules[{i}]"
        if not isinstance(item, dict):
            raise RulesError(f"{at}: правило должно быть словарём")
        unknown = set(item) - {"name", "label", "weight", "any", "all", "gap"}
        if unknown:
            raise RulesError(f"{at}: неизвестные ключи {sorted(unknown)}")
        label = item.get("label")
        if label not in axis.labels:
            raise RulesError(f"{at}: неизвестная метка {label!r} оси {axis.key}")
        gap = int(_number(item.get("gap"), f"{at}.gap", DEFAULT_GAP))
        any_of = _patterns(item.get("any"), gap, at)
        all_of = _patterns(item.get("all"), gap, at)
        if not any_of and not all_of:
            raise RulesError(f"{at}: нет шаблонов any или all")
        name = item.get("name")
        rules.append(
            Rule(
                name=str(name) if name else None,
                label=str(label),
                weight=_number(item.get("weight"), f"{at}.weight", 1.0),
                any_of=any_of,
                all_of=all_of,
            )
        )
    temperature = _number(raw.get("temperature"), f"{where}.temperature", 1.0)
    if temperature <= 0:
        raise RulesError(f"{where}.temperature: должно быть больше нуля")
    default_for_types = raw.get("default_for_types") or []
    if not isinstance(default_for_types, list) or not all(isinstance(item, str) for item in default_for_types):
        raise RulesError(f"{where}.default_for_types: ожидался список типов")
    needs_rule = raw.get("needs_rule") or []
    if not isinstance(needs_rule, list) or any(item not in axis.labels for item in needs_rule):
        raise RulesError(f"{where}.needs_rule: ожидался список меток оси {axis.key}")
    return AxisRules(
        axis=axis,
        rules=tuple(rules),
        prior=prior,
        temperature=temperature,
        threshold=_number(raw.get("threshold"), f"{where}.threshold", 0.5),
        model_weight=_number(raw.get("model_weight"), f"{where}.model_weight", 1.0),
        default_for_types=frozenset(default_for_types),
        needs_rule=frozenset(needs_rule),
    )


def load_rules(path: Path | None = None, taxonomy: Taxonomy | None = None) -> RuleSet:
    """Read and compile a rules file (the packaged one by default) against the taxonomy."""
    path = path or DEFAULT_RULES_PATH
    taxonomy = taxonomy or load_taxonomy()
    data = _read_yaml(path)
    version = data.get("version")
    if version is None or str(version).strip() == "":
        raise RulesError(f"{path}: нет поля version")
    raw_axes = data.get("axes")
    if not isinstance(raw_axes, dict):
        raise RulesError(f"{path}: нет раздела axes")
    axes = {}
    for key in AXES:
        raw = raw_axes.get(key) or {}
        if not isinstance(raw, dict):
            raise RulesError(f"{path}: axes.{key} должен быть словарём")
        axes[key] = _parse_axis(taxonomy[key], raw, f"{path.name}: axes.{key}")
        unknown_types = axes[key].default_for_types - set(taxonomy["type"].labels)
        if unknown_types:
            raise RulesError(f"{path.name}: axes.{key}.default_for_types: неизвестные типы {sorted(unknown_types)}")
    unknown = set(raw_axes) - set(AXES)
    if unknown:
        raise RulesError(f"{path}: неизвестные оси {sorted(unknown)}")
    return RuleSet(
        version=str(version).strip(), taxonomy=taxonomy, axes=axes, review_margins=_review_margins(data, path)
    )


# The decisions flagged for review one by one (issue 13 point 3: "the unflagged decisions"): the type (which law,
# which clock) and the topic (which desk). Urgency has rules of its own and is not flagged.
REVIEW_AXES = ("type", "topic")


def _review_margins(data: Mapping[str, Any], path: Path) -> dict[str, float] | None:
    raw = data.get("review_margins")
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) != set(REVIEW_AXES):
        raise RulesError(f"{path.name}: review_margins должен задать числа для осей {', '.join(REVIEW_AXES)}")
    margins = {axis: _number(raw[axis], f"{path.name}: review_margins.{axis}", 0.0) for axis in REVIEW_AXES}
    if any(not 0.0 <= value <= 1.0 for value in margins.values()):
        raise RulesError(f"{path.name}: review_margins: значения от 0 до 1")
    return margins
