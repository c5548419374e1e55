"""The README and docs/ serve someone who has only the repository: no references to material they do not have."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
RULES = (REPO / "docs" / "legal-rules.md").read_text(encoding="utf-8")


def test_readme_names_the_acts_not_internal_files() -> None:
    for text in (README, RULES):
        found = re.findall(r".{0,30}(?:\bseeds?\b|\bRULES\.md|\bissues?\b).{0,30}", text)
        assert not found, found
    assert (
        "Порядок взаимодействия с клиентом при обеспечении доступа к информации о деятельности департамента" in README
    )
    assert "docs/legal-rules.md" in README
    for act in ("8-ФЗ", "59-ФЗ", "152-ФЗ", "1111-П", "1155-р", "2816-р"):
        assert act in RULES, act


def test_readme_starts_with_make_run_and_make_test() -> None:
    first_block = README.split("```", 2)[1]
    assert first_block.split()[:4] == ["sh", "make", "run", "#"]
    assert "make test" in first_block
    assert "## Running in production" in README
    for topic in (
        "docker compose",
        "TRUSTED_PROXIES",
        "mailservice backup",
        "mailservice restore",
        "db upgrade",
        "logs",
    ):
        assert topic in README.split("## Running in production")[1].split("\n## ")[0], topic


def test_make_run_says_how_to_call_the_cli() -> None:
    plan = subprocess.run(["make", "-n", "run"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    echo = next(line for line in plan.splitlines() if "Командная строка" in line)
    assert ".venv/bin/mailservice --help" in echo and "source .venv/bin/activate" in echo
    assert plan.index("Командная строка") < plan.index("mailservice run")
