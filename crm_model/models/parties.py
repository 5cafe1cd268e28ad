"""Contacts and leads: the people activities can be with.

Layer: crm_model.
"""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from crm_model.base import Base


class Contact(Base):
    """A CRM contact."""

    __tablename__ = "contacts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # Stored lower case by import; attendee matching compares lower(email), which
    # the expression index of migration 0003 serves (other writers may use any case).
    email: Mapped[str | None] = mapped_column(String(320), index=True)

    def __repr__(self) -> str:
        return f"Contact(id={self.id!r}, email={self.email!r})"


class Lead(Base):
    """A CRM lead."""

    __tablename__ = "leads"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(320), index=True)

    def __repr__(self) -> str:
        return f"Lead(id={self.id!r}, email={self.email!r})"
