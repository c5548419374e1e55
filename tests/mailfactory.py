"""Citizen messages for tests, built with the standard library (the raw bytes intake receives)."""

from __future__ import annotations

import email.policy
import random
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from mailservice.db import utcnow


def _envelope(sender: str, name: str, to: str, subject: str | None, message_id: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>" if name else sender
    msg["To"] = to
    if subject is not None:
        msg["Subject"] = subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = f"<{message_id}>" if message_id else make_msgid(domain="example.ru")
    return msg


def citizen_mail(
    *,
    sender: str = "ivanov@example.ru",
    name: str = "Иванов Иван Иванович",
    subject: str | None = "Запрос информации о предоставлении земельных участков",
    body: str = "Прошу предоставить сведения о количестве земельных участков, предоставленных в аренду в 2025 году.",
    to: str = "info@dizo.test",
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    headers: dict[str, str] | None = None,
    message_id: str | None = None,
    charset: str = "utf-8",
) -> bytes:
    """A plain-text message as a citizen's mail program would send it (``subject=None``: no Subject header)."""
    msg = _envelope(sender, name, to, subject, message_id)
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body, charset=charset)
    return msg.as_bytes(policy=email.policy.SMTP)


# A 1x1 PNG: the inline image (a logo, a signature picture) that HTML mail programs embed.
PIXEL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360f8cfc0"
    "f01f0005000201a5f3b1bd0000000049454e44ae426082"
)


def html_mail(
    *,
    sender: str = "ivanov@example.ru",
    name: str = "Иванов Иван Иванович",
    subject: str | None = None,
    paragraphs: list[str] | None = None,
    to: str = "info@dizo.test",
    image: bool = True,
) -> bytes:
    """An HTML-only message as web mail sends it: paragraphs with ``&nbsp;``, and an inline image (cid:)."""
    msg = _envelope(sender, name, to, subject)
    body = "".join(f"<p>{text.replace(' ', '&nbsp;', 2)}</p>" for text in paragraphs or ["Здравствуйте!"])
    picture = '<p><img src="cid:logo@example.ru" alt=""></p>' if image else ""
    msg.set_content(f"<html><body>{body}<div>&nbsp;</div>{picture}</body></html>", subtype="html")
    if image:
        msg.add_related(PIXEL_PNG, "image", "png", cid="<logo@example.ru>")
    return msg.as_bytes(policy=email.policy.SMTP)


def message_id_of(raw: bytes) -> str:
    """The Message-ID of raw bytes, without angle brackets."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    return str(parsed["Message-ID"]).strip().strip("<>")


def parse(raw: bytes) -> EmailMessage:
    """Raw bytes to an EmailMessage (modern policy)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def body_text(message: EmailMessage) -> str:
    """The plain-text body."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


# The benchmarks' mix (bench/intake.py, bench/parse.py): Russian subjects and bodies, display names in RFC 2047
# encoded words.
BENCH_SUBJECTS = [
    "Запрос информации о земельных участках",
    "Прошу предоставить копию приказа",
    "Аренда участка на ул. Ленина",
    "СРОЧНО: аукцион по продаже участка",
    "Вопрос о кадастровой стоимости",
    "Жалоба на действия специалиста",
]
BENCH_BODIES = [
    "Прошу предоставить сведения о количестве договоров аренды, заключённых в 2025 году.",
    "Добрый день! Подскажите, где опубликован план приватизации на 2026 год?\n\n-- \nС уважением, Пётр",
    "Завтра состоится аукцион, прошу срочно разъяснить порядок участия. Заранее спасибо.",
    "Здравствуйте. Кадастровая стоимость моего участка завышена, как её оспорить?",
]


def bench_messages(count: int, seed: int = 7) -> list[bytes]:
    """Realistic Russian citizen messages, each with its own sender and Message-ID."""
    rng = random.Random(seed)
    return [
        citizen_mail(
            sender=f"citizen{i}@example.ru",
            name=rng.choice(["Иванов И. И.", "Петрова Анна", "", "ООО «Ромашка»"]),
            subject=rng.choice(BENCH_SUBJECTS),
            body=rng.choice(BENCH_BODIES) * rng.randint(1, 4),
        )
        for i in range(count)
    ]


# The realistic mix of the benchmarks (bench/classify.py, bench/intake.py): letters of the packaged labelled sets,
# shaped like real regional mail: median about 240 characters, 6% over 1,000, a few up to 12,000 (letters
# joined one after another, as a long letter tells several stories), a fifth HTML only.
MIX_LONG_SHARE = 0.012  # joined to 1,000-4,000 characters, on top of the set's own long letters (about 4%)
MIX_VERY_LONG_SHARE = 0.005
MIX_HTML_SHARE = 0.2
MIX_TWO_LETTERS_SHARE = 0.4  # a short letter followed by another: raises the median to about 240


def mail_mix(count: int, seed: int = 13) -> list[tuple[str, str, bool]]:
    """``count`` letters as (subject, body, html_only), deterministic for a seed."""
    from mailservice.classify.engine import PACKAGED_SETS
    from mailservice.classify.evaluate import read_datasets

    pool = [(e.subject, e.body) for e in read_datasets(PACKAGED_SETS) if e.body]
    rng = random.Random(seed)

    def joined(target: int) -> str:
        parts: list[str] = []
        while sum(len(p) for p in parts) < target:
            parts.append(rng.choice(pool)[1])
        return "\n\n".join(parts)

    letters = []
    for _ in range(count):
        subject, body = rng.choice(pool)
        draw = rng.random()
        if draw < MIX_VERY_LONG_SHARE:
            body = joined(rng.randint(10_000, 12_000))[:12_000]
        elif draw < MIX_VERY_LONG_SHARE + MIX_LONG_SHARE:
            body = joined(rng.randint(1_000, 4_000))
        elif draw < MIX_VERY_LONG_SHARE + MIX_LONG_SHARE + MIX_TWO_LETTERS_SHARE:
            second = rng.choice(pool)[1]
            if len(body) + len(second) < 1_000:
                body = f"{body}\n\n{second}"
        letters.append((subject, body, rng.random() < MIX_HTML_SHARE))
    return letters


def mail_mix_messages(count: int, seed: int = 13) -> list[bytes]:
    """:func:`mail_mix` as raw messages, each with its own sender and Message-ID."""
    raws = []
    for i, (subject, body, html_only) in enumerate(mail_mix(count, seed)):
        sender = f"citizen{i}@example.ru"
        if html_only:
            paragraphs = [p for p in body.split("\n") if p.strip()]
            raws.append(html_mail(sender=sender, name="", subject=subject or None, paragraphs=paragraphs))
        else:
            raws.append(citizen_mail(sender=sender, name="", subject=subject or None, body=body))
    return raws
