"""The plain conversion of command arguments (mailservice/cli_params.py) gives what Typer's own gives: the same
value for every accepted one, the same error for every refused one, and Pydantic is not needed for the plain ones."""

from __future__ import annotations

import enum
from typing import Any

import pytest
from typer._click.exceptions import BadParameter
from typer._coercion import build_runtime_param, resolve_type_descriptor
from typer.models import OptionInfo

from mailservice import cli_params
from tests.test_cli_start import modules_loaded_by


class Colour(enum.StrEnum):
    red = "red"
    dark_blue = "dark_blue"


CASES: list[tuple[Any, dict[str, Any], list[Any]]] = [
    (str, {}, ["", "текст", "2026-000001", "--x", " пробел "]),
    (bool, {}, [True, False, "true", "0", "да"]),
    (int, {}, ["0", "42", "-7", "+3", "007", " 5", "5.0", "1_000", "x", "", 12, 1.5, True]),
    (int, {"min": 1}, ["1", "100", "0", "-1"]),
    (int, {"min": 1, "max": 10}, ["10", "11"]),
    (int, {"min": 1, "max": 10, "clamp": True}, ["0", "5", "99"]),
    (Colour, {}, ["red", "dark_blue", "RED", "blue", "", Colour.red]),
    (Colour, {"case_sensitive": False}, ["RED", "Dark_Blue", "green"]),
]


def _outcome(runtime: Any, value: Any) -> tuple[str, Any]:
    try:
        return "value", runtime._coerce_value(value, param=None, ctx=None)
    except BadParameter as exc:
        return "error", exc.format_message()


@pytest.mark.parametrize(("annotation", "options", "values"), CASES)
def test_plain_conversion_is_typers(annotation: Any, options: dict[str, Any], values: list[Any]) -> None:
    descriptor = resolve_type_descriptor(annotation, OptionInfo(**options))
    plain, typers = cli_params.runtime_param(descriptor), build_runtime_param(descriptor)
    assert isinstance(plain, cli_params.PlainRuntimeParam)
    for value in values:
        got, expected = _outcome(plain, value), _outcome(typers, value)
        assert got == expected and type(got[1]) is type(expected[1]), (annotation, options, value)


def test_other_annotations_keep_typers_conversion() -> None:
    import datetime as dt
    from pathlib import Path

    for annotation in (float, Path, dt.datetime, list[str]):
        descriptor = resolve_type_descriptor(annotation, OptionInfo())
        assert not isinstance(cli_params.runtime_param(descriptor), cli_params.PlainRuntimeParam), annotation


def test_a_light_command_converts_without_typers_adapters(lite_settings: object) -> None:
    for args in (
        ("requests", "list", "--limit", "5", "--status", "registered", "--json"),
        ("deadline", "--law", "8-fz", "--registered", "2026-03-01", "--json"),
    ):
        assert "typer._adapters" not in modules_loaded_by(*args), args


@pytest.mark.parametrize("preset", [None, "logfire"])
def test_settings_do_not_look_for_pydantic_plugins(preset: str | None) -> None:
    """Reading every installed package's entry points for Pydantic plugins is skipped while the settings are built
    (mailservice/config.py); a value the user set is kept, and none is left behind."""
    import os
    import subprocess
    import sys

    probe = (
        "import os\n"
        "from mailservice import config\n"
        "config.get_settings()\n"
        "from pydantic.plugin import _loader\n"
        "print(_loader._plugins is None, os.environ.get('PYDANTIC_DISABLE_PLUGINS'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    if preset is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = preset
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", str(preset)], result.stdout
