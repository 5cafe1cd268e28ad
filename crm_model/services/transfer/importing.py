"""Import of CRM JSON (the format of SPEC 5).

Import checks each section in document order and names the place of the
first problem; the caller's transaction makes it all or nothing.

Import is built for files of hundreds of thousands of activities: the stored
rows a file refers to are read in chunks (see ``reading``), every activity is
checked and compared against those in-memory copies, and only then is the
result written, with multi-row statements per kind of change instead of one
ORM object and flush per row. The change-tracking triggers still see every row
written; on PostgreSQL they take one position per owner and statement.

Layer: crm_model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Column, CursorResult, MetaData, Table, delete, select, text, update
from sqlalchemy.orm import Session

from crm_model.base import Base
from crm_model.errors import InvalidDataError
from crm_model.models import Activity, Contact, Lead, Participant, User
from crm_model.records import WindowPolicy
from crm_model.services import field_limits
from crm_model.services.transfer import checks, reading, writing
from crm_model.services.transfer.reading import Planned
from crm_model.services.users import change_sync_settings, normalize_email

# New activities per INSERT statement (and per step of the progress bar): on
# PostgreSQL one position per owner and statement (see writing).
INSERT_PAGE = 5000
# Activities checked between two calls of the progress callback.
PROGRESS_STEP = 1000
# Called with a number of activities done (see import_data).
Progress = Callable[[int], None]
# Keys of an `export --changes-since` answer that import reads past.
_READ_ONLY_KEYS = ("since", "position")

_SECTIONS = ("users", "contacts", "leads", "activities", "deleted_activities")


@dataclass(frozen=True)
class ImportSummary:
    """Counts of what an import did."""

    users: int
    contacts: int
    leads: int
    activities_created: int
    activities_updated: int
    activities_deleted: int


def import_data(session: Session, data: Any, *, now: datetime, policy: WindowPolicy | None = None,
                progress: Progress | None = None) -> ImportSummary:
    """Upsert users (by email), contacts, leads, activities (by id); delete listed activities.

    A user's ``caldav`` settings change as with ``caldav settings``: what leaves
    or joins an enabled calendar is logged for its devices' sync tokens, and new
    synced types start a new initial window under ``policy`` (None: the window stays).
    ``progress`` is called with a number of activities as they are checked and
    again as they are written: the calls add up to twice ``progress_total(data)``.
    The keys ``since`` and ``position`` of an ``export --changes-since`` answer are ignored.
    """
    if not isinstance(data, dict):
        raise InvalidDataError("the file must hold one JSON object")
    unknown = set(data) - set(_SECTIONS) - set(_READ_ONLY_KEYS)
    if unknown:
        raise InvalidDataError(f"unknown section(s): {', '.join(sorted(unknown))}")
    for section in _SECTIONS:
        if not isinstance(data.get(section, []), list):
            raise InvalidDataError(f"{section}: must be a list")
    checks.clean_text(data)
    users = [_import_user(session, raw, f"users[{i}].", now, policy) for i, raw in enumerate(data.get("users", []))]
    session.flush()
    contacts = _import_parties(session, Contact, data.get("contacts", []), "contacts")
    leads = _import_parties(session, Lead, data.get("leads", []), "leads")
    created, updated = _import_activities(session, data.get("activities", []), now, progress or _no_progress)
    deleted = _delete_activities(session, data.get("deleted_activities", []))
    # The bulk statements bypassed the session, and the triggers moved
    # users.sync_pos: objects the caller still holds must be read again.
    session.expire_all()
    if created + deleted > 1000:
        refresh_statistics(session)
    return ImportSummary(len(users), contacts, leads, created, updated, deleted)


def progress_total(data: Any) -> int:
    """How many activities ``data`` holds (0 when it is no import document)."""
    activities = data.get("activities") if isinstance(data, dict) else None
    return len(activities) if isinstance(activities, list) else 0


def _no_progress(done: int) -> None:
    """The progress callback when nobody watches."""


def refresh_statistics(session: Session) -> None:
    """Refresh the planner's statistics after a bulk load.

    Without them SQLite reads a 50-href multiget through the (owner, start)
    index, scanning the whole calendar, instead of the unique href index: the
    first sync then grows with the square of the calendar size.
    """
    for table in ("activities", "participants", "calendar_changes", "initial_window"):
        session.execute(text(f"ANALYZE {table}"))


def _import_user(session: Session, raw: Any, where: str, now: datetime, policy: WindowPolicy | None) -> User:
    email = normalize_email(checks.require(raw, "email", where))
    if "@" not in email:
        raise InvalidDataError(f"{where}email: not an e-mail address")
    checks.bounded(email, f"{where}email", field_limits.USER_EMAIL)
    zone = checks.bounded(checks.optional(raw, "timezone", where, str), f"{where}timezone", field_limits.USER_TIMEZONE)
    if zone is not None:
        checks.time_zone(zone, f"{where}timezone")
    user = session.scalars(select(User).where(User.email == email)).one_or_none()
    if user is None:
        user = User(email=email, name="", timezone="UTC")
        session.add(user)
    user.name = checks.bounded(checks.optional(raw, "name", where, str), f"{where}name",
                               field_limits.USER_NAME) or user.name
    user.timezone = zone or user.timezone
    caldav = checks.optional(raw, "caldav", where, dict)
    if caldav:
        types = checks.optional(caldav, "synced_types", f"{where}caldav.", list)
        session.flush()  # a new user's row exists before its membership is read
        change_sync_settings(
            session, user, sync_type=checks.optional(caldav, "sync_type", f"{where}caldav.", str),
            synced_types=tuple(types) if types is not None else None, now=now, policy=policy,
            where=f"{where}caldav.",
        )
    return user


def _import_parties(session: Session, model: type[Contact] | type[Lead], raws: list[Any], section: str) -> int:
    """Upsert contacts or leads by id; returns how many items the file held."""
    ids = {key for key in (reading.loose(raw, "id") for raw in raws) if key is not None}
    query = select(model.id, model.name, model.email)
    stored = {row.id: row._asdict() for row in reading.rows_where_in(session, query, ids)}
    wanted: dict[str, dict[str, Any]] = {}  # id -> the row to store; a later item of the same id wins
    for i, raw in enumerate(raws):
        where = f"{section}[{i}]."
        party_id = checks.bounded(str(checks.require(raw, "id", where, (str, int))), f"{where}id",
                                  field_limits.PARTY_ID)
        previous = wanted.get(party_id) or stored.get(party_id) or {}
        name = (checks.bounded(checks.optional(raw, "name", where, str), f"{where}name", field_limits.PARTY_NAME)
                or previous.get("name") or "")
        email = checks.bounded(checks.optional(raw, "email", where, str), f"{where}email", field_limits.PARTY_EMAIL)
        wanted[party_id] = {"id": party_id, "name": name, "email": normalize_email(email) if email else None}
    new = [row for key, row in wanted.items() if key not in stored]
    changed = [row for key, row in wanted.items() if key in stored and row != stored[key]]
    if new:
        _insert_many(session, model, new)
    if changed:
        session.execute(update(model), changed)
    return len(raws)


def _import_activities(session: Session, raws: list[Any], now: datetime, progress: Progress) -> tuple[int, int]:
    """Upsert activities by id; returns (created, updated)."""
    lookups = reading.look_up(session, raws)
    planned: dict[str, Planned] = {}
    created = updated = 0
    for i, raw in enumerate(raws):
        if i and i % PROGRESS_STEP == 0:
            progress(PROGRESS_STEP)
        where = f"activities[{i}]."
        activity_id, fields = checks.activity_fields(raw, where, lookups.owners)
        participants = checks.participants(checks.optional(raw, "participants", where, list) or [], where, lookups)
        current = planned.get(activity_id) or lookups.activities.get(activity_id)
        if current is None:
            new = checks.new_activity(raw, where, activity_id, now, lookups, owner_id=fields["owner_id"])
            planned[activity_id] = Planned(activity_id, fields, participants, new=new)
            created += 1
            continue
        # Compare with the state so far (the stored row, or an earlier item of
        # the same id) and write only what differs: the triggers then record
        # the same changes as the former row-by-row writes did.
        planned[activity_id] = current
        updated += 1
        if current.fields != fields:
            current.fields, current.fields_changed = fields, True
        if _participant_keys(current.participants) != _participant_keys(participants):
            current.participants, current.participants_changed = participants, True
    progress(len(raws) % PROGRESS_STEP or min(len(raws), PROGRESS_STEP))
    _write_activities(session, planned.values(), now, progress)
    return created, updated


def _participant_keys(participants: list[dict[str, Any]]) -> list[tuple[str | None, str | None, str | None]]:
    """What identifies a participant list: the same keys mean it is left as stored."""
    return [(p["contact_id"], p["lead_id"],
             None if (p["contact_id"] or p["lead_id"]) else (p["email"] or "").lower()) for p in participants]


def _write_activities(session: Session, planned: Iterable[Planned], now: datetime, progress: Progress) -> None:
    """Write the plan with few statements per kind of change (see _insert_many).

    Updates set ``updated_at`` alone when only the participants changed, so
    that the activity trigger (which watches the content columns) does not
    record a change the participant triggers already record.

    Rows go in activity id order: the primary-key index, and the triggers'
    lookups of each participant's activity, then walk the B-trees in order
    instead of at random, which keeps a large load inside the page cache
    (on SQLite, 250,000 activities and their participants took 66 s to insert
    in random order and 26 s in id order).
    """
    created: list[Planned] = []
    stored = 0
    changed, touched, replaced, participants = [], [], [], []
    for item in sorted(planned, key=lambda item: item.id):
        if item.new is not None:
            created.append(item)
            continue
        stored += 1
        if item.fields_changed:
            changed.append({"id": item.id, **item.fields, "updated_at": now})
        elif item.participants_changed:
            touched.append({"id": item.id, "updated_at": now})
        if item.participants_changed:
            replaced.append(item.id)
            participants += _participant_rows(item)
    _create_activities(session, created, now, progress)
    for rows in (changed, touched):
        if rows:
            _update_many(session, rows)
    for chunk in reading.chunks(replaced):
        session.execute(delete(Participant).where(Participant.activity_id.in_(chunk)),
                        execution_options={"synchronize_session": False})
    if participants:
        _insert_many(session, Participant, participants)
    progress(stored)  # the stored activities of the file: written (if they differed) above


def _create_activities(session: Session, created: list[Planned], now: datetime, progress: Progress) -> None:
    """Insert new activities a page at a time, each page followed by its participants.

    Each page is two statements (one position per owner for each on
    PostgreSQL) and one step of the progress.
    """
    for start in range(0, len(created), INSERT_PAGE):
        page = created[start:start + INSERT_PAGE]
        rows = [{**item.new, **item.fields, "updated_at": now} for item in page if item.new is not None]
        _insert_many(session, Activity, _at_next_positions(session, rows))
        rows = [row for item in page for row in _participant_rows(item)]
        if rows:
            _insert_many(session, Participant, rows)
        progress(len(page))


def _at_next_positions(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """On PostgreSQL, ``rows`` (new activities) with ``change_pos`` and ``edited_pos`` set
    to the position their INSERT statement will take for their owner.

    Its statement trigger (migration 0010) then logs them without writing each
    row a second time. The owners' rows are locked first (in id order, as the
    triggers lock them), so the position read cannot move before the INSERT;
    were it wrong, the trigger would correct the rows. SQLite's row triggers
    take a position per row: rows are returned unchanged there.
    """
    if session.get_bind().dialect.name != "postgresql":
        return rows
    owners = sorted({row["owner_id"] for row in rows})
    query = select(User.id, User.sync_pos).where(User.id.in_(owners)).order_by(User.id).with_for_update()
    following = {row.id: row.sync_pos + 1 for row in session.execute(query)}
    return [{**row, "change_pos": following[row["owner_id"]], "edited_pos": following[row["owner_id"]]}
            for row in rows]


def _insert_many(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """INSERT ``rows`` of ``model``'s table in one statement (see ``writing``)."""
    table = model.__table__
    assert isinstance(table, Table)  # each model here maps one table (no joins, no subqueries)
    writing.insert_rows(session, table, rows)


def _update_many(session: Session, rows: list[dict[str, Any]]) -> None:
    """UPDATE stored activities from ``rows`` (dicts with ``id`` and the same other keys) in one statement.

    The rows go into a temporary table first (see ``writing``), then one
    ``UPDATE activities ... FROM`` it: on PostgreSQL one position per owner for
    all of them (migration 0010), where an executemany of one-row UPDATEs took one
    per row. SQLite (3.33 and later) runs the same statement; its row triggers
    see every row either way.
    """
    table = Activity.__table__
    assert isinstance(table, Table)
    names = [name for name in rows[0] if name != "id"]
    staging = Table("crm_import_updates", MetaData(), Column("id", table.c.id.type, primary_key=True),
                    *(Column(name, table.c[name].type) for name in names), prefixes=["TEMPORARY"])
    connection = session.connection()
    staging.create(connection)  # a failure below rolls back the transaction, this table with it
    writing.insert_rows(session, staging, rows)
    session.execute(update(table).where(table.c.id == staging.c.id).values({name: staging.c[name] for name in names}))
    staging.drop(connection)


def _participant_rows(item: Planned) -> list[dict[str, Any]]:
    return [{"activity_id": item.id, "position": position, **row}
            for position, row in enumerate(item.participants)]


def _delete_activities(session: Session, ids: list[Any]) -> int:
    deleted = 0
    for chunk in reading.chunks({str(i) for i in ids}):
        # A DELETE's result is a CursorResult, which has the row count.
        result = cast("CursorResult[Any]", session.execute(delete(Activity).where(Activity.id.in_(chunk)),
                                                           execution_options={"synchronize_session": False}))
        deleted += result.rowcount or 0
    return deleted
