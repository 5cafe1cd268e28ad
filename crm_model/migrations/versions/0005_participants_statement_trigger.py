"""PostgreSQL: participant changes tracked once per statement, not once per row

The row trigger of 0002/0004 updated the activity's row and its owner's
``users`` row once per participant written. Within one transaction each such
UPDATE leaves a new version of the same row, and every later UPDATE of it
follows the chain of versions first, so a PUT with n attendees cost O(n^2):
2,000 / 4,000 attendees took 6.9 s / 13 s of database time (in-process), and
a client's 10,000 took minutes.

The statement triggers here (with transition tables, PostgreSQL 10+) give
each owner touched by one statement one new position, move the activities the
statement touched to it (``change_pos`` and ``edited_pos``) and append one
``calendar_changes`` row per activity: what the row trigger recorded, with one
position per statement instead of one per row (positions only order changes;
0004 made the log's (user_id, pos) index non-unique for this). Owners are
taken in id order, as the party triggers of 0004 do.

SQLite keeps its row triggers: there a repeated UPDATE of one row costs the
same every time.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_FUNCTION = """CREATE FUNCTION crm_track_participants_{event}() RETURNS trigger AS $$
DECLARE owner integer; p integer;
BEGIN
  FOR owner IN SELECT DISTINCT a.owner_id FROM activities a WHERE a.id IN ({touched})
               ORDER BY a.owner_id LOOP
    p := crm_next_position(owner);
    WITH touched AS (
      UPDATE activities SET change_pos = p, edited_pos = p WHERE owner_id = owner AND id IN ({touched})
      RETURNING id, href)
    INSERT INTO calendar_changes (user_id, pos, activity_id, href) SELECT owner, p, id, href FROM touched;
  END LOOP;
  RETURN NULL;
END $$ LANGUAGE plpgsql"""
# event -> (transition tables, the activity ids the statement touched). An UPDATE
# may move a participant to another activity: both its old and new activity count.
_EVENTS = {
    "insert": ("NEW TABLE AS new_rows", "SELECT activity_id FROM new_rows"),
    "delete": ("OLD TABLE AS old_rows", "SELECT activity_id FROM old_rows"),
    "update": ("OLD TABLE AS old_rows NEW TABLE AS new_rows",
               "SELECT activity_id FROM old_rows UNION SELECT activity_id FROM new_rows"),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS participants_track ON participants")
    for event, (tables, touched) in _EVENTS.items():
        op.execute(_FUNCTION.format(event=event, touched=touched))
        op.execute(f"CREATE TRIGGER participants_track_{event} AFTER {event.upper()} ON participants "
                   f"REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION crm_track_participants_{event}()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for event in _EVENTS:
        op.execute(f"DROP TRIGGER IF EXISTS participants_track_{event} ON participants")
        op.execute(f"DROP FUNCTION IF EXISTS crm_track_participants_{event}()")
    # 0004's row function still exists; 0002 made the trigger.
    op.execute("""CREATE TRIGGER participants_track AFTER INSERT OR UPDATE OR DELETE ON participants
  FOR EACH ROW EXECUTE FUNCTION crm_track_participant()""")
