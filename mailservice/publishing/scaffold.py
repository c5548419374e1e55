"""`mailservice site new`: a new document page with its front matter and attachments, in one command.

Fields staff must fill in get the placeholder that `site check` refuses, so an unfinished page cannot be
published by mistake. :func:`render_document` is pure; :func:`create_document` writes the files.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from mailservice.publishing.schema import PLACEHOLDER, Section
from mailservice.resources import package_path

# Formats a visitor can open without special software; scanned images belong inside a PDF with a text layer.
ATTACHMENT_SUFFIXES = frozenset(
    {".pdf", ".docx", ".doc", ".odt", ".rtf", ".xlsx", ".xls", ".ods", ".csv", ".pptx", ".odp", ".txt", ".zip"}
)

_TRANSLIT = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        "a b v g d e e zh z i y k l m n o p r s t u f kh ts ch sh shch - y - e yu ya".split(),
        strict=True,
    )
)


class ScaffoldError(ValueError):
    """The document cannot be created as asked; the message is Russian."""


@dataclass(frozen=True)
class NewDocument:
    """What `site new` created."""

    page: Path
    attachments: tuple[Path, ...]


def slugify(title: str, max_length: int = 60) -> str:
    """A Latin file name from a Russian title: «Приказ № 12 о плане» -> ``prikaz-12-o-plane``."""
    out = []
    for char in title.lower():
        mapped = _TRANSLIT.get(char, char)
        out.append("" if mapped == "-" else mapped)
    slug = re.sub(r"[^a-z0-9]+", "-", "".join(out)).strip("-")
    return slug[:max_length].rstrip("-") or "dokument"


def render_document(
    section: Section,
    title: str,
    *,
    today: dt.date,
    values: Mapping[str, object] | None = None,
    attachments: Sequence[tuple[str, str]] = (),
) -> str:
    """The Markdown text of a new document: required fields set or marked for filling in, optional ones hinted."""
    values = dict(values or {})
    meta: dict[str, object] = {
        "title": title,
        "category": section.key,
        "published": today,
        "responsible": values.pop("responsible", PLACEHOLDER),
        "review_by": values.pop("review_by", today + dt.timedelta(days=365)),
    }
    hints: list[str] = []
    for name, spec in section.fields.items():
        if name in meta or name in {"attachments", "description"}:
            continue
        if name in values:
            meta[name] = values.pop(name)
        elif spec.required:
            meta[name] = PLACEHOLDER
        else:
            choices = f" ({', '.join(spec.values)})" if spec.values else ""
            when = ", ".join(f"{k} = {'/'.join(v)}" for k, v in spec.required_when.items())
            need = f"; обязательно, если {when}" if when else ""
            hints.append(f"# {name}: {spec.label}{choices}{need}")
    meta.update(values)
    if attachments:
        meta["attachments"] = [{"file": file, "title": label} for file, label in attachments]
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, width=110).rstrip("\n")
    hint_block = ("\n" + "\n".join(hints)) if hints else ""
    return f"---\n{front}{hint_block}\n---\nКраткое содержание документа: {PLACEHOLDER}.\n"


def create_document(
    docs_dir: Path,
    section: Section,
    title: str,
    *,
    today: dt.date,
    values: Mapping[str, object] | None = None,
    attach: Sequence[Path] = (),
) -> NewDocument:
    """Write ``docs/<section>/<date>-<slug>.md`` and copy the attachments to ``docs/<section>/files/``."""
    if not title.strip():
        raise ScaffoldError("укажите заголовок документа (--title)")
    for file in attach:
        if not file.is_file():
            raise ScaffoldError(f"файл приложения не найден: {file}")
        if file.suffix.lower() not in ATTACHMENT_SUFFIXES:
            allowed = ", ".join(sorted(ATTACHMENT_SUFFIXES))
            raise ScaffoldError(f"формат приложения {file.name} не поддерживается; допустимы: {allowed}")
    folder = docs_dir / section.dir
    base = f"{today:%Y-%m-%d}-{slugify(title)}"
    page = folder / f"{base}.md"
    n = 2
    while page.exists():
        page = folder / f"{base}-{n}.md"
        n += 1
    copied: list[Path] = []
    listed: list[tuple[str, str]] = []
    for file in attach:
        name = f"{page.stem}-{slugify(file.stem, 40)}{file.suffix.lower()}"
        listed.append((f"files/{name}", file.stem))
        copied.append(folder / "files" / name)
    text = render_document(section, title.strip(), today=today, values=values, attachments=listed)
    folder.mkdir(parents=True, exist_ok=True)
    for source, target in zip(attach, copied, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    page.write_text(text, encoding="utf-8")
    return NewDocument(page=page, attachments=tuple(copied))


__all__ = ["ATTACHMENT_SUFFIXES", "NewDocument", "ScaffoldError", "create_document", "render_document", "slugify"]


def init_site(target: Path) -> bool:
    """Copy the packaged site skeleton into ``target``; False (nothing touched) when a site is already there.

    Staff edit the copy, never the package: an upgrade of the package leaves their pages as they are.
    """
    if (target / "mkdocs.yml").is_file():
        return False
    if target.exists() and any(target.iterdir()):
        raise ScaffoldError(f"папка {target} не пуста и в ней нет mkdocs.yml: укажите пустую папку для сайта")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        package_path("site"), target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return True
