"""`mailservice site check`: everything that must be right before the site is published, named one by one.

A required section that is empty, a front matter field missing, mistyped or still a placeholder, an internal link
or attachment that leads nowhere, an image without a text alternative (decree No. 102 of 2026), a page past its
review date. :func:`check_pages` is pure (texts in, problems out); :func:`check_site` reads the folder.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

from mailservice.publishing.schema import PLACEHOLDER, SiteSchema, load_schema, placeholders, validate_meta

# MkDocs' own front matter rule (mkdocs.utils.meta): a YAML block between two --- lines at the very top.
_FRONT_MATTER_RE = re.compile(r"\A-{3}[ \t]*\r?\n(.*?\r?\n)?(?:-{3}|\.{3})[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_FENCE_RE = re.compile(r"^(?: {0,3})(`{3,}|~{3,})")
_INLINE_LINK_RE = re.compile(r"(!?)\[([^\]]*)\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")
_REF_DEF_RE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
_HTML_ATTR_RE = re.compile(r"""\b(href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_IMG_TAG_RE = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_ALT_ATTR_RE = re.compile(r"""\balt\s*=\s*["']\s*[^"'\s][^"']*["']""", re.IGNORECASE)
_SCHEME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


_LINE_RE = re.compile(r"^строка (\d+):")


@dataclass(frozen=True)
class Problem:
    """One thing to fix: the file (relative to the site folder) and what is wrong, in Russian."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def sort_key(self) -> tuple[str, int, str]:
        """By file, then by line (numerically), then by text."""
        match = _LINE_RE.match(self.message)
        return (self.path, int(match.group(1)) if match else 0, self.message)


class FrontMatterError(ValueError):
    """The front matter block is not valid YAML or not a mapping."""


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """The front matter (a dict, empty when there is none) and the Markdown body."""
    match = _FRONT_MATTER_RE.match(text)
    if not match:
        return {}, text
    try:
        data = yaml.safe_load(match.group(1) or "") or {}
    except yaml.YAMLError as exc:
        raise FrontMatterError(f"ошибка YAML в заголовке страницы: {exc}".replace("\n", " ")) from exc
    if not isinstance(data, dict):
        raise FrontMatterError("заголовок страницы (front matter) должен быть словарём «поле: значение»")
    return data, text[match.end() :]


def _prose_lines(body: str, line_offset: int = 0) -> Iterable[tuple[int, str]]:
    """Lines outside fenced code blocks, numbered (code examples may show links that are not links)."""
    fence: str | None = None
    for number, line in enumerate(body.splitlines(), start=1 + line_offset):
        match = _FENCE_RE.match(line)
        if match:
            marker = match.group(1)
            if fence is None:
                fence = marker[0] * len(marker)
            elif marker.startswith(fence):
                fence = None
            continue
        if fence is None:
            yield number, line


def link_targets(body: str, line_offset: int = 0) -> list[tuple[int, str, str, str]]:
    """(line, target, kind, text) of every link outside code; kind is "link", "image" (Markdown) or "html"."""
    found: list[tuple[int, str, str, str]] = []
    for number, line in _prose_lines(body, line_offset):
        for match in _INLINE_LINK_RE.finditer(line):
            kind = "image" if match.group(1) == "!" else "link"
            found.append((number, match.group(3).strip("<>"), kind, match.group(2)))
        ref = _REF_DEF_RE.match(line)
        if ref:
            found.append((number, ref.group(1).strip("<>"), "link", ""))
        for match in _HTML_ATTR_RE.finditer(line):
            found.append((number, match.group(2), "html", ""))
    return found


def resolve_link(page: str, target: str) -> str | None:
    """The docs-relative path an internal link points at, or None for external links and pure anchors.

    MkDocs resolves a relative link against the Markdown file's folder and an absolute one against docs/.
    """
    target = target.split("#", 1)[0].split("?", 1)[0]
    if not target or _SCHEME_RE.match(target) or target.startswith("//"):
        return None
    target = unquote(target)
    joined = target.lstrip("/") if target.startswith("/") else posixpath.join(posixpath.dirname(page), target)
    resolved = posixpath.normpath(joined) if joined else "."
    if target.endswith("/"):
        resolved = posixpath.join(resolved, "index.md")
    return resolved


def _exists(resolved: str, files: set[str]) -> bool:
    if resolved.startswith("..") or resolved.startswith("/"):
        return False
    if resolved in files or f"{resolved}/index.md" in files:
        return True
    # A link to the built page (x.html) of a source page x.md also works.
    return resolved.endswith(".html") and f"{resolved[:-5]}.md" in files


def _attachment_paths(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    paths = []
    for item in value:
        if isinstance(item, str):
            paths.append(item)
        elif isinstance(item, dict) and isinstance(item.get("file"), str):
            paths.append(item["file"])
    return paths


def check_body(page: str, body: str, files: set[str], line_offset: int = 0) -> list[str]:
    """Problems in a page's Markdown: broken internal links, images without alt text, placeholders left.

    Line numbers count from the top of the file (``line_offset`` is the front matter's length).
    """
    problems: list[str] = []
    for number, line in _prose_lines(body, line_offset):
        if PLACEHOLDER in line.upper():
            problems.append(f"строка {number}: в тексте остался маркер {PLACEHOLDER}")
        for tag in _IMG_TAG_RE.findall(line):
            if not _ALT_ATTR_RE.search(tag):
                problems.append(f"строка {number}: изображение без альтернативного текста (атрибут alt)")
    for number, target, kind, text in link_targets(body, line_offset):
        if kind == "image" and not text.strip():
            # The brackets of ![...](x.png) are its alt text (decree No. 102 of 2026: text alternatives).
            problems.append(f"строка {number}: изображение {target} без альтернативного текста")
        resolved = resolve_link(page, target)
        if resolved is not None and not _exists(resolved, files):
            problems.append(f"строка {number}: ссылка {target} ведёт на несуществующий файл ({resolved})")
    return problems


def check_pages(
    pages: Mapping[str, str],
    files: set[str],
    schema: SiteSchema,
    *,
    today: dt.date,
    generated: Iterable[str] = (),
) -> list[Problem]:
    """Check the Markdown pages (docs-relative path -> text) against the schema; ``files`` lists every file."""
    problems: list[Problem] = []
    all_files = set(files) | set(generated) | set(pages)
    documents: dict[str, int] = {s.key: 0 for s in schema.sections}
    index_body: dict[str, bool] = {}
    for path in sorted(pages):
        where = f"docs/{path}"
        try:
            meta, body = split_front_matter(pages[path])
        except FrontMatterError as exc:
            problems.append(Problem(where, str(exc)))
            continue
        offset = pages[path][: len(pages[path]) - len(body)].count("\n")
        problems.extend(Problem(where, p) for p in check_body(path, body, all_files, offset))
        for attachment in _attachment_paths(meta.get("attachments")):
            resolved = resolve_link(path, attachment)
            if resolved is not None and not _exists(resolved, all_files):
                problems.append(Problem(where, f"приложение {attachment} не найдено ({resolved})"))
        if path == "index.md":
            if not meta.get("title"):
                problems.append(Problem(where, "нет обязательного поля title (Заголовок)"))
            problems.extend(Problem(where, f"не заполнено поле {p}") for p in placeholders(meta))
            continue
        top = path.split("/", 1)[0]
        section = schema.by_dir(top) if "/" in path else None
        if section is None:
            problems.append(Problem(where, "страница вне разделов сайта: перенесите её в папку раздела"))
            continue
        is_index = path == f"{section.dir}/index.md"
        problems.extend(Problem(where, p) for p in validate_meta(meta, section, schema, is_index=is_index, today=today))
        if is_index:
            index_body[section.key] = bool(body.strip())
        elif meta.get("category") == section.key:
            documents[section.key] += 1
    generated_set = set(generated)
    for section in schema.sections:
        if not section.required:
            continue
        index = f"{section.dir}/index.md"
        where = f"docs/{section.dir}/"
        if section.generated:
            if index not in generated_set and index not in pages:
                problems.append(Problem(where, f"раздел «{section.title}» не формируется: нет страницы {index}"))
            continue
        if index not in pages:
            problems.append(Problem(where, f"обязательный раздел «{section.title}» отсутствует: нет страницы {index}"))
            continue
        if section.documents and documents[section.key] == 0:
            problems.append(
                Problem(where, f"обязательный раздел «{section.title}» пуст: в нём нет ни одного документа")
            )
        elif not section.documents and not index_body.get(section.key):
            problems.append(
                Problem(where, f"обязательный раздел «{section.title}» пуст: у страницы {index} нет текста")
            )
    return sorted(problems, key=Problem.sort_key)


def check_config(extra: Mapping[str, Any]) -> list[Problem]:
    """Placeholders left in mkdocs.yml ``extra`` (open data passport and the like)."""
    return [Problem("mkdocs.yml", f"не заполнено поле extra.{p}") for p in placeholders(dict(extra))]


def read_docs(docs_dir: Path) -> tuple[dict[str, str], set[str]]:
    """The Markdown pages (path -> text) and the set of all files under docs/, as POSIX paths."""
    pages: dict[str, str] = {}
    files: set[str] = set()
    for path in docs_dir.rglob("*"):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(docs_dir).parts):
            continue
        rel = path.relative_to(docs_dir).as_posix()
        files.add(rel)
        if path.suffix == ".md":
            pages[rel] = path.read_text(encoding="utf-8")
    return pages, files


def check_site(site_root: Path, *, today: dt.date) -> list[Problem]:
    """Check the whole site folder (``sections.yml``, ``mkdocs.yml`` and ``docs/``)."""
    from mailservice.publishing.generated import generated_paths
    from mailservice.publishing.mkdocs_config import read_mkdocs_yml

    schema = load_schema(site_root)
    config = read_mkdocs_yml(site_root / "mkdocs.yml")
    docs_dir = site_root / str(config.get("docs_dir") or "docs")
    pages, files = read_docs(docs_dir)
    problems = check_pages(pages, files, schema, today=today, generated=generated_paths(schema))
    extra = config.get("extra") or {}
    return sorted(problems + check_config(extra if isinstance(extra, dict) else {}), key=Problem.sort_key)


__all__ = [
    "FrontMatterError",
    "Problem",
    "check_body",
    "check_config",
    "check_pages",
    "check_site",
    "link_targets",
    "read_docs",
    "resolve_link",
    "split_front_matter",
]
