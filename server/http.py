"""A small threaded HTTP server for `crm-caldav serve` (production uses gunicorn: see deploy/).

Layer: server.
"""

from __future__ import annotations

import socketserver
import wsgiref.simple_server
from typing import Any

from radicale.server import RequestHandler


class ThreadedWSGIServer(socketserver.ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    """One thread per connection, like Radicale's own server."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def make_server(host: str, port: int, application: Any) -> ThreadedWSGIServer:
    """A bound server; call ``serve_forever()`` and ``shutdown()`` on it."""
    server = ThreadedWSGIServer((host, port), RequestHandler)
    server.set_app(application)
    return server
