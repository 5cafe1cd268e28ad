"""Operator logs: where log lines go, their format, and one line per HTTP request.

``configure_logging`` sets up the process's logging from the settings
(``CRM_CALDAV_LOG_LEVEL``, ``CRM_CALDAV_LOG_FORMAT``): one stream handler on
standard error, text or one JSON object per line. ``RequestLog`` is the
outermost WSGI layer: it writes one line per request (every path: CalDAV,
Radicale's answers, the admin pages, feeds, /health, refusals, 401s) once the
answer is sent, and reports each request to the metrics. Inner layers add
what only they know (the user, the device, a refusal's reason, a login's
outcome) with ``note``.

No log line holds a password, an Authorization value or a secret path token:
request lines carry the path only (never the query string), with feed and
one-time profile tokens replaced by ``<token>``.

Layer: server.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.config import Settings

WsgiApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]
REQUEST_LOGGER = "crm_caldav.request"
NOTES_KEY = "crm_caldav.request_notes"
OUR_PACKAGES = ("server", "storage_plugin", "crm_model", "crm_caldav")
# Third-party loggers kept at WARNING below debug: Radicale's info lines repeat ours
# (one "request received" and one "response status" per request).
QUIET_LIBRARIES = ("radicale", "waitress")
# Kept at WARNING at debug too: every SQL statement and result row (password hashes
# among them) and migration chatter.
SILENT_LIBRARIES = ("sqlalchemy", "alembic")
SECRET_PATHS = (re.compile(r"^(/feeds/)[^/]+?(\.ics)?$"), re.compile(r"^(/admin/profile/)[^/]+()$"))
_HANDLER_NAME = "crm-caldav"


@dataclass
class RequestNotes:
    """What inner layers know of a request, for its log line (all optional).

    user: the CalDAV user (or admin) the request acted as.
    device: the id of the device whose app password logged in.
    reason: the one-line reason of a refusal.
    login: "failed" when the request carried credentials that did not hold.
    """

    user: str | None = None
    device: int | None = None
    reason: str | None = None
    login: str | None = None


_NOTED = ("user", "device", "reason")  # RequestNotes fields a request line shows ("login" only counts)


def note(environ: dict, **facts: Any) -> None:
    """Add facts (RequestNotes fields) to the log line of the request of ``environ``.

    A no-op outside ``RequestLog`` (tests calling a handler directly).
    """
    notes = environ.get(NOTES_KEY)
    if notes is not None:
        for name, value in facts.items():
            setattr(notes, name, value)


def loggable_path(path: str) -> str:
    """``path`` with a secret token (a feed URL, a one-time profile link) replaced by ``<token>``."""
    for pattern in SECRET_PATHS:
        match = pattern.match(path)
        if match:
            return f"{match.group(1)}<token>{match.group(2) or ''}"
    return path


# --- Formats -----------------------------------------------------------------------------------

# What a client can put into a message (a path decoded from %0A, a login name, a User-Agent) and
# that would break a line or forge one: C0 and C1 controls, DEL, U+2028/U+2029 (which Python's
# str.splitlines and some log viewers take as line ends), and ANSI escapes (ESC) for terminals.
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Those of them that json.dumps(ensure_ascii=False) leaves as they are (it escapes C0 only).
_KEPT_BY_JSON = re.compile(r"[\x7f-\x9f\u2028\u2029]")
# journald splits a line over LineMax (48 KiB by default) into entries, the next one starting
# with what the client sent; a path or login name of 60 KB fits in a request's headers.
MESSAGE_MAX_CHARACTERS = 8192
PATH_MAX_CHARACTERS = 2000


def one_line(text: str) -> str:
    """``text`` with control characters and line separators written as ``\\xNN`` / ``\\uNNNN``.

    A log line of text format then stays one line whatever a client sent:
    ``GET /x%0AFAKE`` logs as ``GET /x\\x0aFAKE``.
    """
    if not _UNSAFE_CHARACTERS.search(text):
        return text  # the usual case: one scan, no copy
    return _UNSAFE_CHARACTERS.sub(lambda match: _escape(match[0]), text)


def capped(text: str, limit: int = MESSAGE_MAX_CHARACTERS) -> str:
    """``text`` cut after ``limit`` characters, saying how many were left out."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit:,} more characters)"


def _escape(character: str) -> str:
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _utc_time(record: logging.LogRecord) -> str:
    """ISO 8601 UTC time of a record, to the millisecond: 2026-11-29T19:45:18.123Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    """``TIME LEVEL LOGGER: MESSAGE``; a traceback (real faults only) follows on its own lines."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_utc_time(record)} {record.levelname} {record.name}: {one_line(capped(record.getMessage()))}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, a request line's fields, traceback.

    Request lines add method, path, status, ms, bytes, address and (when known)
    user, device, reason. A traceback is one string field, so every record
    stays one line.
    """

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {"time": _utc_time(record), "level": record.levelname, "logger": record.name,
                                "message": capped(record.getMessage())}
        data.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return _KEPT_BY_JSON.sub(lambda match: f"\\u{ord(match[0]):04x}",
                                 json.dumps(data, ensure_ascii=False, default=str))


class _OneLineForExpectedFaults(logging.Filter):
    """Drops the traceback of a library's record below ERROR.

    Radicale logs every client mistake it refuses ("Bad PUT request ...",
    "Bad REPORT request ...") as a warning with the exception's traceback; the
    warning's own line says what was wrong. Errors keep theirs: real faults.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            record.exc_info = None
            record.exc_text = None
        return True


def configure_logging(settings: Settings, stream: Any = None) -> None:
    """Log to ``stream`` (standard error) at ``settings.log_level`` in ``settings.log_format``.

    Idempotent: a second call (another application in the same process, as in
    tests) replaces the handler it installed and keeps any other handler. Our
    packages log at the level given; the libraries of QUIET_LIBRARIES at WARNING
    unless the level is debug (Radicale's debug lines then show requests and
    answers; it never sees an Authorization header, see server.handler), those
    of SILENT_LIBRARIES at WARNING always.
    """
    level = getattr(logging, settings.log_level.upper())
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream) if stream is not None else _StandardError()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LIBRARIES + SILENT_LIBRARIES:
        library = logging.getLogger(name)
        debug = level <= logging.DEBUG and name in QUIET_LIBRARIES
        library.setLevel(level if debug else max(level, logging.WARNING))
        if not any(isinstance(f, _OneLineForExpectedFaults) for f in library.filters):
            library.addFilter(_OneLineForExpectedFaults())
    for name in OUR_PACKAGES:
        logging.getLogger(name).setLevel(logging.NOTSET)  # follow the root's level


class _StandardError(logging.StreamHandler):
    """Writes to the sys.stderr of the moment (as logging.lastResort does), not the one at set-up.

    Tests replace sys.stderr per test; daemons may redirect it after start.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


# --- Request lines -----------------------------------------------------------------------------

Observer = Callable[[str, int, float, RequestNotes], None]  # method, status, seconds, notes


class RequestLog:
    """WSGI middleware: one log line per request once its answer is sent, and the request's metrics.

    The line (logger ``crm_caldav.request``, level INFO)::

        PROPFIND /alice@example.com/crm/ 207 3.1 ms 512 B user=alice@example.com device=3 from=10.0.0.7
        PUT /alice@example.com/crm/x.ics 403 9.0 ms 233 B user=... reason="Recurring events ..."

    Milliseconds run from the request reaching the application to its last
    byte being handed to the server (before work done after the answer, such
    as storing renderings); bytes are the body bytes sent (after gzip).
    /health and /metrics answered 200 are logged at DEBUG: monitors poll them
    every few seconds.
    """

    def __init__(self, application: WsgiApp, observe: Observer | None = None) -> None:
        self._application = application
        self._observe = observe
        self._logger = logging.getLogger(REQUEST_LOGGER)

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        began = time.perf_counter()
        notes = RequestNotes()
        environ[NOTES_KEY] = notes
        status: list[int] = [0]

        def recording_start_response(status_text: str, headers: list, exc_info: Any = None) -> Any:
            status[0] = int(status_text.split(" ", 1)[0])
            return start_response(status_text, headers, exc_info) if exc_info else start_response(
                status_text, headers)

        try:
            body = self._application(environ, recording_start_response)
        except BaseException:
            self._finish(environ, status[0] or 500, began, 0, notes)
            raise
        counted = _CountedSizedBody if hasattr(body, "__len__") else _CountedBody
        return counted(body, lambda sent, ended: self._finish(environ, status[0], began, sent, notes, ended))

    def _finish(self, environ: dict, status: int, began: float, sent: int, notes: RequestNotes,
                ended: float | None = None) -> None:
        seconds = (ended or time.perf_counter()) - began
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = capped(loggable_path(_text_path(environ.get("PATH_INFO", "/"))), PATH_MAX_CHARACTERS)
        if self._observe is not None:
            self._observe(method, status, seconds, notes)
        quiet = status == 200 and path in ("/health", "/metrics")
        level = logging.DEBUG if quiet else logging.INFO
        if not self._logger.isEnabledFor(level):
            return
        fields = {"method": method, "path": path, "status": status, "ms": round(seconds * 1000, 1),
                  "bytes": sent, "address": environ.get("REMOTE_ADDR", "")}
        # Not dataclasses.asdict: it deep-copies, a tenth of this line's cost.
        fields.update({k: v for k in _NOTED if (v := getattr(notes, k)) is not None})
        self._logger.log(level, "%s", _request_line(fields), extra={"fields": fields})


def _word(value: Any) -> str:
    """``value`` as one word of a request line: JSON-quoted when it holds a space, a quote or '='.

    A path with %20 or an X-Forwarded-For of ``1.2.3.4 user=admin`` (from a trusted proxy, or
    any local process when the default 127.0.0.1 is trusted without a proxy) would otherwise
    read as other fields of the line.
    """
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if _NOT_ONE_WORD.search(text) else text


_NOT_ONE_WORD = re.compile(r'[\s"=]')


def _text_path(path: str) -> str:
    """PATH_INFO as the client wrote it: WSGI gives the path's bytes as Latin-1 (PEP 3333), so
    ``/zoë@example.com/`` arrives as ``/zoÃ«@example.com/``; bytes that are not UTF-8 show as ``\\xNN``."""
    try:
        return path.encode("latin-1").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # already text (a caller outside a WSGI server)
        return path


def _request_line(fields: dict[str, Any]) -> str:
    line = f"{fields['method']} {_word(fields['path'])} {fields['status']} {fields['ms']:.1f} ms {fields['bytes']} B"
    for name in ("user", "device"):
        if name in fields:
            line += f" {name}={_word(fields[name])}"
    line += f" from={_word(fields['address'] or '-')}"
    if "reason" in fields:
        line += " reason=" + json.dumps(fields["reason"], ensure_ascii=False)
    return line


class _CountedBody:
    """A response body that counts the bytes the server takes from it and reports them at close()."""

    def __init__(self, body: Iterable[bytes], done: Callable[[int, float], None]) -> None:
        self._body = body
        self._done: Callable[[int, float], None] | None = done
        self._sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            self._sent += len(chunk)
            yield chunk

    def close(self) -> None:
        ended = time.perf_counter()
        done, self._done = self._done, None
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()  # work after the answer (AnswerBody.after) runs here
        finally:
            if done is not None:
                done(self._sent, ended)


class _CountedSizedBody(_CountedBody):
    """A counted body whose number of pieces the server may ask for.

    Waitress gives a one-piece body without Content-Length one (it asks len()).
    """

    def __len__(self) -> int:
        return len(self._body)  # type: ignore[arg-type]
