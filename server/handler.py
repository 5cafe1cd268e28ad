"""The crm-caldav WSGI handler: every request is authenticated here, then answered here or by Radicale.

Answered here, through the calendar backend with explicit arguments: PUT,
DELETE and GET/HEAD of an event, the hot REPORTs (sync-collection,
calendar-multiget, calendar-query with a time range) and the getctag /
sync-token poll, and the refusals of what the CRM never allows (MKCALENDAR,
MKCOL, MOVE, DELETE of a collection, any path of another user). Radicale
answers discovery, PROPPATCH and the long tail, with the login handed over
as REMOTE_USER (its ``remote_user`` auth) so that a password is checked once.
Every refusal is a ``Refusal``, answered by ``refusals.answer_for``.

Layer: server.
"""

from __future__ import annotations

import io
import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from radicale import pathutils

from crm_model.records import UserRecord
from server import principal, request_checks, request_log
from server.admin import is_admin_path
from server.auth import Auth, CheckedLogin, basic_credentials
from server.feeds import FeedServer, is_feed_path
from server.http import AnswerBody, encode_answer
from server.throttle import LoginThrottle
from storage_plugin import paths, reports, tokens
from storage_plugin.backend import CalendarBackend
from storage_plugin.outages import Unavailable
from storage_plugin.refusals import (
    NO_SUCH_EVENT_MESSAGE,
    NOT_YOURS_MESSAGE,
    ONE_CALENDAR_MESSAGE,
    Refusal,
    answer_for,
    status_line,
)

logger = logging.getLogger(__name__)
WsgiApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]
UNAUTHENTICATED_PATHS = ("/.well-known/",)
EVENT_CONTENT_TYPE = "text/calendar; charset=utf-8"
REALM = "CRM calendar"
TOO_MANY_FAILURES_MESSAGE = "Too many failed logins for this account or from this address; try again later."
HotRequest = tuple[str, ...] | reports.ReportRequest  # a poll's props, or a REPORT


@dataclass(frozen=True)
class DavRequest:
    """What this handler reads of one HTTP request."""

    method: str
    path: str  # sanitised, without the base prefix
    parts: tuple[str, ...]  # path segments: (login, "crm", name)
    base_prefix: str  # "" or "/caldav" (X-Script-Name behind a proxy)
    body: bytes
    root: ET.Element | None  # the XML body, parsed once by request_checks (None: not XML, or read twice)
    if_match: str | None
    if_none_match: bool
    depth: str
    accepts_gzip: bool

    @property
    def is_event(self) -> bool:
        """The path names an event on a CRM calendar."""
        return len(self.parts) == 3 and self.parts[1] == paths.CALENDAR_NAME

    @property
    def is_calendar(self) -> bool:
        """The path names a CRM calendar."""
        return len(self.parts) == 2 and self.parts[1] == paths.CALENDAR_NAME


@dataclass(frozen=True)
class Answer:
    """An answer made here: status, headers and body pieces, and work for after sending it."""

    status: str
    headers: list[tuple[str, str]]
    body: list[bytes]
    after: Callable[[], None] | None = None


class CalDavHandler:
    """WSGI application: authentication, our answers, and Radicale for the rest."""

    def __init__(self, radicale_app: WsgiApp, *, backend: CalendarBackend, auth: Auth,
                 throttle: LoginThrottle, max_event_bytes: int, fast_reports: bool = True,
                 admin_app: WsgiApp | None = None, feeds: FeedServer | None = None) -> None:
        self._radicale = radicale_app
        self._admin_app = admin_app  # /admin/: its own login, before any CalDAV authentication
        self._feeds = feeds  # /feeds/<token>.ics: the token is the credential; no login, no throttle
        self._backend = backend
        self._auth = auth
        self._max_event_bytes = max_event_bytes
        self._throttle = throttle
        self._fast_reports = fast_reports

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self._admin_app is not None and is_admin_path(environ.get("PATH_INFO", "")):
            return self._admin_app(environ, start_response)
        try:
            answer = self._handle(environ)
            if answer is None:
                return self._radicale(environ, start_response)
        except Refusal as refusal:
            request_log.note(environ, reason=refusal.message)
            answer = _refused(refusal)
        except Unavailable as outage:  # raised inside Radicale's storage calls too
            request_log.note(environ, reason=outage.refusal.message)
            answer = _refused(outage.refusal)
        start_response(answer.status, answer.headers)
        if environ.get("REQUEST_METHOD", "").upper() == "HEAD":
            return AnswerBody([], answer.after)
        return AnswerBody(answer.body, answer.after)

    def _handle(self, environ: dict) -> Answer | None:
        """Our answer, or None when Radicale answers (environ prepared for it)."""
        environ.pop("REMOTE_USER", None)  # only this handler says who logged in
        # Radicale (remote_user auth) and the feeds never need the password; nothing past here can log it.
        authorization = environ.pop("HTTP_AUTHORIZATION", "")
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = pathutils.sanitize_path(environ.get("PATH_INFO", "/"))
        request_checks.check_path(path)
        if self._feeds is not None and is_feed_path(path):
            feed = self._feeds.answer(environ, method, path)
            return Answer(feed.status, feed.headers, feed.body, feed.after)
        if method == "OPTIONS" or any(p in path + "/" for p in UNAUTHENTICATED_PATHS):
            return None
        request = self._read_request(environ, method, path)
        credentials = basic_credentials(authorization)
        address = environ.get("REMOTE_ADDR", "")
        if credentials is not None:
            self._check_throttle(credentials[0], address)
        hot = self._hot_request(request)
        if (answer := self._answer_remembered(environ, request, hot, credentials)) is not None:
            return answer
        checked = self._authenticate(credentials, address, environ)
        user = checked.user
        self._note_use(environ, user.email, checked.device_id)
        environ["REMOTE_USER"] = user.email
        if request.parts and request.parts[0] != user.email:
            raise Refusal(403, NOT_YOURS_MESSAGE, "D:need-privileges")
        if method in ("MKCALENDAR", "MKCOL", "MOVE") or (method == "DELETE" and not request.is_event):
            raise Refusal(403, ONE_CALENDAR_MESSAGE, "D:need-privileges")
        if method == "PUT":
            return self._put(request, user)
        if method == "DELETE":
            self._backend.delete(user, request.parts[2], if_match=request.if_match)
            return Answer(status_line(204), [("Content-Length", "0")], [])
        if method in ("GET", "HEAD") and request.is_event:
            return self._get(request, user)
        if hot is not None:
            # the password was just checked: the login holds as the row read for it showed
            answer = self._answer_hot(request, hot, user.email, (user.id, user.credentials_version))
            if answer is not None:
                return answer
        if method == "PROPFIND":
            return self._radicale_propfind(environ, request, user)
        return None

    def _read_request(self, environ: dict, method: str, path: str) -> DavRequest:
        base_prefix = environ.get("HTTP_X_SCRIPT_NAME", environ.get("SCRIPT_NAME", "")).rstrip("/")
        if base_prefix and not base_prefix.startswith("/"):
            raise Refusal(400, "X-Script-Name must start with '/'.")
        body = self._read_body(environ, method)
        root = request_checks.check_body(method, body, environ.get("CONTENT_TYPE", ""))
        return DavRequest(
            method=method, path=path, parts=tuple(paths.split(path)), base_prefix=base_prefix, body=body, root=root,
            if_match=environ.get("HTTP_IF_MATCH"),
            if_none_match=environ.get("HTTP_IF_NONE_MATCH", "").strip() == "*",
            depth=environ.get("HTTP_DEPTH", "0"),
            accepts_gzip="gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""),
        )

    def _read_body(self, environ: dict, method: str) -> bytes:
        """The request body, refused with 413 when over the limit (checked before reading it)."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise Refusal(400, "Content-Length is not a number.") from None
        if length > self._max_event_bytes:
            what = "The event" if method == "PUT" else "The request body"
            raise Refusal(413, f"{what} is larger than the limit of {self._max_event_bytes} bytes.")
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(body)  # Radicale reads it again
        environ["CONTENT_LENGTH"] = str(len(body))
        return bytes(body)

    def _check_throttle(self, login: str, address: str) -> None:
        """429 + Retry-After, before any password check, while the account or the address is blocked."""
        wait = self._throttle.retry_after(login, address)
        if wait is not None:
            logger.warning("Login refused for %s from %s: too many failed logins (retry in %d s)",
                           login, address, wait)
            raise Refusal(429, TOO_MANY_FAILURES_MESSAGE, retry_after=wait)

    def _authenticate(self, credentials: tuple[str, str] | None, address: str, environ: dict) -> CheckedLogin:
        """Who this request's Basic credentials log in; 401 otherwise (counted by the throttle).

        Logs a line for each failed login (never the password) and for each
        login whose password was checked (not remembered): at most one line per
        device per login-cache period (CRM_CALDAV_LOGIN_CACHE_SECONDS).
        """
        if credentials is None:
            raise Unauthorized()
        login = credentials[0]
        wait = self._throttle.admit(login, address)
        if wait is not None:
            raise Refusal(429, TOO_MANY_FAILURES_MESSAGE, retry_after=wait)
        try:
            checked = self._auth.check(*credentials)
        except BaseException:  # a database error decides nothing
            self._throttle.settle(login, address, succeeded=None)
            raise
        self._throttle.settle(login, address, succeeded=checked is not None)
        if checked is None:
            logger.warning("Failed login for %s from %s", login, address or "-")
            request_log.note(environ, login="failed")
            raise Unauthorized()
        if checked.hash_checked:
            logger.info("Login of %s (device %s) from %s", checked.user.email, checked.device_id, address or "-")
        return checked

    def _note_use(self, environ: dict, login: str, device_id: int) -> None:
        """Record the device's last use (client, address): best effort, at most once a minute per device.

        Also names the user and the device in the request's log line.
        """
        self._auth.note_use(device_id, user_agent=environ.get("HTTP_USER_AGENT", ""),
                            address=environ.get("REMOTE_ADDR", ""))
        request_log.note(environ, user=login, device=device_id)

    def _put(self, request: DavRequest, user: UserRecord) -> Answer:
        if not request.is_event:
            raise Refusal(403, f"Put each event at /{user.email}/crm/<name>.ics.", "D:need-privileges")
        result = self._backend.put(user, request.parts[2], request.body,
                                   if_match=request.if_match, if_none_match=request.if_none_match)
        headers = [("Content-Length", "0")]
        if result.etag is not None:  # RFC 4791 5.3.4: only for the very bytes sent
            headers.append(("ETag", result.etag))
        return Answer(status_line(201 if result.created else 204), headers, [])

    def _get(self, request: DavRequest, user: UserRecord) -> Answer:
        event = self._backend.get(user, request.parts[2])
        if event is None:
            raise Refusal(404, NO_SUCH_EVENT_MESSAGE)
        headers = [("Content-Type", EVENT_CONTENT_TYPE), ("ETag", event.etag),
                   ("Last-Modified", event.last_modified)]
        return _encoded(status_line(200), headers, [event.text], request.accepts_gzip)

    def _hot_request(self, request: DavRequest) -> HotRequest | None:
        """The poll's props or the REPORT this handler answers from SQL; None for the rest."""
        if not (self._fast_reports and request.is_calendar):
            return None
        if request.method == "PROPFIND":
            return reports.parse_poll(request.body, request.root) if request.depth == "0" else None
        if request.method == "REPORT":
            return reports.parse_report(request.body, base_prefix=request.base_prefix,
                                        calendar_path=paths.calendar_path(request.parts[0]), root=request.root)
        return None

    def _answer_remembered(self, environ: dict, request: DavRequest, hot: HotRequest | None,
                           credentials: tuple[str, str] | None) -> Answer | None:
        """The hot answer for a login checked within the cache period, in one transaction (phones' polls);
        None when there is none (not a hot request, a login not remembered or no longer holding)."""
        remembered = self._auth.remembered(*credentials) if hot is not None and credentials is not None else None
        if hot is None or remembered is None:
            return None
        answer = self._answer_hot(request, hot, remembered.email, remembered.holds)
        if answer is not None:
            self._note_use(environ, remembered.email, remembered.device_id)
        return answer

    def _answer_hot(self, request: DavRequest, hot: HotRequest, email: str, login: tuple[int, int]) -> Answer | None:
        """The answer to a poll or hot REPORT of ``email``, whose password was checked recently.

        ``login``: the (user id, credentials version) that check vouched for. None when the
        user's row no longer shows them (the caller then checks the password), or when
        ``email`` is not this calendar's owner.
        """
        if email != request.parts[0]:
            return None
        href = reports.calendar_href(request.base_prefix, paths.calendar_path(email))
        if isinstance(hot, reports.ReportRequest):
            answer = self._backend.report(email, hot, href_prefix=href, login=login)
            if answer is None:
                return None
            rendered = answer.rendered
            multistatus = _multistatus(answer.parts, request.accepts_gzip)
            # Renderings made for this answer are stored once it is sent: the client does not wait.
            return Answer(multistatus.status, multistatus.headers, multistatus.body,
                          lambda: self._backend.keep_renderings(rendered))
        user = self._backend.calendar_user(email, login=login)
        if user is None:
            return None
        poll = reports.answer_poll(hot, user=user, href=href, ctag=tokens.ctag(user), token=tokens.sync_token(user))
        return _multistatus([poll], request.accepts_gzip)

    def _radicale_propfind(self, environ: dict, request: DavRequest, user: UserRecord) -> Answer:
        """Radicale's PROPFIND answer, with mailto:<e-mail> in the principal's address set."""
        environ.pop("HTTP_ACCEPT_ENCODING", None)  # plain XML to read; compressed below
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., None]:
            captured.update(status=status, headers=headers)
            return lambda data: None

        result = self._radicale(environ, capture)
        try:
            body = b"".join(result)
        finally:
            getattr(result, "close", lambda: None)()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        if captured["status"].startswith("207"):
            body = principal.with_user_address(body, base_prefix=request.base_prefix, email=user.email)
        return _encoded(captured["status"], headers, [body], request.accepts_gzip)


class Unauthorized(Refusal):
    """No valid credentials: 401 with a Basic challenge (RFC 7617)."""

    def __init__(self) -> None:
        super().__init__(401, "Log in with your CRM e-mail and an app password.")


def _refused(refusal: Refusal) -> Answer:
    answer = answer_for(refusal)
    headers = list(answer.headers)
    if isinstance(refusal, Unauthorized):
        headers.append(("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"'))
    return Answer(answer.status, headers, [answer.body])


def _multistatus(parts: Iterable[str | bytes], gzip: bool) -> Answer:
    return _encoded(status_line(207), [("Content-Type", "text/xml; charset=utf-8")], parts, gzip)


def _encoded(status: str, headers: list[tuple[str, str]], parts: Iterable[str | bytes], gzip: bool) -> Answer:
    """An answer of ``parts``, gzipped when the client takes it, with its Content-Length.

    The encoded pieces are sent as one: a write per piece costs the server a
    system call and the client a TCP segment each (measured: +0.5 ms per multiget).
    """
    pieces, gzipped = encode_answer(parts, gzip)
    if gzipped:
        headers = [*headers, ("Content-Encoding", "gzip")]
    body = b"".join(pieces)
    return Answer(status, [*headers, ("Content-Length", str(len(body)))], [body])
