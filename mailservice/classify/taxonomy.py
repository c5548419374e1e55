"""The classifier's taxonomy: its axes, their labels and the Russian names staff see (``taxonomy.yaml``).

Apart from the rules (:mod:`.rules`) so that what only shows names (``requests show``) reads them without loading the
language tools the rules need.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mailservice.resources import package_path

AXES = ("type", "topic", "urgency", "appeal_kind")


class RulesError(ValueError):
    """The rules or taxonomy file is malformed; the message says where."""


@dataclass(frozen=True)
class Axis:
    """One classification axis: its labels in file order, display names and default label."""

    key: str
    name: str
    default: str
    labels: tuple[str, ...]
    display: Mapping[str, str]

    def display_name(self, label: str) -> str:
        """The Russian name staff see for a label (the label itself when the taxonomy has none)."""
        return self.display.get(label, label)


@dataclass(frozen=True)
class Taxonomy:
    """All axes of the classifier (type, topic, urgency, appeal_kind)."""

    axes: Mapping[str, Axis]

    def __getitem__(self, key: str) -> Axis:
        return self.axes[key]


DEFAULT_TAXONOMY_PATH = package_path("classify", "taxonomy.yaml")


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"не удалось прочитать {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise RulesError(f"{path}: ошибка YAML: {exc}".replace("\n", " ")) from exc
    if not isinstance(data, dict):
        raise RulesError(f"{path}: ожидался словарь верхнего уровня")
    return data


def _display_name(label: object, info: object) -> str:
    """A label's entry is either a mapping with ``name`` or just the name."""
    if isinstance(info, dict):
        return str(info.get("name", label))
    return str(info) if info else str(label)


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """Read the taxonomy file (the packaged one by default)."""
    path = path or DEFAULT_TAXONOMY_PATH
    data = read_yaml(path)
    axes: dict[str, Axis] = {}
    raw_axes = data.get("axes")
    if not isinstance(raw_axes, dict):
        raise RulesError(f"{path}: нет раздела axes")
    for key in AXES:
        raw = raw_axes.get(key)
        if not isinstance(raw, dict) or not isinstance(raw.get("labels"), dict) or not raw["labels"]:
            raise RulesError(f"{path}: ось {key} не описана или не содержит меток")
        labels = tuple(str(label) for label in raw["labels"])
        display = {str(label): _display_name(label, info) for label, info in raw["labels"].items()}
        default = str(raw.get("default", labels[-1]))
        if default not in labels:
            raise RulesError(f"{path}: метка по умолчанию {default!r} оси {key} не входит в её метки")
        axes[key] = Axis(key=key, name=str(raw.get("name", key)), default=default, labels=labels, display=display)
    return Taxonomy(axes=axes)
