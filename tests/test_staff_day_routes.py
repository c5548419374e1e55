"""Every console route of issue 17 checks its role: anonymous visitors go to the login page, other roles get 403."""

from __future__ import annotations

import re

from mailservice.config import Settings
from mailservice.web.staff.auth import FEEDBACK_VIEW, OPERATE, Role
from mailservice.web.staff.feedback_console import router as feedback_router
from mailservice.web.staff.notify import router as notify_router
from mailservice.web.staff.reports import router as reports_router
from tests.console_support import add_staff, client_for, login, mail_request

ROUTERS = (reports_router, notify_router, feedback_router)


def _routes() -> list[tuple[str, str, frozenset[Role]]]:
    found = []
    for router in ROUTERS:
        for route in router.routes:
            roles = [getattr(d.call, "roles", None) for d in route.dependant.dependencies]  # type: ignore[attr-defined]
            guarded = [r for r in roles if r is not None]
            assert len(guarded) == 1, f"{route.path} has no role check"  # type: ignore[attr-defined]
            for method in route.methods:  # type: ignore[attr-defined]
                found.append((method, route.path, guarded[0]))  # type: ignore[attr-defined]
    return found


def test_new_console_routes_check_roles(lite_settings: Settings) -> None:
    routes = _routes()
    assert {roles for _m, _p, roles in routes} == {OPERATE, FEEDBACK_VIEW}
    request_id = mail_request(lite_settings)
    ids = {"request_id": request_id, "response_id": 1, "fmt": "xlsx"}

    def url(path: str) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)

    anonymous = client_for(lite_settings)
    for method, path, _roles in routes:
        response = anonymous.request(method, url(path), data={"csrf_token": "x"} if method == "POST" else None)
        assert response.status_code == 303 and response.headers["location"].startswith("/staff/login"), path
    for role in (Role.publisher, Role.mailing_manager):
        add_staff(lite_settings, f"{role.value}@dizo.test", role)
        http = client_for(lite_settings)
        csrf = login(http, f"{role.value}@dizo.test")
        for method, path, roles in routes:
            if role in roles:
                continue
            response = http.request(method, url(path), data={"csrf_token": csrf} if method == "POST" else None)
            assert response.status_code == 403, (role, method, path)
            assert "Иванов" not in response.text
