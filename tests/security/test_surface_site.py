"""Issue 14: script injection into the public site. A mailing list's title went unescaped into
site/overrides/subscribe.html and Chromium ran it; MkDocs templates do not autoescape, and Material prints a
document's front matter title as it is. The site is built here from hostile data and checked inert: parsed, and in
Chromium."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from jinja2 import Environment, nodes

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.mailings import subscribers
from mailservice.publishing.build import build_site
from mailservice.publishing.scaffold import create_document
from mailservice.publishing.schema import load_schema
from mailservice.publishing.stats import MailingRow, load_site_data
from tests.browser import chromium
from tests.test_site import TODAY, complete_site

OVERRIDES = Path(__file__).resolve().parents[2] / "mailservice" / "site" / "overrides"

# Each sets window.msPwned if it ever runs.
LIST_TITLE = "Новости <script>window.msPwned='list'</script>"
DOC_TITLE = '"><img src=x onerror="window.msPwned=\'title\'">Приказ'
DOC_NUMBER = "<svg onload=\"window.msPwned='number'\"></svg>"
MAILING_SUBJECT = "[Подробнее](javascript:window.msPwned='link') <b onmouseover=\"window.msPwned='b'\">x</b>"
BAD_ATTACHMENT = "javascript:window.msPwned='attachment'"


# Every expression of our templates is escaped --------------------------------------------------------------------


def _escaped(node: nodes.Node) -> bool:
    """An output expression that cannot carry markup: escaped last, or one of the few known-safe forms."""
    if isinstance(node, nodes.Filter) and node.name in ("e", "escape"):
        return True
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name) and node.node.name == "super":
        return True  # the parent block (Material's own template)
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr) and node.node.attr == "t":
        return True  # lang.t(): the theme's own translations
    # The page's body: Markdown rendered by MkDocs (written by staff, generated pages escape their data).
    return isinstance(node, nodes.Getattr) and node.attr == "content" and getattr(node.node, "name", "") == "page"


def test_every_expression_of_the_site_templates_is_escaped() -> None:
    env = Environment()
    found = []
    for path in sorted(OVERRIDES.rglob("*.html")):
        tree = env.parse(path.read_text(encoding="utf-8"))
        for output in tree.find_all(nodes.Output):
            for expression in output.nodes:
                if isinstance(expression, nodes.TemplateData):
                    continue
                found.append(path.name)
                assert _escaped(expression), f"{path.relative_to(OVERRIDES)}:{expression.lineno} is not escaped"
    assert len(found) > 20  # the walk saw the templates' expressions


# A site built from hostile data ----------------------------------------------------------------------------------


@pytest.fixture
def hostile_site(settings: Settings, tmp_path: Path) -> Path:
    """The real site with a hostile mailing list title (from the database), document title and front matter, an
    attachment link with a scheme, and a hostile mailing subject; built into tmp_path/built."""
    with session_scope(settings) as session:
        subscribers.create_list(session, "news", LIST_TITLE, "Новости департамента")
    site = complete_site(tmp_path)
    schema = load_schema(site)
    section = schema.by_key("legal_acts")
    assert section is not None
    document = create_document(
        site / "docs",
        section,
        DOC_TITLE,
        today=TODAY,
        values={"number": DOC_NUMBER, "adopted": TODAY, "kind": "принят"},
    ).page
    text = document.read_text(encoding="utf-8")
    document.write_text(
        text.replace("\n---\n", f'\nattachments:\n  - file: "{BAD_ATTACHMENT}"\n    title: Текст\n---\n', 1),
        encoding="utf-8",
    )
    data = load_site_data(settings, now=utcnow())
    assert data.mailing_lists == (("news", LIST_TITLE[:200]),)  # the title comes from the database
    data = dataclasses.replace(
        data, mailings=(MailingRow(dt.date(2026, 11, 2), MAILING_SUBJECT, 3),), has_mailings=True
    )
    out = tmp_path / "built"
    build_site(site, out, data=data)
    return out


DANGEROUS_SCHEMES = ("javascript:", "vbscript:", "data:text/html")


def test_built_site_is_inert(hostile_site: Path) -> None:
    pages = sorted(hostile_site.rglob("*.html"))
    assert len(pages) > 10
    seen = {"list": False, "title": False, "number": False, "subject": False}
    for path in pages:
        soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
        for element in soup.find_all(True):
            for name, value in element.attrs.items():
                where = f"{path.relative_to(hostile_site)} <{element.name} {name}>"
                assert not name.lower().startswith("on"), where
                text = " ".join(value) if isinstance(value, list) else str(value)
                assert not text.strip().lower().startswith(DANGEROUS_SCHEMES), where
            if element.name == "script":
                assert "msPwned" not in element.get_text(), path
        body = soup.get_text()
        seen["list"] |= LIST_TITLE in body
        seen["title"] |= DOC_TITLE in body
        seen["number"] |= DOC_NUMBER in body
        seen["subject"] |= "javascript:window.msPwned='link'" in body
    # The hostile texts are on the site, shown as text.
    assert seen == {"list": True, "title": True, "number": True, "subject": True}


@pytest.mark.browser
def test_no_script_runs_in_chromium(hostile_site: Path) -> None:
    targets = ["podpiska/index.html", "pravovye-akty/index.html", "statistika/rassylki.html"]
    targets += [
        str(p.relative_to(hostile_site)) for p in (hostile_site / "pravovye-akty").glob(f"{TODAY:%Y-%m-%d}-*.html")
    ]
    assert len(targets) == 4
    with chromium() as browser:
        page = browser.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        for target in targets:
            page.goto((hostile_site / target).as_uri())
            page.wait_for_load_state("load")
            # What an attacker wants hovered or focused: every element gets the events (inline handlers would run).
            page.evaluate(
                "document.querySelectorAll('*').forEach(e => ['mouseover', 'focus'].forEach("
                "t => e.dispatchEvent(new Event(t, {bubbles: true}))))"
            )
            assert page.evaluate("window.msPwned === undefined"), (target, page.evaluate("window.msPwned"))
        assert dialogs == []
