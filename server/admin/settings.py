"""What the admin pages need of the server's settings (kept apart so that mounting the page imports nothing heavy).

Layer: server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from crm_model.records import WindowPolicy


@dataclass(frozen=True)
class PageSettings:
    """What the pages need of the server's settings."""

    policy: WindowPolicy
    public_url: str | None  # CRM_CALDAV_PUBLIC_URL; None: the URL the browser used
    now: Callable[[], datetime]
