"""Activities (meetings, calls) and their participants.

Layer: crm_model.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_model.base import Base, UtcDateTime
from crm_model.models.parties import Contact, Lead
from crm_model.models.users import User

# The activity's own CRM data: the change-tracking triggers (migration 0004)
# fire on exactly these columns and then set both ``change_pos`` and
# ``edited_pos``. Left out on purpose, so that writing them fires nothing:
# change_pos and edited_pos (the triggers write them), client_body and
# client_body_pos (verbatim client text, keep_client_text), source,
# created_at, updated_at. Participant writes are tracked by their own triggers.
TRACKED_COLUMNS = (
    "owner_id", "type", "title", "starts_at", "ends_at", "all_day", "tzid", "floating",
    "location", "description", "private", "reminder_minutes", "client_extras", "uid", "href",
)


class Activity(Base):
    """A CRM activity, shown as one VEVENT on its owner's calendar."""

    __tablename__ = "activities"
    # UID and href are unique per calendar, i.e. per owner (RFC 4791 5.3.2.1;
    # migration 0006): colleagues may keep the same invitation. uid/href lead
    # the indexes, so lookups by owner and uid/href and by uid/href alone are indexed.
    __table_args__ = (
        Index("ix_activities_owner_start", "owner_id", "starts_at"),
        Index("ix_activities_owner_change", "owner_id", "change_pos"),
        UniqueConstraint("uid", "owner_id", name="uq_activities_uid_owner_id"),
        UniqueConstraint("href", "owner_id", name="uq_activities_href_owner_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    type: Mapped[str] = mapped_column(String(32), default="meeting")
    title: Mapped[str] = mapped_column(String(500), default="")
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    all_day: Mapped[bool] = mapped_column(default=False)
    tzid: Mapped[str | None] = mapped_column(String(64))
    floating: Mapped[bool] = mapped_column(default=False)
    location: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    private: Mapped[bool] = mapped_column(default=False)
    reminder_minutes: Mapped[int | None]
    source: Mapped[str] = mapped_column(String(16), default="crm")
    uid: Mapped[str] = mapped_column(String(255))
    href: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # What a client sent that the CRM does not model, kept for faithful round trips.
    client_extras: Mapped[str | None] = mapped_column(Text)
    # Position (in the owner's change sequence) of the last change of anything the
    # served text depends on: this row, its participants, the owner's name, e-mail
    # and time zone, linked contacts' and leads' names and e-mails, the renderer's
    # version. ETags and sync use it. Set by database triggers only.
    change_pos: Mapped[int] = mapped_column(default=0)
    # Position of the last change of the activity's own CRM data (its tracked
    # columns or its participant list). Calendar membership ("changed after T")
    # uses it, so an owner rename does not pull old activities in. Set by triggers.
    edited_pos: Mapped[int] = mapped_column(default=0, server_default="0")
    # The exact text a CalDAV client PUT, valid only while client_body_pos ==
    # change_pos (any later change moves change_pos). Writing these fires no trigger.
    client_body: Mapped[str | None] = mapped_column(Text)
    client_body_pos: Mapped[int | None]

    owner: Mapped[User] = relationship()
    participants: Mapped[list[Participant]] = relationship(
        back_populates="activity",
        cascade="all, delete-orphan",
        order_by="Participant.position",
        passive_deletes=True,
    )

    def __repr__(self) -> str:
        return f"Activity(id={self.id!r}, owner_id={self.owner_id!r}, title={self.title!r})"


class Participant(Base):
    """One participant: a contact, a lead, or a bare e-mail address."""

    __tablename__ = "participants"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[str] = mapped_column(
        ForeignKey("activities.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(default=0)
    # Indexed (migration 0004): renaming a contact or lead touches its activities.
    contact_id: Mapped[str | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    lead_id: Mapped[str | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"), index=True)
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))

    activity: Mapped[Activity] = relationship(back_populates="participants")
    contact: Mapped[Contact | None] = relationship(lazy="joined")
    lead: Mapped[Lead | None] = relationship(lazy="joined")

    def __repr__(self) -> str:
        return f"Participant(activity_id={self.activity_id!r}, email={self.email!r})"
