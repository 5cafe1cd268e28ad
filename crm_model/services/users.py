"""Users, logins and CalDAV enablement (app passwords per device: crm_model.services.devices).

Layer: crm_model (plus libpass for password hashing, through crm_model.services.passwords).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_model.errors import InvalidDataError, NotFoundError
from crm_model.models import Activity, Device, InitialWindowEntry, User
from crm_model.records import DEFAULT_SYNCED_TYPES, SYNC_TYPES, CalDavStatus, DeviceLogin, UserRecord, WindowPolicy
from crm_model.services.field_limits import SYNCED_TYPES as SYNCED_TYPES_LENGTH
from crm_model.services.mapping import split_types, user_record
from crm_model.services.passwords import generate_app_password, hash_password, password_matches, spend_one_check
from crm_model.services.window import fix_initial_window, membership_logged

FIRST_DEVICE_LABEL = "first device"


def normalize_email(email: str) -> str:
    """Logins and e-mail matching are case-insensitive (SPEC 2)."""
    return email.strip().lower()


def find_user(session: Session, *, email: str) -> User | None:
    """The user row for ``email`` (any letter case), or None."""
    return session.scalars(select(User).where(User.email == normalize_email(email))).one_or_none()


def get_user(session: Session, *, email: str) -> User:
    """The user row for ``email``; raises NotFoundError."""
    user = find_user(session, email=email)
    if user is None:
        raise NotFoundError(f"no user with e-mail {email}")
    return user


def get_user_record(session: Session, *, email: str) -> UserRecord:
    """The boundary record of the user ``email``; raises NotFoundError."""
    return user_record(get_user(session, email=email))


def verify_login(session: Session, *, login: str, password: str) -> UserRecord | None:
    """The user if ``password`` is the app password of one of their devices not revoked and CalDAV is on."""
    found = verify_device_login(session, login=login, password=password)
    return found.user if found is not None else None


def verify_device_login(session: Session, *, login: str, password: str) -> DeviceLogin | None:
    """The user and the device whose app password ``password`` is; None when no login holds.

    Only devices not revoked count, and only while CalDAV is enabled. An
    unknown login, a disabled user, or one without devices costs one hash
    check all the same (no user-existence oracle); a user with several devices
    costs one check per device tried.
    """
    user = find_user(session, email=login)
    devices = [d for d in user.devices if d.revoked_at is None] if user and user.caldav_enabled else []
    if user is None or not devices:
        spend_one_check(password)
        return None
    for device in devices:
        if password_matches(password, device.password_hash):
            return DeviceLogin(user=user_record(user), device_id=device.id)
    return None


def login_still_valid(session: Session, *, user_id: int, credentials_version: int) -> bool:
    """Cheap indexed check that a cached login still holds (a disable takes effect at once)."""
    row = session.execute(
        select(User.caldav_enabled, User.credentials_version).where(User.id == user_id)
    ).one_or_none()
    return bool(row and row[0] and row[1] == credentials_version)


def enable_caldav(
    session: Session, *, email: str, password: str | None, now: datetime, policy: WindowPolicy
) -> tuple[UserRecord, str | None]:
    """Enable CalDAV at time ``now`` (T) with a first device password and a new initial window.

    Returns the user and the first device's password in clear (``password``
    if given, else a generated one), to show once. On a user already enabled
    nothing changes (devices, passwords and window stay) and the password
    returned is None.

    A re-enable after a disable starts a new window, and reaches devices as
    changes (``membership_logged``): a device that signs in again with the new
    password keeps its sync token and gets what left and what joined the
    calendar (SPEC 3.2).

    Raises:
        NotFoundError: no such user.
    """
    user = get_user(session, email=email)
    if user.caldav_enabled:
        return user_record(user), None
    password = password or generate_app_password()
    with membership_logged(session, user):
        user.devices.append(Device(label=FIRST_DEVICE_LABEL, password_hash=hash_password(password), created_at=now))
        user.caldav_enabled = True
        user.caldav_enabled_at = now
        user.credentials_version += 1
        fix_initial_window(session, user, now=now, policy=policy)
    session.flush()
    return user_record(user), password


def disable_caldav(session: Session, *, email: str, now: datetime | None = None) -> UserRecord:
    """Disable CalDAV: logins fail from this commit on (cached ones included).

    Every device still able to log in is revoked at ``now`` (default: the
    current time) and stays listed; a later enable issues a new first device.
    """
    user = get_user(session, email=email)
    revoked_at = now or datetime.now(UTC)
    for device in user.devices:
        if device.revoked_at is None:
            device.revoked_at = revoked_at
    user.caldav_enabled = False
    user.credentials_version += 1
    session.flush()
    return user_record(user)


def update_sync_settings(
    session: Session,
    *,
    email: str,
    sync_type: str | None = None,
    synced_types: tuple[str, ...] | None = None,
    now: datetime,
    policy: WindowPolicy,
    where: str = "synced_types: ",
) -> UserRecord:
    """Change the sync type and/or synced types (SPEC 3.9); new types start a new window.

    What leaves or joins the calendar is written to the change log
    (``membership_logged``), so devices keep their sync tokens and get the
    difference. While CalDAV is disabled the window stays as it is (the
    re-enable fixes a new one) but the new types are logged all the same.

    Raises:
        NotFoundError: no such user.
        InvalidDataError: a sync type not known, or an activity type not in
            ``known_activity_types`` (a typo would empty the calendar and start a new
            window); nothing changes. ``where`` prefixes the message.
    """
    user = get_user(session, email=email)
    if synced_types is not None:
        check_activity_types(session, user, synced_types, where=where)
    change_sync_settings(session, user, sync_type=sync_type, synced_types=synced_types, now=now, policy=policy)
    session.flush()
    return user_record(user)


def known_activity_types(session: Session, user: User) -> tuple[str, ...]:
    """The activity types ``user`` may sync, sorted: the defaults (meeting, call), every type
    an activity of the CRM has, and those the user syncs already (lower case, as synced types are kept).

    Types are free text in the CRM (SPEC 3.9), so "known" means seen: a type no activity has
    is far more often a typo than a plan.
    """
    seen = session.scalars(select(Activity.type).distinct())
    return tuple(sorted({*DEFAULT_SYNCED_TYPES, *(t.lower() for t in seen if t), *split_types(user.synced_types)}))


def check_activity_types(session: Session, user: User, synced_types: tuple[str, ...], *, where: str = "") -> None:
    """Raise InvalidDataError naming the types of ``synced_types`` that are not known, and the known ones.

    ``where`` starts the message (the field or option that carried the types).
    """
    known = known_activity_types(session, user)
    unknown = [t.strip() for t in synced_types if isinstance(t, str) and t.strip() and t.strip().lower() not in known]
    if unknown:
        raise InvalidDataError(f"{where}unknown activity type{'s' if len(unknown) > 1 else ''} "
                               f"{', '.join(unknown)}; known types: {', '.join(known)}")


def change_sync_settings(session: Session, user: User, *, sync_type: str | None,
                         synced_types: tuple[str, ...] | None, now: datetime, policy: WindowPolicy | None,
                         where: str = "") -> None:
    """Set the sync settings of ``user`` (the CLI and import), logging what leaves or joins the calendar.

    New synced types for an enabled user start a new initial window under
    ``policy``; with ``policy`` None the window stays and only the filter changes.

    Raises:
        InvalidDataError: for a sync type or types that cannot be used (``where`` prefixes the message).
    """
    before = set(split_types(user.synced_types))
    with membership_logged(session, user):
        apply_sync_settings(user, sync_type=sync_type, synced_types=synced_types, where=where)
        if set(split_types(user.synced_types)) != before and user.caldav_enabled and policy is not None:
            user.caldav_enabled_at = now
            fix_initial_window(session, user, now=now, policy=policy)


def apply_sync_settings(
    user: User, *, sync_type: str | None, synced_types: tuple[str, ...] | None, where: str = ""
) -> None:
    """Validate and set sync settings on a user row (shared by the CLI and import)."""
    if sync_type is not None:
        if sync_type not in SYNC_TYPES:
            raise InvalidDataError(f"{where}sync_type: must be one of {', '.join(SYNC_TYPES)}")
        user.sync_type = sync_type
    if synced_types is not None:
        if not all(isinstance(t, str) for t in synced_types):
            raise InvalidDataError(f"{where}synced_types: must be a list of names")
        cleaned = tuple(dict.fromkeys(t.strip().lower() for t in synced_types if t.strip()))
        if not cleaned:
            raise InvalidDataError(f"{where}synced_types: name at least one activity type")
        joined = ",".join(cleaned)
        if len(joined) > SYNCED_TYPES_LENGTH:
            raise InvalidDataError(f"{where}synced_types: {len(joined)} characters together, "
                                   f"more than the limit of {SYNCED_TYPES_LENGTH}")
        user.synced_types = joined


def set_calendar_props(session: Session, *, user_id: int, props: Mapping[str, str]) -> None:
    """Store the calendar's dead properties (colour, order) that clients PROPPATCH."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"no user {user_id}")
    user.calendar_props = json.dumps(dict(sorted(props.items())))


def record_sync_seen(session: Session, *, user_id: int, now: datetime) -> None:
    """Remember when a client last synchronised (shown by `caldav status`)."""
    user = session.get(User, user_id)
    if user is not None:
        user.last_sync_at = now


def caldav_status(session: Session, *, email: str) -> CalDavStatus:
    """What `crm-caldav caldav status` shows for one user.

    The last sync is the user's latest authenticated request from any client: a
    device's last use (written by the server for every authenticated request, at most
    once a minute per device) or the last sync-collection, whichever is later. Clients
    such as vdirsyncer and python-caldav never send a sync-collection, and still sync.
    """
    from crm_model.services.calendar import count_offered

    user = get_user(session, email=email)
    initial = session.scalar(
        select(func.count()).select_from(InitialWindowEntry).where(InitialWindowEntry.user_id == user.id)
    )
    record = user_record(user)
    device_use = session.scalar(select(func.max(Device.last_used_at)).where(Device.user_id == user.id))
    return CalDavStatus(
        email=user.email,
        enabled=user.caldav_enabled,
        enabled_at=user.caldav_enabled_at,
        sync_type=user.sync_type,
        synced_types=split_types(user.synced_types),
        initial_set_size=int(initial or 0),
        offered=count_offered(session, user=record) if user.caldav_enabled else 0,
        last_sync_at=_latest(user.last_sync_at, device_use),
    )


def _latest(*moments: datetime | None) -> datetime | None:
    """The latest of the moments given that are not None (None when none is)."""
    known = [m.replace(tzinfo=UTC) if m.tzinfo is None else m for m in moments if m is not None]
    return max(known, default=None)


def list_user_emails(session: Session) -> list[str]:
    """Every user's e-mail, sorted."""
    return list(session.scalars(select(User.email).order_by(User.email)))
