"""Click's and Typer's own words in Russian: help labels and usage errors.

Typer 0.29 vendors click (``typer._click``) with English f-strings and no message catalogue, so the texts are
replaced where they are made (help) or translated when the root handler prints them (errors). Nothing here is
imported by a command that does not print help or fail. Unknown texts pass through unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

HELP_OPTION = "Показать эту справку и выйти."
USAGE_PREFIX = "Использование: "

# typer.rich_utils: module constants, read when help is printed.
RICH_TEXTS = {
    "ARGUMENTS_PANEL_TITLE": "Аргументы",
    "OPTIONS_PANEL_TITLE": "Параметры",
    "COMMANDS_PANEL_TITLE": "Команды",
    "ERRORS_PANEL_TITLE": "Ошибка",
    "ABORTED_TEXT": "Прервано.",
    "DEFAULT_STRING": "[по умолчанию: {}]",
    "ENVVAR_STRING": "[переменная окружения: {}]",
    "REQUIRED_LONG_STRING": "[обязательный]",
    "DEPRECATED_STRING": "(устарело) ",
    "RICH_HELP": "Справка: [blue]'{command_path} {help_option}'[/]",
}

# typer.core's own words (it calls gettext, which has no Russian catalogue for it).
TYPER_TEXTS = {
    "(dynamic)": "(вычисляется)",
    "Aborted!": "Прервано.",
    "default: {default}": "по умолчанию: {default}",
    "required": "обязательный",
    "env var: {var}": "переменная окружения: {var}",
    "Arguments": "Аргументы",
    "Options": "Параметры",
    "Commands": "Команды",
    "Missing command.": "Missing command.",
    "No such command {name!r}.": "No such command {name!r}.",
}

_PATH_KINDS = {"File": "Файл", "Directory": "Папка", "Path": "Путь"}

# The usage line's placeholders and the value types Typer shows in help (``<int>``, ``<int range>``, ``<Path>``).
USAGE_WORDS = {"[OPTIONS]": "[ПАРАМЕТРЫ]", "COMMAND [ARGS]...": "КОМАНДА [АРГУМЕНТЫ]..."}
TYPE_WORDS = {
    "str": "текст",
    "int": "целое",
    "int range": "целое",
    "float": "число",
    "float range": "число",
    "bool": "да/нет",
    "Path": "путь",
    "path": "путь",
    "file": "файл",
    "directory": "папка",
    "date": "дата",
    "datetime": "дата и время",
}


def _choices(text: str) -> str:
    return ", ".join(part.strip().strip("'") for part in re.split(r",\s*", text.strip()) if part.strip())


def _value_error(text: str) -> str:
    """The inner message of a rejected value (pydantic's, as Typer words it, or click's)."""
    text = text.strip()
    rules: list[tuple[str, Callable[[re.Match[str]], str]]] = [
        (
            r"(?:Value error, )?'(.*)' is not one of (.*?)\.?",
            lambda m: f"«{m[1]}» — нет такого; допустимо: {_choices(m[2])}",
        ),
        (r"Input should be a valid integer.*", lambda m: "ожидалось целое число"),
        (r"Input should be a valid number.*", lambda m: "ожидалось число"),
        (r"Input should be a valid boolean.*", lambda m: "ожидалось да/нет (true/false)"),
        (r"Input should be a valid date.*", lambda m: "ожидалась дата ГГГГ-ММ-ДД"),
        (r"Input should be a valid datetime.*", lambda m: "ожидались дата и время ГГГГ-ММ-ДДTЧЧ:ММ"),
        (r"Input should be greater than or equal to (\S+)", lambda m: f"должно быть не меньше {m[1]}"),
        (r"Input should be greater than (\S+)", lambda m: f"должно быть больше {m[1]}"),
        (r"Input should be less than or equal to (\S+)", lambda m: f"должно быть не больше {m[1]}"),
        (r"Input should be less than (\S+)", lambda m: f"должно быть меньше {m[1]}"),
        (r"Value (.*) is not a valid (\w+)\.", lambda m: f"{m[1]} — недопустимое значение"),
        (
            r"(File|Directory|Path) '(.*)' does not exist\.",
            lambda m: f"{_PATH_KINDS[m[1]]} «{m[2]}» не существует",
        ),
        (r"(File|Directory|Path) '(.*)' is a file\.", lambda m: f"{_PATH_KINDS[m[1]]} «{m[2]}» — файл, а нужна папка"),
        (
            r"(File|Directory|Path) '(.*)' is a directory\.",
            lambda m: f"{_PATH_KINDS[m[1]]} «{m[2]}» — папка, а нужен файл",
        ),
        (r"(File|Directory|Path) '(.*)' is not readable\.", lambda m: f"{_PATH_KINDS[m[1]]} «{m[2]}» нельзя прочитать"),
        (
            r"(File|Directory|Path) '(.*)' is not writable\.",
            lambda m: f"в {_PATH_KINDS[m[1]].lower()} «{m[2]}» нельзя писать",
        ),
    ]
    for pattern, make in rules:
        match = re.fullmatch(pattern, text, flags=re.DOTALL)
        if match:
            return make(match)
    return text


def _missing(kind: str, name: str, rest: str) -> str:
    noun = {"option": "параметр", "argument": "аргумент"}.get(kind, "параметр")
    message = f"не указан {noun} {name}"
    choose = re.search(r"Choose from:(.*)", rest, flags=re.DOTALL)
    if choose:
        message += f"; допустимо: {_choices(choose[1])}"
    return message


def type_label(label: str) -> str:
    """A help placeholder such as ``<int>`` or ``<list[str]>`` in Russian; choices (``<a|b>``) stay as they are."""
    inner = label[1:-1] if label.startswith("<") and label.endswith(">") else label
    listed = re.fullmatch(r"list\[(.*)\]", inner)
    if listed:
        return f"<{TYPE_WORDS.get(listed[1], listed[1])}, несколько раз>"
    return f"<{TYPE_WORDS.get(inner, inner)}>" if inner in TYPE_WORDS else label


def number_range(min: float | None, max: float | None) -> str | None:  # Typer's names: it may pass them by keyword
    """The allowed range of a number option, as help shows it (Typer writes ``x>=1``)."""
    if min is None and max is None:
        return None
    if max is None:
        return f"не меньше {min}"
    if min is None:
        return f"не больше {max}"
    return f"от {min} до {max}"


def _did_you_mean(text: str) -> str:
    return f"; возможно, имелось в виду {_choices(text)}"


_RULES: list[tuple[str, Callable[[re.Match[str]], str]]] = [
    (r"Invalid value for (.+?): (.*)", lambda m: f"недопустимое значение {m[1]}: {_value_error(m[2])}"),
    (r"Invalid value: (.*)", lambda m: f"недопустимое значение: {_value_error(m[1])}"),
    (r"Missing (option|argument|parameter) (\S+?)\.(.*)", lambda m: _missing(m[1], m[2], m[3])),
    (r"Missing parameter: (.*)", lambda m: f"не указан параметр {m[1]}"),
    (r"Missing command\.", lambda m: "не указана команда"),
    (
        r"No such option: (\S+?)(?: \(Possible options: (.*)\))?",
        lambda m: f"нет такого параметра {m[1]}" + (_did_you_mean(m[2]) if m[2] else ""),
    ),
    (
        r"No such command '(.*?)'\.(?: Did you mean (.*)\?)?",
        lambda m: f"нет такой команды «{m[1]}»" + (_did_you_mean(m[2]) if m[2] else ""),
    ),
    (r"Got unexpected extra argument\(s\) \((.*)\)", lambda m: f"лишние аргументы: {m[1]}"),
    (r"Option '(.*)' does not take a value\.", lambda m: f"параметр {m[1]} указывается без значения"),
    (r"Option '(.*)' requires an argument\.", lambda m: f"после параметра {m[1]} нужно значение"),
    (r"Option '(.*)' requires (\d+) arguments\.", lambda m: f"после параметра {m[1]} нужно значений: {m[2]}"),
    (r"Argument '(.*)' takes (\d+) values\.", lambda m: f"аргументу {m[1]} нужно значений: {m[2]}"),
]


def translate(message: str) -> str:
    """One usage error of click/Typer in Russian, on one line."""
    text = message.strip()
    for pattern, make in _RULES:
        match = re.fullmatch(pattern, text, flags=re.DOTALL)
        if match:
            text = make(match)
            break
    else:
        text = _value_error(text)
    return " ".join(text.split())


def _russian_rich_utils() -> None:
    from typer import rich_utils

    for name, value in RICH_TEXTS.items():
        setattr(rich_utils, name, value)


def install() -> None:
    """Put Russian into the help that Typer and its click print (idempotent; imports nothing heavy)."""
    from typer import core
    from typer._click import decorators, formatting

    if getattr(decorators.help_option, "_russian", False):
        return
    original_help_option = decorators.help_option

    def help_option(param_decls: list[str]) -> Callable[[Any], Any]:
        decorate = original_help_option(param_decls)

        def apply(command: Any) -> Any:
            command = decorate(command)
            command.params[-1].help = HELP_OPTION
            return command

        return apply

    help_option._russian = True  # type: ignore[attr-defined]
    decorators.help_option = help_option

    original_write_usage = formatting.HelpFormatter.write_usage

    def write_usage(self: Any, prog: str, args: str = "", prefix: str | None = None) -> None:
        for english, russian in USAGE_WORDS.items():
            args = args.replace(english, russian)
        original_write_usage(self, prog, args, USAGE_PREFIX if prefix is None else prefix)

    formatting.HelpFormatter.write_usage = write_usage  # type: ignore[method-assign]

    core._ = _typer_gettext
    core.describe_number_range = number_range
    original_display_type = core._TyperParameter.display_type

    def display_type(self: Any, ctx: Any) -> str:
        return type_label(original_display_type(self, ctx))

    core._TyperParameter.display_type = display_type  # type: ignore[method-assign]
    # Plain help, as click formats it: Rich's help formatter costs 0.2 s of imports at every `--help`.
    for cls in (core.TyperCommand, core.TyperGroup):
        cls.format_help = _plain_format_help  # type: ignore[method-assign]


def _typer_gettext(message: str) -> str:
    return TYPER_TEXTS.get(message, message)


def _plain_format_help(self: Any, ctx: Any, formatter: Any) -> None:
    self.format_usage(ctx, formatter)
    self.format_help_text(ctx, formatter)
    self.format_options(ctx, formatter)
    self.format_epilog(ctx, formatter)
