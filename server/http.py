"""HTTP serving: waitress in front of the WSGI application, in one or several processes.

Tests run the same server in-process (``make_server``).

Layer: server.
"""

from __future__ import annotations

import ctypes
import gc
import os
import resource
import signal
import socket
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from server import processes


class AnswerBody(list):
    """A response body with a WSGI close() that the server calls once it is sent."""

    def __init__(self, parts: list[bytes], on_close: Callable[[], Any] | None = None) -> None:
        super().__init__(parts)
        self._on_close = on_close

    def close(self) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()


GZIP_MIN_BYTES = 1024
try:  # ISA-L's deflate, zlib's interface and format: 37 against 89 us for a multiget's 60 KB at level 1
    from isal import isal_zlib as _deflate
except ImportError:  # pragma: no cover - a platform without its wheels: zlib, same bytes format
    _deflate = zlib  # type: ignore[misc]
CHUNK_BYTES = 64 * 1024


def encode_answer(parts: Iterable[str | bytes], gzip: bool) -> tuple[list[bytes], bool]:
    """(body pieces, gzipped?) of an answer given as text pieces.

    Pieces of about 64 KiB: memory follows the compressed size, not the size of
    the whole XML text. Gzip (level 1: most of the saving, XML compresses 5-10x,
    for a fraction of the CPU; ISA-L's when installed) only when the client takes
    it and the answer is at least GZIP_MIN_BYTES.
    """
    out: list[bytes] = []
    compressor = None
    batch: list[bytes] = []
    size = 0
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        batch.append(data)
        size += len(data)
        if size >= CHUNK_BYTES:
            if gzip and compressor is None:
                compressor = _deflate.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            piece = b"".join(batch)
            out.append(compressor.compress(piece) if compressor else piece)
            batch, size = [], 0
    piece = b"".join(batch)
    if compressor is None and gzip and len(piece) >= GZIP_MIN_BYTES:
        compressor = _deflate.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    if compressor is None:
        return [*out, piece], False
    return [*out, compressor.compress(piece), compressor.flush()], True


def listen(host: str, port: int) -> socket.socket:
    """A listening socket, bound here so that port 0 resolves before the server starts."""
    sock = socket.create_server((host, port), reuse_port=False, backlog=1024)
    sock.set_inheritable(True)
    return sock


@dataclass(frozen=True)
class ServingLimits:
    """What one server process allows its connections (see server.config.Settings)."""

    threads: int = 8  # request threads: only complete requests reach them
    idle_timeout: int = 60  # seconds a connection may stay idle or stalled mid-request
    connection_limit: int = 2000  # open connections; idle ones cost a socket, not a thread
    max_body_bytes: int = 4 * 1024 * 1024  # larger bodies are refused before they are read
    trusted_proxy: str | None = "127.0.0.1"  # whose X-Forwarded-For / -Proto are believed


def waitress_options(limits: ServingLimits) -> dict[str, Any]:
    """Waitress settings for ``limits``.

    Waitress reads every request, headers and body (chunked bodies decoded), in
    its event loop and hands a request to a thread only once it is complete: a
    half-open or trickling connection holds no thread, a body shorter than its
    Content-Length never reaches the application, and a connection silent for
    ``idle_timeout`` is closed. poll() instead of select() allows more than
    1,024 sockets.
    """
    options: dict[str, Any] = {
        "threads": limits.threads, "channel_timeout": limits.idle_timeout,
        "cleanup_interval": max(1, min(30, limits.idle_timeout // 2)),
        "connection_limit": limits.connection_limit, "asyncore_use_poll": True,
        "max_request_header_size": 64 * 1024, "max_request_body_size": limits.max_body_bytes,
        "ident": "crm-caldav", "expose_tracebacks": False, "clear_untrusted_proxy_headers": True,
    }
    if limits.trusted_proxy:
        options.update(trusted_proxy=limits.trusted_proxy, trusted_proxy_count=1,
                       trusted_proxy_headers={"x-forwarded-for", "x-forwarded-proto"})
    return options


_INCOMPLETE = b"The request ended before its headers or body were whole.\n"
INCOMPLETE_REQUEST_ANSWER = (
    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_INCOMPLETE), _INCOMPLETE))


def _channel_class() -> type:
    """Waitress's connection class, answering 400 to a client that closes mid-request.

    Waitress drops such a connection silently (nothing reaches the
    application, so nothing is stored); the 400 tells the client why (RFC 9112
    section 8: an incomplete message).
    """
    from waitress.channel import HTTPChannel

    class Channel(HTTPChannel):
        def handle_close(self) -> None:
            if self.request is not None and not self.request.completed and self.connected:
                try:
                    self.socket.send(INCOMPLETE_REQUEST_ANSWER)
                except OSError:
                    pass  # the client is gone entirely
            super().handle_close()

    return Channel


class EmbeddedServer:
    """One waitress server on a bound socket: ``serve_forever()`` in a thread, ``shutdown()`` to stop."""

    def __init__(self, application: Any, sock: socket.socket, limits: ServingLimits) -> None:
        from waitress.server import create_server

        self._server = create_server(application, sockets=[sock], **waitress_options(limits))
        self._server.channel_class = _channel_class()
        self.server_address = sock.getsockname()

    def serve_forever(self) -> None:
        self._server.run()

    def shutdown(self) -> None:
        """Stops the request threads and closes every connection; serve_forever() then returns."""
        from waitress import wasyncore

        self._server.task_dispatcher.shutdown(timeout=5)
        wasyncore.close_all(self._server._map)

    def server_close(self) -> None:
        """Kept for the socketserver-style life cycle of tests: shutdown() closed everything."""


def make_server(host: str, port: int, application: Any, limits: ServingLimits | None = None) -> EmbeddedServer:
    """A bound server with the production limits; call ``serve_forever()`` and ``shutdown()`` on it."""
    return EmbeddedServer(application, listen(host, port), limits or ServingLimits())


def raise_open_file_limit(wanted: int) -> None:
    """Lift this process's soft limit of open files towards ``wanted`` (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def serve(app_factory: Callable[[], Any], sock: socket.socket, *, workers: int, limits: ServingLimits) -> None:
    """Serve on ``sock`` until SIGINT / SIGTERM: one process, or ``workers`` forked ones.

    Each process builds its own application after the fork (its own database
    pool) and runs waitress on the shared listening socket; the parent restarts
    a process that dies, and stops them all on SIGINT / SIGTERM.
    """
    raise_open_file_limit(limits.connection_limit + 256)
    if workers == 1:
        _serve_here(app_factory, sock, limits)
        return
    processes.supervise(lambda: _serve_here(app_factory, sock, limits), workers)


def _serve_here(app_factory: Callable[[], Any], sock: socket.socket, limits: ServingLimits) -> None:
    limit_malloc_arenas()
    application = app_factory()
    freeze_startup_objects()
    server = EmbeddedServer(application, sock, limits)
    signal.signal(signal.SIGTERM, _exit_quietly)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


MALLOC_ARENAS = 2  # glibc's default is 8 per core: one per request thread here
_M_ARENA_MAX = -8  # mallopt parameter number, from glibc's <malloc.h>


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Let glibc's malloc keep at most ``arenas`` arenas in this process (mallopt(M_ARENA_MAX)); True if set.

    Each request thread otherwise gets an arena of its own, and memory freed in
    one is not reused by the others: measured over an iPhone first sync of
    2,000 events, the server's resident set grew 9.2 MiB with the default and
    5.7 MiB with 2 arenas, at no measurable cost in time (the GIL already
    serialises most allocations). An operator's MALLOC_ARENA_MAX wins; not
    glibc (musl, macOS): nothing to do.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False


def freeze_startup_objects() -> None:
    """Move every object made so far (modules, SQLAlchemy's mappers, the application) out of the collector's sight.

    A full collection walks every tracked object: measured in a server process
    after start-up, 125,000 objects and 20-110 ms per full collection, several of
    which fall within a first sync of 2,000 events. Frozen, they are never
    walked again (gc.freeze, Python 3.7+); they stay alive anyway.
    """
    gc.collect()
    gc.freeze()


def _exit_quietly(signum: int, _frame: Any) -> None:
    signal.signal(signum, signal.SIG_IGN)  # a second SIGTERM must not interrupt the shutdown
    raise SystemExit(0)
