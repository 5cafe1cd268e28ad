"""Radicale storage plugin serving CRM activities as CalDAV calendars.

Radicale loads ``Storage`` from here by module name (``[storage] type =
storage_plugin``); the crm-caldav server composes ``CalendarBackend`` itself.

Layer: storage_plugin. Imports crm_model's public services and records, never
its ORM models, and never the server package.
"""

from storage_plugin.backend import CalendarBackend, PluginSettings, PutResult, Served
from storage_plugin.refusals import Refusal
from storage_plugin.storage import Storage

__all__ = ["CalendarBackend", "PluginSettings", "PutResult", "Refusal", "Served", "Storage"]
