"""Server settings from environment variables and an optional file with the same names.

The only module that reads the environment. Layer: server.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from crm_model.db import DatabaseLimits
from crm_model.records import WindowPolicy
from storage_plugin.rules import RECURRENCE_FIRST_OCCURRENCE, RECURRENCE_REJECT

DEFAULT_DATABASE_URL = "sqlite:///crm-caldav.db"
PREFIX = "CRM_CALDAV_"
# Every server setting, in the order of the README's table: the one list that --config files and
# the environment are checked against (a name missing here is refused in a file, warned about in
# the environment). load_settings reads exactly these.
SETTING_NAMES = (
    "CRM_CALDAV_DB", "CRM_CALDAV_INITIAL_CAP", "CRM_CALDAV_WINDOW_MONTHS_BACK", "CRM_CALDAV_WINDOW_END",
    "CRM_CALDAV_RECURRENCE", "CRM_CALDAV_MAX_EVENT_BYTES", "CRM_CALDAV_PUBLIC_URL",
    "CRM_CALDAV_LOGIN_CACHE_SECONDS", "CRM_CALDAV_LOGIN_FREE_FAILURES", "CRM_CALDAV_LOGIN_BACKOFF_MAX_SECONDS",
    "CRM_CALDAV_TRUSTED_PROXY", "CRM_CALDAV_IDLE_TIMEOUT_SECONDS", "CRM_CALDAV_CONNECTION_LIMIT",
    "CRM_CALDAV_DB_LOCK_TIMEOUT_SECONDS", "CRM_CALDAV_DB_STATEMENT_TIMEOUT_SECONDS",
    "CRM_CALDAV_DB_POOL_TIMEOUT_SECONDS", "CRM_CALDAV_MAX_ATTENDEES", "CRM_CALDAV_MAX_ALARMS",
    "CRM_CALDAV_LOG_LEVEL", "CRM_CALDAV_LOG_FORMAT", "CRM_CALDAV_HEALTH", "CRM_CALDAV_METRICS",
)
# Read by the test suite, not by the server: quiet in the environment (a developer's shell keeps
# them set), refused in a --config file like any name that is not a setting.
TEST_VARIABLES = ("CRM_CALDAV_TEST_DATABASE_URL", "CRM_CALDAV_HOSTILE_EXAMPLES", "CRM_CALDAV_HOSTILE_RANDOM")
SUPPORTED_DATABASES = ("sqlite", "postgresql")
# A settings file holds a few dozen short lines; anything far longer is the wrong file (or /dev/zero).
CONFIG_FILE_MAX_CHARACTERS = 100_000
DATABASE_URL_FORMS = "sqlite:///PATH or postgresql+psycopg://USER@HOST/DATABASE"


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Every server-wide setting (SPEC 5)."""

    database_url: str = DEFAULT_DATABASE_URL
    database_url_given: bool = True  # False: CRM_CALDAV_DB was not set and the default is in use
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
    log_level: str = "info"  # request and login lines by default, as operators expect of a server
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
    def database_shown(self) -> str:
        """The database URL as it may be printed: the password masked (``***``), a SQLite path absolute."""
        url = make_url(self.database_url)
        if self.sqlite_file is not None:
            url = url.set(database=str(self.sqlite_file))
        return url.render_as_string(hide_password=True)

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite database file, absolute (from the current folder); None for PostgreSQL or in memory."""
        url = make_url(self.database_url)
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        return Path(url.database).absolute()

    @property
    def in_memory(self) -> bool:
        """An in-memory SQLite database: gone when the process ends, one per server process."""
        url = make_url(self.database_url)
        return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")

    @property
    def window_policy(self) -> WindowPolicy:
        """The initial window rules in force."""
        return WindowPolicy(
            months_back=self.window_months_back,
            end_at_enable=self.window_end == "enable-date",
            cap=self.initial_cap,
        )


# The largest whole number a setting takes unless it says otherwise: seconds that PostgreSQL's
# millisecond settings (a 32-bit int) can hold, and counts far past any real use. Larger values
# failed later with a traceback (a date before year 1, a number SQLite cannot bind).
INT_MAXIMUM = 2_000_000


def _int(values: Mapping[str, str], name: str, default: int, minimum: int = 0, maximum: int = INT_MAXIMUM) -> int:
    raw = values.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: not a whole number: {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}")
    if value > maximum:
        raise ConfigError(f"{name}: must be at most {maximum:,}")
    return value


def _choice(values: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (values.get(name) or default).strip().lower()  # `INFO` or `Off` mean what they say
    if value not in choices:
        raise ConfigError(f"{name}: must be one of {', '.join(choices)}, not {value!r}")
    return value


def read_config_file(path: str | Path) -> dict[str, str]:
    """NAME=VALUE lines of known setting names; '#' starts a comment.

    Raises:
        ConfigError: the file cannot be read or is not UTF-8, a line is not NAME=value, or a
            name is not a setting (the message names the line and the nearest known name).
    """
    return {name: value for name, (value, _) in _config_entries(path).items()}


def _config_entries(path: str | Path) -> dict[str, tuple[str, int]]:
    """name -> (value, line number) of a configuration file; raises ConfigError as read_config_file."""
    entries: dict[str, tuple[str, int]] = {}
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read(CONFIG_FILE_MAX_CHARACTERS + 1)  # bounded: --config /dev/zero must end
    except OSError as error:
        raise ConfigError(f"cannot read configuration file {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; write NAME=value lines") from None
    if len(text) > CONFIG_FILE_MAX_CHARACTERS:
        raise ConfigError(f"{path}: over {CONFIG_FILE_MAX_CHARACTERS:,} characters; not a file of NAME=value lines")
    if text.startswith("\ufeff"):  # systemd would read it as part of the first name, and drop that line
        raise ConfigError(f"{path}: starts with a byte-order mark; save it as UTF-8 without one "
                          "(systemd's EnvironmentFile= would ignore its first line)")
    for number, line in enumerate(text.splitlines(), 1):  # LF, CRLF or CR
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, value = _config_line(path, number, line)
        if name in entries:  # systemd and shells take the last silently: an edit that missed one
            raise ConfigError(f"{path}:{number}: {name} is set again (first on line {entries[name][1]}); keep one")
        entries[name] = (value, number)
    return entries


def _config_line(path: str | Path, number: int, line: str) -> tuple[str, str]:
    """(name, value) of one ``NAME=value`` line of a configuration file.

    Spaces around the name and the value are dropped, and one pair of matching
    quotes around the value ('...' or "..."), as systemd's EnvironmentFile= does.
    A line systemd would ignore (``export NAME=value``) is refused, since the
    same file serves both.
    """
    name, sep, value = line.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name:
        raise ConfigError(f"{path}:{number}: expected CRM_CALDAV_NAME=value")
    words = name.split()
    if len(words) == 2 and words[0] == "export":
        raise ConfigError(f"{path}:{number}: write {words[1]}=value without 'export' "
                          "(systemd's EnvironmentFile= ignores such a line)")
    if name not in SETTING_NAMES:
        raise ConfigError(f"{path}:{number}: {name} is not a setting{_nearest(name)}")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return name, value


def _nearest(name: str) -> str:
    """' (did you mean CRM_CALDAV_X?)' for the known setting closest to ``name``, else ''."""
    # Compared without the shared prefix, which would make every name look alike (and so that
    # `INITIAL_CAP=5` finds CRM_CALDAV_INITIAL_CAP).
    suffixes = {known.removeprefix(PREFIX): known for known in SETTING_NAMES}
    match = difflib.get_close_matches(name.upper().removeprefix(PREFIX), list(suffixes), n=1, cutoff=0.75)
    return f" (did you mean {suffixes[match[0]]}?)" if match else ""


def environment_warnings(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line for each CRM_CALDAV_* variable of the environment that is not a setting.

    Only a warning: other tools (and scripts around this one) may share the prefix.
    """
    names = sorted(name for name in (os.environ if environ is None else environ)
                   if name.startswith(PREFIX) and name not in SETTING_NAMES and name not in TEST_VARIABLES)
    return [f"{name} in the environment is not a setting; ignored{_nearest(name)}" for name in names]


def _database_url(values: Mapping[str, str]) -> str:
    """CRM_CALDAV_DB, checked: a URL of a supported database whose driver is installed.

    Messages never repeat the URL (it may hold a password).

    Raises:
        ConfigError: not a URL, a port that is not a number, another database (MySQL...), an
            unknown or missing driver.
    """
    raw = values.get("CRM_CALDAV_DB") or DEFAULT_DATABASE_URL
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(f"CRM_CALDAV_DB: not a database URL; use {DATABASE_URL_FORMS}") from None
    except ValueError:  # SQLAlchemy reads the port with int(): `HOST:abc`
        raise ConfigError(f"CRM_CALDAV_DB: the port is not a number; use {DATABASE_URL_FORMS}") from None
    if url.get_backend_name() not in SUPPORTED_DATABASES:
        raise ConfigError(f"CRM_CALDAV_DB: {url.get_backend_name()} databases are not supported; "
                          f"use {DATABASE_URL_FORMS}")
    _check_driver(url)
    return raw


def _check_driver(url: URL) -> None:
    """Load the URL's dialect and import its driver, so that a missing one is a setting's error."""
    try:
        dialect = url.get_dialect()
        dialect.import_dbapi()
    except NoSuchModuleError:
        raise ConfigError(f"CRM_CALDAV_DB: unknown driver {url.drivername!r}; use {DATABASE_URL_FORMS}") from None
    except ImportError as error:
        raise ConfigError(f"CRM_CALDAV_DB: the driver of {url.drivername} is not installed "
                          f"(no module {error.name}); use {DATABASE_URL_FORMS}") from None
    if getattr(dialect, "is_async", False):
        raise ConfigError(f"CRM_CALDAV_DB: {url.drivername} is an asyncio driver; use {DATABASE_URL_FORMS}")


def load_settings(config_file: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the file (if any), overridden by the environment's non-empty values.

    Raises:
        ConfigError: a value that cannot be used, or a bad configuration file (one line, naming it).
    """
    entries = _config_entries(config_file) if config_file else {}
    # An empty variable (`export CRM_CALDAV_DB=$UNSET` in a wrapper script) does not override the
    # file: it would quietly replace the file's database with a new SQLite file in the current folder.
    from_environment = {k: v for k, v in (os.environ if environ is None else environ).items()
                        if k in SETTING_NAMES and (v != "" or k not in entries)}
    values = {**{name: value for name, (value, _) in entries.items()}, **from_environment}
    try:
        return _settings(values)
    except ConfigError as error:  # "NAME: ..." of a value the file gave: say where it is
        name = str(error).partition(":")[0]
        if name in entries and name not in from_environment:
            raise ConfigError(f"{config_file}:{entries[name][1]}: {error}") from None
        raise


def _trusted_proxy(values: Mapping[str, str]) -> str | None:
    """CRM_CALDAV_TRUSTED_PROXY: one IP address (waitress compares it with the peer's), '*', or empty for none."""
    proxy = values.get("CRM_CALDAV_TRUSTED_PROXY", "127.0.0.1").strip() or None
    if proxy not in (None, "*"):
        try:
            ipaddress.ip_address(proxy)
        except ValueError:
            raise ConfigError(f"CRM_CALDAV_TRUSTED_PROXY: must be one IP address (such as 127.0.0.1), "
                              f"'*' or empty, not {proxy!r}") from None
    return proxy


def _settings(values: Mapping[str, str]) -> Settings:
    """Settings of these NAME -> value pairs; raises ConfigError "NAME: ..." for a value that cannot be used."""
    return Settings(
        database_url=_database_url(values),
        database_url_given=bool(values.get("CRM_CALDAV_DB")),
        initial_cap=_int(values, "CRM_CALDAV_INITIAL_CAP", 2000),
        window_months_back=_int(values, "CRM_CALDAV_WINDOW_MONTHS_BACK", 1, maximum=1200),  # 100 years
        window_end=_choice(values, "CRM_CALDAV_WINDOW_END", "none", ("none", "enable-date")),
        recurrence=_choice(values, "CRM_CALDAV_RECURRENCE", RECURRENCE_REJECT,
                           (RECURRENCE_REJECT, RECURRENCE_FIRST_OCCURRENCE)),
        max_event_bytes=_int(values, "CRM_CALDAV_MAX_EVENT_BYTES", 1024 * 1024, minimum=1024, maximum=1 << 30),
        public_url=values.get("CRM_CALDAV_PUBLIC_URL") or None,
        login_cache_seconds=_int(values, "CRM_CALDAV_LOGIN_CACHE_SECONDS", 300),
        login_free_failures=_int(values, "CRM_CALDAV_LOGIN_FREE_FAILURES", 5, minimum=1),
        login_backoff_max_seconds=_int(values, "CRM_CALDAV_LOGIN_BACKOFF_MAX_SECONDS", 900, minimum=1),
        trusted_proxy=_trusted_proxy(values),
        idle_timeout_seconds=_int(values, "CRM_CALDAV_IDLE_TIMEOUT_SECONDS", 60, minimum=1),
        connection_limit=_int(values, "CRM_CALDAV_CONNECTION_LIMIT", 2000, minimum=10),
        db_lock_timeout_seconds=_int(values, "CRM_CALDAV_DB_LOCK_TIMEOUT_SECONDS", 5, minimum=1),
        db_statement_timeout_seconds=_int(values, "CRM_CALDAV_DB_STATEMENT_TIMEOUT_SECONDS", 15, minimum=1),
        db_pool_timeout_seconds=_int(values, "CRM_CALDAV_DB_POOL_TIMEOUT_SECONDS", 5, minimum=1),
        max_attendees=_int(values, "CRM_CALDAV_MAX_ATTENDEES", 1000, minimum=1),
        max_alarms=_int(values, "CRM_CALDAV_MAX_ALARMS", 20, minimum=1),
        log_level=_choice(values, "CRM_CALDAV_LOG_LEVEL", "info",
                          ("debug", "info", "warning", "error", "critical")),
        log_format=_choice(values, "CRM_CALDAV_LOG_FORMAT", "text", ("text", "json")),
        health_enabled=_choice(values, "CRM_CALDAV_HEALTH", "on", ("on", "off")) == "on",
        metrics_enabled=_choice(values, "CRM_CALDAV_METRICS", "on", ("on", "off")) == "on",
    )
