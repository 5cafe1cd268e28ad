"""Per-request state shared by the storage plugin and the server's WSGI wrapper.

Radicale's handlers turn every storage error into a fixed answer (a bare 400,
500, an ETag always sent on PUT). The plugin records here what really
happened, and the wrapper in server/ shapes the HTTP answer from it: a 403
with an explanation, a 503 with Retry-After, no ETag when the stored event
differs from what the client sent (RFC 4791 5.3.4).

Layer: storage_plugin.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from sqlalchemy.orm import Session


@dataclass
class Answer:
    """A complete HTTP answer that replaces Radicale's."""

    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RequestState:
    """What the storage learnt while Radicale handled one request."""

    raw_body: str | None = None
    target_href: str | None = None
    if_match: str | None = None
    if_none_match: bool = False
    session: Session | None = None
    answer: Answer | None = None
    content_changed: bool = False
    # Calendar users already read in this request (Radicale asks rights and
    # discovery several times per request); a request is a few milliseconds.
    calendar_users: dict[str, object] = field(default_factory=dict)
    database_unavailable: bool = False


_STATE: ContextVar[RequestState | None] = ContextVar("crm_caldav_request", default=None)


def begin_request(
    raw_body: str | None = None,
    *,
    target_href: str | None = None,
    if_match: str | None = None,
    if_none_match: bool = False,
) -> RequestState:
    """Start a fresh state for the current request (called by the WSGI wrapper)."""
    state = RequestState(raw_body=raw_body, target_href=target_href, if_match=if_match,
                         if_none_match=if_none_match)
    _STATE.set(state)
    return state


def current() -> RequestState:
    """The current request's state (a throwaway one outside a request, e.g. in tests)."""
    state = _STATE.get()
    if state is None:
        state = begin_request()
    return state


RETRY_AFTER_SECONDS = 5
UNAVAILABLE_MESSAGE = "The CRM database is not reachable right now; try again shortly."


def unavailable_answer() -> Answer:
    """503 + Retry-After for a down, restarting or locked database (SPEC 6)."""
    return Answer(503, UNAVAILABLE_MESSAGE + "\n", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def refuse_unavailable() -> None:
    """Make the current request end with the database-unavailable answer."""
    state = current()
    state.database_unavailable = True
    state.answer = unavailable_answer()


def refuse(status: int, message: str, *, dav_condition: str | None = None) -> None:
    """Make the current request end with ``status`` and a message the user can read.

    With ``dav_condition`` the body is an RFC 4918 DAV:error element carrying
    the precondition and the message, as CalDAV clients expect.
    """
    if dav_condition is None:
        current().answer = Answer(status, message + "\n")
        return
    body = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<D:error xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        f"<{dav_condition}/><D:responsedescription>{escape(message)}</D:responsedescription>"
        "</D:error>\n"
    )
    current().answer = Answer(status, body, "application/xml; charset=utf-8")
