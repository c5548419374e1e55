"""An opaquely signed letter (S/MIME ``application/pkcs7-mime``, RFC 8551 3.5.2) is read: its text and files come
from inside the CMS SignedData, the .p7m is kept for staff with a note that the signature was not checked; an
encrypted one (enveloped-data) is registered with a note; a damaged one keeps the .p7m with a note.

The letters in tests/data/smime/ were signed and encrypted with OpenSSL 3.0 (see its README); their expected texts
are the ones written into them (quoted here), not read back from the code under test.
"""

from __future__ import annotations

import base64
import email.policy
import hashlib
from collections.abc import Callable
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.inforequests.models import Attachment, Event, Request
from mailservice.intake.forwarded import read_forwarded
from mailservice.intake.models import IntakeEntry
from mailservice.intake.pipeline import Source, process_raw
from mailservice.mail.parse import ParsedMessage, parse_message
from mailservice.mail.smime import MAX_DEPTH, read_smime, signed_view
from tests.console_support import drain, parsed, text_of
from tests.servers import Sink

SAMPLES = Path(__file__).parent / "data" / "smime"
IVANOV = "Прошу сообщить, в какие дни принимает участковый инспектор по ул. Садовой."
PETROVA = "Прошу разъяснить порядок получения справки о составе семьи."
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
SIGNED_NOTE = "Подпись не проверялась"


def _sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def _p7m(name: str) -> bytes:
    """The DER bytes of a sample's .p7m (the stdlib's decoding, not ours)."""
    payload = message_from_bytes(_sample(name)).get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload


def _letter(p7m: bytes, ctype: str = "application/pkcs7-mime") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Иванов Иван <ivanov@example.ru>"
    msg["To"] = "priemnaya@dizo.test"
    msg["Subject"] = "Обращение"
    maintype, subtype = ctype.split("/")
    msg.set_content(p7m, maintype=maintype, subtype=subtype, filename="smime.p7m", params={"smime-type": "signed-data"})
    return msg.as_bytes(policy=email.policy.SMTP)


def _names(parsed: ParsedMessage) -> list[str]:
    return [a.filename for a in parsed.attachments]


# --- golden letters ---


@pytest.mark.parametrize(
    ("sample", "text", "files"),
    [
        # application/x-pkcs7-mime, base64; multipart/mixed inside: UTF-8 text and a PDF named by RFC 2231
        ("01_signed_x_pkcs7_base64.eml", IVANOV, ["smime.p7m", "Заявление.pdf"]),
        # application/pkcs7-mime, binary transfer encoding, BER indefinite lengths (openssl cms -stream):
        # windows-1251 quoted-printable text inside
        ("02_signed_ber_binary.eml", PETROVA, ["smime.p7m"]),
        # application/pkcs7-mime without smime-type, base64 DER
        ("03_signed_der_base64.eml", IVANOV, ["smime.p7m", "Заявление.pdf"]),
    ],
    ids=["x-pkcs7-mime-base64", "ber-binary", "der-base64"],
)
def test_a_signed_letters_text_and_files_are_read_from_inside_the_p7m(sample: str, text: str, files: list[str]) -> None:
    parsed = parse_message(_sample(sample))
    assert text in parsed.text and text in parsed.new_text
    assert _names(parsed) == files
    assert next(a.data for a in parsed.attachments if a.filename == "smime.p7m") == _p7m(sample)
    if "Заявление.pdf" in files:
        assert next(a for a in parsed.attachments if a.filename == "Заявление.pdf").data == PDF
    assert len(parsed.staff_notes) == 1 and SIGNED_NOTE in parsed.staff_notes[0]


def test_an_encrypted_letter_keeps_the_p7m_with_a_note_and_no_text() -> None:
    parsed = parse_message(_sample("04_enveloped.eml"))
    assert parsed.text == "" and _names(parsed) == ["smime.p7m"]
    assert len(parsed.staff_notes) == 1 and "зашифровано" in parsed.staff_notes[0]
    assert read_smime(_p7m("04_enveloped.eml"), 2**20).kind == "enveloped"


def test_a_damaged_p7m_is_kept_with_a_note() -> None:
    whole = _p7m("03_signed_der_base64.eml")
    cut = whole[: len(whole) // 3]  # inside the signed content
    parsed = parse_message(_letter(cut))
    assert parsed.text == "" and _names(parsed) == ["smime.p7m"]
    assert parsed.attachments[0].data == cut
    assert len(parsed.staff_notes) == 1 and "прочитать не удалось" in parsed.staff_notes[0]
    assert any(d.startswith("S/MIME") for d in parsed.defects)


# --- bounded ---


def _length(n: int) -> bytes:
    return bytes([n]) if n < 0x80 else b"\x84" + n.to_bytes(4, "big")


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _length(len(value)) + value


def _signed(econtent: bytes) -> bytes:
    """A SignedData ContentInfo (RFC 5652 5.1) around an eContent element, no signers."""
    oid_signed = _tlv(0x06, bytes.fromhex("2a864886f70d010702"))
    oid_data = _tlv(0x06, bytes.fromhex("2a864886f70d010701"))
    encap = _tlv(0x30, oid_data + _tlv(0xA0, econtent))
    signed = _tlv(0x30, _tlv(0x02, b"\x01") + _tlv(0x31, b"") + encap + _tlv(0x31, b""))
    return _tlv(0x30, oid_signed + _tlv(0xA0, signed))


def test_the_reader_is_bounded_by_the_bytes_nesting_and_size() -> None:
    entity = b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + "Прошу ответить.".encode()
    assert read_smime(_signed(_tlv(0x04, entity)), 2**20).entity == entity
    # the same in chunks of a constructed OCTET STRING, with an indefinite length (X.690 8.7.3, 8.1.3.6)
    chunks = b"".join(_tlv(0x04, entity[i : i + 7]) for i in range(0, len(entity), 7))
    assert read_smime(_signed(b"\x24\x80" + chunks + b"\x00\x00"), 2**20).entity == entity
    # a length of 4 GB in a file of a few bytes; content over the cap; nesting past MAX_DEPTH; 1-byte chunks
    assert read_smime(_signed(b"\x04\x84\xff\xff\xff\xff" + entity), 2**20).problem
    assert read_smime(_signed(_tlv(0x04, entity)), 10).problem
    nested = b"\x24\x80" * (MAX_DEPTH + 5) + _tlv(0x04, entity) + b"\x00\x00" * (MAX_DEPTH + 5)
    assert read_smime(_signed(nested), 2**20).problem
    many = b"\x24\x80" + _tlv(0x04, b"x") * 300_000 + b"\x00\x00"
    result = read_smime(_signed(many), 2**22)
    assert result.entity is None and result.problem == "too many elements"


def test_a_content_over_the_cap_can_be_read_cut_and_as_a_view() -> None:
    entity = b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + "Прошу ответить.".encode()
    der = _signed(_tlv(0x04, entity))
    cut = read_smime(der, 20, cut=True)
    assert cut.entity == entity[:20] and cut.cut and cut.problem is None
    assert read_smime(der, 2**20, cut=True) == read_smime(der, 2**20)
    view, was_cut = signed_view(der, 2**20)
    assert view is not None and view.obj is der and bytes(view) == entity and not was_cut  # DER: no copy
    chunks = b"".join(_tlv(0x04, entity[i : i + 7]) for i in range(0, len(entity), 7))
    view, was_cut = signed_view(_signed(b"\x24\x80" + chunks + b"\x00\x00"), 30)
    assert view is not None and bytes(view) == entity[:30] and was_cut
    assert signed_view(_p7m("04_enveloped.eml"), 2**20) == (None, False)


def _wrapped(entity: bytes, layers: int) -> bytes:
    """``entity`` signed ``layers`` times, each signature's content the S/MIME entity of the one inside."""
    p7m = _signed(_tlv(0x04, entity))
    for _ in range(layers - 1):
        inner = b"Content-Type: application/pkcs7-mime; smime-type=signed-data\r\n"
        inner += b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(p7m)
        p7m = _signed(_tlv(0x04, inner))
    return p7m


def test_a_letter_signed_twice_is_read_and_deeper_layers_are_kept_unread() -> None:
    entity = b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + "Прошу ответить.".encode()
    twice = parse_message(_letter(_wrapped(entity, 2)))
    assert twice.text == "Прошу ответить." and _names(twice) == ["smime.p7m", "smime.p7m"]
    # Three layers are read (each a copy of the one around it); the fourth .p7m is only kept.
    deep = parse_message(_letter(_wrapped(entity, 4)))
    assert deep.text == "" and _names(deep) == ["smime.p7m"] * 3 + ["attachment.p7m"]


def test_a_signed_bare_text_without_mime_headers_is_the_text() -> None:
    parsed = parse_message(_letter(_signed(_tlv(0x04, "Прошу ответить.".encode()))))
    assert parsed.text == "Прошу ответить." and _names(parsed) == ["smime.p7m"]


@given(st.data())
def test_a_mutated_p7m_never_raises_and_is_always_kept(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(["02_signed_ber_binary.eml", "03_signed_der_base64.eml"]))
    raw = bytearray(_p7m(name))
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(0, len(raw)))]
    content = read_smime(bytes(raw), 2**20)
    assert content.entity is None or len(content.entity) <= len(raw)
    parsed = parse_message(_letter(bytes(raw)))
    assert "smime.p7m" in _names(parsed)


# --- through intake, on both databases ---


def _damaged() -> bytes:
    whole = _p7m("03_signed_der_base64.eml")
    return _letter(whole[: len(whole) // 3])


@pytest.mark.parametrize(
    ("raw", "text", "files", "note"),
    [
        (lambda: _sample("01_signed_x_pkcs7_base64.eml"), IVANOV, ["smime.p7m", "Заявление.pdf"], SIGNED_NOTE),
        (lambda: _sample("04_enveloped.eml"), "", ["smime.p7m"], "зашифровано"),
        (_damaged, "", ["smime.p7m"], "прочитать не удалось"),
    ],
    ids=["signed", "encrypted", "damaged"],
)
def test_intake_registers_a_signed_an_encrypted_and_a_damaged_letter(
    settings: Settings, raw: Callable[[], bytes], text: str, files: list[str], note: str
) -> None:
    result = process_raw(settings, raw(), Source("smtp", envelope_from="x@example.ru"), now=utcnow())
    assert result.request_number
    with session_scope(settings) as session:
        request = session.scalars(select(Request).where(Request.number == result.request_number)).one()
        assert text in request.text
        stored = session.scalars(select(Attachment.filename).where(Attachment.request_id == request.id)).all()
        assert sorted(stored) == sorted(files)
        notes = session.scalars(select(Event.comment).where(Event.request_id == request.id, Event.kind == "note"))
        assert any(note in n for n in notes)


# --- a signed letter inside a forwarded one (message/rfc822) ---

SIDOROVA = (
    "Прошу сообщить, на каком основании земельный участок по ул. Береговой, 14 в с. Криводановка передан в аренду."
)
KOROLEV = "Прошу разъяснить порядок предоставления в собственность бесплатно земельного участка многодетной семье."
FORWARDED_NOTE = "Пересланное письмо подписано электронной подписью (S/MIME)"


@pytest.mark.parametrize(
    ("sample", "own", "signed", "eml"),
    [
        # a citizen forwards her own signed letter (DER, application/pkcs7-mime, a photo inside)
        ("05_forwarded_signed_by_citizen.eml", "Пересылаю своё обращение", SIDOROVA, "Обращение об аренде участка.eml"),
        # a district administration forwards a citizen's signed appeal (BER -stream, x-pkcs7-mime, windows-1251)
        (
            "06_signed_appeal_forwarded_by_a_body.eml",
            "Направляем по компетенции",
            KOROLEV,
            "Участок многодетной семье.eml",
        ),
    ],
    ids=["citizen-forwards-own", "body-forwards-appeal"],
)
def test_a_signed_letter_forwarded_as_an_attachment_is_read(sample: str, own: str, signed: str, eml: str) -> None:
    parsed = parse_message(_sample(sample))
    assert own in parsed.text and signed in parsed.text
    assert parsed.text.index(own) < parsed.text.index(signed)
    # the forwarded .eml is kept whole, and the .p7m on its own, the same bytes as inside it
    assert _names(parsed) == [eml, "smime.p7m"]
    inner = message_from_bytes(next(a.data for a in parsed.attachments if a.filename == eml))
    assert next(a.data for a in parsed.attachments if a.filename == "smime.p7m") == inner.get_payload(decode=True)
    assert len(parsed.staff_notes) == 1 and FORWARDED_NOTE in parsed.staff_notes[0]
    assert SIGNED_NOTE in parsed.staff_notes[0]


def test_the_author_of_a_signed_appeal_forwarded_by_a_body_is_read_with_the_signed_text() -> None:
    """What staff's «re-register on its author» uses (intake/forwarded.py): the citizen and his signed words."""
    found = read_forwarded(parse_message(_sample("06_signed_appeal_forwarded_by_a_body.eml")))
    assert found is not None and found.source == "attachment"
    assert (found.name, found.address) == ("Королёв Дмитрий", "korolev.d@example.net") and KOROLEV in found.text


def test_a_forwarded_encrypted_or_damaged_signed_letter_is_noted_and_kept() -> None:
    def forward(p7m: bytes) -> bytes:
        outer = message_from_bytes(_letter(b""), _class=EmailMessage, policy=email.policy.default)  # its headers
        outer.replace_header("Subject", "Fwd: Обращение")
        outer.set_content("Пересылаю обращение.")
        outer.add_attachment(message_from_bytes(_letter(p7m)))
        return outer.as_bytes(policy=email.policy.SMTP)

    encrypted = parse_message(forward(_p7m("04_enveloped.eml")))
    assert "smime.p7m" in _names(encrypted) and "зашифровано" in encrypted.staff_notes[0]
    whole = _p7m("03_signed_der_base64.eml")
    damaged = parse_message(forward(whole[: len(whole) // 3]))
    assert "smime.p7m" in _names(damaged) and "прочитать не удалось" in damaged.staff_notes[0]
    assert "Пересылаю обращение." in damaged.text


@pytest.mark.parametrize("sample", ["05_forwarded_signed_by_citizen.eml", "06_signed_appeal_forwarded_by_a_body.eml"])
def test_intake_registers_a_forwarded_signed_letter_with_its_text(settings: Settings, sample: str) -> None:
    result = process_raw(settings, _sample(sample), Source("smtp", envelope_from="x@example.ru"), now=utcnow())
    assert result.request_number
    with session_scope(settings) as session:
        request = session.scalars(select(Request).where(Request.number == result.request_number)).one()
        assert (SIDOROVA if sample.startswith("05") else KOROLEV) in request.text
        stored = session.scalars(select(Attachment.filename).where(Attachment.request_id == request.id)).all()
        assert "smime.p7m" in stored
        notes = session.scalars(select(Event.comment).where(Event.request_id == request.id, Event.kind == "note"))
        assert any(FORWARDED_NOTE in (n or "") for n in notes)


# --- a signed letter over MAX_MESSAGE_BYTES, through intake (both databases) ---

# Limits made small so that the test stays light (as tests/test_tryout_dec6b.py does); the golden letter is 285 KB
# with a 150 KB scan signed inside it.
SMALL_MESSAGE = 200_000
SMALL_ATTACHMENT = 100_000


def test_a_signed_letter_over_the_message_limit_is_registered_with_its_text(settings: Settings, sink: Sink) -> None:
    small_limits = settings.model_copy(
        update={"max_message_bytes": SMALL_MESSAGE, "max_attachment_bytes": SMALL_ATTACHMENT}
    )
    raw = _sample("07_signed_over_the_limit.eml")
    assert len(raw) > SMALL_MESSAGE
    sender = "kravtsova@example.ru"
    result = process_raw(small_limits, raw, Source("smtp", envelope_from=sender), now=utcnow())
    assert result.request_number, result
    with session_scope(small_limits) as session:
        request = session.scalars(select(Request).where(Request.number == result.request_number)).one()
        assert "Прошу оформить в собственность земельный участок под моим жилым домом" in request.text
        stored = session.scalars(select(Attachment.filename).where(Attachment.request_id == request.id)).all()
        assert stored == ["заявление.pdf"]
        notes = session.scalars(select(Event.comment).where(Event.request_id == request.id, Event.kind == "note"))
        assert any(SIGNED_NOTE in (n or "") and "скан паспорта.pdf" in (n or "") for n in notes)
        entry = session.get(IntakeEntry, result.entry_id)
        assert entry is not None and entry.raw_sha256 == hashlib.sha256(raw).hexdigest()  # the raw, whole
    assert BlobStore(small_limits.blob_dir).get(hashlib.sha256(raw).hexdigest()) == raw
    drain(small_limits)
    letters = [parsed(m) for _f, rcpts, m in sink.messages() if sender in rcpts]
    [ack] = [letter for letter in letters if result.request_number in str(letter["Subject"])]
    assert "Не приняты вложения" in text_of(ack) and "«скан паспорта.pdf»" in text_of(ack), text_of(ack)
