"""Building and publishing the site: a thin step around ``mkdocs build`` (a successor that reads mkdocs.yml can
replace it), and an atomic switch of the published folder.

Publishing builds into a new release folder beside the target and then points the target (a symbolic link) at it
with one ``rename``, which POSIX makes atomic: a visitor sees the old site or the new one, never half of one. The
last few releases are kept for a quick rollback.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailservice.config import Settings
from mailservice.publishing.checks import FrontMatterError, read_docs, split_front_matter
from mailservice.publishing.mkdocs_hooks import DATA_KEY
from mailservice.publishing.schema import SiteSchema
from mailservice.publishing.stats import SiteData

BUILD_MARKER = ".mailservice-site"
MANIFEST = ".mailservice-manifest.json"


class BuildError(RuntimeError):
    """The site could not be built or published; the message is Russian and shown as is."""


@dataclass(frozen=True)
class DocumentInfo:
    """A published document, as recorded in a release's manifest."""

    path: str
    title: str
    category: str
    published: str


@dataclass(frozen=True)
class PublishResult:
    """Where the new release is and which documents it added since the previous one."""

    release: Path
    new_documents: tuple[DocumentInfo, ...]
    removed_releases: tuple[Path, ...]


def _check_output(output: Path) -> None:
    # MkDocs empties its output folder before building: refuse a folder that is not one of our builds.
    if output.exists() and (not output.is_dir() or (any(output.iterdir()) and not (output / BUILD_MARKER).exists())):
        raise BuildError(
            f"папка {output} не пуста и не является сборкой сайта: укажите пустую или новую папку "
            "(сборка очищает папку перед записью)"
        )


def build_site(site_root: Path, output: Path, *, data: SiteData, strict: bool = False) -> None:
    """Run MkDocs on ``site_root/mkdocs.yml`` into ``output`` with the generated pages from ``data``."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    config_file = site_root / "mkdocs.yml"
    if not config_file.is_file():
        raise BuildError(f"не найден файл {config_file}")
    _check_output(output)
    # Material prints a banner about MkDocs 2.0 on every build; the README explains the pinning instead.
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    try:
        config = load_config(str(config_file), site_dir=str(output.resolve()), strict=strict)
        config.extra[DATA_KEY] = data
        build(config)
    except MkDocsException as exc:
        raise BuildError(f"сборка сайта не удалась: {exc}") from exc
    (output / BUILD_MARKER).write_text("built by mailservice site build\n", encoding="utf-8")


def register_consent_text(settings: Settings) -> str | None:
    """Store the consent text the subscription page shows, so that the service accepts the form's version.

    The mailings domain keeps every consent text it ever showed (152-FZ art. 9: the operator proves what was
    agreed to); the site shows the same text, rendered from the same settings. Returns the version, or None when
    there is no database with the mailings tables yet (a fresh checkout).
    """
    from sqlalchemy import inspect

    from mailservice.db import make_engine, session_scope
    from mailservice.mailings.consent import current_consent
    from mailservice.publishing.stats import database_configured

    if not database_configured(settings):
        return None
    engine = make_engine(settings.effective_database_url)
    try:
        present = "mailing_consent_texts" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    if not present:
        return None
    with session_scope(settings) as session:
        return current_consent(session, settings).version


def document_manifest(docs_dir: Path, schema: SiteSchema) -> list[DocumentInfo]:
    """Every document (not section pages) under docs/, for telling subscribers what is new."""
    pages, _files = read_docs(docs_dir)
    documents = []
    for path, text in sorted(pages.items()):
        parts = path.split("/")
        if len(parts) < 2 or parts[-1] == "index.md" or schema.by_dir(parts[0]) is None:
            continue
        try:
            meta, _body = split_front_matter(text)
        except FrontMatterError:
            continue
        published = meta.get("published")
        documents.append(
            DocumentInfo(
                path=path,
                title=str(meta.get("title", path)),
                category=str(meta.get("category", "")),
                published=published.isoformat() if isinstance(published, dt.date) else str(published or ""),
            )
        )
    return documents


def _read_manifest(release: Path) -> dict[str, Any]:
    try:
        data = json.loads((release / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def publish_site(
    site_root: Path,
    target: Path,
    *,
    data: SiteData,
    schema: SiteSchema,
    docs_dir: Path,
    keep: int = 3,
) -> PublishResult:
    """Build a new release and switch ``target`` (a symbolic link) to it atomically; keep ``keep`` releases."""
    if target.exists() and not target.is_symlink():
        raise BuildError(
            f"{target} уже существует и не является символической ссылкой: публикация переключает ссылку на новую "
            "сборку. Переименуйте существующую папку или укажите другую цель."
        )
    releases = target.parent / f"{target.name}.releases"
    releases.mkdir(parents=True, exist_ok=True)
    stamp = data.generated_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    release = releases / f"{stamp}-{uuid.uuid4().hex[:6]}"
    try:
        build_site(site_root, release, data=data, strict=True)
    except BaseException:
        shutil.rmtree(release, ignore_errors=True)
        raise
    documents = document_manifest(docs_dir, schema)
    previous = _read_manifest(target) if target.exists() else {}
    known = {d.get("path") for d in previous.get("documents", []) if isinstance(d, Mapping)}
    first_release = not previous
    new_documents = () if first_release else tuple(d for d in documents if d.path not in known)
    manifest = {
        "built_at": data.generated_at.isoformat(),
        "documents": [d.__dict__ for d in documents],
    }
    (release / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    link = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
    os.symlink(os.path.relpath(release, target.parent), link)
    os.replace(link, target)  # rename(2) over the old link: atomic
    current = release.resolve()
    old = sorted((p for p in releases.iterdir() if p.is_dir() and p.resolve() != current), key=lambda p: p.name)
    removed = tuple(old[: max(0, len(old) - (keep - 1))])
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return PublishResult(release=release, new_documents=new_documents, removed_releases=removed)


__all__ = [
    "BUILD_MARKER",
    "BuildError",
    "DocumentInfo",
    "PublishResult",
    "build_site",
    "document_manifest",
    "publish_site",
    "register_consent_text",
]
