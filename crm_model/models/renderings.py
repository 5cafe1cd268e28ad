"""A serialisation cache shared by every server process.

Layer: crm_model. What the text is (iCalendar, here) is the caller's business:
crm_model only keeps it next to the activity revision it was made from.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_model.base import Base


class ActivityRendering(Base):
    """The last text rendered for an activity, valid while ``change_pos`` and ``variant`` match.

    ``change_pos`` is written by the change-tracking triggers on every change of
    anything the text depends on (the activity, its participants, the owner's
    name, e-mail and time zone, linked contacts and leads, the renderer's version
    recorded in ``renderer_state``), so an entry can never be served stale,
    whichever program changed what; ``variant`` is the caller's label of the
    renderer (its version string).
    Kept in the database, not in process memory: every server process shares
    it and memory stays flat whatever the calendar size.
    """

    __tablename__ = "activity_renderings"

    activity_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("activities.id", ondelete="CASCADE"), primary_key=True
    )
    change_pos: Mapped[int]
    variant: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"ActivityRendering(activity_id={self.activity_id!r}, change_pos={self.change_pos!r})"


class RendererState(Base):
    """The renderer version the stored change positions were last moved for.

    ``ensure_renderer_version`` (crm_model.services.renderings) compares it at
    start-up and gives every activity a new change position when it differs,
    so ETags and sync tokens move when the served text does (SPEC 2).
    """

    __tablename__ = "renderer_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int]

    def __repr__(self) -> str:
        return f"RendererState(name={self.name!r}, version={self.version!r})"
