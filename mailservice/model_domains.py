"""The composition root of the ORM: which modules declare each domain's models, and which domains they name.

A session needs every model its mappers name (a relationship by class name, ``"Request"``; a foreign key,
``"requests.id"``) registered before its first query. Importing all of them is a third of a light CLI command's
start, so a session may name the domains it reads (``session_scope(domains=...)``) and get only theirs and what
they need; a session that names none gets all (:mod:`mailservice.models`). The search index's session hooks are
part of the "requests" domain: any session that has requests keeps the index up to date when it writes.

Imports nothing of the domains itself: the light CLI commands import this module.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

# domain -> the modules that declare its models (tests/test_cli_start.py checks that every model is listed).
# The outbox, the intake journal and the register name one another, so they are one domain here.
# mount: a domain with models adds its line here (and to NEEDS when its models name another domain's).
MODEL_MODULES: dict[str, tuple[str, ...]] = {
    "requests": (
        "mailservice.outbox",
        "mailservice.intake.models",
        "mailservice.inforequests.models",
        "mailservice.inforequests.search_index",
    ),
    "console": ("mailservice.web.staff.models",),
    "jobruns": ("mailservice.jobruns",),
    "history": ("mailservice.history.models",),
    "feedback": ("mailservice.feedback.models",),
    "mailings": ("mailservice.mailings.models",),
    "processes": ("mailservice.processes.models",),
    "workgroup": ("mailservice.workgroup.models",),
}

# domain -> the domains whose models its models name (tests/test_cli_start.py checks each set is closed).
NEEDS: dict[str, tuple[str, ...]] = {
    "history": ("requests",),
    "feedback": ("requests",),
    "processes": ("requests", "console"),
    "workgroup": ("requests", "console"),
}

_loaded: set[str] = set()


def closure(domains: Iterable[str]) -> set[str]:
    """``domains`` and every domain they need, directly or not (an unknown name is a KeyError)."""
    found: set[str] = set()
    todo = list(domains)
    while todo:
        name = todo.pop()
        if name not in MODEL_MODULES:  # a typing error fails here, not at the first query
            raise KeyError(f"no such model domain: {name!r}")
        if name not in found:
            found.add(name)
            todo.extend(NEEDS.get(name, ()))
    return found


def load(domains: Iterable[str] | None = None) -> None:
    """Register the models of ``domains`` and of the domains they need; of every domain when None."""
    if len(_loaded) == len(MODEL_MODULES):
        return
    for name in sorted(MODEL_MODULES if domains is None else closure(domains) - _loaded):
        if name not in _loaded:
            for module in MODEL_MODULES[name]:
                importlib.import_module(module)
            _loaded.add(name)
