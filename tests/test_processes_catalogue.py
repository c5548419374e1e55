"""The catalogue of typical processes: extracted from seed 003 by the committed script, checked against the seed."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from mailservice.processes import extract_catalogue
from mailservice.processes.catalogue import CATALOGUE_FILE, load_catalogue, normalise
from tests.shared import SEEDS

SEED = extract_catalogue.default_seed() or next(iter(sorted(SEEDS.glob("003_*.txt"))), None)
# Read in the seed's annex 1 by hand: groups 1-6 hold 10, 7, 10, 7, 2 and 26 processes (group 4 prints its sixth
# process as a second "4.4").
EXPECTED_COUNTS = {1: 10, 2: 7, 3: 10, 4: 7, 5: 2, 6: 26}


def seed_text() -> str:
    if SEED is None:
        pytest.skip("seed 003 is not next to the repository (../shared/seeds/003_*.txt)")
    return SEED.read_text(encoding="utf-8")


def flat(text: str) -> str:
    """Seed text without tags and layout whitespace, for substring checks."""
    return re.sub(r"\s+", " ", re.sub(r"</?p>", " ", text))


def test_script_reproduces_the_committed_json(tmp_path: Path) -> None:
    text = seed_text()
    output = tmp_path / "catalogue.json"
    assert extract_catalogue.main([str(SEED), "--output", str(output)]) == 0
    assert output.read_bytes() == CATALOGUE_FILE.read_bytes()
    assert (
        json.loads(output.read_text(encoding="utf-8"))["source_sha256"]
        == extract_catalogue.extract(text)["source_sha256"]
    )


def test_groups_and_counts_agree_with_the_seed() -> None:
    annex = extract_catalogue.annex_text(seed_text())
    # Independent of the script: count the numbered process names per leading digit in the raw annex.
    printed = Counter(int(m.group(1)) for m in re.finditer(r"(?<![\d.])([1-9])\.\d{1,2}\.(?=\s)", annex))
    catalogue = load_catalogue()
    counts = {g.number: len(g.processes) for g in catalogue.groups}
    assert counts == dict(printed) == EXPECTED_COUNTS
    assert annex.count("Цель:") == annex.count("Ценность:") == sum(EXPECTED_COUNTS.values())
    names = [g.name for g in catalogue.groups]
    assert names[0] == "Предоставление государственных услуг"
    assert names[-1] == "Организация отношений с внутренним клиентом"
    for name in names:
        assert name in annex


def test_every_text_comes_from_the_seed() -> None:
    annex = normalise(flat(extract_catalogue.annex_text(seed_text())))
    for process in load_catalogue().processes:
        for text in (process.name, process.goal, process.value):
            assert normalise(text) in annex, (process.id, text)


def test_ids_are_positions_and_the_misprint_is_noted() -> None:
    catalogue = load_catalogue()
    for group in catalogue.groups:
        assert [p.id for p in group.processes] == [f"{group.number}.{i}" for i in range(1, len(group.processes) + 1)]
    personal = catalogue.get("4.6")
    assert personal is not None and personal.name == "Личный прием граждан"
    assert personal.printed_number == "4.4" and "4.4" in personal.note
    assert [p.id for p in catalogue.processes if p.note] == ["4.6"]
    # 6.15's name is split over two paragraphs in the seed; 6.10's goal comes before its name.
    assert catalogue.get("6.15").name.endswith("хозяйственными товарами и т.д.)")  # type: ignore[union-attr]
    assert catalogue.get("6.10").goal.startswith("обеспечение проверки соблюдения")  # type: ignore[union-attr]


def test_loose_name_lookup() -> None:
    catalogue = load_catalogue()
    found = catalogue.find("  4.1. ПРИЁМ и регистрация   обращений и запросов. ")
    assert found is not None and found.id == "4.1"
    assert catalogue.find("Сверка реестра запросов с СЭД") is None


def test_wrong_seed_shape_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "seed.txt"
    broken.write_text("Приложение № 1\n1\t2\t3\t4\n1.\tГруппа\t<p>1.1. Процесс</p>\tЦель: x.\n--\t--\t---\n", "utf-8")
    assert extract_catalogue.main([str(broken), "--output", str(tmp_path / "out.json")]) == 1
    assert not (tmp_path / "out.json").exists()
