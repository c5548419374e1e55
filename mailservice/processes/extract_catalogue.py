"""Extract the catalogue of typical processes from the text of seed 003 and write it as versioned JSON.

Seed 003 is Saratov region government decree No. 1111-P of 01.12.2023; its appendix 2 (the regulation on the
process register) has annex 1, "Перечень типовых процессов": six groups, each process with its goal ("Цель") and
value for the client ("Ценность"). The annex is a table that lost its shape on the way to text: some rows hold
several processes in one cell, the goals of 6.10-6.15 come before their names, 6.15's name is split over two
paragraphs, and the sixth process of group 4 is printed as a second "4.4". We therefore do not parse rows: we read
the annex as one stream of markers (group heading, process number, "Цель:", "Ценность:") in document order and pair
the n-th name of a group with its n-th goal and n-th value. The counts must agree or the script stops.

Usage (from the repository root)::

    python -m mailservice.processes.extract_catalogue [SEED.txt] [--output mailservice/processes/data/catalogue.json]

The default seed is ``../shared/seeds/003_*.txt`` relative to the repository. The JSON is committed; a test re-runs
this script when the seed is present and checks that the committed file is identical.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from mailservice.resources import package_path

DEFAULT_SEED_GLOB = "../shared/seeds/003_*.txt"
DEFAULT_OUTPUT = package_path("processes", "data", "catalogue.json")

# The version of the catalogue data: the act it comes from. A new edition of the act gets a new version.
CATALOGUE_VERSION = "1111-P-2023-12-01"
SOURCE_ACT = (
    "Постановление Правительства Саратовской области от 1 декабря 2023 года № 1111-П, приложение № 2 "
    "(Положение о порядке ведения реестра межведомственных и внутриведомственных процессов), приложение № 1 "
    "(Перечень типовых процессов исполнительных органов Саратовской области)"
)

_ANNEX_START = re.compile(r"^Приложение № 1\s*$", re.MULTILINE)
_TABLE_HEADER = re.compile(r"^1\t2\t3\t4\s*$", re.MULTILINE)
_ANNEX_END = re.compile(r"^--\t--\t---\s*$", re.MULTILINE)
# A group heading starts a table row ("4.\tРассмотрение обращений и запросов\t...") or is a paragraph of its own
# ("<p>3. Государственный контроль (надзор)</p>").
_GROUP_ROW = re.compile(r"^(?P<n>[1-9])\.\t(?P<name>[^\t<]+?)\s*\t", re.MULTILINE)
_GROUP_PARA = re.compile(r"^<p>(?P<n>[1-9])\. (?P<name>[^<]+?)</p>", re.MULTILINE)
_MARKER = re.compile(
    r"@@GROUP (?P<group>\d+)\|(?P<gname>[^@]+)@@"
    r"|(?<![\d.])(?P<num>[1-9]\.\d{1,2})\.(?=\s)"
    r"|(?P<goal>Цель:)"
    r"|(?P<value>Ценность:)"
)


class ExtractionError(ValueError):
    """The seed text does not have the shape this script knows."""


def _clean(text: str) -> str:
    """Collapse whitespace; drop a trailing full stop (some cells have one, most do not)."""
    text = re.sub(r"\s+", " ", text).strip()
    return text.removesuffix(".").strip()


def annex_text(seed: str) -> str:
    """The body of annex 1 (after the table's column-number row, up to the table's end)."""
    start = _ANNEX_START.search(seed)
    if start is None:
        raise ExtractionError("annex 1 («Приложение № 1») not found")
    header = _TABLE_HEADER.search(seed, start.end())
    if header is None:
        raise ExtractionError("the table header row «1 2 3 4» of annex 1 not found")
    end = _ANNEX_END.search(seed, header.end())
    if end is None:
        raise ExtractionError("the end of the annex 1 table not found")
    return seed[header.end() : end.start()]


def _stream(annex: str) -> str:
    """The annex as one line: group headings replaced by markers, tags and layout whitespace gone."""
    annex = _GROUP_ROW.sub(lambda m: f"@@GROUP {m['n']}|{m['name']}@@\t", annex)
    annex = _GROUP_PARA.sub(lambda m: f"@@GROUP {m['n']}|{m['name']}@@", annex)
    annex = re.sub(r"</?p>", " ", annex)
    return re.sub(r"\s+", " ", annex)


def extract(seed: str) -> dict[str, Any]:
    """The catalogue as a JSON-ready dict, from the full text of seed 003."""
    stream = _stream(annex_text(seed))
    groups: list[dict[str, Any]] = []
    names: list[list[str]] = []
    goals: list[list[str]] = []
    values: list[list[str]] = []
    markers = list(_MARKER.finditer(stream))
    for index, marker in enumerate(markers):
        content_end = markers[index + 1].start() if index + 1 < len(markers) else len(stream)
        content = stream[marker.end() : content_end]
        if marker["group"]:
            number = int(marker["group"])
            if number != len(groups) + 1:
                raise ExtractionError(f"group {number} out of order")
            groups.append({"number": number, "name": _clean(marker["gname"]), "processes": []})
            names.append([])
            goals.append([])
            values.append([])
        elif not groups:
            raise ExtractionError("text before the first group heading")
        elif marker["num"]:
            names[-1].append(f"{marker['num']}\t{_clean(content)}")
        elif marker["goal"]:
            goals[-1].append(_clean(content))
        else:
            values[-1].append(_clean(content))
    for group, group_names, group_goals, group_values in zip(groups, names, goals, values, strict=True):
        if not len(group_names) == len(group_goals) == len(group_values):
            raise ExtractionError(
                f"group {group['number']}: {len(group_names)} names, {len(group_goals)} goals, "
                f"{len(group_values)} values"
            )
        for position, (numbered, goal, value) in enumerate(
            zip(group_names, group_goals, group_values, strict=True), start=1
        ):
            printed, name = numbered.split("\t", 1)
            process_id = f"{group['number']}.{position}"
            if not printed.startswith(f"{group['number']}."):
                raise ExtractionError(f"process {printed} found in group {group['number']}")
            note = "" if printed == process_id else f"в тексте акта ошибочно пронумерован {printed}"
            group["processes"].append(
                {"id": process_id, "printed_number": printed, "name": name, "goal": goal, "value": value, "note": note}
            )
    if not groups:
        raise ExtractionError("no groups found")
    return {
        "version": CATALOGUE_VERSION,
        "source": SOURCE_ACT,
        "source_sha256": hashlib.sha256(seed.encode("utf-8")).hexdigest(),
        "groups": groups,
    }


def render_json(catalogue: dict[str, Any]) -> str:
    """The committed form: UTF-8 JSON, two-space indent, a final newline (stable for the identity test)."""
    return json.dumps(catalogue, ensure_ascii=False, indent=2) + "\n"


def default_seed() -> Path | None:
    """The seed file next to the checkout this developer's tool runs from (the current folder), if it is there."""
    found = sorted(Path.cwd().glob(DEFAULT_SEED_GLOB))
    return found[0] if found else None


def main(argv: list[str] | None = None) -> int:
    """Read the seed, write the JSON; exit status 1 with a message when the seed has an unknown shape."""
    parser = argparse.ArgumentParser(description="Извлечь Перечень типовых процессов из текста семени 003.")
    parser.add_argument("seed", nargs="?", type=Path, help="текст постановления (по умолчанию ../shared/seeds/003_*)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="куда записать JSON")
    args = parser.parse_args(argv)
    seed_path: Path | None = args.seed or default_seed()
    if seed_path is None or not seed_path.is_file():
        print(f"Ошибка: текст постановления не найден ({seed_path or DEFAULT_SEED_GLOB})", file=sys.stderr)
        return 1
    try:
        catalogue = extract(seed_path.read_text(encoding="utf-8"))
    except ExtractionError as exc:
        print(f"Ошибка: {exc}", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render_json(catalogue), encoding="utf-8")
    counts = ", ".join(f"{g['number']}: {len(g['processes'])}" for g in catalogue["groups"])
    print(f"Записано {args.output}: групп {len(catalogue['groups'])} (процессов по группам {counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
