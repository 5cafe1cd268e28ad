"""Server settings from environment variables and an optional file with the same names.

The only module that reads the environment. Layer: server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from crm_model.db import DatabaseLimits
from crm_model.records import WindowPolicy
from storage_plugin.rules import RECURRENCE_FIRST_OCCURRENCE, RECURRENCE_REJECT

DEFAULT_DATABASE_URL = "sqlite:///crm-caldav.db"


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Every server-wide setting (SPEC 5)."""

    database_url: str = DEFAULT_DATABASE_URL
    initial_cap: int = 2000
    window_months_back: int = 1
    window_end: str = "none"
    recurrence: str = RECURRENCE_REJECT
    max_event_bytes: int = 1024 * 1024
    public_url: str | None = None
    login_cache_seconds: int = 300
    login_free_failures: int = 5  # failed logins per account or address before backoff starts
    login_backoff_max_seconds: int = 900  # the longest a throttled account or address waits
    trusted_proxy: str | None = "127.0.0.1"  # whose X-Forwarded-For names the client address
    idle_timeout_seconds: int = 60  # a connection idle or stalled mid-request this long is closed
    connection_limit: int = 2000  # open connections per process
    db_lock_timeout_seconds: int = 5  # waiting for a row or table lock (PostgreSQL) or the write lock (SQLite)
    db_statement_timeout_seconds: int = 15  # one SQL statement (PostgreSQL)
    db_pool_timeout_seconds: int = 5  # waiting for a free connection of the pool
    max_attendees: int = 1000  # ATTENDEE properties in one event
    max_alarms: int = 20  # VALARM components in one event
    log_level: str = "warning"
    log_format: str = "text"  # "text": one readable line per event; "json": one JSON object per line
    health_enabled: bool = True  # GET /health without login (load balancers, monitors)
    metrics_enabled: bool = True  # GET /metrics: Prometheus text

    @property
    def database_limits(self) -> DatabaseLimits:
        """The time limits every database connection of the server works under."""
        return DatabaseLimits(lock_timeout=self.db_lock_timeout_seconds,
                              statement_timeout=self.db_statement_timeout_seconds,
                              pool_timeout=self.db_pool_timeout_seconds)

    @property
    def window_policy(self) -> WindowPolicy:
        """The initial window rules in force."""
        return WindowPolicy(
            months_back=self.window_months_back,
            end_at_enable=self.window_end == "enable-date",
            cap=self.initial_cap,
        )


def _int(values: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = values.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: not a whole number: {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}")
    return value


def _choice(values: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = values.get(name) or default
    if value not in choices:
        raise ConfigError(f"{name}: must be one of {', '.join(choices)}, not {value!r}")
    return value


def read_config_file(path: str | Path) -> dict[str, str]:
    """NAME=VALUE lines; '#' starts a comment. Raises ConfigError for a bad line."""
    values: dict[str, str] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read configuration file {path}: {error.strerror}") from None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip().startswith("CRM_CALDAV_"):
            raise ConfigError(f"{path}:{number}: expected CRM_CALDAV_NAME=value")
        values[name.strip()] = value.strip().strip('"')
    return values


def load_settings(config_file: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the file (if any), overridden by the environment."""
    values = dict(read_config_file(config_file)) if config_file else {}
    values.update({k: v for k, v in (environ if environ is not None else os.environ).items()
                   if k.startswith("CRM_CALDAV_")})
    return Settings(
        database_url=values.get("CRM_CALDAV_DB") or DEFAULT_DATABASE_URL,
        initial_cap=_int(values, "CRM_CALDAV_INITIAL_CAP", 2000),
        window_months_back=_int(values, "CRM_CALDAV_WINDOW_MONTHS_BACK", 1),
        window_end=_choice(values, "CRM_CALDAV_WINDOW_END", "none", ("none", "enable-date")),
        recurrence=_choice(values, "CRM_CALDAV_RECURRENCE", RECURRENCE_REJECT,
                           (RECURRENCE_REJECT, RECURRENCE_FIRST_OCCURRENCE)),
        max_event_bytes=_int(values, "CRM_CALDAV_MAX_EVENT_BYTES", 1024 * 1024, minimum=1024),
        public_url=values.get("CRM_CALDAV_PUBLIC_URL") or None,
        login_cache_seconds=_int(values, "CRM_CALDAV_LOGIN_CACHE_SECONDS", 300),
        login_free_failures=_int(values, "CRM_CALDAV_LOGIN_FREE_FAILURES", 5, minimum=1),
        login_backoff_max_seconds=_int(values, "CRM_CALDAV_LOGIN_BACKOFF_MAX_SECONDS", 900, minimum=1),
        trusted_proxy=values.get("CRM_CALDAV_TRUSTED_PROXY", "127.0.0.1") or None,
        idle_timeout_seconds=_int(values, "CRM_CALDAV_IDLE_TIMEOUT_SECONDS", 60, minimum=1),
        connection_limit=_int(values, "CRM_CALDAV_CONNECTION_LIMIT", 2000, minimum=10),
        db_lock_timeout_seconds=_int(values, "CRM_CALDAV_DB_LOCK_TIMEOUT_SECONDS", 5, minimum=1),
        db_statement_timeout_seconds=_int(values, "CRM_CALDAV_DB_STATEMENT_TIMEOUT_SECONDS", 15, minimum=1),
        db_pool_timeout_seconds=_int(values, "CRM_CALDAV_DB_POOL_TIMEOUT_SECONDS", 5, minimum=1),
        max_attendees=_int(values, "CRM_CALDAV_MAX_ATTENDEES", 1000, minimum=1),
        max_alarms=_int(values, "CRM_CALDAV_MAX_ALARMS", 20, minimum=1),
        log_level=_choice(values, "CRM_CALDAV_LOG_LEVEL", "warning",
                          ("debug", "info", "warning", "error", "critical")),
        log_format=_choice(values, "CRM_CALDAV_LOG_FORMAT", "text", ("text", "json")),
        health_enabled=_choice(values, "CRM_CALDAV_HEALTH", "on", ("on", "off")) == "on",
        metrics_enabled=_choice(values, "CRM_CALDAV_METRICS", "on", ("on", "off")) == "on",
    )
