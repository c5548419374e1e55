"""Which letters may wait unregistered: advertising and spam, decided by strong signals only (pure).

Every letter a person writes is registered within three days whatever it is about (59-FZ art. 8 p. 2, 8-FZ
art. 18); a classifier's "other" decides nothing. Only mail with no request in it at all may be held, and then in a
visible staff queue with its registration date counting (see README "Register first"). Holding a citizen's letter
is the worse mistake, so the rule is conservative:

* a letter that asks, complains or names a place (``_REQUEST``: «прошу», «жалоба», «помогите», «?», «подскажите»,
  «нужна консультация», «ул.», ...) is never held, nor is a short letter without links (a telegraphic «Оборваны
  провода» has neither);
* otherwise it is held only on two independent strong signals: a mass mailer's headers with advertising words or
  links, or advertising vocabulary (two distinct stems) with links or prices, or one stem with links and prices.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from mailservice.intake.wording import ASKS

__all__ = ["asks_something", "hold_reasons"]

# Headers mass-mailing services add to every copy (list mail proper, List-Id/List-Unsubscribe/Precedence, never
# reaches here: triage ignores it as automatic).
_BULK_HEADER_NAMES = re.compile(
    r"^(x-campaign\S*|x-mailchimp\S*|x-mc-user|x-sg-eid|x-sg-id|x-mailgun-\S+|x-unisender\S*|x-sendpulse\S*|"
    r"x-sendsay\S*|x-mindbox\S*|x-emarsys\S*|x-dashamail\S*|x-mailru-msgtype|x-report-abuse|x-csa-complaints|"
    r"x-mailer-sid|x-newsletter\S*|x-marketing\S*|x-bulk\S*)$"
)
_BULK_MAILERS = re.compile(
    r"unisender|sendsay|sendpulse|mailchimp|mailerlite|getresponse|dashamail|mindbox|estismail|notisend|"
    r"esputnik|mailigen|sendgrid|mass ?mail|bulk ?mail|рассыльщик",
    re.IGNORECASE,
)
_ADVERTISING = {
    "скидки": r"скидк\w*",
    "распродажа": r"распродаж\w*",
    "спецпредложение": r"спецпредложен\w*|специальное предложение|выгодн\w+ предложен\w*",
    "коммерческое предложение": r"коммерческ\w+ предложен\w*",
    "прайс": r"прайс\w*",
    "купить/заказать": r"купить|закажите|заказать|оформите заказ|в наличии",
    "низкие цены": r"низк\w+ цен\w*|лучш\w+ цен\w*|цен\w* от",
    "бесплатно": r"бесплатн\w*",
    "оптом": r"оптом|оптов\w+",
    "продвижение сайтов": r"продвижени\w+ сайт\w*|раскрутк\w*",
    "SEO и рост продаж": r"seo\b|увелич\w+ продаж\w*|лидогенерац\w*",
    "базы адресов": r"баз\w* (данных|клиентов|адресов|email|e-mail)|рассылк\w+ по баз\w*",
    "кредиты": r"кредит\w*|займ\w*|микрозайм\w*",
    "ставки и казино": r"казино|ставк\w+ на спорт|букмекер\w*|джекпот\w*",
    "заработок": r"заработ\w+|пассивн\w+ доход\w*|криптовалют\w*|биткоин\w*",
    "промокод": r"промокод\w*|бонус\w*|акционн\w+",
    "успейте": r"успейте|только сегодня|ограниченное предложение|осталось \d+ (дн|час)",
    "звоните": r"звоните|позвоните нам|пишите в (whatsapp|telegram|ватсап|телеграм)",
}
# One pass over the text: each term is a named group (g0, g1, ...), the text is lower-cased first.
_NAMES = list(_ADVERTISING)
_ADVERTISING_RX = re.compile("|".join(rf"\b(?P<g{i}>{pattern})" for i, pattern in enumerate(_ADVERTISING.values())))
_LINK = re.compile(r"https?://|\bwww\.", re.IGNORECASE)
_PRICE = re.compile(r"\d[\d\s]*(?:[.,]\d+)?\s*(?:руб\w*|р\.|₽|\$|usd|eur|€)|\d+\s*%", re.IGNORECASE)
# What a citizen's letter says and an advertisement does not: a request, a question (wording.ASKS: «?»,
# «подскажите», «как быть», «нужна консультация», tryout T1/T6), a complaint, a place. An advertisement's rhetorical
# «Нужен кредит?» is registered too: registering an advertisement is the lesser mistake.
_REQUEST = re.compile(
    rf"{ASKS}|\b(прошу|просим|просьба|жалоб\w*|обращаюсь|обращени\w*|заявлени\w*|помогите|разберитесь|примите меры|"
    r"ответьте|разъясните|сообщите|предоставьте|проверьте|почему|когда|сколько можно|мой|моего|моей|моему|"
    r"наш дом|нашем дом\w*|нашей улиц\w*|ул\.|улиц\w+|пр-т|проспект\w*|переул\w*|дом №|д\. ?\d|кв\. ?\d|"
    r"участ\w+ №|кадастров\w+ номер)"
)
# A short letter without a link is a citizen's telegram («Ремонт дороги»), never an advertisement we may hold.
_SHORT = 200


def asks_something(subject: str, text: str) -> bool:
    """Whether the letter asks, complains or names a place: what a citizen's letter says and an advertisement not."""
    return bool(_REQUEST.search(f"{subject}\n{text}".lower()))


def _bulk_headers(headers: Mapping[str, str]) -> list[str]:
    found = [name for name in headers if _BULK_HEADER_NAMES.match(name.lower())]
    mailer = headers.get("x-mailer", "")
    if mailer and _BULK_MAILERS.search(mailer):
        found.append(f"x-mailer: {mailer[:40]}")
    return found


def hold_reasons(
    subject: str,
    text: str,
    html: str | None,
    headers: Mapping[str, str] | Callable[[], Mapping[str, str]],
) -> tuple[str, ...]:
    """Why this letter looks like advertising with no request in it (Russian, for staff); empty: register it.

    ``headers`` maps lower-case header names to values (or makes that map: it is read only when the text leaves
    the question open); ``html`` is read for links only.
    """
    if asks_something(subject, text):
        return ()
    words = f"{subject}\n{text}".lower()
    links = len(_LINK.findall(words)) + (len(_LINK.findall(html)) if html else 0)
    if links == 0 and len(text) < _SHORT:
        return ()
    bulk = _bulk_headers(headers() if callable(headers) else headers)
    found = {match.lastgroup for match in _ADVERTISING_RX.finditer(words)}
    advertising = [name for i, name in enumerate(_NAMES) if f"g{i}" in found]
    prices = bool(_PRICE.search(words))
    held = (
        (bool(bulk) and (bool(advertising) or links > 0))
        or (len(advertising) >= 2 and (links > 0 or prices))
        or (len(advertising) == 1 and links > 0 and prices)
    )
    if not held:
        return ()
    reasons: list[str] = []
    if bulk:
        reasons.append("заголовки массовой рассылки: " + ", ".join(bulk[:3]))
    if advertising:
        reasons.append("рекламная лексика: " + ", ".join(advertising[:5]))
    if links:
        reasons.append(f"ссылок: {links}")
    if prices:
        reasons.append("цены или проценты скидки")
    return tuple(reasons)
