"""CRM users and their CalDAV state (their app passwords: crm_model.models.devices).

Layer: crm_model.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_model.base import Base, UtcDateTime
from crm_model.models.devices import Device


class User(Base):
    """A CRM user; ``email`` (lower case) is the CalDAV login."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    caldav_enabled: Mapped[bool] = mapped_column(default=False)
    caldav_enabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sync_type: Mapped[str] = mapped_column(String(16), default="two-way")
    synced_types: Mapped[str] = mapped_column(String(200), default="meeting,call")
    # Position of the last change to this user's calendar; advanced by database
    # triggers (see the migration), so writers that bypass this code are tracked too.
    sync_pos: Mapped[int] = mapped_column(default=0)
    # sync_pos when the current initial window was fixed (enable time T); changes
    # after it are always offered, and sync tokens of an older window are invalid.
    window_pos: Mapped[int] = mapped_column(default=0)
    window_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Bumped on disable and on a device's revocation so cached logins die at once.
    credentials_version: Mapped[int] = mapped_column(default=0)
    calendar_props: Mapped[str | None] = mapped_column(Text)
    last_sync_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    devices: Mapped[list[Device]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by=Device.id
    )

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, email={self.email!r})"

