"""FastAPI glue of the console: who is logged in, role checks, CSRF checks and page rendering.

Every staff route takes ``ctx: StaffContext = Depends(require(ROLES))``. The dependency refuses an
anonymous browser (redirect to the login form), a user of the wrong role (403) and, on every state-changing
method, a form without this session's CSRF token (403, OWASP synchronizer token pattern). Other domains'
console pages use the same dependency.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.templating import render
from mailservice.tokens import Purpose, TokenError, load, sign
from mailservice.web.security import client_ip, is_head
from mailservice.web.staff import auth
from mailservice.web.staff.auth import ROLE_NAMES, Role

COOKIE = "mailservice_staff"
LOGIN_COOKIE = "mailservice_staff_login"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# No third-party requests, no scripts at all, no framing (clickjacking), forms post only to us. (Every other page
# gets mailservice.web.security's headers; the console's are stricter: no script even by hash, no caching.)
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class StaffContext:
    """The logged-in member of staff of one request."""

    user_id: int
    email: str
    name: str
    position: str
    role: Role
    csrf_token: str
    ip: str
    head: bool = False  # a HEAD run as a GET: nothing is delivered, so nothing is audited (audit.by_staff)

    @property
    def role_name(self) -> str:
        """The role in Russian."""
        return ROLE_NAMES[self.role]

    @property
    def display_name(self) -> str:
        """Name, or the address."""
        return self.name or self.email

    def can(self, roles: frozenset[Role]) -> bool:
        """Whether the user's role is in ``roles`` (templates hide what the user may not use)."""
        return self.role in roles


class NotLoggedIn(Exception):
    """No valid session: the browser is sent to the login form."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class Refused(Exception):
    """A request the console refuses with a page: wrong role, CSRF failure, unknown object."""

    def __init__(self, status_code: int, title: str, message: str = "") -> None:
        super().__init__(title)
        self.status_code = status_code
        self.title = title
        self.message = message


def settings_of(request: Request) -> Settings:
    """The application's settings."""
    settings: Settings = request.app.state.settings
    return settings


def secure_cookies(settings: Settings) -> bool:
    """Cookies get the Secure flag when the service is published over HTTPS."""
    return settings.public_url.lower().startswith("https://")


def session_cookie_value(settings: Settings, token: str) -> str:
    """The cookie value: the raw token, signed so that a forged cookie is refused before any query."""
    return sign(settings, Purpose.staff_session, token)


def session_token(settings: Settings, cookie: str | None) -> str | None:
    """The raw session token in a cookie, or None when it is missing or tampered."""
    if not cookie:
        return None
    try:
        value = load(settings, Purpose.staff_session, cookie)
    except TokenError:
        return None
    return value if isinstance(value, str) else None


def _lookup(settings: Settings, token: str, ip: str, now: dt.datetime) -> StaffContext | None:
    with session_scope(settings) as session:
        loaded = auth.load_session(session, token, now)
        if loaded is None:
            return None
        row, user = loaded
        return StaffContext(
            user_id=user.id,
            email=user.email,
            name=user.name,
            position=user.position,
            role=Role(user.role),
            csrf_token=row.csrf_token,
            ip=ip,
        )


async def current_user(request: Request) -> StaffContext | None:
    """The logged-in user, or None."""
    settings = settings_of(request)
    token = session_token(settings, request.cookies.get(COOKIE))
    if token is None:
        return None
    ctx = await run_in_threadpool(_lookup, settings, token, client_ip(request), utcnow())
    return replace(ctx, head=True) if ctx is not None and is_head(request) else ctx


StaffDependency = Callable[[Request], Awaitable[StaffContext]]


def require(roles: frozenset[Role]) -> StaffDependency:
    """A dependency admitting only a logged-in user whose role is in ``roles``, with a CSRF check on POST."""

    async def staff_user(request: Request) -> StaffContext:
        ctx = await current_user(request)
        if ctx is None:
            raise NotLoggedIn(request.url.path)
        if ctx.role not in roles:
            raise Refused(403, "Доступ запрещён", "Эта страница недоступна для вашей роли.")
        if request.method not in SAFE_METHODS:
            form = await request.form()
            sent = form.get("csrf_token")
            if not isinstance(sent, str) or not auth.tokens_equal(sent, ctx.csrf_token):
                raise Refused(
                    403,
                    "Запрос отклонён",
                    "Форма устарела или отправлена не со страницы консоли. Обновите страницу и повторите.",
                )
        return ctx

    staff_user.roles = roles  # type: ignore[attr-defined]  # read by the route-coverage test
    return staff_user


def secure(response: Response) -> Response:
    """Add the console's security headers to a response."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def content_disposition(filename: str) -> str:
    """A download's Content-Disposition with a UTF-8 file name (RFC 6266, RFC 5987)."""
    return f"attachment; filename*=UTF-8''{quote(filename)}"


def download(data: bytes, filename: str, media_type: str = "application/octet-stream") -> Response:
    """A file to save, never to render: an HTML file from outside must not run in the console's origin."""
    response = Response(data, media_type=media_type, headers={"Content-Disposition": content_disposition(filename)})
    return secure(response)


def stored_file(settings: Settings, sha256: str, gone: str) -> bytes:
    """A file of the blob store, or 410 with ``gone`` when retention has removed it."""
    from mailservice.blobs import BlobStore

    try:
        return BlobStore(settings.blob_dir).get(sha256)
    except (FileNotFoundError, ValueError):
        raise Refused(410, "Файл удалён", gone) from None


def page(
    request: Request, template: str, *, ctx: StaffContext | None, status_code: int = 200, **context: object
) -> HTMLResponse:
    """Render a console page with the shared context (settings, user, navigation)."""
    html = render(
        template,
        settings=settings_of(request),
        user=ctx,
        OPERATE=auth.OPERATE,
        FEEDBACK_VIEW=auth.FEEDBACK_VIEW,
        ADMIN=auth.ADMIN,
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    secure(response)
    return response


def redirect(url: str) -> RedirectResponse:
    """303 See Other after a POST (the browser then GETs the page: no resubmission on reload)."""
    response = RedirectResponse(url, status_code=303)
    secure(response)
    return response


def safe_next(value: str | None) -> str:
    """A post-login target inside the console only (no open redirect)."""
    if value and value.startswith("/staff/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/staff/"


def login_redirect(next_path: str) -> RedirectResponse:
    """Send an anonymous browser to the login form, remembering where it wanted to go."""
    return redirect(f"/staff/login?next={quote(safe_next(next_path))}")
