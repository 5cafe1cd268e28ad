"""Radicale storage plugin serving CRM activities as CalDAV calendars.

Layer: storage_plugin. Imports crm_model's public services and records, never
its ORM models, and never the server package.
"""

from storage_plugin.collection import PluginSettings
from storage_plugin.storage import Storage

__all__ = ["PluginSettings", "Storage"]
