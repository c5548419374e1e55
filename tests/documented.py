"""Values the README documents, written here as the README states them (never read from the code under test).

Each value carries the README's phrase that states it; ``tests/test_documented.py`` checks that every phrase is
still in the README, so a test comparing with these values compares with the documentation. A limit multiplied by ten
in the code then fails the tests that use it instead of passing with it.
"""

from __future__ import annotations

import datetime as dt

# Staff login ("Security model", "Limits").
LOGIN_FREE_FAILURES = 5
LOGIN_FIRST_WAIT = dt.timedelta(minutes=1)
LOGIN_FAILURES_PER_ADDRESS = 20
LOGIN_ADDRESS_WINDOW = dt.timedelta(minutes=15)
LOGIN_WAITS = tuple(dt.timedelta(minutes=m) for m in (1, 2, 4, 8, 15))  # after the free failures, capped
LOGIN_MEMORY = dt.timedelta(hours=24)
LOGIN_ATTEMPTS_KEPT = dt.timedelta(days=30)
SESSION_IDLE = dt.timedelta(hours=8)
SESSION_MAX = dt.timedelta(hours=12)
SESSION_TOUCH = dt.timedelta(minutes=1)
PASSWORD_MIN_CHARS = 10
PASSWORD_MAX_CHARS = 1024
# What `mailservice staff list` says when there are no accounts ("Staff console, history on request, ...").
STAFF_LIST_EMPTY = "Учётных записей сотрудников нет"

# History on request ("Staff console, history on request, feedback, retention" and "Limits").
HISTORY_ONE_EXPORT_PER = dt.timedelta(hours=6)
HISTORY_LINK_VALID = dt.timedelta(days=7)

# Joining a request whose typed address is a client's ("Security model", "How an address is proven").
CLAIM_LINK_VALID = dt.timedelta(days=30)

# Mailings ("Mailings with consent": settings).
SUBSCRIBE_LIMIT_PER_ADDRESS_HOUR = 3
SUBSCRIBE_LIMIT_PER_IP_HOUR = 30

# The consent log ("Mailings with consent"): evidence cut at these lengths.
CONSENT_SOURCE_CHARS = 2000
CONSENT_USER_AGENT_CHARS = 1000
CONSENT_DETAIL_CHARS = 2000

# Identity checks in person ("Security model").
IDENTITY_NOTE_CHARS = 2000

# Acknowledgements and the anonymous feedback form ("Settings", "Limits").
ACK_LIMIT_PER_HOUR = 5
FEEDBACK_LIMIT_PER_IP_HOUR = 10

# Letters forwarded as attachments ("Limits"): their text read, this much of it, forwards this deep.
FORWARDED_TEXT_CHARS = 20_000
FORWARDED_LEVELS = 3

# The inbound SMTP/LMTP receiver ("Limits"): the longest line taken, CRLF included.
RECEIVER_LINE_BYTES = 2**20

# The console's «Карантин» page ("How it works"): letters a page.
QUARANTINE_PAGE = 50

# The README's own wording of each value above (whitespace-normalised substrings of README.md).
README_PHRASES = (
    "5 failed logins to one account from one address are free; after them that address waits 1, 2, 4, 8 minutes",
    "20 failures from one address in 15 minutes",
    "then 15 minutes after its last failure",
    "failures are remembered 24 hours",
    "Login attempts (account, address, time, outcome) are kept 30 days",
    "with no accounts yet it says «Учётных записей сотрудников нет» and how to add the first",
    "A session ends 8 hours after the last page view and 12 hours after the login (a page view counts at most once a"
    " minute); passwords are 10 to 1024 characters",
    "History: one export per 6 hours",
    "a signed download link (valid 7 days, one export per 6 hours)",
    "`MAILING_LIMIT_PER_ADDRESS` (3 subscription requests per address per hour)",
    "`MAILING_LIMIT_PER_IP` (30 subscription requests per IP address per hour)",
    "`ACK_LIMIT_PER_HOUR` (5) per hour",
    "10 ratings per address per hour (`FEEDBACK_LIMIT_PER_IP`)",
    "the source page at 2,000 characters, the user agent at 1,000, details at 2,000",
    "a note on the check is kept up to 2,000 characters",
    "«Это моё обращение — присоединить к моей истории обращений» (valid 30 days;",
    "at most 20,000 characters of forwarded text per letter, forwards inside forwards 3 deep",
    "takes lines up to 1 MiB (1,048,576 octets with the CRLF)",
    "The page shows 50 letters at a time",
    # Deadlines: registration + 30 calendar days counted from the next day; an extension of at most 15 days.
    "registration + 30 calendar days counted from the next day",
    "an extension is an *event* (≤ 15 days for 8-FZ",
)
