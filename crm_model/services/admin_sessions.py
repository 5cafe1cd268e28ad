"""The admin page's login sessions and one-time profile downloads, kept in the database.

Every server process (``serve --workers N``) and every host on one database
sees the same sessions and links, so a browser or a phone may land on any of
them. Tokens hold 256 random bits and are URL- and cookie-safe.

A session is stored under the SHA-256 of its cookie's token (never the token
itself) with its admin and its CSRF token. It ends after SESSION_IDLE without
a request, SESSION_MAX after the login, and at logout; its last use is written
at most once per SEEN_INTERVAL, so most requests only read it.

A profile download is stored under a hash of its link's token, with the
device password encrypted (Fernet) with a key derived from the token by HKDF:
only the link can decrypt it, and neither the stored hash nor the database
gives the key. Taking a download deletes its row in the same statement that
reads it, so a link works once even when two processes race for it; it
expires after DOWNLOAD_LIFETIME.

Layer: crm_model (plus cryptography).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime, timedelta

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from crm_model.errors import NotFoundError
from crm_model.models import Admin, AdminSession, ProfileDownload, User
from crm_model.records import AdminSessionRecord, ProfileDownloadRecord
from crm_model.services.users import get_user

TOKEN_BYTES = 32  # 256 bits; 43 URL-safe characters
SESSION_IDLE = timedelta(hours=1)
SESSION_MAX = timedelta(hours=12)
SEEN_INTERVAL = timedelta(minutes=1)
DOWNLOAD_LIFETIME = timedelta(minutes=10)
_DOWNLOAD_LOOKUP = b"crm-caldav profile download lookup\x00"
_DOWNLOAD_KEY_INFO = b"crm-caldav profile download key"


def new_token() -> str:
    """A random token of 256 bits, URL- and cookie-safe."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def session_token_hash(token: str) -> str:
    """The stored form of a session token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def download_token_hash(token: str) -> str:
    """The stored form of a download token: a SHA-256 of it under its own prefix (not the key), hex."""
    return hashlib.sha256(_DOWNLOAD_LOOKUP + token.encode("utf-8", "surrogatepass")).hexdigest()


def _download_cipher(token: str) -> Fernet:
    """The Fernet cipher of a download's password, keyed by HKDF-SHA256 of the link's token."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_DOWNLOAD_KEY_INFO).derive(
        token.encode("utf-8", "surrogatepass"))
    return Fernet(base64.urlsafe_b64encode(key))


def start_session(session: Session, *, admin_id: int, now: datetime) -> tuple[str, AdminSessionRecord]:
    """A new login session of admin ``admin_id``: (the cookie's token, to give once; the session).

    Sessions that have ended by now are deleted on the way. Raises NotFoundError: no such admin.
    """
    admin = session.get(Admin, admin_id)
    if admin is None:
        raise NotFoundError(f"no admin with id {admin_id}")
    session.execute(delete(AdminSession).where(or_(AdminSession.last_seen_at < now - SESSION_IDLE,
                                                   AdminSession.created_at < now - SESSION_MAX)))
    token = new_token()
    row = AdminSession(token_hash=session_token_hash(token), admin_id=admin.id, csrf_token=new_token(),
                       created_at=now, last_seen_at=now)
    session.add(row)
    session.flush()
    return token, _session_record(row, admin.email)


def get_session(session: Session, *, token: str | None, now: datetime) -> AdminSessionRecord | None:
    """The live session of ``token`` (its idle time restarts), or None: unknown, idle too long or too old."""
    if not token:
        return None
    found = session.execute(select(AdminSession, Admin.email).join(Admin, Admin.id == AdminSession.admin_id)
                            .where(AdminSession.token_hash == session_token_hash(token))).one_or_none()
    if found is None:
        return None
    row, email = found
    if now - row.last_seen_at > SESSION_IDLE or now - row.created_at > SESSION_MAX:
        session.delete(row)
        session.flush()
        return None
    if now - row.last_seen_at >= SEEN_INTERVAL:
        row.last_seen_at = now
        session.flush()
    return _session_record(row, email)


def end_session(session: Session, *, token: str | None) -> None:
    """End the session of ``token`` (logout); an unknown token changes nothing."""
    if token:
        session.execute(delete(AdminSession).where(AdminSession.token_hash == session_token_hash(token)))


def offer_download(session: Session, *, email: str, label: str, password: str, now: datetime) -> str:
    """A token whose link downloads the profile of user ``email``'s device ``label`` once, within
    DOWNLOAD_LIFETIME. ``password`` is stored encrypted with a key only the token gives.

    Downloads expired by now are deleted on the way. Raises NotFoundError: no such user.
    """
    user = get_user(session, email=email)
    session.execute(delete(ProfileDownload).where(ProfileDownload.expires_at < now))
    token = new_token()
    encrypted = _download_cipher(token).encrypt(password.encode("utf-8")).decode("ascii")
    session.add(ProfileDownload(token_hash=download_token_hash(token), user_id=user.id, label=label,
                                encrypted_password=encrypted, expires_at=now + DOWNLOAD_LIFETIME))
    session.flush()
    return token


def take_download(session: Session, *, token: str, now: datetime) -> ProfileDownloadRecord | None:
    """What the link of ``token`` downloads, deleted now; None when unknown, already taken or expired."""
    taken = session.execute(
        delete(ProfileDownload).where(ProfileDownload.token_hash == download_token_hash(token))
        .returning(ProfileDownload.user_id, ProfileDownload.label, ProfileDownload.encrypted_password,
                   ProfileDownload.expires_at)
        .execution_options(synchronize_session=False)).one_or_none()
    if taken is None or taken.expires_at < now:
        return None
    user = session.get(User, taken.user_id)
    try:
        password = _download_cipher(token).decrypt(taken.encrypted_password.encode("ascii")).decode("utf-8")
    except InvalidToken:
        return None
    if user is None:
        return None
    return ProfileDownloadRecord(email=user.email, label=taken.label, password=password)


def _session_record(row: AdminSession, email: str) -> AdminSessionRecord:
    return AdminSessionRecord(email=email, csrf=row.csrf_token, created_at=row.created_at,
                              last_seen_at=row.last_seen_at)
