r"""Cheap tests that let most regular expressions of the rules skip most messages, with identical results.

Rules search the normalised text (lower case, see :func:`mailservice.classify.text.normalize`) with
IGNORECASE. For such a text two things are exact, derived from the parsed expression (``re._parser``):

* literal strings every match must contain ("срочн" for ``\bсрочн\w*``): when none is in the text, the
  expression cannot match, and ``str.__contains__`` is far cheaper than a search with IGNORECASE;
* the same expression without IGNORECASE, when all its letters are lower case: it matches the same and the
  re module searches it faster.

Anything the analysis does not understand gets no prefilter, which is always correct.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# With IGNORECASE a pattern letter matches a text character when their simple lower cases are equal, and also a
# few look-alikes the re module folds together (Cyrillic "в" and "ᲀ", Latin "s" and "ſ", ...). A text that is
# already lower case and holds none of the rarer members of those groups can only match a pattern letter by
# the letter's lower case, so "that literal occurs in the text" is then a necessary condition of a match.

_MAX_EXACT = 64  # alternatives kept while expanding fixed strings ("ма[яй]" -> "мая", "май")
_MAX_GROUP = 24  # more literals in a group than this cost more to check than they save


def _case_groups() -> tuple[dict[str, str], str]:
    """Each character the re module folds together with others -> the group's smallest; and the others."""
    try:
        from re._casefix import _EXTRA_CASES
    except ImportError:  # a future Python without the table: no prefilters rather than wrong ones
        return {}, ""
    groups: dict[int, set[int]] = {}
    for code, others in _EXTRA_CASES.items():
        group = {code, *others}
        for member in list(group):
            group |= groups.get(member, set())
        for member in group:
            groups[member] = group
    canonical = {chr(code): chr(min(group)) for code, group in groups.items()}
    rare = "".join(sorted(char for char, first in canonical.items() if char != first))
    return canonical, rare


_CANONICAL, _RARE = _case_groups()
_RARE_RE = re.compile("[" + re.escape(_RARE) + "]") if _RARE else None
_PREFILTERS = _RARE_RE is not None


def literals_apply(text: str) -> bool:
    """Whether literal prefilters are exact for this text: lower case, no rare look-alike letters."""
    return _PREFILTERS and text == text.lower() and (_RARE_RE is None or not _RARE_RE.search(text))


def holds_needs(text: str, needs: tuple[tuple[str, ...], ...]) -> bool:
    """Whether ``text`` holds one literal of each group of ``needs`` (from :func:`prefilters`): exact only where
    :func:`literals_apply` says so."""
    for group in needs:
        for literal in group:
            if literal in text:
                break
        else:
            return False
    return True


@dataclass(frozen=True)
class _Strings:
    """What any match of a piece of a pattern is known to be: one of ``exact`` (when known and few), and a
    string containing one string of each group of ``needs``."""

    exact: frozenset[str] | None
    needs: tuple[frozenset[str], ...] = ()


_ANY = _Strings(None)
_EMPTY = _Strings(frozenset({""}))


def _folded(code: int) -> str | None:
    """The only text character a pattern character matches with IGNORECASE where literals apply; None when
    the analysis does not know."""
    lower = chr(code).lower()
    return _CANONICAL.get(lower, lower) if len(lower) == 1 else None


def _as_need(exact: frozenset[str] | None) -> tuple[frozenset[str], ...]:
    return (exact,) if exact is not None and "" not in exact else ()


def _best_need(strings: _Strings) -> frozenset[str] | None:
    """The most selective group: its shortest literal the longest."""
    candidates = [*strings.needs, *_as_need(strings.exact)]
    candidates = [group for group in candidates if "" not in group]
    return max(candidates, key=lambda group: (min(map(len, group)), -len(group)), default=None)


def _strings(items: Any) -> _Strings:
    """Analyse a parsed (sub)pattern, a sequence of (opcode, argument) pairs from ``re._parser``."""
    from re import _constants as c  # type: ignore[attr-defined]

    needs: list[frozenset[str]] = []
    run = frozenset({""})  # the strings the stretch since the last unknown piece can be
    whole = True  # whether ``run`` describes everything so far
    for op, av in items:
        if op is c.LITERAL:
            char = _folded(av)
            part = _Strings(frozenset({char})) if char is not None else _ANY
        elif op is c.IN:
            chars = {_folded(code) for kind, code in av if kind is c.LITERAL}
            simple = all(kind is c.LITERAL for kind, _ in av) and None not in chars and len(av) <= 10
            part = _Strings(frozenset(str(char) for char in chars)) if simple else _ANY
        elif op in (c.AT, c.ASSERT, c.ASSERT_NOT):
            part = _EMPTY  # consumes nothing: what precedes and follows it are adjacent in the match
        elif op is c.SUBPATTERN:
            _group, add_flags, del_flags, sub = av
            part = _strings(sub) if not add_flags and not del_flags else _ANY
        elif op is c.ATOMIC_GROUP:
            part = _strings(av)
        elif op is c.BRANCH:
            branches = [_strings(sub) for sub in av[1]]
            exacts = [branch.exact for branch in branches if branch.exact is not None]
            exact = None
            if len(exacts) == len(branches) and sum(map(len, exacts)) <= _MAX_EXACT:
                exact = frozenset[str]().union(*exacts)
            # A match is one branch's match: it contains one string of some branch's group.
            bests = [best for branch in branches if (best := _best_need(branch)) is not None]
            need = frozenset[str]().union(*bests) if len(bests) == len(branches) else None
            part = _Strings(exact, (need,) if need else ())
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            low, high, sub = av
            body = _strings(sub)
            if low == 0:
                part = _Strings(body.exact | {""}) if high == 1 and body.exact is not None else _ANY
            elif low == high == 1:
                part = body
            else:  # at least one repetition: whatever one needs, the match needs
                part = _Strings(None, body.needs + _as_need(body.exact))
        else:  # any character, a class, a back reference...: unknown text
            part = _ANY
        needs.extend(part.needs)
        if part.exact is not None and len(run) * len(part.exact) <= _MAX_EXACT:
            run = frozenset(a + b for a in run for b in part.exact)
            continue
        # The stretch ends here: the match contains one of its strings somewhere.
        needs.extend(_as_need(run))
        run = part.exact if part.exact is not None else frozenset({""})
        whole = False
    if whole:
        return _Strings(run, tuple(needs))
    return _Strings(None, (*needs, *_as_need(run)))


def _same_set(chars: Iterable[int]) -> bool:
    """Whether a class of these characters matches the same texts with and without IGNORECASE, on texts that
    literals apply to (there IGNORECASE matches a text character when it is the canonical lower case of one of
    them)."""
    members = [chr(code) for code in chars]
    if any(ord(char) > 0xFFFF for char in members):  # classes beyond the BMP fold by other rules
        return False
    folded = {_folded(ord(char)) for char in members}
    plain = {char for char in members if char.lower() == char and char not in _RARE}
    return folded == plain


def _case_blind(items: Any) -> bool:
    """Whether a parsed pattern matches the same with and without IGNORECASE on texts literals apply to."""
    from re import _constants as c  # type: ignore[attr-defined]

    for op, av in items:
        if op in (c.LITERAL, c.NOT_LITERAL):
            if not _same_set([av]):
                return False
        elif op is c.IN:
            for kind, value in av:
                if kind is c.LITERAL:
                    if not _same_set([value]):
                        return False
                elif kind is c.RANGE:
                    low, high = value
                    if high - low > 4096 or not _same_set(range(low, high + 1)):
                        return False
                elif kind not in (c.NEGATE, c.CATEGORY):
                    return False
        elif op is c.BRANCH:
            if not all(_case_blind(sub) for sub in av[1]):
                return False
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            if not _case_blind(av[2]):
                return False
        elif op is c.SUBPATTERN:
            if av[1] or av[2] or not _case_blind(av[3]):
                return False
        elif op in (c.ASSERT, c.ASSERT_NOT):
            if not _case_blind(av[1]):
                return False
        elif op is c.ATOMIC_GROUP:
            if not _case_blind(av):
                return False
        elif op not in (c.ANY, c.AT):
            return False
    return True


def prefilters(regex: re.Pattern[str]) -> tuple[tuple[tuple[str, ...], ...], re.Pattern[str] | None]:
    """Literal groups that any match of ``regex`` contains (() when unknown), and its case-sensitive twin when
    there is one: the ``needs`` and ``case_sensitive`` of :class:`~mailservice.classify.rules.RegexPattern`."""
    if not _PREFILTERS or regex.flags & (re.ASCII | re.LOCALE) or not regex.flags & re.IGNORECASE:
        return (), None
    try:
        from re import _parser  # type: ignore[attr-defined]

        parsed = _parser.parse(regex.pattern, regex.flags)
        strings = _strings(parsed)
        twin = re.compile(regex.pattern, regex.flags & ~re.IGNORECASE) if _case_blind(parsed) else None
    except Exception:  # an internal module that may change: no prefilter is always correct
        return (), None
    groups = {group for group in (*strings.needs, *_as_need(strings.exact)) if "" not in group}
    useful = sorted(
        (group for group in groups if len(group) <= _MAX_GROUP),
        key=lambda group: (-min(map(len, group)), len(group), sorted(group)),
    )
    needs = tuple(tuple(sorted(group, key=lambda literal: (-len(literal), literal))) for group in useful[:3])
    return needs, twin
