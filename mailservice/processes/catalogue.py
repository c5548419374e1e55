"""The catalogue of typical processes (seed 003, appendix 2, annex 1), read from the committed JSON.

The JSON is written by :mod:`mailservice.processes.extract_catalogue` from the text of the act, never by hand.
Register rows take their process names from here "even where the department calls it otherwise" (appendix 2,
section II), so names are matched loosely: case, "ё", spacing, a trailing full stop and a leading catalogue number
("4.1. Прием ...") do not matter.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache

from mailservice.resources import package_path

CATALOGUE_FILE = package_path("processes", "data", "catalogue.json")

# Groups whose processes show live figures from the request register.
APPEALS_GROUP = 4

_LEADING_NUMBER = re.compile(r"^\d+(?:\.\d+)*\.?\s+")


def normalise(text: str) -> str:
    """A key for loose comparison: lower case, ё as е, single spaces, no trailing full stop or asterisk."""
    text = text.replace("ё", "е").replace("Ё", "Е").lower()
    text = re.sub(r"\s+", " ", text).strip()
    return text.rstrip(" .*;").strip()


@dataclass(frozen=True)
class TypicalProcess:
    """One process of the catalogue."""

    id: str  # "4.6": group and position (the act prints this one as a second "4.4"; see ``note``)
    printed_number: str
    name: str
    goal: str
    value: str
    note: str
    group: int


@dataclass(frozen=True)
class Group:
    """A group of the catalogue ("направление деятельности")."""

    number: int
    name: str
    processes: tuple[TypicalProcess, ...]


@dataclass(frozen=True)
class Catalogue:
    """The whole catalogue with its version."""

    version: str
    source: str
    source_sha256: str
    groups: tuple[Group, ...]

    @property
    def processes(self) -> tuple[TypicalProcess, ...]:
        """Every process, in catalogue order."""
        return tuple(p for g in self.groups for p in g.processes)

    def get(self, process_id: str) -> TypicalProcess | None:
        """A process by its catalogue id ("1.10")."""
        return next((p for p in self.processes if p.id == process_id), None)

    def group(self, number: int) -> Group | None:
        """A group by its number."""
        return next((g for g in self.groups if g.number == number), None)

    def find(self, name: str) -> TypicalProcess | None:
        """The process whose name matches ``name`` loosely, or None (a process outside the catalogue)."""
        return _name_index(self).get(normalise(_LEADING_NUMBER.sub("", name.strip())))


@lru_cache(maxsize=8)
def _name_index(catalogue: Catalogue) -> dict[str, TypicalProcess]:
    return {normalise(p.name): p for p in catalogue.processes}


def parse(data: dict[str, object]) -> Catalogue:
    """Build the catalogue from its JSON form."""
    groups = []
    for raw_group in data["groups"]:  # type: ignore[attr-defined]
        number = int(raw_group["number"])
        processes = tuple(
            TypicalProcess(
                id=str(p["id"]),
                printed_number=str(p["printed_number"]),
                name=str(p["name"]),
                goal=str(p["goal"]),
                value=str(p["value"]),
                note=str(p.get("note", "")),
                group=number,
            )
            for p in raw_group["processes"]
        )
        groups.append(Group(number=number, name=str(raw_group["name"]), processes=processes))
    return Catalogue(
        version=str(data["version"]),
        source=str(data["source"]),
        source_sha256=str(data.get("source_sha256", "")),
        groups=tuple(groups),
    )


@lru_cache(maxsize=1)
def load_catalogue() -> Catalogue:
    """The catalogue shipped with the package."""
    return parse(json.loads(CATALOGUE_FILE.read_text(encoding="utf-8")))


def as_json(catalogue: Catalogue) -> dict[str, object]:
    """The catalogue as printed by ``mailservice processes catalogue --json``."""
    return {
        "version": catalogue.version,
        "source": catalogue.source,
        "groups": [
            {
                "number": g.number,
                "name": g.name,
                "processes": [
                    {"id": p.id, "name": p.name, "goal": p.goal, "value": p.value, "note": p.note} for p in g.processes
                ],
            }
            for g in catalogue.groups
        ],
    }
