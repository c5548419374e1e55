"""The audit log: one row per thing a member of staff did, written in the same transaction as the change."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from mailservice.db import utcnow
from mailservice.inforequests.identity_documents import DOCUMENTS
from mailservice.inforequests.lifecycle import CHANNEL_NAMES, REFUSAL_GROUNDS, STATUS_NAMES
from mailservice.intake.russian import OUTCOME_NAMES
from mailservice.web.staff.auth import ROLE_NAMES
from mailservice.web.staff.models import AuditEntry

if TYPE_CHECKING:
    from mailservice.web.staff.deps import StaffContext


def record(
    session: Session,
    *,
    now: dt.datetime,
    actor: str,
    action: str,
    actor_id: int | None = None,
    object_type: str = "",
    object_id: int | None = None,
    details: dict[str, Any] | None = None,
    ip: str = "",
) -> AuditEntry:
    """Add an audit entry in the caller's transaction (so it exists exactly when the change does)."""
    entry = AuditEntry(
        at=now,
        actor_id=actor_id,
        actor=actor[:320],
        action=action[:64],
        object_type=object_type,
        object_id=object_id,
        details=details or {},
        ip=ip[:64],
    )
    session.add(entry)
    return entry


def by_staff(
    session: Session,
    ctx: StaffContext,
    action: str,
    object_type: str = "",
    object_id: int | None = None,
    **details: Any,
) -> None:
    """Audit an action of the member of staff behind ``ctx`` (a console request), now.

    A HEAD (run as a GET by web/app.HeadAsGet) is not audited: no content reached anyone (RFC 9110 9.3.2), so a
    link checker or a browser's probe of a download is no download. Only GET pages audit themselves, and a HEAD
    changes nothing else.
    """
    if ctx.head:
        return
    record(
        session,
        now=utcnow(),
        actor=ctx.email,
        actor_id=ctx.user_id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        details=details,
        ip=ctx.ip,
    )


# Russian names of the actions, for the audit page.
ACTION_NAMES = {
    "login": "вход",
    "login_failed": "неудачный вход",
    "login_blocked": "вход заблокирован (лимит попыток)",
    "logout": "выход",
    "staff_add": "добавлен сотрудник",
    "staff_passwd": "сменён пароль",
    "request_register": "зарегистрирован запрос",
    "request_spam": "письмо подтверждено как реклама",
    "request_convert": "письмо исполнено как команда",
    "request_status": "изменён статус запроса",
    "request_assign": "назначен исполнитель",
    "request_reclassify": "изменена классификация",
    "request_answer": "дан ответ",
    "request_contact": "записан контакт по запросу",
    "letter_sent": "письмо клиенту отмечено отправленным",
    "history_print": "распечатана история взаимодействия",
    "client_merge": "объединены клиенты",
    "attachment_download": "скачано вложение",
    "message_download": "скачано исходное письмо",
    "letter_download": "скачано письмо клиенту (для печати)",
    "wg_minutes_download": "скачан протокол заседания рабочей группы",
    "wg_report_file_download": "скачан файл отчёта по поручению рабочей группы",
    "wg_report_download": "скачан доклад рабочей группы",
    "history_send": "отправлена история взаимодействия",
    "identity_check": "проверена личность клиента",
    "merge_accept": "принято предложение объединить записи",
    "merge_reject": "отклонено предложение объединить записи",
    "register_export": "выгружен реестр запросов",
    "quarantine_release": "письмо выпущено из карантина",
    "quarantine_set_aside": "письмо из карантина отложено как не являющееся обращением",
    "request_claim": "обращение присоединено к истории владельца адреса по ссылке из письма",
    "request_reregister_forwarded": "запрос перерегистрирован на автора пересланного письма",
    "retention_run": "обезличены данные с истёкшим сроком хранения",
    "monthly_report_download": "скачан ежемесячный отчёт",
    "feedback_answer": "отправлен ответ на отзыв",
    "feedback_phone_rating": "записана оценка, полученная по телефону",
    "request_notify_address": "изменён адрес для уведомлений по запросу",
    "process_owner_link": "сотрудник назначен владельцем процессов",
    "process_owner_unlink": "сотрудник снят с роли владельца процессов",
    "process_request_submit": "направлен запрос на изменение реестра процессов",
    "process_request_apply": "изменение реестра процессов внесено",
    "process_request_reject": "запрос на изменение реестра процессов отклонён",
    "process_version_approve": "утверждена версия реестра процессов",
}


# The audit page speaks Russian (defect U6): the kinds of object and the details' names and values.
OBJECT_NAMES = {
    "request": "запрос",
    "client": "клиент",
    "staff": "сотрудник",
    "intake": "письмо из журнала приёма",
    "letter": "письмо клиенту",
    "attachment": "вложение",
    "event": "запись истории",
    "feedback": "отзыв",
    "register": "реестр",
    "report": "отчёт",
    "wg_minutes": "протокол рабочей группы",
    "wg_report": "доклад рабочей группы",
    "wg_instruction": "поручение рабочей группы",
    "retention_run": "запуск обезличивания (retention reports)",
    "merge_suggestion": "предложение объединить записи",
    "process_register": "реестр процессов",
}
DETAIL_NAMES = {
    "to": "новый статус",
    "ground": "основание",
    "files": "файлов",
    "role": "роль",
    "format": "формат",
    "outcome": "итог",
    "version": "версия",
    "type": "тип",
    "topic": "тема",
    "urgency": "срочность",
    "request_id": "запрос",
    "report": "отчёт",
    "number": "номер",
    "month": "месяц",
    "merged": "объединена запись",
    "kind": "вид",
    "filters": "отбор",
    "document": "документ",
    "command": "команда",
    "check": "проверка личности",
    "channel": "канал",
    "event": "запись истории",
    "email": "адрес",
    "via": "способ",
    "sender": "отправитель",
    "from_client": "из записи клиента",
    "to_client": "в запись клиента",
    "clients": "клиентов обезличено",
    "requests": "запросов обезличено",
    "rows": "строк",
    "client": "запись клиента",
    "other": "другая запись",
}
_VALUE_NAMES: dict[str, dict[str, str]] = {
    "to": {str(status): name for status, name in STATUS_NAMES.items()},
    "role": {str(role): name for role, name in ROLE_NAMES.items()},
    "channel": {str(channel): name for channel, name in CHANNEL_NAMES.items()},
    "ground": {code: ground.title for code, ground in REFUSAL_GROUNDS.items()},
    "document": DOCUMENTS,
    "outcome": {str(outcome): name for outcome, name in OUTCOME_NAMES.items()},
}


def details_text(details: dict[str, Any] | None) -> str:
    """An entry's details in Russian: «новый статус: в работе; файлов: 2»; empty values are left out."""
    parts = []
    for key, value in (details or {}).items():
        if value is None or value == "" or value == [] or value == {}:
            continue
        if isinstance(value, bool):
            shown = "да" if value else "нет"
        else:
            shown = _VALUE_NAMES.get(key, {}).get(str(value), str(value))
        parts.append(f"{DETAIL_NAMES.get(key, key)}: {shown}")
    return "; ".join(parts)
