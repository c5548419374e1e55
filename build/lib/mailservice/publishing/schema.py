"""The site's sections and front matter schema (read from ``site/sections.yml``) and the validation of one page.

A regional body's binding list of disclosure sections is set by its region (8-FZ art. 13 is the federal minimum),
so the list is data, not code (RULES.md "The disclosure site"). Everything here is pure: it takes parsed values
and ``today`` and returns the problems in Russian.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# A value staff must still fill in; `site check` refuses to pass while one is left (never publish an invented fact).
PLACEHOLDER = "ЗАПОЛНИТЬ"
FIELD_TYPES = frozenset({"text", "date", "bool", "choice", "list"})
# Front matter keys that MkDocs or Material read themselves (page template, hidden sidebars, search exclusion).
THEME_KEYS = frozenset({"template", "hide", "icon", "status", "subtitle", "search", "tags"})


class SchemaError(ValueError):
    """``sections.yml`` is malformed; the message says where."""


@dataclass(frozen=True)
class FieldSpec:
    """One front matter field: its type, whether it is required (always or when another field has a value)."""

    name: str
    type: str
    label: str
    required: bool = False
    required_when: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    values: tuple[str, ...] = ()

    def is_required(self, meta: Mapping[str, Any]) -> bool:
        """Whether this field must be present in a page with front matter ``meta``."""
        if self.required:
            return True
        return any(str(meta.get(other, "")) in wanted for other, wanted in self.required_when.items())


@dataclass(frozen=True)
class Section:
    """A section of the site: a folder under docs/ holding an index page and, maybe, documents."""

    key: str
    dir: str
    title: str
    required: bool
    documents: bool
    generated: bool
    basis: str
    mailing_list: str | None
    fields: Mapping[str, FieldSpec]
    index_fields: Mapping[str, FieldSpec]


@dataclass(frozen=True)
class MailingList:
    """A topic visitors can subscribe to on the site."""

    key: str
    title: str


@dataclass(frozen=True)
class SiteSchema:
    """All sections in navigation order, and the mailing lists offered on the subscription page."""

    sections: tuple[Section, ...]
    review_fields: tuple[str, ...]
    mailing_lists: tuple[MailingList, ...]

    def by_key(self, key: str) -> Section | None:
        """The section whose ``category`` is ``key``."""
        return next((s for s in self.sections if s.key == key), None)

    def by_dir(self, directory: str) -> Section | None:
        """The section stored in docs/``directory``."""
        return next((s for s in self.sections if s.dir == directory), None)

    def labels(self) -> dict[str, dict[str, str]]:
        """Field labels per section (for templates): ``{section_key: {field: label}}``."""
        return {
            s.key: {name: spec.label for name, spec in {**s.fields, **s.index_fields}.items()} for s in self.sections
        }


def _fields(raw: object, where: str) -> dict[str, FieldSpec]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SchemaError(f"{where}: ожидался словарь полей")
    specs: dict[str, FieldSpec] = {}
    for name, spec in raw.items():
        if not isinstance(spec, dict) or spec.get("type") not in FIELD_TYPES:
            raise SchemaError(f"{where}.{name}: укажите type из {sorted(FIELD_TYPES)}")
        when_raw = spec.get("required_when") or {}
        if not isinstance(when_raw, dict):
            raise SchemaError(f"{where}.{name}.required_when: ожидался словарь")
        when = {str(k): tuple(str(x) for x in (v if isinstance(v, list) else [v])) for k, v in when_raw.items()}
        values = tuple(str(v) for v in spec.get("values") or ())
        if spec["type"] == "choice" and not values:
            raise SchemaError(f"{where}.{name}: для choice нужен список values")
        specs[str(name)] = FieldSpec(
            name=str(name),
            type=str(spec["type"]),
            label=str(spec.get("label", name)),
            required=bool(spec.get("required", False)),
            required_when=when,
            values=values,
        )
    return specs


def _merge(common: Mapping[str, FieldSpec], own: Mapping[str, FieldSpec]) -> dict[str, FieldSpec]:
    # The section's own fields first (kind, number, adopted...), then the common ones: the order pages show them.
    return {**own, **{name: spec for name, spec in common.items() if name not in own}}


def parse_schema(data: object, where: str = "sections.yml") -> SiteSchema:
    """Build the schema from the parsed YAML of ``sections.yml``."""
    if not isinstance(data, dict) or not isinstance(data.get("sections"), list):
        raise SchemaError(f"{where}: нет списка sections")
    common = _fields(data.get("common_fields"), f"{where}: common_fields")
    index_common = _fields(data.get("index_fields"), f"{where}: index_fields")
    sections: list[Section] = []
    for i, raw in enumerate(data["sections"]):
        if not isinstance(raw, dict) or not all(raw.get(k) for k in ("key", "dir", "title")):
            raise SchemaError(f"{where}: раздел №{i + 1}: нужны key, dir и title")
        key = str(raw["key"])
        sections.append(
            Section(
                key=key,
                dir=str(raw["dir"]),
                title=str(raw["title"]),
                required=bool(raw.get("required", False)),
                documents=bool(raw.get("documents", False)),
                generated=bool(raw.get("generated", False)),
                basis=str(raw.get("basis", "")),
                mailing_list=str(raw["mailing_list"]) if raw.get("mailing_list") else None,
                fields=_merge(common, _fields(raw.get("fields"), f"{where}: {key}.fields")),
                index_fields=_merge(index_common, _fields(raw.get("index_fields"), f"{where}: {key}.index_fields")),
            )
        )
    keys = [s.key for s in sections]
    dirs = [s.dir for s in sections]
    if len(set(keys)) != len(keys) or len(set(dirs)) != len(dirs):
        raise SchemaError(f"{where}: key и dir разделов должны быть уникальны")
    lists = tuple(
        MailingList(key=str(m["key"]), title=str(m["title"]))
        for m in data.get("mailing_lists") or []
        if isinstance(m, dict) and m.get("key") and m.get("title")
    )
    for section in sections:
        if section.mailing_list and section.mailing_list not in {m.key for m in lists}:
            raise SchemaError(f"{where}: {section.key}: рассылка {section.mailing_list!r} не описана в mailing_lists")
    review = tuple(str(x) for x in data.get("review_fields") or ("review_by", "valid_until"))
    return SiteSchema(sections=tuple(sections), review_fields=review, mailing_lists=lists)


def load_schema(site_root: Path) -> SiteSchema:
    """Read ``site_root/sections.yml``."""
    path = site_root / "sections.yml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SchemaError(f"не удалось прочитать {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise SchemaError(f"{path}: ошибка YAML: {exc}".replace("\n", " ")) from exc
    return parse_schema(data, str(path))


# Validation of one page ----------------------------------------------------------------------------------------


def placeholders(value: object, path: str = "") -> list[str]:
    """Dotted paths of every value (nested in lists and dicts) that still holds the placeholder."""
    if isinstance(value, str):
        return [path] if PLACEHOLDER in value.upper() else []
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in placeholders(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in placeholders(v, f"{path}[{i}]")]
    return []


def _type_problem(spec: FieldSpec, value: object) -> str | None:
    if spec.type == "date":
        # YAML gives a date for 2026-03-01; a datetime is refused too: a publication date has no time.
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            return f"поле {spec.name} ({spec.label}) должно быть датой в виде ГГГГ-ММ-ДД, а не {value!r}"
    elif spec.type == "bool":
        if not isinstance(value, bool):
            return f"поле {spec.name} ({spec.label}) должно быть true или false, а не {value!r}"
    elif spec.type == "list":
        if not isinstance(value, list):
            return f"поле {spec.name} ({spec.label}) должно быть списком"
    elif spec.type == "choice":
        if str(value) not in spec.values:
            allowed = ", ".join(spec.values)
            return f"поле {spec.name} ({spec.label}): недопустимое значение {value!r}; допустимо: {allowed}"
    elif not isinstance(value, str | int) or not str(value).strip():
        return f"поле {spec.name} ({spec.label}) должно быть непустым текстом"
    return None


def validate_meta(
    meta: Mapping[str, Any], section: Section, schema: SiteSchema, *, is_index: bool, today: dt.date
) -> list[str]:
    """Problems of one page's front matter: placeholders, missing or wrongly typed fields, review date passed."""
    problems: list[str] = [f"не заполнено поле {p}" for p in placeholders(dict(meta))]
    unfilled = {p.split(".")[0].split("[")[0] for p in placeholders(dict(meta))}
    specs = section.index_fields if is_index else section.fields
    if meta.get("category") != section.key:
        problems.append(
            f"поле category должно быть {section.key!r} для страниц папки {section.dir}/ "
            f"(сейчас {meta.get('category')!r})"
        )
    for name, spec in specs.items():
        if name in unfilled or name == "category":
            continue
        if name not in meta or meta[name] is None or meta[name] == "":
            if spec.is_required(meta):
                problems.append(f"нет обязательного поля {name} ({spec.label})")
            continue
        problem = _type_problem(spec, meta[name])
        if problem:
            problems.append(problem)
    known = set(section.fields) | set(section.index_fields) | THEME_KEYS
    for name in sorted(set(meta) - known):
        problems.append(f"неизвестное поле {name}: проверьте написание (поля раздела описаны в sections.yml)")
    if not is_index and not any(meta.get(f) for f in schema.review_fields):
        names = " или ".join(schema.review_fields)
        problems.append(f"нужна дата пересмотра: поле {names}")
    for name in schema.review_fields:
        value = meta.get(name)
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime) and value < today:
            label = "срок действия истёк" if name == "valid_until" else "пропущена дата пересмотра"
            problems.append(f"{label} ({name}: {value:%d.%m.%Y}): обновите страницу и дату или снимите её с публикации")
    return problems


__all__ = [
    "PLACEHOLDER",
    "FieldSpec",
    "MailingList",
    "SchemaError",
    "Section",
    "SiteSchema",
    "load_schema",
    "parse_schema",
    "placeholders",
    "validate_meta",
]
