"""Export of CRM JSON: everything, or one owner's activities, in the import format plus read-only fields.

Layer: crm_model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from crm_model.errors import NotFoundError
from crm_model.models import Activity, Contact, Lead, Participant, User
from crm_model.services.mapping import split_types
from crm_model.services.users import normalize_email


def export_data(session: Session, *, owner: str | None = None) -> dict[str, Any]:
    """Everything (or one owner's activities) in the import format, plus read-only fields."""
    users_query = select(User).order_by(User.email)
    activities_query = (select(Activity).options(selectinload(Activity.participants))
                        .order_by(Activity.starts_at, Activity.id))
    if owner is not None:
        email = normalize_email(owner)
        users_query = users_query.where(User.email == email)
        activities_query = activities_query.join(User, Activity.owner_id == User.id).where(User.email == email)
    users = session.scalars(users_query).all()
    if owner is not None and not users:
        raise NotFoundError(f"no user with e-mail {owner}")
    return {
        "users": [_export_user(u) for u in users],
        "contacts": [{"id": c.id, "name": c.name, "email": c.email}
                     for c in session.scalars(select(Contact).order_by(Contact.id))],
        "leads": [{"id": c.id, "name": c.name, "email": c.email}
                  for c in session.scalars(select(Lead).order_by(Lead.id))],
        "activities": [export_activity(a) for a in session.scalars(activities_query)],
    }


def _export_user(user: User) -> dict[str, Any]:
    return {
        "email": user.email, "name": user.name, "timezone": user.timezone,
        "caldav": {
            "enabled": user.caldav_enabled, "enabled_at": _iso(user.caldav_enabled_at),
            "sync_type": user.sync_type, "synced_types": list(split_types(user.synced_types)),
        },
    }


def export_activity(activity: Activity) -> dict[str, Any]:
    zone = ZoneInfo(activity.owner.timezone)
    if activity.all_day:
        start, end = activity.starts_at.date().isoformat(), activity.ends_at.date().isoformat()
    else:
        start = activity.starts_at.astimezone(zone).isoformat()
        end = activity.ends_at.astimezone(zone).isoformat()
    return {
        "id": activity.id, "owner": activity.owner.email, "type": activity.type,
        "title": activity.title, "start": start, "end": end, "all_day": activity.all_day,
        "location": activity.location, "description": activity.description,
        "private": activity.private, "reminder_minutes": activity.reminder_minutes,
        "participants": [_export_participant(p) for p in activity.participants],
        "uid": activity.uid, "href": activity.href, "created_at": _iso(activity.created_at),
        "updated_at": _iso(activity.updated_at), "source": activity.source,
    }


def _export_participant(participant: Participant) -> dict[str, Any]:
    if participant.contact_id:
        return {"contact": participant.contact_id}
    if participant.lead_id:
        return {"lead": participant.lead_id}
    exported: dict[str, Any] = {"email": participant.email}
    if participant.name:
        exported["name"] = participant.name
    return exported


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
