"""The composition root: engine -> sessions -> calendar backend -> plugins and handler.

Nothing here runs at import time.

Layer: server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import radicale.app
from radicale import config as radicale_config
from sqlalchemy import Engine

from crm_model.db import make_engine, make_session_factory, schema_is_current, upgrade_schema
from server.admin import AdminApp, PageSettings
from server.auth import Auth
from server.config import Settings
from server.feeds import FeedServer
from server.handler import CalDavHandler
from server.health import HEALTH_PATH, Health
from server.http import ServingLimits
from server.metrics import METRICS_PATH, Metrics
from server.request_log import RequestLog, configure_logging
from server.rights import Rights
from server.throttle import LoginThrottle
from storage_plugin import CalendarBackend, PluginSettings, Storage

WsgiApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]


def make_backend(settings: Settings, engine: Engine) -> CalendarBackend:
    """The calendar backend on ``engine``, with the settings it needs."""
    return CalendarBackend(
        engine,
        settings=PluginSettings(recurrence=settings.recurrence, max_attendees=settings.max_attendees,
                                max_alarms=settings.max_alarms, outage_passes_radicale=True),
    )


def build_configuration(settings: Settings, backend: CalendarBackend) -> radicale_config.Configuration:
    """Radicale's configuration with our storage and rights plugins injected.

    Logins are checked by the handler in front of Radicale, which hands the
    user over as REMOTE_USER (Radicale's ``remote_user`` auth).
    """
    configuration = radicale_config.load()
    configuration.update({
        # No failed-login delay: Radicale would sleep in a request thread (the handler throttles instead).
        "auth": {"type": "remote_user", "delay": "0"},
        "rights": {"type": partial(Rights, backend=backend)},
        "storage": {"type": partial(Storage, backend=backend)},
        "web": {"type": "none"},
        # The handler refuses large bodies with 413 first; Radicale's own limit stays above it.
        "server": {"max_content_length": str(settings.max_event_bytes * 4),
                   "max_resource_size": str(settings.max_event_bytes * 2)},
        "logging": {"level": settings.log_level},
    }, "crm-caldav composition root", privileged=True)
    return configuration


def serving_limits(settings: Settings, threads: int = 8) -> ServingLimits:
    """What each server process allows its connections, from the settings."""
    return ServingLimits(threads=threads, idle_timeout=settings.idle_timeout_seconds,
                         connection_limit=settings.connection_limit, max_body_bytes=settings.max_event_bytes * 4,
                         trusted_proxy=settings.trusted_proxy)


def create_app(settings: Settings, engine: Engine | None = None, *, fast_path: bool = True) -> WsgiApp:
    """The WSGI application: our handler in front of Radicale with our plugins.

    ``fast_path=False`` leaves the hot REPORTs and polls to Radicale (tests
    compare the two answers).
    """
    configure_logging(settings)
    engine = engine or make_engine(settings.database_url, settings.database_limits)
    if not schema_is_current(engine):
        upgrade_schema(engine)
    backend = make_backend(settings, engine)
    backend.prepare_renderings()
    application = radicale.app.Application(build_configuration(settings, backend))
    auth = Auth(application.configuration, backend=backend, cache_seconds=settings.login_cache_seconds)
    throttle = LoginThrottle(free_failures=settings.login_free_failures,
                             backoff_max=settings.login_backoff_max_seconds)
    admin = AdminApp(write_sessions=make_session_factory(engine, write=True),
                     read_sessions=make_session_factory(engine, write=False), throttle=throttle,
                     settings=PageSettings(policy=settings.window_policy, public_url=settings.public_url,
                                           now=lambda: datetime.now(UTC)))
    handler = CalDavHandler(application, backend=backend, auth=auth, throttle=throttle,
                            max_event_bytes=settings.max_event_bytes, fast_reports=fast_path, admin_app=admin,
                            feeds=FeedServer(backend))
    return with_operations(handler, settings, engine)


def with_operations(handler: WsgiApp, settings: Settings, engine: Engine) -> WsgiApp:
    """``handler`` behind the request log, with /health and /metrics answered first (no login).

    A path switched off (CRM_CALDAV_HEALTH=off, CRM_CALDAV_METRICS=off)
    answers 404 saying so; no user path can clash, since those hold an e-mail.
    """
    read_sessions = make_session_factory(engine, write=False)
    metrics = Metrics(read_sessions) if settings.metrics_enabled else None
    if metrics is not None:
        metrics.watch(engine)
    operations: dict[str, WsgiApp] = {
        HEALTH_PATH: Health(read_sessions) if settings.health_enabled else _switched_off("CRM_CALDAV_HEALTH"),
        METRICS_PATH: metrics if metrics is not None else _switched_off("CRM_CALDAV_METRICS"),
    }

    def route(environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        return operations.get(environ.get("PATH_INFO", ""), handler)(environ, start_response)

    return RequestLog(route, observe=metrics.observe if metrics is not None else None)


def _switched_off(setting: str) -> WsgiApp:
    body = f"Switched off on this server ({setting}=off).\n".encode()

    def answer(environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8"),
                                         ("Content-Length", str(len(body)))])
        return [body]

    return answer
