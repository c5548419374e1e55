"""Public pages of the mailings: subscribe, confirm (double opt-in), unsubscribe (one click, RFC 8058), undo.

Mail scanners (Safe Links, Proofpoint, Mimecast) fetch every link in a message, so no GET changes anything: the
confirmation page confirms through a POST button, and the unsubscribe page withdraws through a POST it submits by
itself (with a plain button when scripts are off). A mail client's RFC 8058 one-click POST to the same URL
(``List-Unsubscribe=One-Click``, urlencoded or multipart, no cookies, no CSRF token) gets 200 and no redirect.
A bad link gets a plain page with status 400 and changes nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.mailings import consent, subscribers
from mailservice.mailings.consent import Evidence, parse_address
from mailservice.mailings.subscribers import LinkError, UnknownList
from mailservice.templating import render
from mailservice.web.security import client_ip

router = APIRouter()

# Token-bearing pages are private to their reader: no caching, no Referer to other sites, no indexing.
PRIVATE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
SENT_MESSAGE = (
    "Если адрес указан верно, на него придёт письмо со ссылкой для подтверждения подписки. "
    "Подписка начнёт действовать только после подтверждения."
)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _page(settings: Settings, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = render(f"web/mailings/{template}", settings=settings, **context)
    return HTMLResponse(html, status_code=status, headers=PRIVATE_HEADERS)


def _bad_link(settings: Settings, error: LinkError) -> HTMLResponse:
    return _page(settings, "bad_link.html", 400, expired=error.expired, contact=consent.contact_address(settings))


def _client(request: Request) -> tuple[str, str]:
    return client_ip(request), request.headers.get("user-agent", "")[:1000]


async def _form(request: Request) -> dict[str, list[str]]:
    """Form fields (urlencoded or multipart) as lists of strings; an unreadable body gives no fields."""
    try:
        form = await request.form()
    except Exception:  # a malformed multipart body must not turn a one-click POST into a 500
        return {}
    fields: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields.setdefault(key, []).append(value)
    return fields


@router.get("/subscribe", response_class=HTMLResponse)
def subscribe_form(request: Request) -> HTMLResponse:
    """The subscription form with the consent text in force."""
    settings = _settings(request)
    with session_scope(settings) as session:
        lists = subscribers.active_lists(session)
        text = consent.current_consent(session, settings)
        return _page(
            settings,
            "subscribe.html",
            lists=lists,
            consent=text,
            source=f"{settings.public_url.rstrip('/')}/subscribe",
            email="",
            error="",
        )


def _subscribe(
    settings: Settings, *, email: str, lists: list[str], agreed: bool, source: str, version: str, ip: str, agent: str
) -> tuple[int, str]:
    """Status and message for a subscribe request; the same for a new, a subscribed and a suppressed address."""
    if not agreed:
        return 400, "Без согласия на обработку адреса подписка невозможна: отметьте согласие."
    address = parse_address(email)
    if address is None:
        return 400, "Адрес электронной почты указан неверно."
    now = utcnow()
    with session_scope(settings) as session:
        try:
            chosen = subscribers.lists_by_slugs(session, lists)
        except UnknownList:
            return 400, subscribers.UNKNOWN_LIST_PUBLIC  # never the names sent back (README "Every page")
        if version:
            text = consent.known_consent(session, version)
            if text is None:
                return 400, "Форма устарела: обновите страницу и отправьте её ещё раз."
        else:
            text = consent.current_consent(session, settings)
        if ip and not subscribers.allow(session, "ip", subscribers.ip_key(ip), settings.mailing_limit_per_ip, now):
            return 429, "Слишком много запросов. Попробуйте через час."
        subscribers.subscribe(
            session,
            settings,
            address=address,
            lists=chosen,
            evidence=Evidence(method="web_form", source=source, ip=ip, user_agent=agent),
            consent_text=text,
            now=now,
        )
    return 200, SENT_MESSAGE


@router.post("/subscribe")
async def subscribe_post(request: Request) -> Response:
    """Take a subscription request from the site form (urlencoded/multipart) or as JSON."""
    settings = _settings(request)
    ip, agent = _client(request)
    as_json = request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"
    if as_json:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"ok": False, "error": "Ожидается объект JSON."}, status_code=400)
        raw_lists = body.get("list", [])
        lists = [str(x) for x in raw_lists] if isinstance(raw_lists, list) else [str(raw_lists)]
        fields = {
            "email": str(body.get("email") or ""),
            "agreed": str(body.get("consent", "")).strip().lower() in ("1", "true"),
            "source": str(body.get("source") or request.headers.get("referer", "")),
            "version": str(body.get("consent_version") or ""),
        }
    else:
        form = await _form(request)
        lists = form.get("list", [])
        fields = {
            "email": (form.get("email") or [""])[0],
            "agreed": (form.get("consent") or [""])[0].strip() == "1",
            "source": (form.get("source") or [""])[0] or request.headers.get("referer", ""),
            "version": (form.get("consent_version") or [""])[0],
        }
    status, message = await run_in_threadpool(
        _subscribe,
        settings,
        email=str(fields["email"]),
        lists=lists,
        agreed=bool(fields["agreed"]),
        source=str(fields["source"])[:2000],
        version=str(fields["version"])[:40],
        ip=ip,
        agent=agent,
    )
    if as_json:
        payload: dict[str, object] = {"ok": status == 200, "message" if status == 200 else "error": message}
        return JSONResponse(payload, status_code=status, headers=PRIVATE_HEADERS)
    if status == 200:
        return _page(settings, "subscribe_sent.html")
    if status == 429:
        return _page(settings, "too_many.html", 429)
    return _page(settings, "form_error.html", status, error=message)


@router.get("/subscribe/confirm/{token}", response_class=HTMLResponse)
def confirm_page(request: Request, token: str) -> HTMLResponse:
    """Show what is being confirmed and a button; a GET (a scanner's) confirms nothing."""
    settings = _settings(request)
    with session_scope(settings) as session:
        try:
            link = subscribers.load_confirm(session, settings, token)
        except LinkError as exc:
            return _bad_link(settings, exc)
        return _page(
            settings,
            "confirm.html",
            lists=subscribers.pending_lists(session, settings, link, utcnow()),
            consent=consent.current_consent(session, settings),
        )


@router.post("/subscribe/confirm/{token}", response_class=HTMLResponse)
async def confirm_post(request: Request, token: str) -> HTMLResponse:
    """Confirm the subscription (idempotent)."""
    settings = _settings(request)
    form = await _form(request)
    version = (form.get("consent_version") or [""])[0][:40]
    ip, agent = _client(request)

    def work() -> HTMLResponse:
        with session_scope(settings) as session:
            text = consent.known_consent(session, version) or consent.current_consent(session, settings)
            try:
                lists = subscribers.confirm(
                    session,
                    settings,
                    token,
                    evidence=Evidence(
                        method="link", source="подтверждение по ссылке из письма", ip=ip, user_agent=agent
                    ),
                    consent_text=text,
                    now=utcnow(),
                )
            except LinkError as exc:
                return _bad_link(settings, exc)
            return _page(settings, "confirmed.html", lists=lists)

    return await run_in_threadpool(work)


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
    """A page that withdraws through a POST it submits by itself; fetching it changes nothing."""
    settings = _settings(request)
    with session_scope(settings) as session:
        try:
            subscribers.load_unsubscribe(session, settings, token)
        except LinkError as exc:
            return _bad_link(settings, exc)
    return _page(settings, "unsubscribe.html")


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe_post(request: Request, token: str) -> HTMLResponse:
    """Withdraw consent: the page's own POST, or a mail client's RFC 8058 one-click POST. Idempotent; 200."""
    settings = _settings(request)
    form = await _form(request)
    one_click = (form.get("List-Unsubscribe") or [""])[0].strip().lower() == "one-click"
    ip, agent = _client(request)
    evidence = Evidence(
        method="one_click" if one_click else "link",
        source="List-Unsubscribe-Post (RFC 8058)" if one_click else "ссылка «Отписаться» в письме",
        ip=ip,
        user_agent=agent,
    )
    try:
        result = await run_in_threadpool(subscribers.withdraw_by_link, settings, token, evidence=evidence)
    except LinkError as exc:
        return _bad_link(settings, exc)
    with session_scope(settings) as session:
        text = consent.current_consent(session, settings)
    return _page(
        settings,
        "unsubscribed.html",
        list_title=result.list_title,
        can_undo=result.can_undo,
        undo_url=f"/unsubscribe/{token}/undo",
        consent=text,
    )


@router.post("/unsubscribe/{token}/undo", response_class=HTMLResponse)
async def undo_post(request: Request, token: str) -> HTMLResponse:
    """Undo a withdrawal: a fresh request that needs a fresh confirmation by e-mail."""
    settings = _settings(request)
    form = await _form(request)
    if (form.get("consent") or [""])[0].strip() != "1":
        return _page(settings, "form_error.html", 400, error="Отметьте согласие, чтобы подписаться снова.")
    version = (form.get("consent_version") or [""])[0][:40]
    ip, agent = _client(request)

    def work() -> HTMLResponse:
        with session_scope(settings) as session:
            text = consent.known_consent(session, version) or consent.current_consent(session, settings)
            try:
                result = subscribers.resubscribe(
                    session,
                    settings,
                    token,
                    evidence=Evidence(method="web_form", source="отмена отписки", ip=ip, user_agent=agent),
                    consent_text=text,
                    now=utcnow(),
                )
            except LinkError as exc:
                return _bad_link(settings, exc)
            return _page(settings, "resubscribe_sent.html", sent=result is not None)

    return await run_in_threadpool(work)
