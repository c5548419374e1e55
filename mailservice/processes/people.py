"""Who may change the register, and who may ask for a change: staff accounts, never a name typed in.

* The officer responsible for client-centricity (seed 003, appendix 2, section III: "Право на внесение изменений в
  Реестр имеются только у ответственного") is a console account with the role ``process_officer``. The setting
  ``MAILSERVICE_PROCESS_OFFICERS`` of issue 9 is gone: give the role instead (``mailservice staff add --role
  process_officer``).
* A process owner ("Внесение изменений в Реестр инициируют владельцы процессов") is the staff account the officer
  linked to the text of the «Ответственный за процесс» cell (loosely compared: case, "ё", spacing). A change request
  about a process is accepted only from the account linked to that process's owner cell; a new process only from
  the account linked to the owner cell it proposes; a change of the form from an owner of any process or an
  officer.

Callers pass the address of an account that was authenticated (the console's session, the CLI's password).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.processes.catalogue import normalise
from mailservice.processes.models import OwnerLink
from mailservice.web.staff.auth import Role, normalise_email
from mailservice.web.staff.models import StaffUser

OFFICER_ROLE = Role.process_officer


class PeopleError(ValueError):
    """Not the right person; the message is Russian."""


def account(session: Session, email: str) -> StaffUser | None:
    """The active staff account with this address."""
    user = session.scalar(select(StaffUser).where(StaffUser.email == normalise_email(email)))
    return user if user is not None and user.active else None


def officers(session: Session) -> list[str]:
    """The addresses of the active officers (they are told when a request is agreed or objected to)."""
    query = select(StaffUser.email).where(StaffUser.role == OFFICER_ROLE.value, StaffUser.active.is_(True))
    return sorted(session.scalars(query))


def require_officer(session: Session, actor: str) -> str:
    """The actor's address when it is an active officer's account; :class:`PeopleError` otherwise."""
    user = account(session, actor)
    if user is None or user.role != OFFICER_ROLE.value:
        raise PeopleError(
            "Вносить изменения в реестр может только ответственный за внедрение клиентоцентричности "
            "(учётная запись консоли с ролью process_officer)"
        )
    return user.email


def owner_key(owner: str) -> str:
    """The loose key of an owner cell."""
    return normalise(owner)[:500]


def owner_links(session: Session) -> list[tuple[OwnerLink, StaffUser]]:
    """Every link of an owner cell to an account, by owner."""
    query = select(OwnerLink, StaffUser).join(StaffUser, StaffUser.id == OwnerLink.staff_user_id)
    return [(link, user) for link, user in session.execute(query.order_by(OwnerLink.owner_key))]


def owner_account(session: Session, owner: str) -> StaffUser | None:
    """The account linked to an owner cell, if any (and active)."""
    link = session.scalar(select(OwnerLink).where(OwnerLink.owner_key == owner_key(owner)))
    if link is None:
        return None
    user = session.get(StaffUser, link.staff_user_id)
    return user if user is not None and user.active else None


def link_owner(session: Session, *, owner: str, staff_email: str, actor: str, now: dt.datetime) -> OwnerLink:
    """The officer links an owner cell to a staff account (a new link for the same cell replaces the old one)."""
    require_officer(session, actor)
    key = owner_key(owner)
    if not key:
        raise PeopleError("Укажите владельца процесса так, как он записан в графе «Ответственный за процесс»")
    user = account(session, staff_email)
    if user is None:
        raise PeopleError(f"Нет действующей учётной записи сотрудника {staff_email}")
    link = session.scalar(select(OwnerLink).where(OwnerLink.owner_key == key))
    if link is None:
        link = OwnerLink(owner_key=key, owner=owner.strip(), staff_user_id=user.id, created_at=now, created_by=actor)
        session.add(link)
    else:
        link.owner, link.staff_user_id, link.created_at, link.created_by = owner.strip(), user.id, now, actor
    session.flush()
    return link


def unlink_owner(session: Session, link_id: int, *, actor: str) -> None:
    """The officer removes a link."""
    require_officer(session, actor)
    link = session.get(OwnerLink, link_id)
    if link is None:
        raise PeopleError("Связь не найдена")
    session.delete(link)


def require_owner(session: Session, submitter: str, owners: Iterable[str], *, what: str) -> StaffUser:
    """The submitter's account when it is linked to one of ``owners`` (owner cells); :class:`PeopleError` naming
    the owner and the linked account otherwise."""
    user = account(session, submitter)
    if user is None:
        raise PeopleError("Запрос подаёт сотрудник с действующей учётной записью консоли")
    cells = [o for o in owners if o.strip()]
    for owner in cells:
        linked = owner_account(session, owner)
        if linked is not None and linked.id == user.id:
            return user
    shown = "; ".join(f"«{o}» — {getattr(owner_account(session, o), 'email', None) or 'ни с кем'}" for o in cells[:3])
    raise PeopleError(
        f"Запрос {what} подаёт владелец процесса: учётная запись {user.email} не связана с графой "
        f"«Ответственный за процесс» ({shown or 'владелец не указан'}). Связь устанавливает ответственный за "
        "внедрение клиентоцентричности."
    )
