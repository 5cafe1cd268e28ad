"""What enabling CalDAV now would put on a user's calendar, and what each rule keeps off (`caldav preview`).

The initial set comes from ``window.select_initial_set``, the very function
``enable_caldav`` records, so a preview and the enable that follows it (at
the same moment, with the same settings) cannot disagree. The answer to
"why is half my calendar missing?" before anyone asks it (SPEC 1, 3.2, 3.9).

Layer: crm_model.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, false, func, not_, or_, select
from sqlalchemy.orm import Session

from crm_model.models import Activity
from crm_model.records import PreviewGroup, PreviewItem, PreviewRecord, WindowPolicy
from crm_model.services.calendar import SOURCE_CALDAV
from crm_model.services.mapping import split_types
from crm_model.services.users import get_user
from crm_model.services.window import in_window_condition, select_initial_set


def preview(session: Session, *, email: str, policy: WindowPolicy, now: datetime, sample: int = 5) -> PreviewRecord:
    """The calendar user ``email`` would get if CalDAV were enabled at ``now`` under ``policy``.

    Counts every activity the user owns once: ``offered`` (the initial set,
    plus what a client made, which is always offered), else the first rule
    that keeps it off: type not synced, outside the window, over the cap.
    Each group names its first ``sample`` activities by start. For a user
    already enabled this is what a new window as of ``now`` would hold.
    Reads only.

    Raises:
        NotFoundError: no such user.
    """
    user = get_user(session, email=email)
    selection = select_initial_set(session, user, now=now, policy=policy)
    synced = split_types(user.synced_types)
    owned_synced = and_(Activity.owner_id == user.id, Activity.type.in_(synced))
    from_crm = Activity.source != SOURCE_CALDAV
    member = Activity.id.in_(selection.members) if selection.members else false()
    in_window = in_window_condition(selection.start, selection.end, user.timezone)
    conditions = {
        "offered": and_(owned_synced, or_(member, not_(from_crm))),
        "type_not_synced": and_(Activity.owner_id == user.id, Activity.type.not_in(synced)),
        "outside_window": and_(owned_synced, from_crm, not_(in_window)),
        "over_cap": and_(owned_synced, from_crm, in_window, not_(member)),
    }
    groups = {name: _group(session, condition, sample) for name, condition in conditions.items()}
    return PreviewRecord(
        email=user.email, enabled=user.caldav_enabled, window_start=selection.start, window_end=selection.end,
        cap=policy.cap, synced_types=synced, **groups,
    )


def _group(session: Session, condition: ColumnElement[bool], sample: int) -> PreviewGroup:
    """How many activities meet ``condition``, and the first ``sample`` of them by start (then id)."""
    count = session.scalar(select(func.count()).select_from(Activity).where(condition))
    rows = session.execute(
        select(Activity.id, Activity.title, Activity.starts_at).where(condition)
        .order_by(Activity.starts_at, Activity.id).limit(max(sample, 0))
    )
    items = tuple(PreviewItem(id=row.id, title=row.title, starts_at=row.starts_at) for row in rows)
    return PreviewGroup(count=int(count or 0), sample=items)
