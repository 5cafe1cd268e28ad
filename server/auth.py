"""Logins: CRM e-mail + a device's app password, cached without delaying a disable or a revocation.

``Auth.authenticate`` is what the crm-caldav handler calls for every request.
``Auth`` is also a Radicale auth plugin, so a stock Radicale can load it by
module name (``[auth] type = server.auth``; the database as for the storage
plugin, see storage_plugin.standalone).

Layer: server.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote

from radicale import config as radicale_config
from radicale.auth import BaseAuth

from crm_model.records import UserRecord
from crm_model.services import calendar as calendar_service
from crm_model.services import devices as device_service
from crm_model.services import users as user_service
from storage_plugin.backend import CalendarBackend

CACHE_LIMIT = 10_000
MAX_PASSWORD_CHARS = 4096  # app passwords are 19 characters; no account has a longer one
CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f]")
USE_INTERVAL_SECONDS = device_service.USE_INTERVAL.total_seconds()
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RememberedLogin:
    """A login whose password was checked within the cache period (``Auth.remembered``)."""

    email: str
    user_id: int
    credentials_version: int
    device_id: int
    expires: float  # time.monotonic() seconds

    @property
    def holds(self) -> tuple[int, int]:
        """(user id, credentials version): what the user's row must still show for the login to hold."""
        return self.user_id, self.credentials_version


@dataclass(frozen=True)
class CheckedLogin:
    """Credentials that held: the user, the device whose app password it was, and whether the
    password hash was checked by this call (False: remembered from a check within the cache period)."""

    user: UserRecord
    device_id: int
    hash_checked: bool


def basic_credentials(authorization: str) -> tuple[str, str] | None:
    """(login, password) of an RFC 7617 Basic Authorization value; None when malformed.

    The login is normalised as users are stored: URL-decoded (iOS may send
    user%40example.com) and lower case.
    """
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    login, separator, password = decoded.partition(":")
    if not separator or not login.strip():
        return None
    return user_service.normalize_email(unquote(login)), password


class Auth(BaseAuth):
    """Checks device app passwords (pbkdf2 hashes) and caches successes by a keyed digest.

    The slow hash is paid once per cache period; every request still reads the
    user's row, so a disable or a revocation takes effect on the very next
    request (SPEC 6). A cached login holds (user id, credentials_version);
    revoking a device bumps the user's credentials_version (see
    ``devices.revoke_device``), so the revoked password fails at once, also
    within the cache period, with no extra read on the hot path. The price:
    the user's other devices check their hash once more after a revocation.
    The cache also keeps the device id, for the request's ``note_use``.
    """

    def __init__(self, configuration: radicale_config.Configuration, *,
                 backend: CalendarBackend | None = None, cache_seconds: int = 300) -> None:
        super().__init__(configuration)
        if backend is None:
            from storage_plugin.standalone import backend_from_configuration

            backend = backend_from_configuration(configuration, section="auth")
        self._backend = backend
        self._cache_seconds = cache_seconds
        self._cache: dict[bytes, RememberedLogin] = {}
        self._key = secrets.token_bytes(32)  # cache keys never hold passwords
        self._lock = threading.Lock()
        self._uses: dict[int, float] = {}  # device id -> when this process last wrote its use

    def authenticate(self, login: str, password: str) -> UserRecord | None:
        """The calendar user for these credentials, or None when they do not hold (see ``check``)."""
        checked = self.check(login, password)
        return checked.user if checked is not None else None

    def check(self, login: str, password: str) -> CheckedLogin | None:
        """Who these credentials log in, and with which device; None when they do not hold.

        Raises:
            Refusal: 503 when the database is unavailable.
        """
        if len(password) > MAX_PASSWORD_CHARS or CONTROL_CHARACTER.search(login):
            return None  # passlib raises past 4,096 characters; PostgreSQL refuses NUL in a login
        login, digest = self._cache_key(login, password)
        with self._backend.reading() as session:
            user = calendar_service.get_calendar_user(session, email=login)
            if user is None:
                user_service.verify_login(session, login=login, password=password)  # same cost: no oracle
                return None
            cached = self._cached(login, digest)
            if cached is not None and (cached.user_id, cached.credentials_version) == (
                    user.id, user.credentials_version):
                return CheckedLogin(user, cached.device_id, hash_checked=False)
            verified = user_service.verify_device_login(session, login=login, password=password)
        if verified is None:
            with self._lock:
                self._cache.pop(digest, None)
            return None
        self._remember(digest, verified.user, verified.device_id)
        return CheckedLogin(verified.user, verified.device_id, hash_checked=True)

    def remembered(self, login: str, password: str) -> RememberedLogin | None:
        """The login if its password was checked within the cache period, else None.

        No database read: the caller compares ``holds`` with the user row it
        reads anyway, so a disable or a new password still acts on the next request.
        """
        return self._cached(*self._cache_key(login, password))

    def note_use(self, device_id: int, *, user_agent: str, address: str) -> None:
        """Record the last use of ``device_id``, whose login just held; best effort.

        Call it after the request's read transaction has ended. Writes at most
        once a minute per device from this process (and, by the condition in
        ``devices.record_device_use``, once a minute between processes). A
        failure to write is logged and never fails the request.
        """
        now = time.monotonic()
        if now - self._uses.get(device_id, -USE_INTERVAL_SECONDS) < USE_INTERVAL_SECONDS:
            return
        with self._lock:
            if len(self._uses) > CACHE_LIMIT:
                self._uses.clear()
            self._uses[device_id] = now
        try:
            with self._backend.writing() as session:
                device_service.record_device_use(session, device_id=device_id, user_agent=user_agent,
                                                 address=address, now=datetime.now(UTC))
        except Exception:  # best effort: the request matters more than its bookkeeping
            logger.warning("could not record the last use of device %s", device_id)

    def _cached(self, login: str, digest: bytes) -> RememberedLogin | None:
        cached = self._cache.get(digest)
        if cached is None or cached.expires <= time.monotonic() or cached.email != login:
            return None
        return cached

    def _remember(self, digest: bytes, user: UserRecord, device_id: int) -> None:
        with self._lock:
            if len(self._cache) > CACHE_LIMIT:
                self._cache.clear()
            self._cache[digest] = RememberedLogin(
                user.email, user.id, user.credentials_version, device_id, time.monotonic() + self._cache_seconds)

    def _cache_key(self, login: str, password: str) -> tuple[str, bytes]:
        """The normalised login and the keyed digest its cached check is stored under."""
        login = user_service.normalize_email(login)
        return login, hmac.new(self._key, f"{login}\0{password}".encode(), hashlib.sha256).digest()

    def _login(self, login: str, password: str) -> str:
        """Radicale's plugin entry point (stock Radicale only)."""
        user = self.authenticate(login, password)
        return user.email if user is not None else ""
