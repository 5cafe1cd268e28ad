"""The initial window (SPEC 3.2): which existing activities a newly enabled calendar offers.

Layer: crm_model.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from crm_model.models import Activity, InitialWindowEntry, User
from crm_model.records import WindowPolicy
from crm_model.services.mapping import split_types


def window_start(enabled_at: datetime, user_timezone: str, months_back: int) -> datetime:
    """First day of the month ``months_back`` before ``enabled_at``'s month, in the user's zone."""
    try:
        zone = ZoneInfo(user_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = enabled_at.astimezone(zone)
    month_index = local.year * 12 + (local.month - 1) - months_back
    first = datetime(month_index // 12, month_index % 12 + 1, 1, tzinfo=zone)
    return first.astimezone(UTC)


def fix_initial_window(session: Session, user: User, *, now: datetime, policy: WindowPolicy) -> int:
    """Record the fixed initial set as of ``now`` (time T) and return its size.

    Activities created or edited after T are recognised by an ``edited_pos``
    above ``window_pos`` (the user's position at T), so the set never has to be
    recomputed: deleting one member never pulls another old activity in, and
    renaming the owner or a contact (which moves only ``change_pos``) pulls
    nothing in either.
    """
    start = window_start(now, user.timezone, policy.months_back)
    end = now if policy.end_at_enable else None
    query = (
        select(Activity.id)
        .where(
            Activity.owner_id == user.id,
            Activity.type.in_(split_types(user.synced_types)),
            Activity.starts_at >= start,
        )
        .order_by(Activity.starts_at, Activity.id)
        .limit(policy.cap)
    )
    if end is not None:
        query = query.where(Activity.starts_at <= end)
    members = session.scalars(query).all()
    session.execute(delete(InitialWindowEntry).where(InitialWindowEntry.user_id == user.id))
    if members:
        session.execute(
            insert(InitialWindowEntry),
            [{"user_id": user.id, "activity_id": activity_id} for activity_id in members],
        )
    # A new window invalidates every sync token of the old one (they embed window_pos),
    # so clients resynchronise from scratch instead of keeping stale events.
    session.flush()
    position = session.execute(
        update(User).where(User.id == user.id).values(sync_pos=User.sync_pos + 1)
        .returning(User.sync_pos)
    ).scalar_one()
    user.sync_pos = user.window_pos = position
    user.window_start, user.window_end = start, end
    return len(members)
