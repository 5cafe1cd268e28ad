"""Change tracking: the per-calendar change log (with tombstones) and the initial window.

Layer: crm_model.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_model.base import Base


class CalendarChange(Base):
    """One change to one user's calendar, written by database triggers.

    ``pos`` comes from ``users.sync_pos``, advanced under the user's row lock, so
    positions of one calendar are handed out in commit order: a sync token taken
    at position P can never miss a change committed later with a smaller one.
    One statement may record many activities at one position (an owner rename,
    a new renderer version): the (user_id, pos) index is not unique (migration 0004).
    Deleted activities leave their row here: that is the tombstone.
    """

    __tablename__ = "calendar_changes"
    __table_args__ = (Index("ix_calendar_changes_user_pos", "user_id", "pos"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    pos: Mapped[int]
    activity_id: Mapped[str] = mapped_column(String(64), index=True)
    href: Mapped[str] = mapped_column(String(255))

    def __repr__(self) -> str:
        return f"CalendarChange(user_id={self.user_id!r}, pos={self.pos!r}, href={self.href!r})"


class InitialWindowEntry(Base):
    """Membership of the initial window, fixed when CalDAV is enabled (SPEC 3.2)."""

    __tablename__ = "initial_window"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    activity_id: Mapped[str] = mapped_column(String(64), primary_key=True)

    def __repr__(self) -> str:
        return f"InitialWindowEntry(user_id={self.user_id!r}, activity_id={self.activity_id!r})"
