"""Participants: matching client attendees to contacts and leads (SPEC 3.5, 3.6).

Layer: crm_model.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_model.models import Activity, Contact, Lead, Participant
from crm_model.records import AttendeeDraft


def resolve_attendee(session: Session, attendee: AttendeeDraft) -> Participant:
    """A participant linked to the contact or lead with this address (any case), else a bare e-mail."""
    address = attendee.email.strip()
    lowered = address.lower()
    contact = session.scalars(
        select(Contact).where(func.lower(Contact.email) == lowered).order_by(Contact.id).limit(1)
    ).first()
    if contact is not None:
        return Participant(contact=contact, email=contact.email)
    lead = session.scalars(
        select(Lead).where(func.lower(Lead.email) == lowered).order_by(Lead.id).limit(1)
    ).first()
    if lead is not None:
        return Participant(lead=lead, email=lead.email)
    return Participant(email=address, name=attendee.name)


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
    """
    known = {participant_address(p) for p in activity.participants}
    known.add(organizer.lower())
    for attendee in attendees:
        address = attendee.email.strip().lower()
        if not address or address in known:
            continue
        participant = resolve_attendee(session, attendee)
        participant.position = len(activity.participants)
        activity.participants.append(participant)
        known.add(address)
