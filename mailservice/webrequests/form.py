"""The site's request form as pure rules: what a request must carry, which files are taken, what looks like a
program rather than a person. No I/O here: the routes pass the values and ``now``.

No third-party captcha (RULES.md: no requests to other hosts): a field people do not see (a program fills it), a
minimum time between opening the form and sending it (carried in a signed value), and a per-IP limit (the routes).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import PurePath

# Files a request may carry: the extension decides the type (the browser's claim is not trusted) and the first
# bytes must agree with it. Documents and scans only: nothing that a browser or an office suite would run.
_ZIP = (b"PK\x03\x04",)
FILE_TYPES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    ".pdf": ("application/pdf", (b"%PDF-",)),
    ".jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    ".jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    ".png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    ".tif": ("image/tiff", (b"II*\x00", b"MM\x00*")),
    ".tiff": ("image/tiff", (b"II*\x00", b"MM\x00*")),
    ".docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", _ZIP),
    ".xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", _ZIP),
    ".odt": ("application/vnd.oasis.opendocument.text", _ZIP),
    ".rtf": ("application/rtf", (b"{\\rtf",)),
    ".txt": ("text/plain", ()),
}
ACCEPT = ",".join(FILE_TYPES)  # the file input's accept attribute
# The form's value of when it was opened is good for a day: a form left open longer is shown again.
MAX_FORM_AGE = dt.timedelta(days=1)
MAX_TEXT = 20_000
MAX_SUBJECT = 500
MAX_NAME = 300


@dataclass(frozen=True)
class RequestForm:
    """What a person typed into the form (already stripped)."""

    name: str = ""
    organisation: str = ""
    email: str = ""
    phone: str = ""
    postal_address: str = ""
    subject: str = ""
    text: str = ""


@dataclass(frozen=True)
class FormFile:
    """A file sent with the form."""

    filename: str
    data: bytes


def content_type_of(filename: str) -> str | None:
    """The content type of an accepted file name, or None when the type is not accepted."""
    entry = FILE_TYPES.get(PurePath(filename).suffix.lower())
    return entry[0] if entry else None


def file_problem(file: FormFile, max_file_bytes: int) -> str | None:
    """Why a file is not taken (Russian), or None."""
    entry = FILE_TYPES.get(PurePath(file.filename).suffix.lower())
    if entry is None:
        return f"Файл «{file.filename}»: такой тип файлов не принимается. Допустимы: {', '.join(FILE_TYPES)}."
    if len(file.data) > max_file_bytes:
        return f"Файл «{file.filename}» больше {mb(max_file_bytes)}."
    if not file.data:
        return f"Файл «{file.filename}» пуст."
    _, magic = entry
    if magic and not any(file.data.startswith(m) for m in magic):
        return f"Файл «{file.filename}» повреждён или не соответствует своему расширению."
    if not magic:  # plain text: it must read as text
        try:
            file.data.decode("utf-8")
        except UnicodeDecodeError:
            try:
                file.data.decode("cp1251")
            except UnicodeDecodeError:
                return f"Файл «{file.filename}» не является текстовым."
        if b"\x00" in file.data:
            return f"Файл «{file.filename}» не является текстовым."
    return None


def mb(size: int) -> str:
    """A size for people: whole megabytes."""
    return f"{max(1, size // (1024 * 1024))} МБ"


def problems(
    form: RequestForm,
    files: list[FormFile],
    *,
    email_ok: bool,
    max_files: int,
    max_file_bytes: int,
    max_total_bytes: int,
) -> dict[str, str]:
    """What is wrong with a request, field by field (Russian, as shown next to the field); empty when nothing.

    8-FZ art. 18 and 59-FZ art. 11: a request without the name of a person or organisation is not considered, and
    one without an address for the answer cannot be answered; the form asks for them rather than register a request
    that will go unanswered.
    """
    errors: dict[str, str] = {}
    if not (form.name or form.organisation):
        errors["name"] = (
            "Укажите фамилию, имя и отчество или наименование организации: анонимный запрос не рассматривается."
        )
    if len(form.name) > MAX_NAME or len(form.organisation) > MAX_NAME:
        errors["name"] = f"Имя и наименование организации — не длиннее {MAX_NAME} знаков."
    if form.email and not email_ok:
        errors["email"] = "Проверьте адрес электронной почты."
    if not form.email and not form.postal_address:
        errors["postal_address"] = "Укажите почтовый адрес: без адреса электронной почты ответ направляется почтой."
    if not form.text:
        errors["text"] = "Напишите, какую информацию вы хотите получить."
    elif len(form.text) > MAX_TEXT:
        errors["text"] = f"Текст запроса — не длиннее {MAX_TEXT} знаков; остальное приложите файлом."
    if len(form.subject) > MAX_SUBJECT:
        errors["subject"] = f"Тема — не длиннее {MAX_SUBJECT} знаков."
    file_errors = [p for f in files if (p := file_problem(f, max_file_bytes))]
    if len(files) > max_files:
        file_errors.insert(0, f"Можно приложить не более {max_files} файлов.")
    if sum(len(f.data) for f in files) > max_total_bytes:
        file_errors.append(f"Все файлы вместе — не более {mb(max_total_bytes)}.")
    if file_errors:
        errors["files"] = " ".join(file_errors)
    return errors


def looks_automated(honeypot: str, opened_at: float | None, now: dt.datetime, min_seconds: int) -> bool:
    """Whether the form was sent by a program: the hidden field is filled, the value of when the form was opened is
    missing or forged (``opened_at`` None), too old, or the form was sent sooner than a person can fill it."""
    if honeypot:
        return True
    if opened_at is None:
        return True
    age = now.timestamp() - opened_at
    return age < min_seconds or age > MAX_FORM_AGE.total_seconds()
