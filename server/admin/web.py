"""The little HTTP the admin page needs: one request's form, cookies and scheme; answers and cookies.

Layer: server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, unquote

MAX_FORM_BYTES = 64 * 1024
SECURITY_HEADERS = [
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),  # a one-time download URL must not leak
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
]
STATUS_TEXT = {200: "OK", 303: "See Other", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
               405: "Method Not Allowed", 413: "Content Too Large", 429: "Too Many Requests"}


class FormTooLarge(ValueError):
    """A form body over MAX_FORM_BYTES."""


@dataclass(frozen=True)
class Request:
    """What the admin page reads of one HTTP request."""

    method: str
    path: str  # below the admin root: "/", "/users/a@b.example", ...
    root: str  # the admin root as the browser sees it: "/admin" or "/caldav/admin"
    https: bool
    host_url: str  # scheme://host[:port] the browser used
    address: str
    cookies: dict[str, str]
    form: dict[str, str]
    query: dict[str, str]


@dataclass
class Response:
    """An answer: status, extra headers and a body (HTML unless a Content-Type header says otherwise)."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    def wsgi_headers(self) -> list[tuple[str, str]]:
        headers = list(self.headers)
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", "text/html; charset=utf-8"))
        return [*headers, *SECURITY_HEADERS, ("Content-Length", str(len(self.body)))]

    @property
    def status_line(self) -> str:
        return f"{self.status} {STATUS_TEXT.get(self.status, 'Error')}"


def read_request(environ: dict, *, admin_path: str) -> Request:
    """The request of ``environ``; ``admin_path`` is where the admin page is mounted ("/admin").

    Raises:
        FormTooLarge: the form body is over MAX_FORM_BYTES.
    """
    prefix = environ.get("HTTP_X_SCRIPT_NAME", environ.get("SCRIPT_NAME", "")).rstrip("/")
    path = environ.get("PATH_INFO", "/")[len(admin_path):] or "/"
    method = environ.get("REQUEST_METHOD", "GET").upper()
    https = environ.get("wsgi.url_scheme") == "https"  # waitress sets it from a trusted proxy's header
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT')}"
    return Request(
        method=method, path=path, root=prefix + admin_path, https=https,
        host_url=f"{'https' if https else 'http'}://{host}", address=environ.get("REMOTE_ADDR", ""),
        cookies=parse_cookies(environ.get("HTTP_COOKIE", "")),
        form=_read_form(environ) if method == "POST" else {},
        query=_single(parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)),
    )


def _read_form(environ: dict) -> dict[str, str]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_FORM_BYTES:
        raise FormTooLarge(f"a form is at most {MAX_FORM_BYTES} bytes")
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    return _single(parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True))


def _single(values: dict[str, list[str]]) -> dict[str, str]:
    return {name: items[0] for name, items in values.items() if items}


def parse_cookies(header: str) -> dict[str, str]:
    """name -> value of a Cookie header; malformed pieces are skipped (the first of a name wins)."""
    cookies: dict[str, str] = {}
    for piece in header.split(";"):
        name, sep, value = piece.strip().partition("=")
        if sep and name and name not in cookies:
            cookies[name] = value.strip().strip('"')
    return cookies


def set_cookie(name: str, value: str, *, path: str, secure: bool, max_age: int | None = None) -> tuple[str, str]:
    """A Set-Cookie header: HttpOnly, SameSite=Strict, Secure under HTTPS; ``max_age`` 0 deletes it."""
    parts = [f"{name}={value}", f"Path={path}", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return ("Set-Cookie", "; ".join(parts))


def redirect(location: str, headers: list[tuple[str, str]] | None = None) -> Response:
    """303 See Other to ``location`` (after a form: the browser GETs it)."""
    return Response(303, b"", [("Location", location), *(headers or [])])


def user_path(root: str, email: str, *rest: str) -> str:
    """The admin URL of one user's page (or of one of its forms, ``rest``)."""
    return "/".join([f"{root}/users/{quote(email, safe='@')}", *rest])


def route(routes: Iterable[tuple[str, re.Pattern[str], str]], request: Request) -> tuple[str, dict[str, str]] | None:
    """(handler name, URL-decoded path arguments) of the first of ``routes`` (method, pattern, name)
    that matches ``request``; None when none does."""
    for method, pattern, name in routes:
        match = pattern.match(request.path)
        if match is not None and method == request.method:
            return name, {key: unquote(value) for key, value in match.groupdict().items()}
    return None
