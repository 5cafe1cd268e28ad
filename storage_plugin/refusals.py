"""Refusals: one exception type for every request the calendar backend turns down.

Each raise site says why, once: the HTTP status, the DAV or CalDAV precondition
element (RFC 4918 16, RFC 4791 9.1) when one applies, and a sentence the user
can act on. ``answer_for`` is the one function that turns a refusal into an
HTTP answer (after sabre/dav's exceptions and Radicale's httputils constants).

Layer: storage_plugin (pure).
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from xml.sax.saxutils import escape

RETRY_AFTER_SECONDS = 5
UNAVAILABLE_MESSAGE = "The CRM database is not reachable right now; try again shortly."
ONE_CALENDAR_MESSAGE = (
    "The CRM gives each user exactly one calendar; calendars cannot be created, "
    "deleted or moved here."
)
READ_ONLY_MESSAGE = (
    "This CRM calendar is set to CRM-to-calendar only: change the activity in the CRM, "
    "or ask your CRM admin for two-way sync."
)
# Says nothing about what exists at the path: a user learns neither whether another
# user's calendar nor whether an event in it exists (SPEC 6).
NOT_YOURS_MESSAGE = "You can reach only your own CRM calendar, at /<your e-mail>/crm/."
NO_SUCH_EVENT_MESSAGE = "No such event on this calendar."


class Refusal(Exception):
    """A request the server turns down, with everything its answer needs.

    Attributes:
        status: the HTTP status (400, 403, 404, 409, 412, 413, 503).
        message: one sentence for the user.
        condition: the precondition element as "D:name" or "C:name", or None.
        retry_after: seconds for a Retry-After header (503), or None.
    """

    def __init__(self, status: int, message: str, condition: str | None = None,
                 *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.condition = condition
        self.retry_after = retry_after


def unavailable() -> Refusal:
    """503 + Retry-After for a down, restarting or locked database (SPEC 6)."""
    return Refusal(503, UNAVAILABLE_MESSAGE, retry_after=RETRY_AFTER_SECONDS)


@dataclass(frozen=True)
class HttpAnswer:
    """A complete HTTP answer: status line, headers and body bytes."""

    status: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


def answer_for(refusal: Refusal) -> HttpAnswer:
    """The HTTP answer of ``refusal``.

    With a precondition the body is an RFC 4918 DAV:error element holding it and
    the message (what CalDAV clients parse); otherwise plain text.
    """
    if refusal.condition is None:
        content_type, text = "text/plain; charset=utf-8", refusal.message + "\n"
    else:
        content_type = "application/xml; charset=utf-8"
        text = ('<?xml version="1.0" encoding="utf-8"?>\n'
                '<D:error xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
                f"<{refusal.condition}/><D:responsedescription>{escape(refusal.message)}"
                "</D:responsedescription></D:error>\n")
    body = text.encode("utf-8")
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    if refusal.retry_after is not None:
        headers.append(("Retry-After", str(refusal.retry_after)))
    return HttpAnswer(status_line(refusal.status), tuple(headers), body)


def status_line(status: int) -> str:
    """"404 Not Found" for 404."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Error"
