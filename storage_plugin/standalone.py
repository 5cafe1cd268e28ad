"""Plugins loaded by a stock Radicale: the database comes from its config file or the environment.

``[storage] type = storage_plugin`` (and ``[auth] type = server.auth``,
``[rights] type = server.rights``) make Radicale build our plugins with only
its configuration. They find the CRM database in the option ``database_url``
of their section, else in ``CRM_CALDAV_DB``, else ``sqlite:///crm-caldav.db``,
and share one engine per URL in the process. The crm-caldav server does not
use this module: its composition root hands the plugins their collaborators.

Layer: storage_plugin (the one place here that reads the environment).
"""

from __future__ import annotations

import os
from functools import cache

from radicale import config as radicale_config
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from crm_model.db import make_engine, make_session_factory, schema_is_current, upgrade_schema
from crm_model.services import renderings as rendering_service
from storage_plugin.backend import CalendarBackend
from storage_plugin.rendering import RENDERER_NAME
from storage_plugin.to_ical import RENDER_VERSION

DEFAULT_DATABASE_URL = "sqlite:///crm-caldav.db"


def database_url(configuration: radicale_config.Configuration, section: str) -> str:
    """The CRM database URL for a plugin of ``section``: config option, environment, default."""
    try:
        configured = configuration.get(section, "database_url")
    except KeyError:
        configured = None
    return str(configured or os.environ.get("CRM_CALDAV_DB") or DEFAULT_DATABASE_URL)


@cache
def prepared_engine(url: str) -> Engine:
    """One engine per URL, with the schema upgraded and renderings versioned."""
    engine = make_engine(url)
    if not schema_is_current(engine):
        upgrade_schema(engine)
    prepare_renderings(make_session_factory(engine))
    return engine


def prepare_renderings(write_sessions: sessionmaker[Session]) -> None:
    """Give every event a new ETag once when the renderer's output changed (RENDER_VERSION)."""
    with write_sessions.begin() as session:
        rendering_service.ensure_renderer_version(session, name=RENDERER_NAME, version=RENDER_VERSION)


def sessions_from_configuration(
    configuration: radicale_config.Configuration, section: str, *, write: bool
) -> sessionmaker[Session]:
    """Sessions on the plugin's CRM database."""
    return make_session_factory(prepared_engine(database_url(configuration, section)), write=write)


def backend_from_configuration(
    configuration: radicale_config.Configuration, section: str = "storage"
) -> CalendarBackend:
    """The backend of a plugin built by Radicale itself (its ``section`` names the database)."""
    return CalendarBackend(
        read_sessions=sessions_from_configuration(configuration, section, write=False),
        write_sessions=sessions_from_configuration(configuration, section, write=True),
    )
