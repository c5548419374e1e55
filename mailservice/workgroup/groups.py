"""The working group and its members: creation, settings, lookup, membership and address verification."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.mail.addresses import same_address
from mailservice.mail.headers import normalise_address
from mailservice.workgroup import mail
from mailservice.workgroup.models import WgGroup, WgMember
from mailservice.workgroup.policy import ROLE_NAMES, ROLES, group_rules
from mailservice.workgroup.service import WorkgroupError, log, new_nonce

# Groups and members ---------------------------------------------------------------------------------------------


def create_group(
    session: Session, *, slug: str, title: str, profile: str, overrides: Mapping[str, Any], now: dt.datetime, actor: str
) -> WgGroup:
    """A new group under a regulation profile, with the group's own values (validated)."""
    slug = slug.strip()
    if not slug or not title.strip():
        raise WorkgroupError("Укажите краткое имя и название рабочей группы")
    try:
        group_rules(profile, overrides)
    except ValueError as exc:
        raise WorkgroupError(f"Неверные настройки группы: {exc}") from exc
    if session.scalar(select(WgGroup).where(WgGroup.slug == slug)) is not None:
        raise WorkgroupError(f"Рабочая группа «{slug}» уже есть")
    group = WgGroup(slug=slug, title=title.strip(), profile=profile, settings=dict(overrides), created_at=now)
    session.add(group)
    session.flush()
    log(session, now=now, actor=actor, action="group_created", group_id=group.id, profile=profile, **dict(overrides))
    return group


def change_group_settings(
    session: Session, group: WgGroup, changes: Mapping[str, Any], *, now: dt.datetime, actor: str
) -> None:
    """Change some of the group's values (``None`` for a deadline term removes it)."""
    merged = {**(group.settings or {}), **changes}
    try:
        group_rules(group.profile, merged)
    except ValueError as exc:
        raise WorkgroupError(f"Неверные настройки группы: {exc}") from exc
    group.settings = merged
    log(session, now=now, actor=actor, action="group_settings", group_id=group.id, **dict(changes))


def get_group(session: Session, ref: str) -> WgGroup:
    """A group by its slug or id."""
    group = session.scalar(select(WgGroup).where(WgGroup.slug == ref))
    if group is None and ref.isdigit():
        group = session.get(WgGroup, int(ref))
    if group is None:
        raise WorkgroupError(f"Рабочая группа «{ref}» не найдена")
    return group


def members_of(session: Session, group: WgGroup, *, include_inactive: bool = False) -> list[WgMember]:
    """The group's people (invitees too), in the order they were added."""
    query = select(WgMember).where(WgMember.group_id == group.id).order_by(WgMember.id)
    if not include_inactive:
        query = query.where(WgMember.active.is_(True))
    return list(session.scalars(query))


def voting_members(session: Session, group: WgGroup) -> list[WgMember]:
    """The members counted for quorum: active, with a vote (invitees never have one)."""
    return [m for m in members_of(session, group) if m.voting and m.role != "invitee"]


def officer(session: Session, group: WgGroup, role: str) -> WgMember | None:
    """The active chair, deputy chair or secretary."""
    return next((m for m in members_of(session, group) if m.role == role), None)


def find_member(session: Session, group: WgGroup, ref: str) -> WgMember:
    """An active person of the group by address or id."""
    address = normalise_address(ref) if "@" in ref else None
    for member in members_of(session, group):
        if same_address(member.email, address) or (ref.isdigit() and member.id == int(ref)):
            return member
    raise WorkgroupError(f"В рабочей группе нет участника «{ref}»")


def member_by_address(session: Session, group: WgGroup, address: str | None) -> WgMember | None:
    """The active person of the group writing from ``address`` (in any case of its letters: one mailbox), or None."""
    if not address:
        return None
    return next((m for m in members_of(session, group) if same_address(m.email, address)), None)


def add_member(
    session: Session,
    settings: Settings,
    group: WgGroup,
    *,
    name: str,
    email: str,
    role: str,
    position: str = "",
    voting: bool | None = None,
    verified: bool = False,
    now: dt.datetime,
    actor: str,
) -> WgMember:
    """Add a person; an unverified address gets a confirmation link by e-mail (once)."""
    if role not in ROLES:
        raise WorkgroupError(f"Роль должна быть одной из: {', '.join(ROLES)}")
    address = normalise_address(email)
    if address is None:
        raise WorkgroupError(f"Неверный адрес электронной почты: {email}")
    if not name.strip():
        raise WorkgroupError("Укажите фамилию, имя и отчество")
    if member_by_address(session, group, address) is not None:
        raise WorkgroupError(f"Адрес {address} уже есть в составе группы")
    if role in ("chair", "deputy_chair", "secretary") and officer(session, group, role) is not None:
        raise WorkgroupError(f"В группе уже есть {ROLE_NAMES[role]}: сначала исключите его из состава")
    # A returning person keeps their row (the unique address per group) and is made active again.
    everyone = session.scalars(select(WgMember).where(WgMember.group_id == group.id).order_by(WgMember.id))
    member = next((m for m in everyone if same_address(m.email, address)), None)
    if member is None:
        member = WgMember(group_id=group.id, email=address, created_at=now)
        session.add(member)
    member.name, member.role, member.position, member.active = name.strip(), role, position.strip(), True
    member.voting = role != "invitee" and (True if voting is None else voting)
    member.verify_nonce = new_nonce()
    if verified:
        member.verified_at, member.verified_how = now, "staff"
    session.flush()
    log(session, now=now, actor=actor, action="member_added", group_id=group.id, member=member.id, role=role)
    if member.verified_at is None:
        mail.send_verification(session, settings, member, group)
    return member


def remove_member(session: Session, member: WgMember, *, now: dt.datetime, actor: str) -> None:
    """Take a person out of the group (their records stay)."""
    member.active = False
    log(session, now=now, actor=actor, action="member_removed", group_id=member.group_id, member=member.id)


def verify_member(session: Session, member: WgMember, *, nonce: str, now: dt.datetime, how: str = "link") -> bool:
    """Confirm a member's address; False when the link is stale (a newer one was sent)."""
    if member.verify_nonce != nonce or not member.active:
        return False
    if member.verified_at is None:
        member.verified_at, member.verified_how = now, how
        log(session, now=now, actor=member.email, action="member_verified", group_id=member.group_id, member=member.id)
    return True
