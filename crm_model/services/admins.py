"""Accounts of the admin web page (SPEC 8): add, verify, list.

Admins live in their own table with their own libpass hashes: a CalDAV app
password (``devices``) never opens the admin login, even for the same e-mail.

Layer: crm_model (plus libpass, through crm_model.services.passwords).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_model.errors import ConflictError, InvalidDataError
from crm_model.models import Admin
from crm_model.records import AdminRecord
from crm_model.services.passwords import hash_password, password_matches, spend_one_check
from crm_model.services.users import normalize_email

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 4096  # libpass refuses longer ones


def admin_record(admin: Admin) -> AdminRecord:
    """The boundary record of an admin row."""
    return AdminRecord(id=admin.id, email=admin.email, created_at=admin.created_at)


def add_admin(session: Session, *, email: str, password: str, now: datetime) -> AdminRecord:
    """A new admin account ``email`` (lower case) with ``password`` (only its hash is kept).

    Raises:
        InvalidDataError: an e-mail without '@', or a password shorter than
            12 or longer than 4,096 characters.
        ConflictError: an admin with this e-mail exists.
    """
    address = normalize_email(email)
    if "@" not in address or len(address) > 320:
        raise InvalidDataError(f"email: {email!r} is not an e-mail address")
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise InvalidDataError(f"password: use {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")
    if _find(session, address) is not None:
        raise ConflictError(f"an admin {address} exists already")
    admin = Admin(email=address, password_hash=hash_password(password), created_at=now)
    session.add(admin)
    session.flush()
    return admin_record(admin)


def verify_admin(session: Session, *, email: str, password: str) -> AdminRecord | None:
    """The admin if ``password`` is theirs, else None.

    An unknown e-mail costs one hash check too, so the answer's timing does
    not tell whether an admin exists. Passwords over 4,096 characters fail.
    """
    if len(password) > MAX_PASSWORD_CHARS:
        return None
    admin = _find(session, normalize_email(email))
    if admin is None:
        spend_one_check(password)
        return None
    return admin_record(admin) if password_matches(password, admin.password_hash) else None


def list_admins(session: Session) -> list[AdminRecord]:
    """Every admin account, by e-mail."""
    return [admin_record(a) for a in session.scalars(select(Admin).order_by(Admin.email))]


def _find(session: Session, address: str) -> Admin | None:
    return session.scalars(select(Admin).where(Admin.email == address)).one_or_none()
