"""Participants: matching client attendees to contacts and leads (SPEC 3.5, 3.6).

Layer: crm_model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_model.models import Activity, Contact, Lead, Participant
from crm_model.records import AttendeeDraft

_CHUNK = 500  # addresses per IN (...) list
_Party = TypeVar("_Party", Contact, Lead)


def resolve_attendee(session: Session, attendee: AttendeeDraft) -> Participant:
    """A participant linked to the contact or lead with this address (any case), else a bare e-mail."""
    return resolve_attendees(session, [attendee])[0]


def resolve_attendees(session: Session, attendees: Sequence[AttendeeDraft]) -> list[Participant]:
    """``resolve_attendee`` of each attendee, in order, with one query per 500 addresses.

    Of several contacts (or leads) with one address, the one of the smallest id is linked.
    Cost: O(len(attendees)) rows read, whatever the number of contacts.
    """
    addresses = list(dict.fromkeys(attendee.email.strip().lower() for attendee in attendees))
    contacts = _by_address(session, Contact, addresses)
    leads = _by_address(session, Lead, [a for a in addresses if a not in contacts])
    participants = []
    for attendee in attendees:
        address = attendee.email.strip()
        contact, lead = contacts.get(address.lower()), leads.get(address.lower())
        if contact is not None:
            participants.append(Participant(contact=contact, email=contact.email))
        elif lead is not None:
            participants.append(Participant(lead=lead, email=lead.email))
        else:
            participants.append(Participant(email=address, name=attendee.name))
    return participants


def _by_address(session: Session, model: type[_Party], addresses: list[str]) -> dict[str, _Party]:
    """Contacts (or leads) by lower-case e-mail; the smallest id wins (lower(email) is indexed)."""
    found: dict[str, _Party] = {}
    for first in range(0, len(addresses), _CHUNK):
        chunk = addresses[first:first + _CHUNK]
        rows = session.scalars(select(model).where(func.lower(model.email).in_(chunk)).order_by(model.id))
        for row in rows:
            found.setdefault((row.email or "").lower(), row)
    return found


def participant_address(participant: Participant) -> str:
    """The address a participant is shown with, lower case (for comparisons)."""
    if participant.contact is not None and participant.contact.email:
        return participant.contact.email.lower()
    if participant.lead is not None and participant.lead.email:
        return participant.lead.email.lower()
    return (participant.email or "").lower()


def merge_client_attendees(
    session: Session, activity: Activity, attendees: Iterable[AttendeeDraft], *, organizer: str
) -> None:
    """Add attendees a client added; never remove one (one-way attendee deletion, SPEC 3.6).

    A participant removed on a client stays in the CRM, and the client gets it
    back on its next sync. Only the CRM (import) removes participants. The
    organizer's own ATTENDEE entry (Apple clients add one) is not a participant.

    Added attendees are resolved together (``resolve_attendees``) and appended
    without flushing in between: the time is linear in their number.
    """
    known = {participant_address(p) for p in activity.participants}
    known.add(organizer.lower())
    added = []
    for attendee in attendees:
        address = attendee.email.strip().lower()
        if not address or address in known:
            continue
        added.append(attendee)
        known.add(address)
    with session.no_autoflush:
        participants = resolve_attendees(session, added)
        position = len(activity.participants)
        for offset, participant in enumerate(participants):
            participant.position = position + offset
            activity.participants.append(participant)
