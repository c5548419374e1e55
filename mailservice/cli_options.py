"""Options that several domains' commands share, in a module that imports nothing but Typer (a domain's CLI
imports it at start)."""

from __future__ import annotations

from typing import Annotated

import typer

# Who acts in a command is a staff account, never a name typed in (issue 18; `processes`, `requests identity-check`).
StaffOption = Annotated[
    str, typer.Option("--staff", help="Учётная запись сотрудника (адрес); пароль читается со стандартного ввода")
]
