"""HTTP servers: gunicorn for `crm-caldav serve`, a small threaded one for in-process tests.

Layer: server.
"""

from __future__ import annotations

import socket
import socketserver
import wsgiref.simple_server
import zlib
from collections.abc import Callable, Iterable
from typing import Any

from radicale.server import RequestHandler


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
CHUNK_BYTES = 64 * 1024


def encode_answer(parts: Iterable[str | bytes], gzip: bool) -> tuple[list[bytes], bool]:
    """(body pieces, gzipped?) of an answer given as text pieces.

    Pieces of about 64 KiB: memory follows the compressed size, not the size of
    the whole XML text. Gzip (level 1: most of the saving, XML compresses 5-10x,
    for a fraction of the CPU) only when the client takes it and the answer is
    at least GZIP_MIN_BYTES.
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
                compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            piece = b"".join(batch)
            out.append(compressor.compress(piece) if compressor else piece)
            batch, size = [], 0
    piece = b"".join(batch)
    if compressor is None and gzip and len(piece) >= GZIP_MIN_BYTES:
        compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    if compressor is None:
        return [*out, piece], False
    return [*out, compressor.compress(piece), compressor.flush()], True


def listen(host: str, port: int) -> socket.socket:
    """A listening socket, bound here so that port 0 resolves before the server starts."""
    sock = socket.create_server((host, port), reuse_port=False, backlog=128)
    sock.set_inheritable(True)
    return sock


def run_gunicorn(
    app_factory: Callable[[], Any], sock: socket.socket, *, workers: int, threads: int
) -> None:
    """Serve on ``sock`` with gunicorn's threaded workers until stopped (SIGINT / SIGTERM).

    Gunicorn keeps connections alive (phones send several requests in a row) and
    answers a small request in about half the time of the standard library's
    server. Each worker builds its own app after the fork, so every process has
    its own database connection pool.
    """
    from gunicorn.app.base import BaseApplication

    class Gunicorn(BaseApplication):
        def load_config(self) -> None:
            settings = {"bind": f"fd://{sock.fileno()}", "workers": workers, "threads": threads,
                        "worker_class": "gthread", "accesslog": None, "loglevel": "warning",
                        "graceful_timeout": 10}
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return app_factory()

    Gunicorn().run()


class ThreadedWSGIServer(socketserver.ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    """One thread per connection, like Radicale's own server (tests run the app in-process)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def make_server(host: str, port: int, application: Any) -> ThreadedWSGIServer:
    """A bound server; call ``serve_forever()`` and ``shutdown()`` on it."""
    server = ThreadedWSGIServer((host, port), RequestHandler)
    server.set_app(application)
    return server
