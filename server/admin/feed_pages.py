"""The admin pages of a user's subscription feeds: list them, add one (its URL shown once), revoke one.

Layer: server.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from crm_model.errors import CrmError, NotFoundError
from crm_model.services import feeds as feed_service
from crm_model.services import users as user_service
from server.admin.pages import PageSettings
from server.admin.rendering import Templates
from server.admin.sessions import AdminSession
from server.admin.web import Request, Response, redirect, route, user_path
from server.feeds import feed_url, webcal_url

FEEDS = r"/users/(?P<email>[^/]+)/feeds"
ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(pattern + r"\Z"), name) for method, pattern, name in (
        ("GET", FEEDS, "feeds_page"),
        ("POST", FEEDS, "add_feed"),
        ("POST", FEEDS + r"/(?P<feed>\d+)/revoke", "revoke_feed"),
    ))


class FeedPages:
    """The feed pages behind the login (server.admin.app checks the session and the CSRF token)."""

    def __init__(self, *, write_sessions: sessionmaker[Session], read_sessions: sessionmaker[Session],
                 templates: Templates, settings: PageSettings) -> None:
        self._write = write_sessions
        self._read = read_sessions
        self._templates = templates
        self._settings = settings

    def answer(self, request: Request, session: AdminSession) -> Response | None:
        """The feed page or form of ``request``; None when the request is not for one."""
        found = route(ROUTES, request)
        if found is None:
            return None
        name, arguments = found
        try:
            return getattr(self, name)(request, session, **arguments)
        except NotFoundError as error:
            return self._page(request, session, "message.html", status=404, title="Not found",
                              message=str(error))
        except CrmError as error:
            return self.feeds_page(request, session, arguments["email"], status=400, error=str(error))

    def _page(self, request: Request, session: AdminSession, template: str, *, status: int = 200,
              **context: Any) -> Response:
        return Response(status, self._templates.render(template, request=request, session=session, **context))

    def feeds_page(self, request: Request, session: AdminSession, email: str, *, status: int = 200,
                   error: str | None = None) -> Response:
        with self._read.begin() as db:
            user = user_service.get_user_record(db, email=email)
            feeds = feed_service.list_feeds(db, email=email)
        return self._page(request, session, "feeds.html", status=status, email=user.email, feeds=feeds,
                          error=error, user_url=user_path(request.root, user.email))

    def add_feed(self, request: Request, session: AdminSession, email: str) -> Response:
        with self._write.begin() as db:
            feed, token = feed_service.add_feed(db, email=email, label=request.form.get("label", ""),
                                                now=self._settings.now())
            user = user_service.get_user_record(db, email=email)
        public_url = self._settings.public_url or f"{request.host_url}{request.root.removesuffix('/admin')}/"
        url = feed_url(public_url, token)
        return self._page(request, session, "feed_added.html", email=user.email, label=feed.label, url=url,
                          webcal=webcal_url(url), user_url=user_path(request.root, user.email))

    def revoke_feed(self, request: Request, session: AdminSession, email: str, feed: str) -> Response:
        with self._write.begin() as db:
            feed_service.revoke_feed(db, email=email, label_or_id=f"#{feed}", now=self._settings.now())
            user = user_service.get_user_record(db, email=email)
        return redirect(user_path(request.root, user.email, "feeds"))
