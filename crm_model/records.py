"""Plain frozen data classes that cross the crm_model boundary.

ORM objects never leave crm_model: services build these records inside the
caller's transaction, so callers (the storage plugin, the CLI) never trigger
lazy loads or hold session-bound objects across threads.

Layer: crm_model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

TWO_WAY = "two-way"
READ_ONLY = "read-only"
SYNC_TYPES = (TWO_WAY, READ_ONLY)
DEFAULT_SYNCED_TYPES = ("meeting", "call")


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A CRM user and their CalDAV state."""

    id: int
    email: str
    name: str
    timezone: str
    enabled: bool
    enabled_at: datetime | None
    sync_type: str
    synced_types: tuple[str, ...]
    sync_pos: int
    window_pos: int
    credentials_version: int
    calendar_props: tuple[tuple[str, str], ...] = ()

    @property
    def read_only(self) -> bool:
        """True when the calendar is CRM-to-calendar only (SPEC 3.9)."""
        return self.sync_type == READ_ONLY


@dataclass(frozen=True, slots=True)
class ParticipantRecord:
    """A participant as the calendar shows it: the address and the name when known."""

    email: str
    name: str | None
    kind: str  # "contact", "lead" or "email"
    ref_id: str | None = None


@dataclass(frozen=True, slots=True)
class ActivityRecord:
    """One CRM activity, as everything outside crm_model sees it."""

    id: str
    uid: str
    href: str
    owner_id: int
    owner_email: str
    owner_name: str
    owner_timezone: str
    type: str
    title: str
    starts_at: datetime  # tz-aware UTC; for all-day activities midnight UTC of the first day
    ends_at: datetime
    all_day: bool
    tzid: str | None
    floating: bool
    location: str | None
    description: str | None
    private: bool
    reminder_minutes: int | None
    participants: tuple[ParticipantRecord, ...]
    source: str
    created_at: datetime
    updated_at: datetime
    change_pos: int
    client_extras: str | None = None
    # The exact text a client PUT for this very revision (client_body_pos ==
    # change_pos), to be served as is; None when the server's rendering applies.
    verbatim_text: str | None = None


class OfferedEntry(NamedTuple):
    """What a listing of a calendar needs of one activity, without loading it whole.

    ``body`` is the cached rendering of this very revision when one was asked
    for and is still valid, else None. A NamedTuple, made straight from a
    result row: a frozen dataclass's __init__ cost 0.46 us more per entry,
    0.9 ms of a first sync-collection of 2,000 events.
    """

    href: str
    activity_id: str
    change_pos: int
    body: str | None = None


@dataclass(frozen=True, slots=True)
class AttendeeDraft:
    """An attendee address sent by a client, before matching to contacts and leads."""

    email: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ActivityDraft:
    """What a client sent for one event, reduced to what the CRM models."""

    uid: str
    title: str
    starts_at: datetime
    ends_at: datetime
    all_day: bool
    tzid: str | None = None
    floating: bool = False
    location: str | None = None
    description: str | None = None
    private: bool = False
    reminder_minutes: int | None = None
    attendees: tuple[AttendeeDraft, ...] = ()
    client_extras: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """Hrefs changed (or deleted) since a sync position, and the new position."""

    position: int
    hrefs: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class WindowPolicy:
    """Server-wide initial window settings (SPEC 3.2 and 5)."""

    months_back: int = 1
    end_at_enable: bool = False
    cap: int = 2000


@dataclass(frozen=True, slots=True)
class CalDavStatus:
    """What `caldav status` shows for one user."""

    email: str
    enabled: bool
    enabled_at: datetime | None
    sync_type: str
    synced_types: tuple[str, ...]
    initial_set_size: int
    offered: int
    last_sync_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """One device's app password as the CLI and the admin page show it (never the password or its hash).

    Times are tz-aware UTC. ``last_*`` are None until the device first logs in;
    ``revoked_at`` is None while the password opens a login.
    """

    id: int
    label: str
    created_at: datetime
    last_used_at: datetime | None
    last_user_agent: str | None
    last_address: str | None
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        """True once the device's password no longer opens a login."""
        return self.revoked_at is not None


@dataclass(frozen=True, slots=True)
class DeviceLogin:
    """A login that held: the user and the device whose password it was."""

    user: UserRecord
    device_id: int


@dataclass(frozen=True, slots=True)
class AdminRecord:
    """An account of the admin web page (never the password or its hash)."""

    id: int
    email: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PreviewItem:
    """One activity named in a preview."""

    id: str
    title: str
    starts_at: datetime  # tz-aware UTC; all-day activities: midnight UTC of their first day


@dataclass(frozen=True, slots=True)
class PreviewGroup:
    """How many activities one rule lets onto (or keeps off) the calendar, and the first few of them."""

    count: int
    sample: tuple[PreviewItem, ...] = ()


@dataclass(frozen=True, slots=True)
class PreviewRecord:
    """What enabling CalDAV now would put on a user's calendar (``caldav preview``).

    The groups partition the user's own activities: each is counted once, in
    ``offered`` or under the first rule that keeps it off, in the order
    type not synced, outside the window, over the cap.
    """

    email: str
    enabled: bool
    window_start: datetime
    window_end: datetime | None
    cap: int
    synced_types: tuple[str, ...]
    offered: PreviewGroup
    type_not_synced: PreviewGroup
    outside_window: PreviewGroup  # before the window's start (or after its end when it ends at enable)
    over_cap: PreviewGroup


@dataclass(frozen=True, slots=True)
class FeedRecord:
    """One subscription feed as the CLI and the admin page show it (never its token or the token's hash).

    Times are tz-aware UTC; ``last_used_at`` is None until the feed is first
    fetched, ``revoked_at`` None while its URL serves the calendar.
    """

    id: int
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        """True once the feed's URL no longer serves the calendar."""
        return self.revoked_at is not None


@dataclass(frozen=True, slots=True)
class AdminSessionRecord:
    """A live login session of the admin page (never its token): whose it is, its CSRF token, its times (UTC)."""

    email: str
    csrf: str
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class ProfileDownloadRecord:
    """What a one-time profile link serves, taken once: the user, the device's label and its password."""

    email: str
    label: str
    password: str = field(repr=False)
