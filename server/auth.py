"""Radicale auth plugin: CRM e-mail + app password, cached without delaying a disable.

Layer: server.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from radicale import config as radicale_config
from radicale.auth import BaseAuth
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from crm_model.services import users as user_service
from storage_plugin import request_state


@dataclass(frozen=True)
class _CachedLogin:
    email: str
    user_id: int
    credentials_version: int
    expires: float


class Auth(BaseAuth):
    """Checks app passwords (pbkdf2 hashes) and caches successes by a keyed digest.

    The slow hash is paid once per cache period; every request still does one
    indexed read of the user's enabled flag and credentials version, so a
    disable or a new password takes effect on the very next request (SPEC 6).
    """

    def __init__(
        self, configuration: radicale_config.Configuration, *, sessions: sessionmaker[Session],
        cache_seconds: int = 300,
    ) -> None:
        super().__init__(configuration)
        self._sessions = sessions
        self._cache_seconds = cache_seconds
        self._cache: dict[bytes, _CachedLogin] = {}
        self._key = secrets.token_bytes(32)  # cache keys never hold passwords
        self._lock = threading.Lock()

    def remembered(self, login: str, password: str) -> tuple[int, int] | None:
        """(user id, credentials version) of a login checked within the cache period, else None.

        No database read: the caller compares both with the user row it reads
        anyway, so a disable or a new password still acts on the next request.
        """
        login, digest = self._cache_key(login, password)
        cached = self._cache.get(digest)
        if cached is None or cached.expires <= time.monotonic() or cached.email != login:
            return None
        return cached.user_id, cached.credentials_version

    def _cache_key(self, login: str, password: str) -> tuple[str, bytes]:
        """The normalised login and the keyed digest its cached check is stored under."""
        login = user_service.normalize_email(login)
        return login, hmac.new(self._key, f"{login}\0{password}".encode(), hashlib.sha256).digest()

    def _login(self, login: str, password: str) -> str:
        login, digest = self._cache_key(login, password)
        try:
            with self._sessions.begin() as session:
                cached = self._cache.get(digest)
                if cached and cached.expires > time.monotonic() and user_service.login_still_valid(
                    session, user_id=cached.user_id, credentials_version=cached.credentials_version
                ):
                    return cached.email
                user = user_service.verify_login(session, login=login, password=password)
        except OperationalError:
            request_state.refuse_unavailable()
            return ""
        if user is None:
            with self._lock:
                self._cache.pop(digest, None)
            return ""
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = _CachedLogin(
                user.email, user.id, user.credentials_version, time.monotonic() + self._cache_seconds
            )
        return user.email
