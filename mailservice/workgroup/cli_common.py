"""What every ``mailservice wg`` command module shares: the ``wg`` Typer app, the transaction a command runs in
(a refusal becomes one line and exit status 1), and the parsers of dates, times, choices and files."""

from __future__ import annotations

import datetime as dt
import getpass
import mimetypes
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import typer
from sqlalchemy.orm import Session

from mailservice.config import Settings, get_settings
from mailservice.db import session_scope, utcnow
from mailservice.workgroup import meetings
from mailservice.workgroup.models import WgGroup, WgMeeting
from mailservice.workgroup.policy import parse_setting
from mailservice.workgroup.service import WorkgroupError
from mailservice.workgroup.tally import Choice

app = typer.Typer(help="Рабочая группа: заседания, повестки, голосования, протоколы.", no_args_is_help=True)


class WgCLIError(click.ClickException):
    """A refused operation: one line, exit status 1."""

    exit_code = 1


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@contextmanager
def _work() -> Iterator[tuple[Settings, Session, dt.datetime]]:
    """Settings, a transaction and the time; a refused operation becomes one line and rolls back."""
    settings = get_settings()
    try:
        with session_scope(settings) as session:
            yield settings, session, utcnow()
    except WorkgroupError as exc:
        raise WgCLIError(str(exc)) from None


def _date(value: str, hint: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("ожидалась дата ГГГГ-ММ-ДД", param_hint=hint) from None


def _time(value: str, hint: str) -> dt.time:
    try:
        return dt.time.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("ожидалось время ЧЧ:ММ", param_hint=hint) from None


def _choice(value: str, hint: str) -> Choice:
    try:
        return Choice(value.lower())
    except ValueError:
        expected = "ожидалось for (за), against (против) или abstain (воздержался)"
        raise click.BadParameter(expected, param_hint=hint) from None


def _file(path: Path) -> tuple[str, str, bytes]:
    if not path.is_file():
        raise click.BadParameter(f"нет такого файла: {path}", param_hint="FILE")
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return path.name, content_type, path.read_bytes()


def _meeting(session: Session, meeting_id: int) -> tuple[WgMeeting, WgGroup]:
    meeting = meetings.get_meeting(session, meeting_id)
    group = session.get(WgGroup, meeting.group_id)
    assert group is not None
    return meeting, group


def _settings_pairs(pairs: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"ожидалось ключ=значение, а не {pair!r}", param_hint="--set")
        try:
            values[key.strip()] = parse_setting(key.strip(), value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--set") from None
    return values
