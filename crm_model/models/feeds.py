"""Subscription feeds: a secret iCalendar URL per desktop app that cannot send a password.

Layer: crm_model.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_model.base import Base, UtcDateTime

LABEL_LENGTH = 100
TOKEN_HASH_LENGTH = 64  # SHA-256, hex


class Feed(Base):
    """One subscription feed of a user: the SHA-256 of its URL's token (never the token) and its last use.

    A revoked feed (``revoked_at`` set) is kept for the listing and never
    serves its URL again.
    """

    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(LABEL_LENGTH))
    token_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_LENGTH), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    def __repr__(self) -> str:
        return f"Feed(id={self.id!r}, user_id={self.user_id!r}, label={self.label!r})"
