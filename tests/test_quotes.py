"""Tests for reply-quote and signature stripping: crafted Russian replies and the shared reply-bodies corpus.

The corpus folder (reply-bodies/) has bodies only, without expected results; the expectations below were
written for this project by reading each file: a phrase the new text must keep and one it must lose.
"""

from __future__ import annotations

import quopri
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailservice.mail.quotes import html_text_and_tree, html_to_text, split_reply
from tests.shared import CORPORA

REPLY_BODIES = CORPORA / "reply-bodies"


# --------------------------------------------------------------------------------------------------
# Crafted Russian replies
# --------------------------------------------------------------------------------------------------

QUESTION = "Спасибо, документы получил. Когда будет готов ответ?"
OUR_LETTER = "Уважаемый Иван Петрович! Ваш запрос № 2026-000042 зарегистрирован."


@pytest.mark.parametrize(
    "reply",
    [
        f"{QUESTION}\n\nпн, 16 февр. 2026 г. в 12:00, Департамент <info@example.gov.ru>:\n\n> {OUR_LETTER}\n",
        f'{QUESTION}\n\n16.02.2026, 12:00, "Департамент" <info@example.gov.ru>:\n> {OUR_LETTER}\n',
        f"{QUESTION}\n\nПонедельник, 16 февраля 2026, 12:00 +07:00 от Департамент <info@example.gov.ru>:\n"
        f"> {OUR_LETTER}\n",
        f"{QUESTION}\n\nДепартамент имущества написал(а):\n> {OUR_LETTER}\n",
        f"{QUESTION}\n\n16.02.2026 12:00, Департамент пишет:\n{OUR_LETTER}\n",
        f"{QUESTION}\n\n-----Original Message-----\nFrom: info@example.gov.ru\n{OUR_LETTER}\n",
        f"{QUESTION}\n\n-----Исходное сообщение-----\nОт: info@example.gov.ru\n{OUR_LETTER}\n",
        f"{QUESTION}\n\n-------- Пересылаемое сообщение --------\n{OUR_LETTER}\n",
        f"{QUESTION}\n\n________________________________\nОт: Департамент <info@example.gov.ru>\n"
        f"Отправлено: 16 февраля 2026 г. 12:00\nКому: Иван Петров\nТема: Запрос\n\n{OUR_LETTER}\n",
        f"{QUESTION}\n\nОт: Департамент [mailto:info@example.gov.ru]\nОтправлено: понедельник, 16 февраля 2026 г.\n"
        f"Тема: RE: Запрос\n\n{OUR_LETTER}\n",
        f"{QUESTION}\n\nOn Mon, Feb 16, 2026 at 12:00 PM Департамент <info@example.gov.ru>\nwrote:\n\n> {OUR_LETTER}\n",
        # Wrapped over three lines by a narrow client; the colon stands apart, as some clients write it.
        f"{QUESTION}\n\n16.02.2026, 12:00, Департамент имущества\nи земельных отношений\n"
        f"<info@example.gov.ru> пишет :\n{OUR_LETTER}\n",
    ],
    ids=[
        "gmail-ru",
        "yandex",
        "mailru",
        "napisal",
        "pishet",
        "original-en",
        "original-ru",
        "forward-ru",
        "outlook-ru",
        "outlook-mailto",
        "multiline-on",
        "three-lines",
    ],
)
def test_quote_is_cut(reply: str) -> None:
    new, quoted, _ = split_reply(reply)
    assert new == QUESTION
    assert "зарегистрирован" in quoted


def test_inline_answers_between_quotes_are_kept() -> None:
    reply = (
        "Иван Петров написал(а):\n> Укажите кадастровый номер.\n54:35:000000:123\n"
        "> И адрес участка.\nг. Новосибирск, ул. Ленина, 1\n"
    )
    new, quoted, _ = split_reply(reply)
    assert new == "54:35:000000:123\nг. Новосибирск, ул. Ленина, 1"
    assert "Укажите кадастровый номер." in quoted


@pytest.mark.parametrize(
    ("reply", "signature_start"),
    [
        (f"{QUESTION}\n\n-- \nИван Петров\n+7 913 000-00-00", "-- "),
        (f"{QUESTION}\n\nС уважением,\nИван Петров\nтел. +7 913 000-00-00", "С уважением,"),
        (f"{QUESTION}\n\nС уважением, Иван Петров", "С уважением, Иван Петров"),
        (f"{QUESTION}\n\nСпасибо!\nИван", "Спасибо!"),
        (f"{QUESTION}\n\nОтправлено из мобильной Почты Mail.ru", "Отправлено из мобильной Почты Mail.ru"),
        (f"{QUESTION}\n\nОтправлено с iPhone", "Отправлено с iPhone"),
    ],
)
def test_signature_split(reply: str, signature_start: str) -> None:
    new, _, signature = split_reply(reply)
    assert new == QUESTION
    assert signature.startswith(signature_start)


def test_sign_off_followed_by_long_text_is_not_a_signature() -> None:
    tail = "\n".join(f"Пункт {i}: подробное описание обстоятельств дела." for i in range(20))
    reply = f"{QUESTION}\n\nС уважением к вашему труду, прошу учесть следующее:\n{tail}"
    new, _, signature = split_reply(reply)
    assert signature == ""
    assert new.endswith("Пункт 19: подробное описание обстоятельств дела.")


def test_thanks_starting_a_sentence_is_text() -> None:
    reply = "Добрый день.\n\nСпасибо за ответ, но мой вопрос был о другом участке."
    assert split_reply(reply) == (reply, "", "")


def test_letterhead_at_the_top_is_not_a_quote() -> None:
    reply = "Кому: Директору департамента\nОт: Ивановой И.И.\nТема: запрос информации\n\nПрошу сообщить сроки."
    new, quoted, _ = split_reply(reply)
    assert "Прошу сообщить сроки." in new
    assert quoted == ""


def test_everything_quoted_returns_whole_text() -> None:
    reply = f"> {OUR_LETTER}\n> Ещё строка.\n"
    assert split_reply(reply) == (reply.strip(), "", "")


def test_only_a_signature_is_kept_as_text() -> None:
    assert split_reply("С уважением,\nИван")[0] == "С уважением,\nИван"


def test_empty_text() -> None:
    assert split_reply("") == ("", "", "")


def test_mailru_and_yandex_html_quotes() -> None:
    mailru = (
        "<div>Ответ получил, спасибо.</div><br>Понедельник, 16 февраля 2026, 12:00 +07:00 от Департамент "
        '&lt;info@example.gov.ru&gt;:<br><blockquote style="border-left:1px solid #0857A6">'
        f"<div>{OUR_LETTER}</div></blockquote>"
    )
    yandex = (
        '<div>Ответ получил, спасибо.</div><div>16.02.2026, 12:00, "Департамент" &lt;info@example.gov.ru&gt;:</div>'
        f"<blockquote><div>{OUR_LETTER}</div></blockquote>"
    )
    for html in (mailru, yandex):
        # The plain alternative of such mail often carries no quote marks at all.
        plain = f"Ответ получил, спасибо.\n{OUR_LETTER}"
        new, quoted, _ = split_reply(plain, html)
        assert new == "Ответ получил, спасибо."
        assert "зарегистрирован" in quoted


def test_html_to_text_drops_active_content_and_quotes_blockquotes() -> None:
    html = (
        "<html><head><title>t</title><style>.x{}</style></head><body><script>evil()</script>"
        "<p>Первый&nbsp;абзац</p><ul><li>один</li><li>два</li></ul><blockquote>цитата<br>вторая</blockquote>"
        "<!-- comment --><a href='https://example.ru/x'>ссылка</a></body></html>"
    )
    text = html_to_text(html)
    assert "evil" not in text and ".x{}" not in text and "comment" not in text and "t\n" not in text
    assert "Первый абзац" in text
    assert "- один\n\n- два" in text or "- один\n- два" in text
    assert "> цитата\n> вторая" in text
    assert "ссылка <https://example.ru/x>" in text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_new_text_never_empty_when_text_is_not(text: str) -> None:
    new, _, _ = split_reply(text)
    if text.strip():
        assert new.strip()


# --------------------------------------------------------------------------------------------------
# The shared reply-bodies corpus
# --------------------------------------------------------------------------------------------------

# file -> (a phrase new_text must contain, a phrase it must not contain or None)
CORPUS_EXPECTATIONS: dict[str, tuple[str, str | None]] = {
    "email-reply-parser/email_1_2.txt": ("You can list the keys for the bucket", "What is the best way to clear"),
    "email-reply-parser/email_1_7.txt": (":+1:", "Steps 0-2 are in prod"),
    "email-reply-parser/email_gmail.txt": ("This is a test for inbox replying", "wrote:"),
    "email-reply-parser/email_sent_from_my_not_signature.txt": ("Sent from my desk, is much easier", None),
    "mail-parser-reply/begins_with_signature.txt": ("I have sent an invite for 10:30am", "10.30 AM pacific is good"),
    "mail-parser-reply/correct_sig.txt": ("this is an email with a correct -- signature.", "rick"),
    "mail-parser-reply/email_1_3.txt": ("Having the function would be great", "You can list the keys"),
    "mail-parser-reply/email_1_4.txt": ("Awesome! I haven't had another problem with it.", "wrote:"),
    "mail-parser-reply/email_1_5.txt": ("Here is another bullet point", None),
    "mail-parser-reply/email_1_8.txt": ("I will reply under this one", "Hey there, this is my signature"),
    "mail-parser-reply/email_2_1.txt": ("Outlook with a reply", "Google Apps Sync Team"),
    "mail-parser-reply/email_2_2.txt": ("Outlook with a reply directly above line", "From:"),
    "mail-parser-reply/email_2_3.txt": ("Outlook with a reply above headers", "New message from Kim"),
    "mail-parser-reply/email_bullets.txt": ("- how about bullets", "Joe Smith"),
    "mail-parser-reply/email_danish_1.txt": ("Tak for din mail. Det lyder godt.", "Hvordan går det"),
    "mail-parser-reply/email_headers_no_delimiter.txt": ("And another reply!", "A reply"),
    "mail-parser-reply/email_ja_1_2.txt": ("それでは 11:00 にお待ちしております", "かしこまりました"),
    "mail-parser-reply/email_nl_1_2.txt": ("Outlook met een antwoord", "Van:"),
    "mail-parser-reply/email_one_is_not_on.txt": ("Locally (on development), when I run", "The good news is"),
    "mail-parser-reply/email_partial_quote_header.txt": ("telnet 127.0.0.1 52698", "I am having an odd issue"),
    "mail-parser-reply/greedy_on.txt": ("On your remote host you can run:", "I am having an odd issue"),
    "mail-parser-reply/email_pl_1_2.txt": ("Jak się masz?", "Wszystko w porządku"),
    "mail-parser-reply/email_sent_from_BlackBerry.txt": ("Here is another email", "Sent from my BlackBerry"),
    "mail-parser-reply/email_sent_from_iPhone.txt": ("Here is another email", "Sent from my iPhone"),
    "mail-parser-reply/email_sent_from_multi_word_mobile_device.txt": ("Here is another email", "Verizon"),
    "mail-parser-reply/email_sent_from_not_signature.txt": ("Sent from my desk, is much easier", None),
    "mail-parser-reply/email_sig_delimiter_in_middle_of_line.txt": ("kthxbai", None),
    "mail-parser-reply/email_sv_anon_1.txt": ("Berättar gärna", "Ursäkta mitt sena svar"),
    "mail-parser-reply/email_swedish_1.txt": ("Kan inte se att det står något", "Jag har försökt"),
    "mail-parser-reply/multi_header.txt": ("I’ll just start a new order.", "Unfortunately, we are unable"),
    "mail-parser-reply/outlook.txt": ("My number is: +00 0000 000 000", "Get Outlook for iOS"),
    "mail-parser-reply/pathological.txt": ("I think you're onto something", "shortening the reference"),
    "talon/html_replies/gmail.html": ("Hi. I am fine.", "Hello! How are you?"),
    "talon/html_replies/hotmail.html": ("Hi. I am fine.", "Hello! How are you?"),
    "talon/html_replies/mail_ru.html": ("Hi. I am fine.", "Hello! How are you?"),
    "talon/html_replies/ms_outlook_2003.html": ("Hi. I am fine.", "Hello! How are you?"),
    "talon/html_replies/ms_outlook_2007.html": ("Hi. I am fine.", "Hello! How are you?"),
    "talon/html_replies/ms_outlook_2010.html": ("Hi. I am fine.", "Hello! How are you?"),
    "talon/html_replies/thunderbird.html": ("Hi. I am fine.", "Hello! How are you?"),
    "talon/html_replies/windows_mail.html": ("Hi. I am fine.", "Hello! How are you?"),
    "talon/html_replies/yandex_ru.html": ("Hi. I am fine.", "Hello! How are you?"),
    "talon/OLK_SRC_BODY_SECTION.html": ("Reply", "Subject"),
    "talon/reply-separated-by-hr.html": ("Bob", "Hello"),
}


def _corpus_files() -> list[Path]:
    if not REPLY_BODIES.is_dir():
        return []
    return sorted(p for p in REPLY_BODIES.rglob("*") if p.suffix in (".txt", ".html"))


def _split_file(path: Path) -> tuple[str, str, str]:
    data = path.read_bytes()
    if b"=\n" in data and b"=E2=80" in data:  # a quoted-printable body saved as is: decode it like the parser
        data = quopri.decodestring(data)
    text = data.decode("utf-8", errors="replace")
    if path.suffix == ".html":
        return split_reply(html_to_text(text), text)
    return split_reply(text)


def test_reply_corpus_present_or_skipped() -> None:
    if not REPLY_BODIES.is_dir():
        pytest.skip(f"reply-bodies corpus not found at {REPLY_BODIES}")
    names = {str(p.relative_to(REPLY_BODIES)) for p in _corpus_files()}
    missing = set(CORPUS_EXPECTATIONS) - names
    assert not missing, f"expectations for files not in the corpus: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(CORPUS_EXPECTATIONS))
def test_reply_corpus_expectations(name: str) -> None:
    path = REPLY_BODIES / name
    if not path.is_file():
        pytest.skip(f"reply-bodies corpus not found at {REPLY_BODIES}")
    keep, lose = CORPUS_EXPECTATIONS[name]
    new, _, _ = _split_file(path)
    assert keep in new
    if lose is not None:
        assert lose not in new


def test_every_corpus_body_gives_non_empty_new_text() -> None:
    files = _corpus_files()
    if not files:
        pytest.skip(f"reply-bodies corpus not found at {REPLY_BODIES}")
    for path in files:
        new, _, _ = _split_file(path)
        assert new.strip(), path.name


_HTML_BODIES = [
    "<p>Прошу сообщить срок ремонта.</p>",
    "<div>Спасибо, но ответа нет.</div><blockquote>Ваше обращение зарегистрировано</blockquote>",
    '<div>Повторно прошу.</div><div class="gmail_quote">On Mon, Ivan wrote:<br>старое письмо</div>',
    '<p>Новое.</p><div style="border-top: solid #E1E1E1 1.0pt">From: Отдел<br>Sent: вчера</div><p>старое</p>',
    "<p>Текст</p><hr><p>From: a@example.ru<br>Sent: Monday</p><p>цитата</p>",
    "<html><head><style>p{}</style><script>x()</script></head><body><p>Только текст &nbsp;и всё</p></body></html>",
    # Quote containers only the markup shows (the text alone has no quote): the tree's split is used.
    '<div>Ответ по существу.</div><div class="gmail_quote"><div>старое письмо департамента</div></div>',
    '<div>Ответ.</div><div id="divRplyFwdMsg">Отдел<br>старое</div>',
    "   ",
    "",
]


@pytest.mark.parametrize("html", _HTML_BODIES)
def test_an_html_only_letter_parsed_once_splits_as_when_parsed_twice(html: str) -> None:
    """parse_message reads an HTML-only letter's markup once (html_text_and_tree) and hands the tree to
    split_reply: the text and the split are those of parsing it twice (html_to_text, then split_reply(text, html))."""
    text, tree = html_text_and_tree(html)
    assert text == html_to_text(html)
    assert split_reply(text, html, tree=tree) == split_reply(html_to_text(html), html)
    if "старое" in html:
        assert "старое" not in split_reply(text, html, tree=tree)[0]
