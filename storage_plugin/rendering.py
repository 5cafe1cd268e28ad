"""The one rendering of an activity as a calendar object resource, and its one cache key.

GET, calendar-multiget, calendar-query and sync-collection all serve
``served_text``: the client's own bytes while the CRM kept everything they say
(RFC 4791 5.3.4: then the PUT got a strong ETag), else the CRM's rendering.
Renderings are cached in the database under (activity, change position,
``RENDERING_VARIANT``); the position moves with every input of the text, so
an entry is never stale.

Layer: storage_plugin (pure).
"""

from __future__ import annotations

from crm_model.records import ActivityRecord
from storage_plugin.to_ical import RENDER_VERSION, render_vcalendar

RENDERER_NAME = "ics"
RENDERING_VARIANT = f"{RENDERER_NAME}{RENDER_VERSION}"
Rendering = tuple[str, int, str, str]  # a cache row: (activity id, change position, variant, text)


def served_text(record: ActivityRecord) -> str:
    """The VCALENDAR text served for ``record`` at its change position."""
    if record.verbatim_text is not None:
        return record.verbatim_text
    return render_vcalendar(record)


def cache_row(record: ActivityRecord, text: str) -> Rendering:
    """The rendering-cache row of ``text``, served for ``record`` at its change position."""
    return (record.id, record.change_pos, RENDERING_VARIANT, text)
