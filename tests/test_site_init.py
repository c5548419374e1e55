"""The live site folder: made from the packaged skeleton on first use or by `site init`, never overwriting edits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailservice.cli import main
from mailservice.resources import package_path
from tests.conftest import make_env, reset_caches


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    make_env(monkeypatch, tmp_path, "")
    monkeypatch.delenv("MAILSERVICE_DATABASE_URL")
    reset_caches()
    yield tmp_path / "data"
    reset_caches()


def test_init_copies_the_skeleton_and_never_overwrites(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = env / "site"
    assert main(["site", "init"]) == 0
    skeleton = package_path("site")
    copied = {p.relative_to(site) for p in site.rglob("*") if p.is_file()}
    shipped = {p.relative_to(skeleton) for p in skeleton.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert copied == shipped
    edited = site / "docs" / "index.md"
    edited.write_text("# Правка сотрудника\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["site", "init"]) == 0
    assert "ничего не изменено" in capsys.readouterr().out
    assert edited.read_text(encoding="utf-8") == "# Правка сотрудника\n"
    assert (skeleton / "docs" / "index.md").read_text(encoding="utf-8") != "# Правка сотрудника\n"


def test_first_use_creates_the_configured_folder(env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    elsewhere = tmp_path / "department-site"
    monkeypatch.setenv("MAILSERVICE_SITE_DIR", str(elsewhere))
    reset_caches()
    assert main(["site", "check", "--today", "2026-11-25"]) == 1  # the skeleton's ЗАПОЛНИТЬ fields are reported
    assert (elsewhere / "mkdocs.yml").is_file() and not (env / "site").exists()


def test_init_refuses_a_foreign_folder(env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("чужой файл", encoding="utf-8")
    assert main(["site", "init", "--site", str(foreign)]) == 1
    assert "не пуста" in capsys.readouterr().err
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
