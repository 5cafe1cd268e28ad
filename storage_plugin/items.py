"""ActivityRecord -> radicale.item.Item, rendered lazily and cached by revision.

Layer: storage_plugin.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from email.utils import format_datetime
from typing import TYPE_CHECKING

from radicale.item import Item

from crm_model.records import ActivityRecord
from storage_plugin.to_ical import RENDER_VERSION, render_vcalendar

if TYPE_CHECKING:
    from radicale.storage import BaseCollection


class RenderCache:
    """A bounded LRU of rendered events keyed by (id, change_pos, owner).

    The key changes with every tracked change, so entries never go stale and
    several processes may each keep their own; the bound keeps memory flat
    whatever the calendar size.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._entries: OrderedDict[tuple, str] = OrderedDict()
        self._lock = threading.Lock()

    def render(self, record: ActivityRecord) -> str:
        """The VCALENDAR text of ``record``, from the cache when possible."""
        key = (record.id, record.change_pos, record.owner_id, record.owner_email, record.owner_name)
        with self._lock:
            text = self._entries.get(key)
            if text is not None:
                self._entries.move_to_end(key)
                return text
        text = render_vcalendar(record)
        with self._lock:
            self._entries[key] = text
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return text


def etag_for(record: ActivityRecord) -> str:
    """Strong ETag from the change position: no rendering needed to list ETags."""
    return f'"{record.change_pos}-{RENDER_VERSION}"'


class ActivityItem(Item):
    """A Radicale item whose text is rendered only if a response needs it."""

    def __init__(self, record: ActivityRecord, collection: BaseCollection, cache: RenderCache) -> None:
        super().__init__(
            collection=collection,
            href=record.href,
            text="",
            etag=etag_for(record),
            uid=record.uid,
            name="VCALENDAR",
            component_name="VEVENT",
            time_range=(int(record.starts_at.timestamp()),
                        max(int(record.ends_at.timestamp()), int(record.starts_at.timestamp()) + 1)),
            last_modified=format_datetime(record.updated_at, usegmt=True),
        )
        self._text = None
        self._record = record
        self._cache = cache

    @property
    def record(self) -> ActivityRecord:
        """The activity this item shows."""
        return self._record

    def serialize(self) -> str:
        """The event text (rendered once, on demand)."""
        if self._text is None:
            self._text = self._cache.render(self._record)
        return self._text

    @property
    def vobject_item(self):  # type: ignore[no-untyped-def]
        """Parsed only when Radicale must filter beyond what SQL decided."""
        self.serialize()
        return super().vobject_item
