"""iCalendar invitations for meetings (RFC 5545, iTIP RFC 5546, iMIP RFC 6047). Pure: no I/O.

* ``METHOD:REQUEST`` for the invitation and every update, ``METHOD:CANCEL`` with ``STATUS:CANCELLED`` for a
  cancellation (RFC 5546 3.2.2, 3.2.5).
* One ``UID`` for the life of the meeting; ``SEQUENCE`` grows with each update so calendar programs replace the
  event instead of adding a second one (RFC 5545 3.8.7.4).
* Times carry the department's time zone (``TZID`` with its ``VTIMEZONE``), so a member's calendar shows the
  meeting at the local hour wherever the member is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import icalendar

PRODID = "-//mailservice//working group//RU"


@dataclass(frozen=True)
class Invitation:
    """What goes into one .ics file."""

    uid: str
    sequence: int
    starts_at: dt.datetime  # aware
    duration: dt.timedelta
    summary: str
    description: str
    location: str
    organizer_email: str
    organizer_name: str
    attendees: Sequence[tuple[str, str]]  # (name, address)
    stamp: dt.datetime  # aware; when this version was made (DTSTAMP)


def build_ics(invitation: Invitation, tz: ZoneInfo, *, cancel: bool = False) -> bytes:
    """The iCalendar object for an invitation (``cancel``: its cancellation), CRLF-terminated lines."""
    if invitation.starts_at.tzinfo is None:
        raise ValueError("the meeting start must be an aware datetime")
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "CANCEL" if cancel else "REQUEST")

    event = icalendar.Event()
    event.add("uid", invitation.uid)
    event.add("sequence", invitation.sequence)
    event.add("dtstamp", invitation.stamp.astimezone(dt.UTC))
    start = invitation.starts_at.astimezone(tz)
    event.add("dtstart", start)
    event.add("dtend", start + invitation.duration)
    event.add("summary", invitation.summary)
    if invitation.description:
        event.add("description", invitation.description)
    if invitation.location:
        event.add("location", invitation.location)
    event.add("status", "CANCELLED" if cancel else "CONFIRMED")
    event.add("transp", "OPAQUE")
    organizer = icalendar.vCalAddress(f"mailto:{invitation.organizer_email}")
    if invitation.organizer_name:
        organizer.params["cn"] = icalendar.vText(invitation.organizer_name)
    event.add("organizer", organizer)
    for name, address in invitation.attendees:
        attendee = icalendar.vCalAddress(f"mailto:{address}")
        if name:
            attendee.params["cn"] = icalendar.vText(name)
        attendee.params["role"] = icalendar.vText("REQ-PARTICIPANT")
        attendee.params["partstat"] = icalendar.vText("NEEDS-ACTION")
        # Replies come by e-mail to the group's address, not as iTIP REPLY objects: no RSVP requested.
        attendee.params["rsvp"] = icalendar.vText("FALSE")
        event.add("attendee", attendee, encode=False)
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return bytes(calendar.to_ical())
