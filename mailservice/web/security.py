"""What every HTTP answer of the service shares: security headers, the client's address, error pages.

- Headers (OWASP Secure Headers): a Content-Security-Policy that allows no script but the inline scripts of our
  own templates, listed by their SHA-256 (CSP Level 3, "hash-source"); no framing (``frame-ancestors 'none'`` and
  ``X-Frame-Options: DENY``); ``nosniff``; no Referer (links carry tokens). A route that sets its own value keeps
  it (the console's ``same-origin``).
- The client's address: the connection's peer, unless the peer is one of ``TRUSTED_PROXIES``; then the right-most
  address of X-Forwarded-For that is not a trusted proxy (each proxy appends the address it saw). uvicorn is
  configured from the same setting (:func:`server_config`), so the two never disagree.
- Bad input (FastAPI's 422) gets a Russian page for a browser and a JSON answer without the input for a program;
  an id or number out of range in a path is "not found".
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailservice.config import Settings
from mailservice.templating import TEMPLATES_DIR, render

AnyResponse = TypeVar("AnyResponse", bound=Response)

# The largest id a database row can have (BIGINT, SQLite INTEGER): a bigger number in a path is not found.
MAX_DB_ID = 2**63 - 1
# An id in a path: out of range is "not found" (see validation_error), never a database error.
DbId = Annotated[int, Path(ge=1, le=MAX_DB_ID)]


def parse_db_id(value: str) -> int | None:
    """An id typed into a form, or None when it is not a number a row could have (pure)."""
    value = value.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        return None
    number = int(value)
    return number if 1 <= number <= MAX_DB_ID else None


_SCRIPT_RE = re.compile(r"<script(\s[^>]*)?>(.*?)</script>", re.DOTALL | re.IGNORECASE)


@lru_cache(maxsize=1)
def inline_script_hashes() -> tuple[str, ...]:
    """CSP hash sources of every inline script in templates/web (they must be static text to be hashed)."""
    hashes = set()
    for path in sorted((TEMPLATES_DIR / "web").rglob("*.html")):
        for attributes, body in _SCRIPT_RE.findall(path.read_text(encoding="utf-8")):
            if "src=" in (attributes or ""):
                continue
            if "{{" in body or "{%" in body:
                raise RuntimeError(f"{path}: an inline script must be static text to be listed in the CSP")
            digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
            hashes.add(f"'sha256-{digest}'")
    return tuple(sorted(hashes))


def content_security_policy() -> str:
    """The policy of every page: nothing from other hosts, scripts only by hash, no framing, forms to us."""
    scripts = " ".join(inline_script_hashes()) or "'none'"
    return (
        f"default-src 'none'; script-src {scripts}; style-src 'unsafe-inline'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


def security_headers() -> dict[str, str]:
    """The headers every answer gets unless its route set its own."""
    return {
        "Content-Security-Policy": content_security_policy(),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def secure_public(response: AnyResponse) -> AnyResponse:
    """Set the public pages' headers on a response, and no caching: their links carry signed tokens (a status page,
    a history download). Set here, not left to :class:`SecurityHeaders`, so that nothing in between replaces them."""
    for name, value in security_headers().items():
        response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    return response


class SecurityHeaders:
    """ASGI middleware: add :func:`security_headers` to every HTTP answer, error pages included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in security_headers().items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _value in headers}
                headers += [(name, value) for name, value in self.headers if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# The client's address ------------------------------------------------------------------------------------------


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def is_trusted(address: str, trusted: Sequence[str]) -> bool:
    """Whether ``address`` is one of the trusted proxies (addresses or networks) (pure)."""
    ip = _ip(address)
    if ip is None:
        return False
    return any(ip in ipaddress.ip_network(item, strict=False) for item in trusted)


def forwarded_client(peer: str, forwarded_for: Sequence[str], trusted: Sequence[str]) -> str:
    """The client's address given the connection's peer and the X-Forwarded-For values (pure).

    Only a trusted peer's header counts, read from the right: the first address that is not a trusted proxy is
    the client (the addresses to its left were written by the client itself and prove nothing).
    """
    if not trusted or not is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop, trusted):
            ip = _ip(hop)
            return str(ip) if ip is not None else hop[:64]
    return peer


# The scope key HeadAsGet (web/app.py) sets when it runs a HEAD as a GET: the route sees GET, and this says so.
HEAD_SCOPE_KEY = "mailservice.head"


def is_head(request: Request) -> bool:
    """Whether the request is a HEAD answered as a GET: nothing of the content reaches the client (RFC 9110
    9.3.2), so nothing was downloaded, viewed or printed and nothing of the kind is counted or audited."""
    return bool(request.scope.get(HEAD_SCOPE_KEY))


def client_ip(request: Request) -> str:
    """The client's address (see the module's docstring); used for limits and the audit log."""
    peer = request.client.host if request.client else ""
    settings: Settings = request.app.state.settings
    return forwarded_client(peer, request.headers.getlist("x-forwarded-for"), settings.trusted_proxies)


def is_loopback_client(request: Request) -> bool:
    """Whether the request comes from this machine itself, and not through a proxy that is not trusted."""
    settings: Settings = request.app.state.settings
    peer = request.client.host if request.client else ""
    if not is_trusted(peer, settings.trusted_proxies) and (
        "x-forwarded-for" in request.headers or "forwarded" in request.headers
    ):
        return False  # a local proxy passing on someone else's request
    ip = _ip(client_ip(request))
    return ip is not None and ip.is_loopback


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy options from ``TRUSTED_PROXIES``: by default uvicorn trusts X-Forwarded-For from 127.0.0.1,
    so that any local process could claim any address (its ``forwarded_allow_ips``)."""
    return {
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": ",".join(settings.trusted_proxies) or "",
    }


# Error pages ---------------------------------------------------------------------------------------------------

_FIELD_NAMES = {"path": "адресе страницы", "query": "адресе страницы", "body": "форме", "header": "заголовках"}


def wants_html(request: Request) -> bool:
    """Whether the client is a browser (or a form post) rather than a program that wants JSON."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        return False
    accept = request.headers.get("accept", "")
    return "text/html" in accept or content_type in ("application/x-www-form-urlencoded", "multipart/form-data")


def error_page(request: Request, status_code: int, title: str, text: str) -> Response:
    """A Russian error page for a browser, a short JSON for a program; never the input that was sent."""
    if wants_html(request):
        settings: Settings = request.app.state.settings
        html = render("web/error.html", settings=settings, title=title, text=text)
        return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})
    return JSONResponse({"detail": title, "message": text}, status_code=status_code)


async def validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's 422: a value in the path out of range is "not found"; bad form or query values stay 422."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(error.get("loc", ("",))[0] == "path" for error in errors):
        return error_page(request, 404, "Страница не найдена", "Проверьте адрес страницы.")
    where = sorted({_FIELD_NAMES.get(str(error.get("loc", ("body",))[0]), "запросе") for error in errors})
    return error_page(
        request,
        422,
        "Неверные данные",
        f"Значения в {' и '.join(where)} не подходят. Вернитесь назад, исправьте их и отправьте снова.",
    )


_HTTP_ERRORS = {
    404: ("Страница не найдена", "Проверьте адрес страницы."),
    405: ("Действие недоступно", "Эта страница не принимает такой запрос."),
}


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's HTTP errors (404 of an unknown address, 405): a Russian page for a browser."""
    assert isinstance(exc, StarletteHTTPException)
    title, text = _HTTP_ERRORS.get(exc.status_code, ("Запрос не выполнен", "Повторите попытку позже."))
    response = error_page(request, exc.status_code, title, text)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def out_of_range(request: Request, exc: Exception) -> Response:
    """A number too large for the database (an id of 2^63, a year 0 after a time zone shift): bad input, not 500."""
    return error_page(request, 400, "Неверные данные", "Значение вне допустимого диапазона.")


# A path segment that is a signed token (itsdangerous: base64url parts joined by dots, 20 characters and more).
_TOKEN_SEGMENT = re.compile(r"(?<=/)[A-Za-z0-9_-]*\.[A-Za-z0-9_.-]{20,}")


class HideTokens(logging.Filter):
    """Keep the tokens of signed links out of the access log: a status link never expires by itself and opens a
    citizen's request and answer, and the log goes to journald, readable by more people than the data (tryout of
    7 December, a new administrator)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn's access record: (client, method, path with query, HTTP version, status).
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], _TOKEN_SEGMENT.sub("…", args[2]), *args[3:])
        return True


def install(app: FastAPI) -> None:
    """Add the headers middleware and the error handlers to the application, and hide tokens from the access
    log."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(existing, HideTokens) for existing in access.filters):
        access.addFilter(HideTokens())
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(OverflowError, out_of_range)
