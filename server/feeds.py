"""Subscription feeds: GET/HEAD ``/feeds/<token>.ics``, the calendar as one iCalendar document.

For apps that subscribe to a URL and cannot send a password (Outlook's
"subscribe from web", Google Calendar's "From URL"). Answered by
server.handler.CalDavHandler before any CalDAV authentication, and never
counted by the login throttle. The token is looked up by its SHA-256
(crm_model.services.feeds): a guessed token and a revoked one cost the same
lookup and get the same 404. The ETag is the calendar's CTag (window and
change position), so a conditional GET whose ETag still holds reads the
feed's user row only and answers 304, as a CalDAV poll does. Otherwise the
document holds the VEVENTs of the texts the calendar serves (the backend's
rendering cache, storage_plugin.backend.CalendarBackend.query) and the
VTIMEZONEs they use, copied line by line.

Layer: server.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from crm_model.records import UserRecord
from crm_model.services import feeds as feed_service
from server import request_log
from server.http import encode_answer
from storage_plugin import tokens
from storage_plugin.backend import CalendarBackend, Served
from storage_plugin.outages import Unavailable
from storage_plugin.refusals import Refusal, status_line

logger = logging.getLogger(__name__)
FEEDS_PATH = "/feeds/"
CONTENT_TYPE = "text/calendar; charset=utf-8"
NOT_FOUND_MESSAGE = "No such feed."  # the same for a revoked feed and a guessed URL
USE_INTERVAL_SECONDS = feed_service.USE_INTERVAL.total_seconds()
PRODID = "-//crm-caldav//subscription feed//EN"
_TZID = re.compile(r"TZID[;:]")


def is_feed_path(path: str) -> bool:
    """The request is for a subscription feed (``/feeds/...``)."""
    return path.startswith(FEEDS_PATH)


def feed_url(public_url: str, token: str) -> str:
    """The https (or http) URL of a feed, under the server's public URL."""
    return f"{public_url.rstrip('/')}{FEEDS_PATH}{token}.ics"


def webcal_url(url: str) -> str:
    """The ``webcal://`` form of a feed URL (calendar apps open it as a subscription)."""
    return "webcal://" + url.split("://", 1)[1]


@dataclass(frozen=True)
class FeedAnswer:
    """A feed answer: status, headers, body, and work for after sending it."""

    status: str
    headers: list[tuple[str, str]]
    body: list[bytes]
    after: Callable[[], None] | None = None


class FeedServer:
    """Answers ``/feeds/<token>.ics``."""

    def __init__(self, backend: CalendarBackend, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._backend = backend
        self._clock = clock
        self._used: dict[str, float] = {}  # token -> monotonic time its use was last written
        self._lock = threading.Lock()

    def answer(self, environ: dict, method: str, path: str) -> FeedAnswer:
        """The feed at ``path``; Refusal 404 for an unknown or revoked token, 405 for a method but GET/HEAD."""
        if method not in ("GET", "HEAD"):
            raise Refusal(405, "A subscription feed is read-only: use GET.")
        token = path[len(FEEDS_PATH):].removesuffix(".ics")
        with self._backend.reading() as session:
            user = feed_service.find_feed_user(session, token=token)
        if user is None:
            raise Refusal(404, NOT_FOUND_MESSAGE)
        request_log.note(environ, user=user.email)
        etag = tokens.ctag(user)
        headers = [("ETag", etag), ("Cache-Control", "private, no-cache")]
        after = self._note_use(token)
        if _matches(environ.get("HTTP_IF_NONE_MATCH", ""), etag):
            return FeedAnswer(status_line(304), headers, [], after)
        events = self._backend.query(user, None, None)
        pieces, gzipped = encode_answer(calendar_document(user, events),
                                        "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""))
        body = b"".join(pieces)
        headers += [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))]
        if gzipped:
            headers.append(("Content-Encoding", "gzip"))
        return FeedAnswer(status_line(200), headers, [body], after)

    def _note_use(self, token: str) -> Callable[[], None] | None:
        """Work for after the answer: the feed's last use, written at most once a minute per process."""
        now = time.monotonic()
        with self._lock:
            if now - self._used.get(token, -USE_INTERVAL_SECONDS) < USE_INTERVAL_SECONDS:
                return None
            if len(self._used) > 10_000:
                self._used.clear()
            self._used[token] = now

        def write() -> None:
            try:
                with self._backend.writing() as session:
                    feed_service.record_feed_use(session, token=token, now=self._clock())
            except (Unavailable, Refusal):  # busy or down: the feed itself was served
                logger.info("feed last use not recorded")
        return write


def _matches(if_none_match: str, etag: str) -> bool:
    """If-None-Match holds ``etag`` or ``*`` (weak comparison, RFC 9110 13.1.2)."""
    given = [value.strip().removeprefix("W/") for value in if_none_match.split(",")]
    return "*" in given or etag in given


def calendar_document(user: UserRecord, events: Iterable[Served]) -> Iterable[str]:
    """One VCALENDAR of the VEVENTs of ``events``' texts and the VTIMEZONEs they define (first of each TZID)."""
    yield (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:{PRODID}\r\nCALSCALE:GREGORIAN\r\n"
           f"X-WR-CALNAME:{_text_value(user.email)}\r\n")
    zones: set[str] = set()
    for event in events:
        for name, block in _components(event.text):
            if name == "VTIMEZONE":
                tzid = _tzid(block)
                if tzid in zones:
                    continue
                zones.add(tzid)
            yield "\r\n".join(block) + "\r\n"
    yield "END:VCALENDAR\r\n"


def _components(text: str) -> Iterable[tuple[str, list[str]]]:
    """(name, lines) of each VEVENT and VTIMEZONE directly inside the VCALENDAR of ``text``."""
    block: list[str] = []
    name = ""
    depth = 0
    for line in text.splitlines():
        upper = line.upper()
        if upper.startswith("BEGIN:"):
            depth += 1
            if depth == 2:
                name, block = upper[6:].strip(), []
        if depth >= 2 and name in ("VEVENT", "VTIMEZONE"):
            block.append(line)
        if upper.startswith("END:"):
            depth -= 1
            if depth == 1 and block:
                yield name, block
                block = []


def _tzid(block: list[str]) -> str:
    """The TZID of a VTIMEZONE's lines (its first TZID property, unfolded)."""
    for index, line in enumerate(block):
        if _TZID.match(line.upper()):
            value = line.split(":", 1)[1] if ":" in line else ""
            for more in block[index + 1:]:
                if more[:1] not in (" ", "\t"):
                    break
                value += more[1:]
            return value
    return ""


def _text_value(value: str) -> str:
    """``value`` escaped as an iCalendar TEXT (RFC 5545 3.3.11)."""
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")
