"""Typer's conversion of a command's arguments, without Pydantic for the plain values.

Typer 0.29 converts every argument through a Pydantic ``TypeAdapter`` built at the first call: importing its
adapters and building one per parameter is a tenth of a light command's start (`requests list --limit 5`). A text, a
flag, a whole number within its bounds and a member of an enumeration (matched as Typer matches it) are converted
here instead; anything else, and every value that would be refused, goes to Typer's own conversion, so that
results and error messages stay Typer's (and :mod:`mailservice.cli_russian` translates them as before).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

from typer import core
from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
from typer._param_types import coerce_cli_choice

_WHOLE = re.compile(r"[+-]?[0-9]+")


class _Refer(Exception):
    """The value is not a plain one: Typer's conversion decides."""


def _plain(annotation: Any, info: Any, value: Any, ctx: Any) -> Any:
    """``value`` converted as Typer would convert it; :class:`_Refer` when not sure or when it would be refused."""
    if (annotation is str and isinstance(value, str)) or (annotation is bool and isinstance(value, bool)):
        return value
    if annotation is int and not isinstance(value, bool):
        if isinstance(value, str) and _WHOLE.fullmatch(value):
            value = int(value)
        if not isinstance(value, int) or info.clamp:
            raise _Refer
        if (info.min is not None and value < info.min) or (info.max is not None and value > info.max):
            raise _Refer
        return value
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        try:
            return coerce_cli_choice(value, choices=tuple(annotation), case_sensitive=info.case_sensitive, ctx=ctx)
        except ValueError:
            raise _Refer from None
    raise _Refer


@dataclass(frozen=True)
class PlainRuntimeParam(RuntimeParam):
    """Conversion of a text, a whole number or an enumeration member; Typer's own for the rest."""

    descriptor: TypeDescriptor

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        try:
            return _plain(self.annotation, self.parameter_info, value, ctx)
        except _Refer:
            return build_runtime_param(self.descriptor)._coerce_value(value, param=param, ctx=ctx)


def runtime_param(descriptor: TypeDescriptor) -> RuntimeParam:
    """The conversion of a parameter: the plain one where it applies, Typer's otherwise."""
    annotation, info = descriptor.annotation, descriptor.parameter_info
    plain = annotation in (str, int, bool) or (isinstance(annotation, type) and issubclass(annotation, Enum))
    if plain and info.parser is None and descriptor.file_annotation is None:
        return PlainRuntimeParam(parameter_info=info, annotation=annotation, descriptor=descriptor)
    return build_runtime_param(descriptor)


def _get_runtime_param(self: Any) -> RuntimeParam:
    if self._runtime_param is None:
        self._runtime_param = runtime_param(self.type_descriptor)
    return self._runtime_param


def install() -> None:
    """Convert the parameters of every command as above (idempotent)."""
    core._TyperParameter.get_runtime_param = _get_runtime_param  # type: ignore[method-assign]
