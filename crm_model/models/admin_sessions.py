"""Server-side state of the admin web page, shared by every process: login sessions and one-time downloads.

Layer: crm_model.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_model.base import Base, UtcDateTime

TOKEN_HASH_LENGTH = 64  # SHA-256, hex
CSRF_LENGTH = 64
LABEL_LENGTH = 100  # a device's label (crm_model.models.devices)


class AdminSession(Base):
    """One logged-in admin: the SHA-256 of the session cookie's token (never the token) and its CSRF token."""

    __tablename__ = "admin_sessions"

    token_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_LENGTH), primary_key=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("admins.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(CSRF_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)

    def __repr__(self) -> str:
        return f"AdminSession(admin_id={self.admin_id!r}, created_at={self.created_at!r})"


class ProfileDownload(Base):
    """A one-time profile download: a hash of the link's token and the device password encrypted with a key
    that only the link's token gives (never the password in clear)."""

    __tablename__ = "profile_downloads"

    token_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_LENGTH), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(LABEL_LENGTH))
    encrypted_password: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)

    def __repr__(self) -> str:
        return f"ProfileDownload(user_id={self.user_id!r}, label={self.label!r}, expires_at={self.expires_at!r})"
