"""Issue 14, low: ``POST /history`` answered faster for unknown addresses than for clients.

The form now does the same work for every address (one row for the worker, no look-up, no outbox row), so its
answer, status and effects cannot tell a client from a stranger; the worker mails the link later, only to an
address proven for its client. No timing is measured: the test compares what the two requests did.
"""

from __future__ import annotations

from mailservice.config import Settings
from tests.console_support import client_for, drain, text_of
from tests.mailfactory import citizen_mail
from tests.security.identity_support import deliver, mail_to, outbox_count, run_worker_once
from tests.servers import Sink

CLIENT = "ivanov@example.ru"
STRANGER = "stranger@example.org"


def test_known_and_unknown_addresses_get_the_same_answer_and_the_same_work(settings: Settings, sink: Sink) -> None:
    deliver(settings, citizen_mail(sender=CLIENT))
    drain(settings)
    # The client answers our acknowledgement: the address is proven, the case in which a link is sent.
    [ack] = mail_to(sink, CLIENT)
    deliver(
        settings,
        citizen_mail(
            sender=CLIENT, subject="Re: спасибо", body="Получил.", in_reply_to=str(ack["Message-ID"]).strip("<>")
        ),
    )
    sink.clear()
    http = client_for(settings)
    answers = []
    for address in (CLIENT, STRANGER):
        before = outbox_count(settings)
        response = http.post("/history", data={"email": address})
        answers.append((response.status_code, response.text, outbox_count(settings) - before))
    assert answers[0] == answers[1]
    assert answers[0][0] == 200 and answers[0][2] == 0  # neither queued anything while the form answered
    run_worker_once(settings)  # later, the worker: the link to the proven address only
    assert [m for m in mail_to(sink, CLIENT) if "/history/download/" in text_of(m)]
    assert mail_to(sink, STRANGER) == []
