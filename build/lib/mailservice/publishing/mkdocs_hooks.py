"""MkDocs hooks of the disclosure site (``site/hooks.py`` re-exports them; ``hooks:`` in mkdocs.yml).

- on_config: navigation from ``sections.yml`` (section pages only: documents are listed on their section's page,
  so a site of thousands of documents does not repeat every link on every page); the offline plugin's CDN shim
  replaced by the vendored copy (no request to another host).
- on_files: the generated pages and files (statistics, mailings, open data, QR codes).
- on_env / on_page_context: date filters, the document list of each section page, the way back to the section.

Data for the generated pages comes from ``config.extra["mailservice_site_data"]`` when ``site build`` passed it,
else from the configured database, so plain ``mkdocs build -f mailservice/site/mkdocs.yml`` gives the same site.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import posixpath
from pathlib import Path
from typing import Any

from jinja2 import Environment
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.nav import Navigation
from mkdocs.structure.pages import Page

from mailservice.publishing.generated import FEEDBACK_KEY, QR_NAME, feedback_url, generated_files
from mailservice.publishing.schema import SiteSchema, load_schema
from mailservice.publishing.stats import SiteData
from mailservice.templating import ru_date, ru_short_date

log = logging.getLogger("mkdocs.hooks.mailservice")

DATA_KEY = "mailservice_site_data"
STATE_KEY = "mailservice"
LOCAL_SHIM = "assets/javascripts/iframe-worker-shim.js"


class _State:
    """What one build needs across events: the schema, the files, the build date."""

    def __init__(self, schema: SiteSchema) -> None:
        self.schema = schema
        self.today = dt.date.min
        self.files: Files | None = None
        self.documents: dict[str, list[Page]] = {}
        self.generated: set[str] = set()


def _state(config: MkDocsConfig) -> _State:
    state = config.extra[STATE_KEY]
    assert isinstance(state, _State)
    return state


def site_data(config: MkDocsConfig) -> SiteData:
    """The data passed by ``site build``, or read now from the configured database."""
    data = config.extra.get(DATA_KEY)
    if isinstance(data, SiteData):
        return data
    from mailservice.config import get_settings
    from mailservice.db import utcnow
    from mailservice.publishing.stats import load_site_data

    return load_site_data(get_settings(), now=utcnow())


@event_priority(-100)  # after the offline plugin, whose on_config adds the CDN shim
def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Navigation from the schema, the local worker shim, the mailing lists for the subscription form."""
    schema = load_schema(Path(config.config_file_path).parent)
    polyfills = [str(p) for p in config.extra.get("polyfills", [])]
    # Material's offline plugin points at a CDN copy of iframe-worker; our vendored copy is identical.
    config.extra["polyfills"] = [LOCAL_SHIM if "iframe-worker" in p else p for p in polyfills]
    config.extra["field_labels"] = schema.labels()
    if not config.nav:
        config.nav = [{"Главная": "index.md"}] + [{s.title: f"{s.dir}/index.md"} for s in schema.sections]
    config.extra[STATE_KEY] = _State(schema)
    return config


def on_files(files: Files, *, config: MkDocsConfig) -> Files:
    """Add the generated pages and files (virtual: nothing is written into docs/)."""
    state = _state(config)
    data = site_data(config)
    from mailservice.config import get_settings

    settings = get_settings()
    state.today = data.generated_at.astimezone(settings.tz).date()
    # The form offers what the service accepts: its open lists when the database has them, else sections.yml.
    lists = data.mailing_lists or tuple((m.key, m.title) for m in state.schema.mailing_lists)
    config.extra["mailing_lists"] = [{"key": key, "title": title} for key, title in lists]
    # The consent text and its version come from the mailings domain, which stores the same pair with each
    # consent (152-FZ art. 9: the operator must prove what the person agreed to).
    from mailservice.mailings.consent import render_consent_text, text_version

    consent = render_consent_text(settings)
    config.extra["mailing_consent"] = {"text": consent, "version": text_version(consent)[0]}
    for item in generated_files(
        state.schema,
        data,
        opendata=dict(config.extra.get("opendata") or {}),
        site_url=config.site_url or "",
        today=state.today,
    ):
        existing = files.get_file_from_path(item.path)
        if existing is not None:
            log.warning("Страница %s формируется автоматически: файл в docs/ заменён", item.path)
            files.remove(existing)
        files.append(File.generated(config, item.path, content=item.content))
        state.generated.add(item.path)
    state.files = files
    return files


def _sort_key(page: Page) -> tuple[dt.date, str]:
    published = page.meta.get("published")
    return (published if isinstance(published, dt.date) else dt.date.min, page.title or "")


def on_env(env: Environment, *, config: MkDocsConfig, files: Files) -> Environment:
    """Date filters for the templates; each section's documents, newest first (all pages are read by now)."""
    env.filters["ru_date"] = ru_date
    env.filters["ru_short_date"] = ru_short_date
    env.filters["ms_value"] = ms_value
    state = _state(config)
    documents: dict[str, list[Page]] = {s.dir: [] for s in state.schema.sections}
    for file in files.documentation_pages():
        parts = file.src_uri.split("/")
        page = file.page
        if len(parts) < 2 or parts[-1] == "index.md" or page is None or parts[0] not in documents:
            continue
        if file.src_uri in state.generated:
            continue
        documents[parts[0]].append(page)
    for pages in documents.values():
        pages.sort(key=_sort_key, reverse=True)
    state.documents = documents
    return env


def ms_value(value: object) -> str:
    """A front matter value as a visitor reads it: dates as DD.MM.YYYY, booleans as да/нет."""
    if isinstance(value, bool):
        return "да" if value else "нет"
    if isinstance(value, dt.date):
        return ru_short_date(value)
    if isinstance(value, list):
        return ", ".join(ms_value(v) for v in value)
    return str(value)


def _size(n: int) -> str:
    if n < 1024 * 1024:
        return f"{max(1, round(n / 1024))} КБ"
    return f"{n / (1024 * 1024):.1f} МБ".replace(".", ",")


def _attachments(page: Page, files: Files) -> list[dict[str, str]]:
    items = page.meta.get("attachments") or []
    folder = posixpath.dirname(page.file.src_uri)
    out = []
    for item in items if isinstance(items, list) else []:
        href = item.get("file") if isinstance(item, dict) else item
        if not isinstance(href, str):
            continue
        title = item.get("title") if isinstance(item, dict) else None
        target = files.get_file_from_path(posixpath.normpath(posixpath.join(folder, href)))
        size = ""
        if target is not None and target.abs_src_path and os.path.isfile(target.abs_src_path):
            size = _size(os.path.getsize(target.abs_src_path))
        out.append(
            {
                "href": href,
                "title": str(title or posixpath.basename(href)),
                "format": posixpath.splitext(href)[1].lstrip(".").upper() or "файл",
                "size": size,
            }
        )
    return out


def on_page_context(context: dict[str, Any], *, page: Page, config: MkDocsConfig, nav: Navigation) -> dict[str, Any]:
    """Give a section page its documents, a document its section (the way back), attachments and QR code."""
    state = _state(config)
    parts = page.file.src_uri.split("/")
    section = state.schema.by_dir(parts[0]) if len(parts) > 1 else None
    is_index = section is not None and page.file.src_uri == f"{section.dir}/index.md"
    context["ms_section"] = section
    context["ms_is_index"] = is_index
    context["ms_documents"] = state.documents.get(section.dir, []) if section is not None and is_index else []
    context["ms_section_page"] = None
    context["ms_attachments"] = _attachments(page, state.files) if state.files is not None else []
    context["ms_qr"] = None
    if section is not None and not is_index and state.files is not None:
        index = state.files.get_file_from_path(f"{section.dir}/index.md")
        context["ms_section_page"] = index.page if index is not None else None
    if section is not None and section.key == FEEDBACK_KEY and is_index:
        svg, png = f"{section.dir}/{QR_NAME}.svg", f"{section.dir}/{QR_NAME}.png"
        target = feedback_url(state.schema, config.site_url or "")
        if svg in state.generated and target:
            context["ms_qr"] = {"svg": svg, "png": png, "target": target}
    return context


__all__ = ["DATA_KEY", "ms_value", "on_config", "on_env", "on_files", "on_page_context", "site_data"]
