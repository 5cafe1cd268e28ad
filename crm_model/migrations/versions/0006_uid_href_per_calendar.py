"""UID and href unique per calendar (per owner), not across the server

RFC 4791 5.3.2.1 makes a UID unique within one calendar collection, and a
resource name names a resource within its collection: two colleagues may keep
the same invitation (same UID, same file name) in their own calendars. The
unique constraints ``uq_activities_uid`` and ``uq_activities_href`` become
``uq_activities_uid_owner_id`` (uid, owner_id) and ``uq_activities_href_owner_id``
(href, owner_id). uid/href lead the indexes, so that a lookup of one calendar
(owner given) and a lookup by uid or href alone are both indexed. Existing
data already satisfies the new constraints.

PostgreSQL: the constraints are dropped and added in place (the triggers stay).
SQLite cannot drop a table's UNIQUE constraint, so ``activities`` is rebuilt in
this transaction. Foreign keys are on (crm_model.db) and cannot be switched off
inside a transaction, and dropping a parent table deletes its children's rows by
ON DELETE CASCADE: so the rows of ``participants`` and ``activity_renderings``
are saved in temporary tables and emptied first (with the participant triggers
dropped, so that nothing is recorded), ``activities`` is copied, dropped and
created anew, the rows come back unchanged (ids, positions), and the activity
and participant triggers of 0002/0004 are created again.

Downgrade restores the server-wide constraints; it refuses (RuntimeError) when
two calendars now share a UID or an href.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import importlib

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PER_OWNER = (("uq_activities_uid_owner_id", ("uid", "owner_id")),
             ("uq_activities_href_owner_id", ("href", "owner_id")))
SERVER_WIDE = (("uq_activities_uid", ("uid",)), ("uq_activities_href", ("href",)))
_CHILDREN = ("participants", "activity_renderings")


def _activity_columns() -> list[sa.Column[object]]:
    """The activities table as 0001 and 0004 left it (frozen here)."""
    return [
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=False),
        sa.Column("all_day", sa.Boolean(), nullable=False),
        sa.Column("tzid", sa.String(64), nullable=True),
        sa.Column("floating", sa.Boolean(), nullable=False),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("reminder_minutes", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("uid", sa.String(255), nullable=False),
        sa.Column("href", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("client_extras", sa.Text(), nullable=True),
        sa.Column("change_pos", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("edited_pos", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("client_body", sa.Text(), nullable=True),
        sa.Column("client_body_pos", sa.Integer(), nullable=True),
    ]


def _sqlite_triggers() -> list[str]:
    """CREATE TRIGGER statements of the SQLite triggers on activities and participants."""
    v0002 = importlib.import_module("crm_model.migrations.versions.0002_change_tracking_triggers")
    v0004 = importlib.import_module("crm_model.migrations.versions.0004_render_dependencies")
    wanted = [s for s in v0004.SQLITE if s.split()[2].startswith(("activities_track_", "participants_track_"))]
    return wanted + [s for s in v0002.SQLITE if s.split()[2] == "activities_track_delete"]


def _sqlite_rebuild(constraints: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
    """Rebuild ``activities`` with ``constraints`` (name, columns), keeping every row and trigger."""
    for statement in _sqlite_triggers():
        if statement.split()[2].startswith("participants_track_"):
            op.execute(f"DROP TRIGGER IF EXISTS {statement.split()[2]}")
    for table in (*_CHILDREN, "activities"):
        op.execute(f"CREATE TEMP TABLE crm_0006_{table} AS SELECT * FROM {table}")
    for table in _CHILDREN:
        op.execute(f"DELETE FROM {table}")
    op.execute("DROP TABLE activities")  # its indexes and triggers go with it
    columns = _activity_columns()
    op.create_table(
        "activities", *columns,
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_activities_owner_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_activities"),
        *(sa.UniqueConstraint(*names, name=name) for name, names in constraints),
    )
    op.create_index("ix_activities_owner_change", "activities", ["owner_id", "change_pos"])
    op.create_index("ix_activities_owner_start", "activities", ["owner_id", "starts_at"])
    names = ", ".join(column.name for column in columns)
    op.execute(f"INSERT INTO activities ({names}) SELECT {names} FROM crm_0006_activities")
    for table in _CHILDREN:
        op.execute(f"INSERT INTO {table} SELECT * FROM crm_0006_{table}")
    for table in (*_CHILDREN, "activities"):
        op.execute(f"DROP TABLE crm_0006_{table}")
    for statement in _sqlite_triggers():
        op.execute(statement)


def _postgresql_swap(drop: tuple[tuple[str, tuple[str, ...]], ...],
                     create: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
    for name, _ in drop:
        op.drop_constraint(name, "activities", type_="unique")
    for name, columns in create:
        op.create_unique_constraint(name, "activities", list(columns))


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_rebuild(PER_OWNER)
    else:
        _postgresql_swap(SERVER_WIDE, PER_OWNER)


def downgrade() -> None:
    bind = op.get_bind()
    for column in ("uid", "href"):
        shared = bind.execute(sa.text(
            f"SELECT {column} FROM activities GROUP BY {column} HAVING count(*) > 1 LIMIT 1")).scalar()
        if shared is not None:
            raise RuntimeError(f"cannot downgrade below 0006: several calendars hold the {column} {shared!r}")
    if bind.dialect.name == "sqlite":
        _sqlite_rebuild(SERVER_WIDE)
    else:
        _postgresql_swap(PER_OWNER, SERVER_WIDE)
