"""`mailservice backup` and `restore`: a round trip on SQLite and PostgreSQL brings back the data, the registration
numbers (and the counter that continues them), the raw messages and the attachments; bad targets and damaged copies
are refused before anything is touched."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select

from mailservice import db
from mailservice.blobs import BlobStore
from mailservice.cli import main
from mailservice.config import Settings
from mailservice.inforequests.models import Attachment, Request
from mailservice.intake.models import IntakeEntry
from mailservice.intake.pipeline import Source, process_raw
from tests.conftest import PG_URL, make_env, reset_caches
from tests.mailfactory import citizen_mail

SCAN = b"%PDF-1.4 scanned request \x00\xff" * 200


def letter_with_attachment() -> bytes:
    message = EmailMessage()
    message["From"] = "Сидоров Пётр <sidorov@example.ru>"
    message["To"] = "info@dizo.test"
    message["Subject"] = "Запрос о договоре аренды"
    message.set_content("Прошу предоставить копию договора аренды участка; скан заявления во вложении.")
    message.add_attachment(SCAN, maintype="application", subtype="pdf", filename="заявление.pdf")
    return message.as_bytes()


def snapshot(settings: Settings) -> dict[str, object]:
    """What must come back: numbers, clients, raw messages and attachment bytes (read from the blob store)."""
    store = BlobStore(settings.blob_dir)
    with db.session_scope(settings) as session:
        requests = session.scalars(select(Request).order_by(Request.id)).all()
        entries = session.scalars(select(IntakeEntry).order_by(IntakeEntry.id)).all()
        attachments = session.scalars(select(Attachment).order_by(Attachment.id)).all()
        return {
            "numbers": [r.number for r in requests],
            "clients": [r.client.display_name for r in requests],
            "due": [r.due_date for r in requests],
            "raw": [store.get(e.raw_sha256) for e in entries],
            "attachments": [(a.filename, store.get(a.sha256)) for a in attachments],
        }


def test_round_trip(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = settings
    for raw in (citizen_mail(name="Петрова Анна Сергеевна", sender="petrova@example.ru"), letter_with_attachment()):
        assert process_raw(source, raw, Source("file")).outcome == "new_request"
    before = snapshot(source)
    numbers = before["numbers"]
    assert isinstance(numbers, list) and [n[5:] for n in numbers] == ["000001", "000002"]
    assert len(before["attachments"]) == 1 and before["attachments"][0][1] == SCAN  # type: ignore[index]

    out = tmp_path / "backup"
    assert main(["backup", "--output", str(out)]) == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    backend = "sqlite" if source.effective_database_url.startswith("sqlite") else "postgresql"
    assert manifest["backend"] == backend
    assert len(manifest["blobs"]) == 3  # two raw messages and the attachment
    assert main(["restore", "--check", str(out)]) == 0

    restored = make_env(monkeypatch, tmp_path / "restored", _target_url(source, tmp_path, monkeypatch))
    assert main(["restore", str(out)]) == 0, capsys.readouterr().err
    assert snapshot(restored) == before

    # The numbers go on from where they were: the counter came back too.
    assert process_raw(restored, citizen_mail(sender="new@example.ru", subject="Новый запрос"), Source("file"))
    after = snapshot(restored)["numbers"]
    assert isinstance(after, list) and [n[5:] for n in after] == ["000001", "000002", "000003"]

    # A target that holds data is refused unless --force, and nothing in it changes.
    capsys.readouterr()
    assert main(["restore", str(out)]) == 1
    assert "--force" in capsys.readouterr().err
    assert len(snapshot(restored)["numbers"]) == 3  # type: ignore[arg-type]
    assert main(["restore", "--force", str(out)]) == 0
    assert snapshot(restored) == before


_targets: dict[str, str] = {}


def _target_url(source: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    if source.effective_database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'restored' / 'mailservice.sqlite3'}"
    name = f"mailservice_restore_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    _targets[str(tmp_path)] = name
    return PG_URL.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(autouse=True)
def _drop_target_databases(tmp_path: Path) -> Iterator[None]:
    yield
    name = _targets.pop(str(tmp_path), None)
    if name:
        db.dispose_engines()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_damaged_copy_is_refused_before_anything_changes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    process_raw(settings, letter_with_attachment(), Source("file"))
    out = tmp_path / "backup"
    assert main(["backup", "--output", str(out)]) == 0
    blob = next(p for p in (out / "blobs").rglob("*") if p.is_file())
    blob.write_bytes(blob.read_bytes() + b"x")
    capsys.readouterr()
    assert main(["restore", "--check", str(out)]) == 1
    assert "повреждён" in capsys.readouterr().err
    restored = make_env(monkeypatch, tmp_path / "restored", _target_url(settings, tmp_path, monkeypatch))
    assert main(["restore", str(out)]) == 1
    assert not restored.blob_dir.exists()


def test_backup_refuses_a_non_empty_folder(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("важное", encoding="utf-8")
    assert main(["backup", "--output", str(out)]) == 1
    assert "не пуста" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@pytest.mark.postgres
def test_without_pg_dump_backup_says_so(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_env(monkeypatch, tmp_path, request.getfixturevalue("_pg_database"))
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert main(["backup", "--output", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert "pg_dump" in err and "postgresql-client" in err
    assert not (tmp_path / "b" / "manifest.json").exists()
    reset_caches()
