"""The one place that maps ORM rows to boundary records.

Layer: crm_model.
"""

from __future__ import annotations

import json
from typing import Any

from crm_model.models import Activity, Participant, User
from crm_model.records import ActivityRecord, ParticipantRecord, UserRecord


def user_record(user: User | Any) -> UserRecord:
    """The boundary record of a user (an ORM object, or a row of the users table)."""
    props = json.loads(user.calendar_props) if user.calendar_props else {}
    return UserRecord(
        id=user.id,
        email=user.email,
        name=user.name,
        timezone=user.timezone,
        enabled=user.caldav_enabled,
        enabled_at=user.caldav_enabled_at,
        sync_type=user.sync_type,
        synced_types=split_types(user.synced_types),
        sync_pos=user.sync_pos,
        window_pos=user.window_pos,
        credentials_version=user.credentials_version,
        calendar_props=tuple(sorted(props.items())),
    )


def split_types(value: str) -> tuple[str, ...]:
    """'meeting,call' -> ('meeting', 'call')."""
    return tuple(t.strip() for t in value.split(",") if t.strip())


def participant_record(participant: Participant) -> ParticipantRecord:
    """Contact and lead participants show the record's current address and name."""
    if participant.contact is not None:
        return ParticipantRecord(
            email=participant.contact.email or participant.email or "",
            name=participant.contact.name or None, kind="contact", ref_id=participant.contact_id,
        )
    if participant.lead is not None:
        return ParticipantRecord(
            email=participant.lead.email or participant.email or "",
            name=participant.lead.name or None, kind="lead", ref_id=participant.lead_id,
        )
    return ParticipantRecord(email=participant.email or "", name=participant.name, kind="email")


def activity_record(activity: Activity) -> ActivityRecord:
    """The boundary record of an activity row.

    ``verbatim_text`` is the client's own text only while it belongs to the
    current revision (``client_body_pos == change_pos``), else None.
    """
    owner = activity.owner
    return ActivityRecord(
        id=activity.id,
        uid=activity.uid,
        href=activity.href,
        owner_id=owner.id,
        owner_email=owner.email,
        owner_name=owner.name,
        owner_timezone=owner.timezone,
        type=activity.type,
        title=activity.title,
        starts_at=activity.starts_at,
        ends_at=activity.ends_at,
        all_day=activity.all_day,
        tzid=activity.tzid,
        floating=activity.floating,
        location=activity.location,
        description=activity.description,
        private=activity.private,
        reminder_minutes=activity.reminder_minutes,
        participants=tuple(participant_record(p) for p in activity.participants),
        source=activity.source,
        created_at=activity.created_at,
        updated_at=activity.updated_at,
        change_pos=activity.change_pos,
        client_extras=activity.client_extras,
        verbatim_text=activity.client_body if activity.client_body_pos == activity.change_pos else None,
    )
