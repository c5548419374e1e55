"""Telling subscribers about new documents after a publication: one campaign per mailing list concerned.

Only the mailings domain sends (consent is checked there again for each recipient at the moment of sending, seed
004 p. 12); this module writes the campaign text and asks it to create and start the campaign.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from mailservice.config import Settings
from mailservice.publishing.build import DocumentInfo
from mailservice.publishing.schema import SiteSchema
from mailservice.templating import render


class NotifyError(ValueError):
    """The notification cannot be made as asked; the message is Russian."""


@dataclass(frozen=True)
class CampaignDraft:
    """A campaign about new documents for one list: subject and text (a mailings template)."""

    list_slug: str
    subject: str
    text: str


def document_url(site_url: str, path: str) -> str:
    """The public address of a document page (directory URLs are off: x.md -> x.html)."""
    return f"{site_url.rstrip('/')}/{path[:-3]}.html" if path.endswith(".md") else f"{site_url.rstrip('/')}/{path}"


def draft_campaigns(documents: Sequence[DocumentInfo], schema: SiteSchema, *, site_url: str) -> list[CampaignDraft]:
    """One draft per mailing list whose sections got new documents (sections without a list tell no one)."""
    by_list: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for doc in documents:
        section = schema.by_key(doc.category)
        if section is None or section.mailing_list is None:
            continue
        # The campaign text is itself a template of the mailings domain: titles must not be read as Jinja.
        title = doc.title.replace("{", "(").replace("}", ")")
        by_list[section.mailing_list].append((section.title, title, document_url(site_url, doc.path)))
    drafts = []
    for slug, items in sorted(by_list.items()):
        subject = "Новые документы на сайте департамента" if len(items) > 1 else "Новый документ на сайте департамента"
        text = render("site/new_documents_mail.txt", items=items)
        drafts.append(CampaignDraft(list_slug=slug, subject=subject, text=text))
    return drafts


def start_campaigns(settings: Settings, drafts: Sequence[CampaignDraft], *, now: dt.datetime, actor: str) -> list[int]:
    """Create and start each campaign (deliveries go to consenting subscribers only); their ids."""
    from mailservice.db import session_scope
    from mailservice.mailings import campaigns
    from mailservice.mailings.render import TemplateRefused
    from mailservice.mailings.subscribers import UnknownList

    ids = []
    try:
        with session_scope(settings) as session:
            for draft in drafts:
                campaign = campaigns.create(
                    session,
                    settings,
                    list_slug=draft.list_slug,
                    subject=draft.subject,
                    text=draft.text,
                    template_name="site/new_documents_mail.txt",
                    created_by=actor,
                )
                campaigns.start(session, settings, campaign.id, now)
                ids.append(campaign.id)
    except (UnknownList, TemplateRefused, campaigns.CampaignError) as exc:
        raise NotifyError(f"рассылка о новых документах не создана: {exc}") from exc
    return ids


__all__ = ["CampaignDraft", "NotifyError", "document_url", "draft_campaigns", "start_campaigns"]
