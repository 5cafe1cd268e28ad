"""The admin pages: users, one user (enable, disable, settings, devices, explain), preview, profile download.

Every write is one transaction through the crm_model services; reads are one
read transaction per page.

Layer: server.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from crm_model.errors import CrmError, NotFoundError
from crm_model.services import devices as device_service
from crm_model.services import explain as explain_service
from crm_model.services import preview as preview_service
from crm_model.services import users as user_service
from server import profiles
from server.admin.rendering import Templates, qr_svg
from server.admin.sessions import AdminSession, DownloadStore
from server.admin.settings import PageSettings
from server.admin.web import Request, Response, redirect, route, user_path

USER = r"/users/(?P<email>[^/]+)"
ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple((method, re.compile(pattern + r"\Z"), name) for
                                                              method, pattern, name in (
    ("GET", r"/", "users_page"),
    ("GET", USER, "user_page"),
    ("GET", USER + r"/preview", "preview_page"),
    ("POST", USER + r"/enable", "enable"),
    ("POST", USER + r"/disable", "disable"),
    ("POST", USER + r"/settings", "settings"),
    ("POST", USER + r"/explain", "explain"),
    ("POST", USER + r"/devices", "add_device"),
    ("POST", USER + r"/devices/(?P<device>\d+)/revoke", "revoke_device"),
))
FIRST_DEVICE_LABEL = "first device"


class Pages:
    """The pages behind the login."""

    def __init__(self, *, write_sessions: sessionmaker[Session], read_sessions: sessionmaker[Session],
                 templates: Templates, downloads: DownloadStore, settings: PageSettings) -> None:
        self._write = write_sessions
        self._read = read_sessions
        self._templates = templates
        self._downloads = downloads
        self._settings = settings

    def answer(self, request: Request, session: AdminSession) -> Response:
        """The page or form of ``request`` for a logged-in admin."""
        found = route(ROUTES, request)
        if found is None:
            return self._page(request, session, "message.html", status=404, title="Not found",
                              message="There is no such admin page.")
        name, arguments = found
        try:
            return getattr(self, name)(request, session, **arguments)
        except NotFoundError as error:
            return self._page(request, session, "message.html", status=404, title="Not found",
                              message=str(error))
        except CrmError as error:
            email = arguments.get("email")
            if email is None:
                raise
            return self.user_page(request, session, email, status=400, error=str(error))

    def _page(self, request: Request, session: AdminSession | None, template: str, *, status: int = 200,
              **context: Any) -> Response:
        return Response(status, self._templates.render(template, request=request, session=session, **context))

    def users_page(self, request: Request, session: AdminSession) -> Response:
        with self._read.begin() as db:
            rows = [_user_row(db, email) for email in user_service.list_user_emails(db)]
        return self._page(request, session, "users.html", rows=rows)

    def user_page(self, request: Request, session: AdminSession, email: str, *, status: int = 200,
                  error: str | None = None, explanation: Any = None, activity_id: str = "") -> Response:
        with self._read.begin() as db:
            status_record = user_service.caldav_status(db, email=email)
            devices = device_service.list_devices(db, email=email)
        return self._page(request, session, "user.html", status=status, user=status_record, devices=devices,
                          error=error, explanation=explanation, activity_id=activity_id,
                          user_url=user_path(request.root, status_record.email))

    def preview_page(self, request: Request, session: AdminSession, email: str) -> Response:
        with self._read.begin() as db:
            preview = preview_service.preview(db, email=email, policy=self._settings.policy,
                                              now=self._settings.now())
        return self._page(request, session, "preview.html", preview=preview,
                          user_url=user_path(request.root, preview.email))

    def enable(self, request: Request, session: AdminSession, email: str) -> Response:
        with self._write.begin() as db:
            user, password = user_service.enable_caldav(db, email=email, password=None, now=self._settings.now(),
                                                        policy=self._settings.policy)
        if password is None:  # already enabled: nothing changed
            return redirect(user_path(request.root, user.email))
        return self._device_added(request, session, user.email, FIRST_DEVICE_LABEL, password)

    def disable(self, request: Request, session: AdminSession, email: str) -> Response:
        with self._write.begin() as db:
            user = user_service.disable_caldav(db, email=email, now=self._settings.now())
        return redirect(user_path(request.root, user.email))

    def settings(self, request: Request, session: AdminSession, email: str) -> Response:
        types = tuple(t for t in re.split(r"[,\s]+", request.form.get("synced_types", "")) if t)
        with self._write.begin() as db:
            user = user_service.update_sync_settings(
                db, email=email, sync_type=request.form.get("sync_type") or None, synced_types=types or None,
                now=self._settings.now(), policy=self._settings.policy)
        return redirect(user_path(request.root, user.email))

    def explain(self, request: Request, session: AdminSession, email: str) -> Response:
        activity_id = request.form.get("activity", "").strip()
        with self._read.begin() as db:
            explanation = explain_service.explain_activity(db, email=email, activity_id=activity_id)
        return self.user_page(request, session, email, explanation=explanation, activity_id=activity_id)

    def add_device(self, request: Request, session: AdminSession, email: str) -> Response:
        with self._write.begin() as db:
            device, password = device_service.add_device(db, email=email, label=request.form.get("label", ""),
                                                         now=self._settings.now())
            user = user_service.get_user_record(db, email=email)
        return self._device_added(request, session, user.email, device.label, password)

    def revoke_device(self, request: Request, session: AdminSession, email: str, device: str) -> Response:
        with self._write.begin() as db:
            device_service.revoke_device(db, email=email, device_id=int(device), now=self._settings.now())
            user = user_service.get_user_record(db, email=email)
        return redirect(user_path(request.root, user.email))

    def _device_added(self, request: Request, session: AdminSession, email: str, label: str,
                      password: str) -> Response:
        """The new password, shown this once, and a QR code of its one-time profile download."""
        token = self._downloads.offer(email=email, label=label, password=password)
        download_url = f"{self._admin_url(request)}/profile/{token}"
        return self._page(request, session, "device_added.html", email=email, label=label, password=password,
                          download_url=download_url, qr=qr_svg(download_url), user_url=user_path(request.root, email),
                          server_url=self._public_url(request))

    def download(self, request: Request, token: str) -> Response:
        """The profile of a one-time download token (no session: a phone opens it from the QR code)."""
        pending = self._downloads.take(token)
        if pending is None:
            return self._page(request, None, "message.html", status=404, title="Link used or expired",
                              message="This profile link was already used or has expired. "
                                      "Ask your admin for a new device password.")
        body = profiles.mobileconfig(public_url=self._public_url(request), email=pending.email,
                                     password=pending.password, label=pending.label)
        return Response(200, body, [("Content-Type", profiles.CONTENT_TYPE),
                                    ("Content-Disposition", 'attachment; filename="crm-calendar.mobileconfig"')])

    def _public_url(self, request: Request) -> str:
        """The server's URL for clients: CRM_CALDAV_PUBLIC_URL, or the one this browser used."""
        return self._settings.public_url or f"{request.host_url}{request.root.removesuffix('/admin')}/"

    def _admin_url(self, request: Request) -> str:
        return f"{self._public_url(request).rstrip('/')}/admin"


def _user_row(db: Session, email: str) -> dict[str, Any]:
    """One line of the users page: CalDAV state, offered count and devices."""
    devices = device_service.list_devices(db, email=email)
    return {"status": user_service.caldav_status(db, email=email),
            "devices": [d for d in devices if not d.revoked]}
