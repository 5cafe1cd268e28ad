"""Plugins loaded by a stock Radicale: the database comes from its config file or the environment.

``[storage] type = storage_plugin`` (and ``[auth] type = server.auth``,
``[rights] type = server.rights``) make Radicale build our plugins with only
its configuration. They find the CRM database in the option ``database_url``
of their section, else in ``CRM_CALDAV_DB``, else ``sqlite:///crm-caldav.db``,
and share one backend (one engine) per URL in the process. The crm-caldav server does not
use this module: its composition root hands the plugins their collaborators.

Layer: storage_plugin (the one place here that reads the environment).
"""

from __future__ import annotations

import os
from functools import cache

from radicale import config as radicale_config

from crm_model.db import make_engine, schema_is_current, upgrade_schema
from storage_plugin.backend import CalendarBackend

DEFAULT_DATABASE_URL = "sqlite:///crm-caldav.db"


def database_url(configuration: radicale_config.Configuration, section: str) -> str:
    """The CRM database URL for a plugin of ``section``: config option, environment, default."""
    try:
        configured = configuration.get(section, "database_url")
    except KeyError:
        configured = None
    return str(configured or os.environ.get("CRM_CALDAV_DB") or DEFAULT_DATABASE_URL)


def backend_from_configuration(
    configuration: radicale_config.Configuration, section: str = "storage"
) -> CalendarBackend:
    """The backend of a plugin built by Radicale itself (its ``section`` names the database)."""
    return backend_for_url(database_url(configuration, section))


@cache
def backend_for_url(url: str) -> CalendarBackend:
    """One backend (and engine) per database URL, on a schema upgraded and renderings versioned."""
    engine = make_engine(url)
    if not schema_is_current(engine):
        upgrade_schema(engine)
    backend = CalendarBackend(engine)
    backend.prepare_renderings()
    return backend
