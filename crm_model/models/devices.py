"""Per-device app passwords: one hashed password per phone or computer, revocable alone.

Layer: crm_model.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_model.base import Base, UtcDateTime

if TYPE_CHECKING:
    from crm_model.models.users import User

LABEL_LENGTH = 100
USER_AGENT_LENGTH = 300
ADDRESS_LENGTH = 64


class Device(Base):
    """An app password of one device (a hash, never the password) and its last use.

    A revoked device (``revoked_at`` set) is kept for the listing and never
    opens a login again.
    """

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(LABEL_LENGTH))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_user_agent: Mapped[str | None] = mapped_column(String(USER_AGENT_LENGTH))
    last_address: Mapped[str | None] = mapped_column(String(ADDRESS_LENGTH))
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    user: Mapped[User] = relationship(back_populates="devices")

    def __repr__(self) -> str:
        return f"Device(id={self.id!r}, user_id={self.user_id!r}, label={self.label!r})"
