"""The composition root: engine -> sessions -> plugins -> Radicale, wrapped for CRM answers.

Layer: server. Nothing here runs at import time except the principal-property
wrapper being defined (it is installed by ``create_app``).
"""

from __future__ import annotations

import io
import logging
import posixpath
from functools import partial
from typing import Any, Callable, Iterable

import radicale
import radicale.app.propfind as radicale_propfind
from radicale import config as radicale_config
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from xml.etree import ElementTree as ET

from crm_model.db import make_engine, make_session_factory, schema_is_current, upgrade_schema
from server.auth import Auth
from server.config import Settings
from server.fastpath import FastPath
from server.http import AnswerBody
from server.rights import Rights
from storage_plugin import PluginSettings, Storage, from_ical, paths, request_state
from storage_plugin.rules import RECURRENCE_FIRST_OCCURRENCE
from storage_plugin.collection import ONE_CALENDAR_MESSAGE, READ_ONLY_MESSAGE, PrincipalCollection

logger = logging.getLogger(__name__)
XML_METHODS = frozenset({"PROPFIND", "PROPPATCH", "REPORT", "MKCALENDAR", "MKCOL"})
WsgiApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]


def build_configuration(
    settings: Settings, engine: Engine, plugins: dict[str, Any] | None = None
) -> radicale_config.Configuration:
    """Radicale's configuration with our auth, rights and storage plugins injected.

    The plugin instances Radicale builds are also put in ``plugins`` (by section
    name), so the fast path shares Radicale's login cache and storage.
    """
    read_sessions = make_session_factory(engine, write=False)
    write_sessions = make_session_factory(engine, write=True)
    built = plugins if plugins is not None else {}

    def keep(section: str, factory: Callable[..., Any]) -> Callable[[radicale_config.Configuration], Any]:
        def build(configuration: radicale_config.Configuration) -> Any:
            built[section] = factory(configuration)
            return built[section]
        return build

    configuration = radicale_config.load()
    configuration.update({
        "auth": {
            "type": keep("auth", partial(Auth, sessions=read_sessions, cache_seconds=settings.login_cache_seconds)),
            "delay": str(settings.failed_login_delay),
            "realm": "CRM calendar",
            "urldecode_username": "True",  # iOS may send user%40example.com
            "lc_username": "True",
        },
        "rights": {"type": partial(Rights, sessions=read_sessions)},
        "storage": {
            "type": keep("storage", partial(
                Storage, read_sessions=read_sessions, write_sessions=write_sessions,
                settings=PluginSettings(recurrence=settings.recurrence),
            )),
        },
        "web": {"type": "none"},
        # Our wrapper refuses large events with 413 first; Radicale's own limit
        # (answered with 412) stays above it.
        "server": {"max_content_length": str(settings.max_event_bytes * 4),
                   "max_resource_size": str(settings.max_event_bytes * 2)},
        "logging": {"level": settings.log_level},
    }, "crm-caldav composition root", privileged=True)
    return configuration


def create_app(settings: Settings, engine: Engine | None = None, *, fast_path: bool = True) -> WsgiApp:
    """The WSGI application: Radicale with our plugins, behind the CRM answer wrapper.

    ``fast_path=False`` leaves every request to Radicale (tests compare the two).
    """
    engine = engine or make_engine(settings.database_url)
    if not schema_is_current(engine):
        upgrade_schema(engine)
    install_principal_address_wrapper()
    plugins: dict[str, Any] = {}
    application: WsgiApp = radicale.Application(build_configuration(settings, engine, plugins))
    if fast_path:
        application = FastPath(application, auth=plugins["auth"], storage=plugins["storage"])
    return CrmAnswers(application, max_event_bytes=settings.max_event_bytes)


class CrmAnswers:
    """WSGI wrapper that gives Radicale's answers the meaning the storage recorded.

    - keeps the raw PUT body for the plugin (Radicale re-serialises through
      vobject, which cuts X- values at commas: SPEC 3.10);
    - refuses bodies over the size limit with 413 before parsing;
    - replaces generic 400/403/500 answers with the plugin's clear ones;
    - drops the ETag of a PUT whose stored version differs (RFC 4791 5.3.4).
    """

    def __init__(self, application: WsgiApp, *, max_event_bytes: int) -> None:
        self._application = application
        self._max_event_bytes = max_event_bytes

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        raw_body = None
        if method in XML_METHODS:
            body = self._read_body(environ)
            if body is None:
                return _send(start_response, request_state.Answer(413, "The request body is too large.\n"))
            if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
                # No DAV client sends a DTD; entity tricks (billion laughs, external
                # entities) get a clear 400 instead of defusedxml's 500.
                return _send(start_response, request_state.Answer(
                    400, "XML with a DOCTYPE or entity declarations is not accepted.\n"))
        if method == "PUT":
            body = self._read_body(environ)
            if body is None:
                return _send(start_response, request_state.Answer(
                    413, f"The event is larger than the limit of {self._max_event_bytes} bytes.\n"))
            try:
                raw_body = body.decode("utf-8")
            except UnicodeDecodeError:
                return _send(start_response, request_state.Answer(400, "The event is not UTF-8 text.\n"))
        state = request_state.begin_request(
            raw_body,
            target_href=posixpath.basename(environ.get("PATH_INFO", "")) if method == "PUT" else None,
            if_match=environ.get("HTTP_IF_MATCH"),
            if_none_match=environ.get("HTTP_IF_NONE_MATCH", "").strip() == "*",
        )
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            captured.update(status=status, headers=headers)
            return lambda data: None

        try:
            result = self._application(environ, capture)
            body_parts = b"".join(result)
        except OperationalError:
            return _send(start_response, request_state.unavailable_answer())
        # WSGI: close() runs after the answer is sent (the fast path stores renderings then).
        answered = AnswerBody([body_parts], getattr(result, "close", None))
        status = int(captured["status"].split()[0])
        answer = state.answer or _friendlier(method, environ.get("PATH_INFO", "/"), status, raw_body)
        if answer is not None and status >= 400:
            answered.close()
            return _send(start_response, answer)
        headers = captured["headers"]
        if method == "PUT" and status in (200, 201, 204) and state.content_changed:
            headers = [(k, v) for k, v in headers if k.lower() != "etag"]
        start_response(captured["status"], headers)
        return answered

    def _read_body(self, environ: dict) -> bytes | None:
        """The request body, or None when it is over the limit (checked before reading it all)."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > self._max_event_bytes:
            return None
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return body


def _friendlier(method: str, path: str, status: int, raw_body: str | None) -> request_state.Answer | None:
    """A clear message for refusals Radicale decides before the storage is asked."""
    if status == 400 and method == "PUT":
        return request_state.Answer(400, f"The event cannot be stored: {_why_invalid(raw_body or '')}.\n")
    if status != 403:
        return None
    parts = paths.split(path)
    if method in ("MKCALENDAR", "MKCOL") or (method in ("DELETE", "MOVE") and len(parts) <= 2):
        return request_state.Answer(403, ONE_CALENDAR_MESSAGE + "\n")
    if method in ("PUT", "DELETE") and len(parts) == 3:
        return request_state.Answer(403, READ_ONLY_MESSAGE + "\n")
    return None


def _why_invalid(text: str) -> str:
    """Our own reading of a body Radicale refused, for a message that says why."""
    try:
        from_ical.parse_event(text, default_timezone="UTC", recurrence=RECURRENCE_FIRST_OCCURRENCE)
    except ValueError as error:
        return str(error)
    return "it is not a valid iCalendar object with one event"


def _send(start_response: Callable[..., Any], answer: request_state.Answer) -> list[bytes]:
    body = answer.body.encode("utf-8")
    headers = [("Content-Type", answer.content_type), ("Content-Length", str(len(body))),
               *answer.headers.items()]
    start_response(f"{answer.status} {_REASONS.get(answer.status, 'Error')}", headers)
    return [body]


_REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
            412: "Precondition Failed", 413: "Request Entity Too Large", 503: "Service Unavailable"}


_original_propfind_response = radicale_propfind.xml_propfind_response


def _propfind_response_with_mailto(
    application: Any, base_prefix: str, path: str, item: Any, *args: Any, **kwargs: Any
) -> Any:
    """Add mailto:<CRM e-mail> to the principal's calendar-user-address-set.

    Apple clients decide "am I the organizer?" by comparing ORGANIZER with this
    set; Radicale puts only the principal's path there (clients/ios-caldav.md 3.4).
    """
    response = _original_propfind_response(application, base_prefix, path, item, *args, **kwargs)
    if isinstance(item, PrincipalCollection):
        tag = "{urn:ietf:params:xml:ns:caldav}calendar-user-address-set"
        for element in response.iter(tag):
            href = ET.Element("{DAV:}href")
            href.text = f"mailto:{item.user.email}"
            element.insert(0, href)
    return response


def install_principal_address_wrapper() -> None:
    """Install the wrapper once (idempotent)."""
    radicale_propfind.xml_propfind_response = _propfind_response_with_mailto


