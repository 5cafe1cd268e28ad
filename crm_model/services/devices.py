"""Per-device app passwords: add, list, revoke, and the record of their last use.

Each phone or computer gets its own app password (SPEC 5): a label, a libpass
hash (the password itself is returned once and never stored), when and by
which client (User-Agent) from which address it was last used, and when it
was revoked. Revoking one device never touches another's password.

Layer: crm_model.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from crm_model.errors import InvalidDataError, NotFoundError
from crm_model.models import Device, User
from crm_model.models.devices import ADDRESS_LENGTH, LABEL_LENGTH, USER_AGENT_LENGTH
from crm_model.records import DeviceRecord
from crm_model.services.passwords import generate_app_password, hash_password
from crm_model.services.users import get_user

# A device's last use is written at most this often (each request would be a write).
USE_INTERVAL = timedelta(minutes=1)


def device_record(device: Device) -> DeviceRecord:
    """The boundary record of a device row."""
    return DeviceRecord(
        id=device.id, label=device.label, created_at=device.created_at, last_used_at=device.last_used_at,
        last_user_agent=device.last_user_agent, last_address=device.last_address, revoked_at=device.revoked_at,
    )


def clean_label(label: str) -> str:
    """``label`` stripped; raises InvalidDataError when empty, too long or holding control characters."""
    cleaned = label.strip()
    if not cleaned:
        raise InvalidDataError("label: give the device a name, e.g. \"Patricia's iPhone\"")
    if len(cleaned) > LABEL_LENGTH:
        raise InvalidDataError(f"label: {len(cleaned)} characters, more than the limit of {LABEL_LENGTH}")
    if any(ord(c) < 32 or ord(c) == 127 for c in cleaned):
        raise InvalidDataError("label: control characters are not allowed")
    return cleaned


def add_device(session: Session, *, email: str, label: str, now: datetime) -> tuple[DeviceRecord, str]:
    """A new device of user ``email`` and its app password in clear (to show once; only its hash is kept).

    Works whether CalDAV is enabled or not (the password opens a login only
    while it is). Other devices and cached logins are not touched.

    Raises:
        NotFoundError: no such user.
        InvalidDataError: a bad label, or one a device of this user that is not revoked already has.
    """
    user = get_user(session, email=email)
    cleaned = clean_label(label)
    if any(d.label == cleaned and d.revoked_at is None for d in user.devices):
        raise InvalidDataError(f"label: {user.email} already has a device labelled {cleaned!r}; "
                               "revoke it first or choose another label")
    password = generate_app_password()
    device = Device(label=cleaned, password_hash=hash_password(password), created_at=now)
    user.devices.append(device)
    session.flush()
    return device_record(device), password


def list_devices(session: Session, *, email: str) -> list[DeviceRecord]:
    """Every device of user ``email``, revoked ones included, oldest first; raises NotFoundError."""
    user = get_user(session, email=email)
    return [device_record(d) for d in user.devices]


def revoke_device(session: Session, *, email: str, now: datetime, label: str | None = None,
                  device_id: int | None = None) -> DeviceRecord:
    """Revoke one device of user ``email``: the one with ``device_id``, or the one not yet revoked with ``label``.

    Give exactly one of ``label`` and ``device_id``; neither is ever read as
    the other (a device labelled "3" is not device 3). Its password fails
    from this commit on, cached logins included: the user's
    ``credentials_version`` is bumped, which ends every cached login of the
    user (the server compares it on every request). The user's other devices
    keep working; each checks its password hash once more. Revoking a device
    already revoked (by id) changes nothing and returns it.

    Raises:
        ValueError: not exactly one of ``label`` and ``device_id``.
        NotFoundError: no such user, or no device of theirs with that id or label.
    """
    if (label is None) == (device_id is None):
        raise ValueError("revoke_device: give exactly one of label= and device_id=")
    user = get_user(session, email=email)
    if device_id is not None:
        device = next((d for d in user.devices if d.id == device_id), None)
        missing = f"{user.email} has no device with the id {device_id}"
    else:
        device = _active_device_labelled(user, (label or "").strip())
        missing = f"{user.email} has no device labelled {label!r} that is not revoked"
    if device is None:
        raise NotFoundError(missing)
    if device.revoked_at is None:
        device.revoked_at = now
        user.credentials_version += 1
        session.flush()
    return device_record(device)


def revoke_device_named(session: Session, *, email: str, name: str, now: datetime) -> DeviceRecord:
    """Revoke the device of user ``email`` that ``name`` names, by the rule of ``caldav password revoke``.

    ``#3`` or ``id:3`` is the device with id 3, whatever the labels. Any other
    value is the label of a device not yet revoked; only when no such device
    has that label, a value of digits is taken as an id.

    Raises:
        NotFoundError: no such user, or no device that ``name`` names.
    """
    cleaned = name.strip()
    explicit_id = _explicit_id(cleaned)
    if explicit_id is not None:
        return revoke_device(session, email=email, device_id=explicit_id, now=now)
    user = get_user(session, email=email)
    if _active_device_labelled(user, cleaned) is None and cleaned.isdigit():
        return revoke_device(session, email=email, device_id=int(cleaned), now=now)
    return revoke_device(session, email=email, label=cleaned, now=now)


def _explicit_id(name: str) -> int | None:
    """The id in ``#3`` or ``id:3`` (case and spaces after the prefix ignored), else None."""
    for prefix in ("#", "id:"):
        if name.lower().startswith(prefix):
            rest = name[len(prefix):].strip()
            if rest.isdigit():
                return int(rest)
    return None


def _active_device_labelled(user: User, label: str) -> Device | None:
    """The device of ``user`` with this label that is not revoked (labels are unique among those)."""
    return next((d for d in user.devices if d.label == label and d.revoked_at is None), None)


def record_device_use(session: Session, *, device_id: int, user_agent: str, address: str, now: datetime) -> None:
    """Note that device ``device_id`` was used at ``now`` by ``user_agent`` from ``address``.

    Written only when the last recorded use is a minute or more before
    ``now`` (one conditional UPDATE, so several server processes write it at
    most once a minute between them). Values are cut to their column sizes.
    An unknown or revoked device is left alone.
    """
    session.execute(
        update(Device)
        .where(Device.id == device_id, Device.revoked_at.is_(None),
               or_(Device.last_used_at.is_(None), Device.last_used_at <= now - USE_INTERVAL))
        .values(last_used_at=now, last_user_agent=user_agent[:USER_AGENT_LENGTH] or None,
                last_address=address[:ADDRESS_LENGTH] or None)
        .execution_options(synchronize_session=False)
    )


def active_device_count(session: Session, *, user_id: int) -> int:
    """How many devices of the user can log in (not revoked)."""
    return len(list(session.scalars(
        select(Device.id).where(Device.user_id == user_id, Device.revoked_at.is_(None)))))
