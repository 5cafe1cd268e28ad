"""change tracking triggers

Every write that alters what a calendar shows advances the owner's
``users.sync_pos`` and appends a ``calendar_changes`` row, inside the writing
transaction. Doing it in the database (not in Python) means programs that write
the CRM tables directly are tracked exactly like this server (SPEC 2).
``UPDATE users ... SET sync_pos = sync_pos + 1`` takes the user's row lock, so
positions of one calendar are handed out in commit order.

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The activity columns whose change alters what a calendar shows (frozen here:
# a later migration that adds a column replaces the triggers).
_COLUMNS = (
    "owner_id, type, title, starts_at, ends_at, all_day, tzid, floating, location, "
    "description, private, reminder_minutes, client_extras, uid, href"
)

# SQLite: AFTER triggers; "UPDATE OF <content columns>" so that setting
# change_pos from inside a trigger does not fire the trigger again.
_SQLITE_RECORD_NEW = """
  UPDATE users SET sync_pos = sync_pos + 1 WHERE id = NEW.owner_id;
  UPDATE activities SET change_pos = (SELECT sync_pos FROM users WHERE id = NEW.owner_id)
   WHERE id = NEW.id;
  INSERT INTO calendar_changes (user_id, pos, activity_id, href)
   SELECT id, sync_pos, NEW.id, NEW.href FROM users WHERE id = NEW.owner_id;
"""
_SQLITE_TOUCH_ACTIVITY = """
  UPDATE users SET sync_pos = sync_pos + 1
   WHERE id = (SELECT owner_id FROM activities WHERE id = {row}.activity_id);
  UPDATE activities SET change_pos = (SELECT sync_pos FROM users WHERE users.id = activities.owner_id)
   WHERE id = {row}.activity_id;
  INSERT INTO calendar_changes (user_id, pos, activity_id, href)
   SELECT u.id, u.sync_pos, a.id, a.href FROM activities a JOIN users u ON u.id = a.owner_id
   WHERE a.id = {row}.activity_id;
"""
SQLITE = [
    f"CREATE TRIGGER activities_track_insert AFTER INSERT ON activities BEGIN {_SQLITE_RECORD_NEW} END",
    f"""CREATE TRIGGER activities_track_update AFTER UPDATE OF {_COLUMNS} ON activities BEGIN
  UPDATE users SET sync_pos = sync_pos + 1 WHERE id = OLD.owner_id AND OLD.owner_id <> NEW.owner_id;
  INSERT INTO calendar_changes (user_id, pos, activity_id, href)
   SELECT id, sync_pos, OLD.id, OLD.href FROM users WHERE id = OLD.owner_id AND OLD.owner_id <> NEW.owner_id;
  {_SQLITE_RECORD_NEW} END""",
    """CREATE TRIGGER activities_track_delete AFTER DELETE ON activities BEGIN
  UPDATE users SET sync_pos = sync_pos + 1 WHERE id = OLD.owner_id;
  INSERT INTO calendar_changes (user_id, pos, activity_id, href)
   SELECT id, sync_pos, OLD.id, OLD.href FROM users WHERE id = OLD.owner_id;
 END""",
    f"CREATE TRIGGER participants_track_insert AFTER INSERT ON participants "
    f"BEGIN {_SQLITE_TOUCH_ACTIVITY.format(row='NEW')} END",
    f"CREATE TRIGGER participants_track_update AFTER UPDATE ON participants "
    f"BEGIN {_SQLITE_TOUCH_ACTIVITY.format(row='NEW')} END",
    f"CREATE TRIGGER participants_track_delete AFTER DELETE ON participants "
    f"BEGIN {_SQLITE_TOUCH_ACTIVITY.format(row='OLD')} END",
]

POSTGRESQL = [
    """CREATE FUNCTION crm_next_position(p_user integer) RETURNS integer AS $$
  UPDATE users SET sync_pos = sync_pos + 1 WHERE id = p_user RETURNING sync_pos
$$ LANGUAGE sql""",
    """CREATE FUNCTION crm_track_activity() RETURNS trigger AS $$
DECLARE p integer;
BEGIN
  IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.owner_id <> NEW.owner_id) THEN
    p := crm_next_position(OLD.owner_id);
    INSERT INTO calendar_changes (user_id, pos, activity_id, href) VALUES (OLD.owner_id, p, OLD.id, OLD.href);
  END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  p := crm_next_position(NEW.owner_id);
  NEW.change_pos := p;
  INSERT INTO calendar_changes (user_id, pos, activity_id, href) VALUES (NEW.owner_id, p, NEW.id, NEW.href);
  RETURN NEW;
END $$ LANGUAGE plpgsql""",
    """CREATE FUNCTION crm_track_participant() RETURNS trigger AS $$
DECLARE aid varchar; owner integer; p integer;
BEGIN
  IF TG_OP = 'DELETE' THEN aid := OLD.activity_id; ELSE aid := NEW.activity_id; END IF;
  SELECT owner_id INTO owner FROM activities WHERE id = aid;
  IF owner IS NULL THEN RETURN NULL; END IF;
  p := crm_next_position(owner);
  UPDATE activities SET change_pos = p WHERE id = aid;
  INSERT INTO calendar_changes (user_id, pos, activity_id, href)
    SELECT owner, p, id, href FROM activities WHERE id = aid;
  RETURN NULL;
END $$ LANGUAGE plpgsql""",
    f"""CREATE TRIGGER activities_track_write BEFORE INSERT OR UPDATE OF {_COLUMNS} ON activities
  FOR EACH ROW EXECUTE FUNCTION crm_track_activity()""",
    """CREATE TRIGGER activities_track_delete AFTER DELETE ON activities
  FOR EACH ROW EXECUTE FUNCTION crm_track_activity()""",
    """CREATE TRIGGER participants_track AFTER INSERT OR UPDATE OR DELETE ON participants
  FOR EACH ROW EXECUTE FUNCTION crm_track_participant()""",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise RuntimeError(f"change tracking triggers are written for SQLite and PostgreSQL, not {dialect}")
    for statement in SQLITE if dialect == "sqlite" else POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("activities_track_insert", "activities_track_update", "activities_track_delete",
                     "participants_track_insert", "participants_track_update", "participants_track_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        return
    op.execute("DROP TRIGGER IF EXISTS participants_track ON participants")
    op.execute("DROP TRIGGER IF EXISTS activities_track_delete ON activities")
    op.execute("DROP TRIGGER IF EXISTS activities_track_write ON activities")
    for name in ("crm_track_participant()", "crm_track_activity()", "crm_next_position(integer)"):
        op.execute(f"DROP FUNCTION IF EXISTS {name}")
