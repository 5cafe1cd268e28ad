"""The hot read path: what phones send most, answered without Radicale's per-item machinery.

A phone polls (PROPFIND getctag + sync-collection) every few minutes and, on a
first sync, fetches the whole calendar in multigets of 50. These requests are
recognised here and answered by storage_plugin.reports straight from SQL; any
request not understood completely, not authenticated by a remembered login, or
not for the login's own calendar goes to Radicale unchanged, so Radicale keeps
deciding every refusal (401 with its delay, 403, 404, invalid sync token).

Layer: server.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from functools import partial
from typing import Any, Callable, Iterable
from urllib.parse import unquote

from radicale import pathutils

from crm_model.records import UserRecord
from server.auth import Auth
from server.http import AnswerBody
from storage_plugin import Storage, paths, reports
from storage_plugin.collection import calendar_user, session

WsgiApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]
GZIP_MIN_BYTES = 1024
CHUNK_CHARS = 64 * 1024


class FastPath:
    """WSGI middleware in front of Radicale for sync-collection, multiget, calendar-query and polls."""

    def __init__(self, radicale_app: WsgiApp, *, auth: Auth, storage: Storage) -> None:
        self._radicale = radicale_app
        self._auth = auth
        self._storage = storage

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        answer = self._try(environ)
        if answer is None:
            return self._radicale(environ, start_response)
        # Renderings made for this answer are stored once it is sent: the client
        # does not wait for that write.
        return AnswerBody(_send(environ, start_response, answer.parts),
                          partial(self._storage.keep_renderings, answer.rendered))

    def _try(self, environ: dict) -> reports.Answer | None:
        """The multistatus, or None when Radicale should answer."""
        method = environ.get("REQUEST_METHOD", "").upper()
        if method not in ("REPORT", "PROPFIND"):
            return None
        base_prefix = environ.get("HTTP_X_SCRIPT_NAME", environ.get("SCRIPT_NAME", "")).rstrip("/")
        path = pathutils.sanitize_path(environ.get("PATH_INFO", "/"))
        parts = paths.split(path)
        if (base_prefix and not base_prefix.startswith("/")) or len(parts) != 2 \
                or parts[1] != paths.CALENDAR_NAME:
            return None
        credentials = _basic_credentials(environ)
        if credentials is None or credentials[0] != parts[0]:
            return None
        body = environ["wsgi.input"].getvalue()  # read (and size-checked) by CrmAnswers
        calendar_path = paths.calendar_path(parts[0])
        if method == "PROPFIND":
            props = reports.parse_poll(body) if environ.get("HTTP_DEPTH", "0") == "0" else None
            request = None
        else:
            props = None
            request = reports.parse_report(body, base_prefix=base_prefix, calendar_path=calendar_path)
        if props is None and request is None:
            return None
        href = reports.calendar_href(base_prefix, calendar_path)
        with self._storage.acquire_lock("r", parts[0]):
            user = self._authorised_user(*credentials)
            if user is None:
                return None
            calendar = self._storage.calendar(user)
            if props is not None:
                token, _ = calendar.sync_position("")
                return reports.Answer(
                    [reports.answer_poll(props, user=user, href=href, ctag=calendar.etag, token=token)])
            try:
                return calendar.answer(request, href_prefix=href)
            except ValueError:
                return None  # a sync token not valid here: Radicale's 403 valid-sync-token

    def _authorised_user(self, login: str, password: str) -> UserRecord | None:
        """The calendar's user when this login was checked recently and still holds.

        The user row is read in this request's transaction, so a disable or a new
        app password takes effect at once; a login not remembered goes to Radicale,
        which checks the password (and remembers it for the next request).
        """
        remembered = self._auth.remembered(login, password)
        if remembered is None:
            return None
        user = calendar_user(login, session())
        if user is None or (user.id, user.credentials_version) != remembered:
            return None
        return user


def _basic_credentials(environ: dict) -> tuple[str, str] | None:
    """(login, password) of Basic auth, the login normalised as Radicale is configured to."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        login, separator, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    if not separator:
        return None
    return unquote(login.strip().lower()), password


def _send(environ: dict, start_response: Callable[..., Any], parts: Iterable[str]) -> list[bytes]:
    """Encode the answer piece by piece, gzipped when the client takes it and it is not tiny."""
    gzip = "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "")
    body, compressed = _encode(parts, gzip)
    headers = [("Content-Type", "text/xml; charset=utf-8")]
    if compressed:
        headers.append(("Content-Encoding", "gzip"))
    headers.append(("Content-Length", str(sum(len(piece) for piece in body))))
    start_response("207 Multi-Status", headers)
    return body


def _encode(parts: Iterable[str], gzip: bool) -> tuple[list[bytes], bool]:
    """(body pieces, gzipped?). Pieces of about 64 KiB: memory follows the compressed
    size, not the size of the XML text."""
    out: list[bytes] = []
    compressor = None
    batch: list[str] = []
    size = 0
    for part in parts:
        batch.append(part)
        size += len(part)
        if size >= CHUNK_CHARS:
            if gzip and compressor is None:
                compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            piece = "".join(batch).encode("utf-8")
            out.append(compressor.compress(piece) if compressor else piece)
            batch, size = [], 0
    piece = "".join(batch).encode("utf-8")
    if compressor is None and gzip and len(piece) >= GZIP_MIN_BYTES:
        # Level 1: most of the saving (XML compresses 5-10x) for a fraction of the CPU.
        compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    if compressor is None:
        return [*out, piece], False
    return [*out, compressor.compress(piece), compressor.flush()], True
