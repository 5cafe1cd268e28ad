"""track what the served text depends on besides the activity row

The text served for an activity also shows the owner's name, e-mail and time
zone (ORGANIZER, floating times) and the names and e-mails of linked contacts
and leads (ATTENDEE). Changing any of these now moves the activity's
``change_pos`` (its ETag) and appends a ``calendar_changes`` row, from database
triggers, so programs writing the CRM tables with plain SQL are covered too
(SPEC 2).

- ``activities.edited_pos``: position of the last change of the activity's own
  CRM data (its tracked columns or its participant list). Calendar membership
  ("changed after T", SPEC 3.2) uses it, so renaming an owner does not pull old
  activities outside the initial window into the calendar. The activity and
  participant triggers set ``change_pos`` and ``edited_pos`` to one position;
  the new owner/contact/lead triggers move ``change_pos`` only.
- ``activities.client_body`` / ``client_body_pos``: the exact text a client
  PUT, valid while ``client_body_pos = change_pos``; not tracked.
- ``renderer_state``: the renderer version the positions were last moved for.
- ``ix_calendar_changes_user_pos`` is no longer unique: one statement may
  record many activities of one user at one position.
- ``participants.contact_id`` / ``lead_id`` are indexed for the new triggers.

No trigger fires another in a loop: every trigger watches an explicit column
list (``UPDATE OF``) that excludes the columns triggers write (``users.sync_pos``,
``activities.change_pos`` / ``edited_pos``), and the party triggers fire only
when a value really differs.

Revision ID: 0004
Revises: 0003
"""
import importlib

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The activity columns of its own CRM data (frozen here, as in 0002; see
# crm_model.models.activities.TRACKED_COLUMNS).
_COLUMNS = (
    "owner_id, type, title, starts_at, ends_at, all_day, tzid, floating, location, "
    "description, private, reminder_minutes, client_extras, uid, href"
)
# (table, participants column) of the people an activity's ATTENDEE lines name.
_PARTIES = (("contacts", "contact_id"), ("leads", "lead_id"))
_REPLACED_SQLITE = ("activities_track_insert", "activities_track_update", "participants_track_insert",
                    "participants_track_update", "participants_track_delete")

# --- SQLite ------------------------------------------------------------------

_SQLITE_RECORD_NEW = """
  UPDATE users SET sync_pos = sync_pos + 1 WHERE id = NEW.owner_id;
  UPDATE activities SET (change_pos, edited_pos) = (SELECT sync_pos, sync_pos FROM users WHERE id = NEW.owner_id)
   WHERE id = NEW.id;
  INSERT INTO calendar_changes (user_id, pos, activity_id, href)
   SELECT id, sync_pos, NEW.id, NEW.href FROM users WHERE id = NEW.owner_id;
"""
_SQLITE_TOUCH_ACTIVITY = """
  UPDATE users SET sync_pos = sync_pos + 1
   WHERE id = (SELECT owner_id FROM activities WHERE id = {row}.activity_id);
  UPDATE activities SET (change_pos, edited_pos) =
   (SELECT sync_pos, sync_pos FROM users WHERE users.id = activities.owner_id)
   WHERE id = {row}.activity_id;
  INSERT INTO calendar_changes (user_id, pos, activity_id, href)
   SELECT u.id, u.sync_pos, a.id, a.href FROM activities a JOIN users u ON u.id = a.owner_id
   WHERE a.id = {row}.activity_id;
"""
_SQLITE_PARTY = """CREATE TRIGGER {table}_track_render AFTER UPDATE OF name, email ON {table}
 WHEN OLD.name IS NOT NEW.name OR OLD.email IS NOT NEW.email BEGIN
  UPDATE users SET sync_pos = sync_pos + 1 WHERE id IN
   (SELECT a.owner_id FROM participants p JOIN activities a ON a.id = p.activity_id WHERE p.{column} = NEW.id);
  UPDATE activities SET change_pos = (SELECT sync_pos FROM users WHERE users.id = activities.owner_id)
   WHERE id IN (SELECT activity_id FROM participants WHERE {column} = NEW.id);
  INSERT INTO calendar_changes (user_id, pos, activity_id, href)
   SELECT owner_id, change_pos, id, href FROM activities
   WHERE id IN (SELECT activity_id FROM participants WHERE {column} = NEW.id);
 END"""
SQLITE = [
    f"CREATE TRIGGER activities_track_insert AFTER INSERT ON activities BEGIN {_SQLITE_RECORD_NEW} END",
    f"""CREATE TRIGGER activities_track_update AFTER UPDATE OF {_COLUMNS} ON activities BEGIN
  UPDATE users SET sync_pos = sync_pos + 1 WHERE id = OLD.owner_id AND OLD.owner_id <> NEW.owner_id;
  INSERT INTO calendar_changes (user_id, pos, activity_id, href)
   SELECT id, sync_pos, OLD.id, OLD.href FROM users WHERE id = OLD.owner_id AND OLD.owner_id <> NEW.owner_id;
  {_SQLITE_RECORD_NEW} END""",
    *(f"CREATE TRIGGER participants_track_{event.lower()} AFTER {event} ON participants BEGIN "
      f"{_SQLITE_TOUCH_ACTIVITY.format(row=row)} END"
      for event, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD"))),
    """CREATE TRIGGER users_track_render AFTER UPDATE OF name, email, timezone ON users
 WHEN OLD.name IS NOT NEW.name OR OLD.email IS NOT NEW.email OR OLD.timezone IS NOT NEW.timezone BEGIN
  UPDATE users SET sync_pos = sync_pos + 1
   WHERE id = NEW.id AND EXISTS (SELECT 1 FROM activities WHERE owner_id = NEW.id);
  UPDATE activities SET change_pos = (SELECT sync_pos FROM users WHERE id = NEW.id) WHERE owner_id = NEW.id;
  INSERT INTO calendar_changes (user_id, pos, activity_id, href)
   SELECT owner_id, change_pos, id, href FROM activities WHERE owner_id = NEW.id;
 END""",
    *(_SQLITE_PARTY.format(table=table, column=column) for table, column in _PARTIES),
]
_NEW_SQLITE = ("users_track_render", *(f"{table}_track_render" for table, _ in _PARTIES))

# --- PostgreSQL ----------------------------------------------------------------

# Replacing the functions keeps the 0002 triggers (and their column lists).
_PG_PARTY_FUNCTION = """CREATE FUNCTION crm_track_{table}_render() RETURNS trigger AS $$
DECLARE owner integer; p integer;
BEGIN
  -- owners in id order: concurrent multi-user writers take row locks in one order
  FOR owner IN SELECT DISTINCT a.owner_id FROM participants pa JOIN activities a ON a.id = pa.activity_id
               WHERE pa.{column} = NEW.id ORDER BY a.owner_id LOOP
    p := crm_next_position(owner);
    WITH touched AS (
      UPDATE activities SET change_pos = p
       WHERE owner_id = owner AND id IN (SELECT activity_id FROM participants WHERE {column} = NEW.id)
      RETURNING id, href)
    INSERT INTO calendar_changes (user_id, pos, activity_id, href) SELECT owner, p, id, href FROM touched;
  END LOOP;
  RETURN NULL;
END $$ LANGUAGE plpgsql"""
_PG_PARTY_TRIGGER = """CREATE TRIGGER {table}_track_render AFTER UPDATE OF name, email ON {table}
  FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.email IS DISTINCT FROM NEW.email)
  EXECUTE FUNCTION crm_track_{table}_render()"""
POSTGRESQL = [
    """CREATE OR REPLACE FUNCTION crm_track_activity() RETURNS trigger AS $$
DECLARE p integer;
BEGIN
  IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.owner_id <> NEW.owner_id) THEN
    p := crm_next_position(OLD.owner_id);
    INSERT INTO calendar_changes (user_id, pos, activity_id, href) VALUES (OLD.owner_id, p, OLD.id, OLD.href);
  END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  p := crm_next_position(NEW.owner_id);
  NEW.change_pos := p;
  NEW.edited_pos := p;
  INSERT INTO calendar_changes (user_id, pos, activity_id, href) VALUES (NEW.owner_id, p, NEW.id, NEW.href);
  RETURN NEW;
END $$ LANGUAGE plpgsql""",
    """CREATE OR REPLACE FUNCTION crm_track_participant() RETURNS trigger AS $$
DECLARE aid varchar; owner integer; p integer;
BEGIN
  IF TG_OP = 'DELETE' THEN aid := OLD.activity_id; ELSE aid := NEW.activity_id; END IF;
  SELECT owner_id INTO owner FROM activities WHERE id = aid;
  IF owner IS NULL THEN RETURN NULL; END IF;
  p := crm_next_position(owner);
  UPDATE activities SET change_pos = p, edited_pos = p WHERE id = aid;
  INSERT INTO calendar_changes (user_id, pos, activity_id, href)
    SELECT owner, p, id, href FROM activities WHERE id = aid;
  RETURN NULL;
END $$ LANGUAGE plpgsql""",
    """CREATE FUNCTION crm_track_users_render() RETURNS trigger AS $$
DECLARE p integer;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM activities WHERE owner_id = NEW.id) THEN RETURN NULL; END IF;
  p := crm_next_position(NEW.id);
  WITH touched AS (UPDATE activities SET change_pos = p WHERE owner_id = NEW.id RETURNING id, href)
  INSERT INTO calendar_changes (user_id, pos, activity_id, href) SELECT NEW.id, p, id, href FROM touched;
  RETURN NULL;
END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER users_track_render AFTER UPDATE OF name, email, timezone ON users
  FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.email IS DISTINCT FROM NEW.email
                     OR OLD.timezone IS DISTINCT FROM NEW.timezone)
  EXECUTE FUNCTION crm_track_users_render()""",
    *(_PG_PARTY_FUNCTION.format(table=table, column=column) for table, column in _PARTIES),
    *(_PG_PARTY_TRIGGER.format(table=table) for table, _ in _PARTIES),
]
_NEW_PG = (("users", "users_track_render"), *((table, f"{table}_track_render") for table, _ in _PARTIES))


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise RuntimeError(f"change tracking triggers are written for SQLite and PostgreSQL, not {dialect}")
    # Plain ALTER TABLE (no batch copy of the table, which would drop its triggers).
    op.add_column("activities", sa.Column("edited_pos", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("activities", sa.Column("client_body", sa.Text(), nullable=True))
    op.add_column("activities", sa.Column("client_body_pos", sa.Integer(), nullable=True))
    # edited_pos is not a tracked column: this fires no trigger.
    op.execute("UPDATE activities SET edited_pos = change_pos")
    op.drop_index("ix_calendar_changes_user_pos", "calendar_changes")
    op.create_index("ix_calendar_changes_user_pos", "calendar_changes", ["user_id", "pos"], unique=False)
    op.create_index("ix_participants_contact_id", "participants", ["contact_id"])
    op.create_index("ix_participants_lead_id", "participants", ["lead_id"])
    op.create_table(
        "renderer_state",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_renderer_state"),
    )
    if dialect == "sqlite":
        for name in _REPLACED_SQLITE:
            op.execute(f"DROP TRIGGER {name}")
    for statement in SQLITE if dialect == "sqlite" else POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    previous = importlib.import_module("crm_model.migrations.versions.0002_change_tracking_triggers")
    if op.get_bind().dialect.name == "sqlite":
        for name in _NEW_SQLITE:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        for table, name in _NEW_PG:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS crm_track_{table}_render()")
    # 0002's triggers and functions, as 0002 made them.
    previous.downgrade()
    previous.upgrade()
    op.drop_table("renderer_state")
    op.drop_index("ix_participants_lead_id", "participants")
    op.drop_index("ix_participants_contact_id", "participants")
    # ix_calendar_changes_user_pos stays non-unique: the log may now hold several
    # rows at one position, and dropping any of them would hide changes from
    # clients. 0002/0003 never relied on the uniqueness.
    for column in ("client_body_pos", "client_body", "edited_pos"):
        op.drop_column("activities", column)
