"""The admin web page's WSGI application: login, sessions, CSRF checks, then the pages.

Mounted by server.handler.CalDavHandler at /admin/, before any CalDAV
authentication: a CalDAV app password (Basic auth) never opens it. Admins log
in with the accounts of ``crm-caldav admin add`` through a form, throttled
like CalDAV logins (the same LoginThrottle; the account key is
``admin:<email>``), and get a session cookie (server.admin.sessions: kept in
the database, so every server process knows it). Every POST must carry the
CSRF token of its session (the login form: of its double-submit cookie), or
it gets 403; a page asked for without a session redirects to the login.

Layer: server.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from crm_model.services import admins as admin_service
from server import request_log
from server.admin.feed_pages import FeedPages
from server.admin.mount import ADMIN_PATH
from server.admin.pages import Pages
from server.admin.rendering import Templates
from server.admin.sessions import AdminSession, DownloadStore, SessionStore, new_token
from server.admin.settings import PageSettings
from server.admin.web import FormTooLarge, Request, Response, read_request, redirect, set_cookie
from server.throttle import LoginThrottle

logger = logging.getLogger(__name__)
SESSION_COOKIE = "crm_admin_session"
LOGIN_CSRF_COOKIE = "crm_admin_login"
WRONG_LOGIN_MESSAGE = "Wrong e-mail or password for an admin account."


class AdminApp:
    """WSGI application of the admin page."""

    def __init__(self, *, write_sessions: sessionmaker[Session], read_sessions: sessionmaker[Session],
                 throttle: LoginThrottle, settings: PageSettings) -> None:
        self._write_sessions = write_sessions
        self._throttle = throttle
        self._sessions = SessionStore(write_sessions=write_sessions, now=settings.now)
        self._templates = Templates()
        downloads = DownloadStore(write_sessions=write_sessions, now=settings.now)
        self._pages = Pages(write_sessions=write_sessions, read_sessions=read_sessions, templates=self._templates,
                            downloads=downloads, settings=settings)
        self._feed_pages = FeedPages(write_sessions=write_sessions, read_sessions=read_sessions,
                                     templates=self._templates, settings=settings)

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            request = read_request(environ, admin_path=ADMIN_PATH)
            response = self._dispatch(request, environ)
        except FormTooLarge as error:
            response = Response(413, str(error).encode(), [("Content-Type", "text/plain; charset=utf-8")])
        start_response(response.status_line, response.wsgi_headers())
        return [] if environ.get("REQUEST_METHOD", "").upper() == "HEAD" else [response.body]

    def _dispatch(self, request: Request, environ: dict) -> Response:
        if request.path.startswith("/profile/") and request.method in ("GET", "HEAD"):
            return self._pages.download(request, request.path.removeprefix("/profile/"))
        if request.path == "/login":
            return self._login(request, environ) if request.method == "POST" else self._login_form(request)
        session = self._sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return redirect(f"{request.root}/login")
        request_log.note(environ, user=f"admin:{session.email}")
        if request.method == "POST" and not _same(request.form.get("csrf"), session.csrf):
            return self._forbidden(request, session)
        if request.path == "/logout" and request.method == "POST":
            self._sessions.end(request.cookies.get(SESSION_COOKIE))
            return redirect(f"{request.root}/login",
                            [set_cookie(SESSION_COOKIE, "", path=f"{request.root}/", secure=request.https, max_age=0)])
        return self._feed_pages.answer(request, session) or self._pages.answer(request, session)

    def _forbidden(self, request: Request, session: AdminSession | None) -> Response:
        logger.warning("Admin form refused from %s: no valid CSRF token", request.address)
        body = self._templates.render("message.html", request=request, session=session, title="Refused",
                                      message="This form has expired or did not come from this site. "
                                              "Go back, reload the page and try again.")
        return Response(403, body)

    def _login_form(self, request: Request, *, status: int = 200, error: str | None = None,
                    headers: list[tuple[str, str]] | None = None) -> Response:
        token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_token()
        cookie = set_cookie(LOGIN_CSRF_COOKIE, token, path=f"{request.root}/", secure=request.https)
        body = self._templates.render("login.html", request=request, session=None, csrf=token, error=error,
                                      email=request.form.get("email", ""))
        return Response(status, body, [cookie, *(headers or [])])

    def _login(self, request: Request, environ: dict) -> Response:
        cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE)
        if not cookie_token or not _same(request.form.get("csrf"), cookie_token):
            return self._forbidden(request, None)
        email = request.form.get("email", "").strip().lower()
        account = f"admin:{email}"
        wait = self._throttle.retry_after(account, request.address) or self._throttle.admit(account, request.address)
        if wait is not None:
            return self._login_form(request, status=429, headers=[("Retry-After", str(wait))],
                                    error=f"Too many failed logins; try again in {wait} seconds.")
        try:
            with self._write_sessions.begin() as db:
                admin = admin_service.verify_admin(db, email=email, password=request.form.get("password", ""))
        except BaseException:
            self._throttle.settle(account, request.address, succeeded=None)
            raise
        self._throttle.settle(account, request.address, succeeded=admin is not None)
        if admin is None:
            logger.warning("Failed admin login for %s from %s", email, request.address or "-")
            request_log.note(environ, login="failed")
            return self._login_form(request, status=403, error=WRONG_LOGIN_MESSAGE)
        logger.info("Admin login of %s from %s", email, request.address or "-")
        request_log.note(environ, user=f"admin:{email}")
        token, _ = self._sessions.start(admin.id)
        return redirect(f"{request.root}/", [
            set_cookie(SESSION_COOKIE, token, path=f"{request.root}/", secure=request.https),
            set_cookie(LOGIN_CSRF_COOKIE, "", path=f"{request.root}/", secure=request.https, max_age=0),
        ])


def _same(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())  # type: ignore[union-attr]
