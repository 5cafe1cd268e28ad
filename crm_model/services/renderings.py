"""The texts a calendar serves: stored renderings, a client's verbatim text, the renderer's version.

A rendering is kept per activity for the ``change_pos`` it was made at, so any
change to what a served text depends on (the activity, its participants, its
owner, a contact or lead: migration 0004) retires it. A new renderer version
moves every activity's ``change_pos`` instead of invalidating texts one by one.

Layer: crm_model.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import import_module
from typing import Any

from sqlalchemy import select, update
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from crm_model.db import lift_statement_timeout
from crm_model.models import Activity, ActivityRendering, RendererState


def store_renderings(session: Session, renderings: Iterable[tuple[str, int, str, str]]) -> None:
    """Keep (activity_id, change_pos, variant, body) renderings; a newer revision wins.

    An upsert, so two processes rendering the same activity at once both succeed.
    ``variant`` is the caller's label of its renderer (its version string): owner,
    contact and lead changes move ``change_pos`` themselves (migration 0004).
    """
    rows = [dict(activity_id=a, change_pos=p, variant=v, body=b) for a, p, v, b in renderings]
    if not rows:
        return
    statement = _upsert(session)(ActivityRendering)
    statement = statement.on_conflict_do_update(
        index_elements=[ActivityRendering.activity_id],
        set_={"change_pos": statement.excluded.change_pos, "variant": statement.excluded.variant,
              "body": statement.excluded.body},
        where=ActivityRendering.change_pos <= statement.excluded.change_pos,
    )
    session.execute(statement, rows)


def _upsert(session: Session) -> Any:
    """The dialect's INSERT construct that offers ON CONFLICT.

    Imported for the dialect in use only: SQLAlchemy's PostgreSQL package brings
    every PostgreSQL driver's module along (2.7 MiB resident in a server on SQLite).
    """
    name = "postgresql" if session.get_bind().dialect.name == "postgresql" else "sqlite"
    return import_module(f"sqlalchemy.dialects.{name}").insert


def keep_client_text(session: Session, *, activity_id: str, change_pos: int, text: str | None) -> None:
    """Remember the exact text a CalDAV client PUT for this revision of an activity (SPEC 3.7, 3.10).

    Writes ``activities.client_body``/``client_body_pos`` (no trigger watches them)
    only while the activity is still at ``change_pos``; ``ActivityRecord.verbatim_text``
    carries it while that holds. Any later change (CRM edit, owner or contact
    rename, SQL of another program) moves change_pos and so retires it.

    Args:
        session: the caller's transaction.
        activity_id: ``activities.id``.
        change_pos: the position the stored activity had after the client's PUT.
        text: the client's iCalendar text, or None to forget it.

    Raises nothing: for an unknown activity or a moved position nothing is written.
    """
    session.execute(
        update(Activity)
        .where(Activity.id == activity_id, Activity.change_pos == change_pos)
        .values(client_body=text, client_body_pos=change_pos),
        execution_options={"synchronize_session": False},
    )


def ensure_renderer_version(session: Session, *, name: str, version: int) -> bool:
    """Move every activity's change position when the renderer's version changed (SPEC 2).

    The first version recorded under ``name`` is taken as the one the stored
    positions were made for (the ETags name the version already), so upgrading
    an existing database moves nothing. When ``version`` differs from the one
    stored in ``renderer_state`` under ``name``, every activity gets a new
    ``change_pos`` (not ``edited_pos``: membership is unchanged) and a
    ``calendar_changes`` row, one new position per owner, and the version is
    stored. A conditional upsert claims the version: of several processes
    starting at once, one touches the activities.

    Args:
        session: the caller's (write) transaction; commit it to publish.
        name: the renderer's name (the server uses "ics").
        version: the renderer's version number.

    Returns:
        True when activities were given new positions for a changed version, else False.
    """
    stored = session.scalar(select(RendererState.version).where(RendererState.name == name))
    if stored == version:
        return False
    lift_statement_timeout(session)  # renumbering 100,000 activities outlasts a request's limit
    statement = _upsert(session)(RendererState).values(name=name, version=version)
    statement = statement.on_conflict_do_update(
        index_elements=[RendererState.name], set_={"version": statement.excluded.version},
        where=RendererState.version != statement.excluded.version,
    ).returning(RendererState.name)
    if session.execute(statement).first() is None or stored is None:
        return False  # another process stored this version meanwhile, or the first one recorded
    _touch_all_activities(session)
    return True


# PostgreSQL: one statement; owners locked in id order (as the party triggers do).
_TOUCH_ALL_PG = sql_text("""
WITH owners AS (SELECT id FROM users WHERE EXISTS (SELECT 1 FROM activities a WHERE a.owner_id = users.id)
                ORDER BY id FOR UPDATE),
     bumped AS (UPDATE users SET sync_pos = users.sync_pos + 1 FROM owners WHERE users.id = owners.id
                RETURNING users.id, users.sync_pos),
     touched AS (UPDATE activities SET change_pos = bumped.sync_pos FROM bumped
                 WHERE activities.owner_id = bumped.id
                 RETURNING activities.owner_id, activities.change_pos, activities.id, activities.href)
INSERT INTO calendar_changes (user_id, pos, activity_id, href) SELECT * FROM touched""")
# SQLite: writers are serialised, so three statements see one state.
_TOUCH_ALL_SQLITE = (
    sql_text("UPDATE users SET sync_pos = sync_pos + 1 WHERE id IN (SELECT owner_id FROM activities)"),
    sql_text("UPDATE activities SET change_pos = "
             "(SELECT sync_pos FROM users WHERE users.id = activities.owner_id)"),
    sql_text("INSERT INTO calendar_changes (user_id, pos, activity_id, href) "
             "SELECT owner_id, change_pos, id, href FROM activities"),
)


def _touch_all_activities(session: Session) -> int:
    """Give every activity a new change position (one per owner) and a change row; returns how many."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return connection.execute(_TOUCH_ALL_PG).rowcount
    result = None
    for statement in _TOUCH_ALL_SQLITE:
        result = connection.execute(statement)
    return result.rowcount if result is not None else 0
