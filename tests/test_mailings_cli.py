"""`mailservice subscribers ...` and `mailservice campaign ...` as staff run them: real subprocesses."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.mailings import consent
from tests.cli_support import cli_env, dies_with_test
from tests.servers import Sink

ROOT = Path(__file__).resolve().parents[1]
GOOD_TEMPLATE = "Здравствуйте!\n\nНовые документы.\n\nОтписаться: {{ unsubscribe_url }}\n"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        dies_with_test([sys.executable, "-m", "mailservice", *args]),
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=ROOT,
        timeout=180,
    )


def errors(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip() and " INFO " not in line]


def version(settings: Settings) -> str:
    with session_scope(settings) as session:
        return consent.current_consent(session, settings).version


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=["email", "name", "list", "consent_at", "consent_source", "consent_text_version"]
        )
        writer.writeheader()
        writer.writerows(rows)
    return path


def row(address: str, version: str, **overrides: str) -> dict[str, str]:
    values = {
        "email": address,
        "name": "",
        "list": "news",
        "consent_at": "2026-03-01T10:00:00",
        "consent_source": "https://dizo.test/subscribe",
        "consent_text_version": version,
    }
    values.update(overrides)
    return values


def test_import_refuses_rows_without_evidence_with_line_numbers(lite_settings: Settings, tmp_path: Path) -> None:
    current = version(lite_settings)
    path = write_csv(
        tmp_path / "subs.csv",
        [
            row("ok@example.org", current),
            row("no-date@example.org", current, consent_at=""),
            row("no-source@example.org", current, consent_source=""),
            row("no-version@example.org", ""),
            row("broken", current),
            row("other-text@example.org", "v-2019"),
        ],
    )
    refused = run("subscribers", "import", str(path))
    assert refused.returncode == 1
    lines = errors(refused)
    assert [line.split(":")[0] for line in lines[:5]] == ["строка 3", "строка 4", "строка 5", "строка 6", "строка 7"]
    assert "consent_at" in lines[0] and "consent_source" in lines[1] and "некорректный адрес" in lines[3]
    assert "ничего не загружено" in lines[-1]
    assert "ok@example.org" not in run("subscribers", "export").stdout
    # An older consent text can be registered with its version; invalid rows can be skipped.
    old_text = tmp_path / "consent-2019.txt"
    old_text.write_text("Согласен получать рассылку департамента (редакция 2019 года).", encoding="utf-8")
    partial = run("subscribers", "import", str(path), "--consent-text", f"v-2019={old_text}", "--skip-invalid")
    assert partial.returncode == 1 and "Добавлено: 2" in partial.stdout
    exported = list(csv.DictReader(io.StringIO(run("subscribers", "export").stdout)))
    assert sorted(r["email"] for r in exported) == ["ok@example.org", "other-text@example.org"]
    assert {r["consent_text_version"] for r in exported} == {current, "v-2019"}
    assert all(r["status"] == "active" and r["consent_source"] == "https://dizo.test/subscribe" for r in exported)
    again = run("subscribers", "import", str(path), "--skip-invalid")
    assert "уже были: 2" in again.stdout


def test_campaign_commands(lite_settings: Settings, sink: Sink, tmp_path: Path) -> None:
    current = version(lite_settings)
    assert (
        run(
            "subscribers",
            "import",
            str(write_csv(tmp_path / "s.csv", [row("a@example.org", current), row("b@example.org", current)])),
        ).returncode
        == 0
    )
    bad = tmp_path / "bad.txt"
    bad.write_text("Здравствуйте! Ссылки для отписки нет.", encoding="utf-8")
    refused = run("campaign", "create", "--list", "news", "--subject", "Новости", "--template", str(bad))
    assert refused.returncode == 1 and "unsubscribe_url" in errors(refused)[0] and "Traceback" not in refused.stderr
    injected = run("campaign", "create", "--list", "news", "--subject", "Новости\nBcc: x@y.z", "--template", str(bad))
    assert injected.returncode == 1
    good = tmp_path / "good.txt"
    good.write_text(GOOD_TEMPLATE, encoding="utf-8")
    created = run("campaign", "create", "--list", "news", "--subject", "Новости департамента", "--template", str(good))
    assert created.returncode == 0, created.stderr
    campaign_id = created.stdout.strip()
    assert campaign_id.isdigit()

    preview = run("campaign", "preview", campaign_id, "--html-out", str(tmp_path / "p.html"))
    assert preview.returncode == 0 and "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in preview.stdout
    assert "Новые документы." in preview.stdout and "/unsubscribe/" in (tmp_path / "p.html").read_text(encoding="utf-8")
    assert not sink.messages()

    test = run("campaign", "test-send", campaign_id, "--to", "staff@example.org")
    assert test.returncode == 0, test.stderr
    assert [r for _f, r, _raw in sink.messages()] == [["staff@example.org"]]
    import email
    import email.policy

    assert str(email.message_from_bytes(sink.messages()[0][2], policy=email.policy.default)["Subject"]).startswith(
        "[Тест] "
    )

    assert run("campaign", "pause", campaign_id).returncode == 1  # a draft cannot be paused
    sent = run("campaign", "send", campaign_id)
    assert sent.returncode == 0, sent.stderr
    assert "отправлено 2" in sent.stdout
    status = json.loads(run("campaign", "status", campaign_id, "--json").stdout)
    assert {
        k: status[k]
        for k in ("status", "total", "sent", "queued", "failed", "skipped_withdrawn", "bounced", "ambiguous")
    } == {
        "status": "done",
        "total": 2,
        "sent": 2,
        "queued": 0,
        "failed": 0,
        "skipped_withdrawn": 0,
        "bounced": 0,
        "ambiguous": 0,
    }
    assert sorted(r[0] for _f, r, _raw in sink.messages()[1:]) == ["a@example.org", "b@example.org"]
    assert run("campaign", "send", campaign_id).returncode == 0  # done already: nothing is sent again
    assert len(sink.messages()) == 3
    missing = run("campaign", "status", "999")
    assert missing.returncode == 1 and len(errors(missing)) == 1


def test_send_no_wait_then_pause_resume(lite_settings: Settings, sink: Sink, tmp_path: Path) -> None:
    current = version(lite_settings)
    run("subscribers", "import", str(write_csv(tmp_path / "s.csv", [row("a@example.org", current)])))
    template = tmp_path / "t.txt"
    template.write_text(GOOD_TEMPLATE, encoding="utf-8")
    campaign_id = run(
        "campaign", "create", "--list", "news", "--subject", "Тема", "--template", str(template)
    ).stdout.strip()
    started = run("campaign", "send", campaign_id, "--no-wait")
    assert started.returncode == 0 and "в очереди 1" in started.stdout and not sink.messages()
    assert run("campaign", "pause", campaign_id).returncode == 0
    refused = run("campaign", "send", campaign_id)
    assert refused.returncode == 1 and "resume" in errors(refused)[0]
    assert run("campaign", "resume", campaign_id).returncode == 0
    assert run("campaign", "send", campaign_id).returncode == 0
    assert [r for _f, r, _raw in sink.messages()] == [["a@example.org"]]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("campaign", "create", "--list", "nope", "--subject", "S", "--template", "{template}"), "nope"),
        (("campaign", "test-send", "1", "--to", "not-an-address"), "--to"),
        (("subscribers", "import", "{missing}"), "не удалось прочитать"),
        (("subscribers", "list-create", "Плохой код", "--title", "T"), "латинские"),
    ],
)
def test_refusals_are_one_line(lite_settings: Settings, tmp_path: Path, args: tuple[str, ...], needle: str) -> None:
    template = tmp_path / "t.txt"
    template.write_text(GOOD_TEMPLATE, encoding="utf-8")
    result = run(*(a.format(template=template, missing=tmp_path / "missing.csv") for a in args))
    assert result.returncode in (1, 2)
    lines = errors(result)
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert "Traceback" not in result.stderr
