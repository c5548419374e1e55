"""The console's registration form registers once per page load (defect V4), also when two submissions of it
arrive at the same moment (two presses, a browser's resend while the first is still being written)."""

from __future__ import annotations

import threading

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.web.staff import once


def test_two_submissions_of_one_form_at_once_create_one(settings: Settings) -> None:
    token = once.new_token(settings)
    outcome: list[object] = []

    def second() -> None:
        try:
            with session_scope(settings) as session:
                once.claim(session, settings, token, "request_register", utcnow())
            outcome.append("claimed again")
        except once.AlreadyUsed as used:
            outcome.append(used.object_id)

    thread = threading.Thread(target=second)
    with session_scope(settings) as first:
        once.claim(first, settings, token, "request_register", utcnow()).object_id = 41
        first.flush()
        # The second submission starts while the first is not committed: PostgreSQL makes its insert wait for the
        # first transaction, SQLite its BEGIN IMMEDIATE; either way it then sees the first's row.
        thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the second submission did not finish within 120 s"
    assert outcome == [41]


def test_a_new_page_load_is_a_new_form(settings: Settings) -> None:
    assert once.new_token(settings) != once.new_token(settings)
    with session_scope(settings) as session:
        once.claim(session, settings, once.new_token(settings), "request_register", utcnow())
        once.claim(session, settings, once.new_token(settings), "request_register", utcnow())
