"""Reading ``mkdocs.yml`` the way MkDocs does (``!ENV`` tags included) without running a build."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.utils.yaml import yaml_load


def read_mkdocs_yml(path: Path) -> dict[str, Any]:
    """The raw configuration mapping of ``mkdocs.yml`` (environment variables substituted)."""
    with path.open(encoding="utf-8") as handle:
        data = yaml_load(handle)
    return data if isinstance(data, dict) else {}


__all__ = ["read_mkdocs_yml"]
