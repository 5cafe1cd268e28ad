"""Accounts of the admin web page (SPEC 8): separate from CalDAV users and their app passwords.

Layer: crm_model.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from crm_model.base import Base, UtcDateTime


class Admin(Base):
    """An admin login: e-mail (lower case) and a password hash (never the password)."""

    __tablename__ = "admins"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    def __repr__(self) -> str:
        return f"Admin(id={self.id!r}, email={self.email!r})"
