"""PostgreSQL: activity writes tracked once per statement, not once per row

The row triggers of 0002/0004 took a new position for every activity row
written: ``UPDATE users SET sync_pos = sync_pos + 1`` on the owner's row, once
per row. Within one transaction each such UPDATE leaves a new version of the
same ``users`` row, and each later one follows the chain of versions first (the
cost 0005 removed for participants): importing 50,000 activities for one owner
updated that row about 90,000 times and took about 3 minutes.

The statement triggers here (transition tables, PostgreSQL 10+), like 0005's
for participants, give each owner touched by one statement one new position
(owners in id order, so concurrent writers lock users rows in one order), set
``change_pos`` and ``edited_pos`` of the activities the statement wrote to it
and append one ``calendar_changes`` row per activity, as the row triggers did:

- INSERT: every new row, under its owner (a row inserted with ``change_pos``
  and ``edited_pos`` already at that position, as the import predicts it, is
  not written again).
- UPDATE: a row whose tracked columns (``TRACKED_COLUMNS``, frozen below)
  differ from before, under its (new) owner; and, when the owner changed, a
  row under the old owner with the old href (what left that calendar).
  PostgreSQL allows no column list on a trigger with transition tables, so the
  trigger compares the old and new values instead of "UPDATE OF": setting a
  column to the value it had records nothing, and the triggers' own updates of
  ``change_pos`` / ``edited_pos`` record nothing.
- DELETE: a tombstone per row under its owner.

Positions only order changes (0004 made the log's (user_id, pos) index
non-unique): one statement's rows share a position. The owner's row lock is
taken by the position's UPDATE and held to commit, so positions of one
calendar are still handed out in commit order (SPEC 2).

SQLite keeps its row triggers: there a repeated UPDATE of one row costs the
same every time (50,000 activities import in seconds).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# The activity columns of its own CRM data (frozen here, as in 0002/0004; see
# crm_model.models.activities.TRACKED_COLUMNS).
_COLUMNS = ("owner_id", "type", "title", "starts_at", "ends_at", "all_day", "tzid", "floating", "location",
            "description", "private", "reminder_minutes", "client_extras", "uid", "href")


def _row(alias: str) -> str:
    return "(" + ", ".join(f"{alias}.{column}" for column in _COLUMNS) + ")"


# Ids of an UPDATE statement's rows: the old rows that left their owner's calendar
# (owner changed, or id changed), and the new rows whose content changed (or whose id is new).
_LEFT = ("SELECT array_agg(o.id) FROM old_rows o LEFT JOIN new_rows n ON n.id = o.id "
         "WHERE n.id IS NULL OR n.owner_id <> o.owner_id")
_EDITED = ("SELECT array_agg(n.id) FROM new_rows n LEFT JOIN old_rows o ON o.id = n.id "
           f"WHERE o.id IS NULL OR {_row('o')} IS DISTINCT FROM {_row('n')}")

_FUNCTIONS = {
    # New rows already at p (a writer that read the owner's next position under
    # its row lock, as the import does) are not written a second time.
    "insert": """CREATE FUNCTION crm_track_activities_insert() RETURNS trigger AS $$
DECLARE owner integer; p integer;
BEGIN
  FOR owner IN SELECT DISTINCT owner_id FROM new_rows ORDER BY owner_id LOOP
    p := crm_next_position(owner);
    UPDATE activities a SET change_pos = p, edited_pos = p FROM new_rows n
     WHERE n.owner_id = owner AND a.id = n.id AND (n.change_pos <> p OR n.edited_pos <> p);
    INSERT INTO calendar_changes (user_id, pos, activity_id, href)
      SELECT owner, p, id, href FROM new_rows WHERE owner_id = owner;
  END LOOP;
  RETURN NULL;
END $$ LANGUAGE plpgsql""",
    # EXECUTE: planned for each statement with its real row counts. A plan cached
    # by PL/pgSQL for the first, small statement joined later statements of
    # thousands of rows by nested loops (seconds per statement). The triggers'
    # own updates of change_pos / edited_pos find no ids and return at once.
    "update": f"""CREATE FUNCTION crm_track_activities_update() RETURNS trigger AS $$
DECLARE owner integer; p integer; left_ids varchar[]; edited_ids varchar[];
BEGIN
  EXECUTE '{_LEFT}' INTO left_ids;
  EXECUTE '{_EDITED}' INTO edited_ids;
  IF left_ids IS NULL AND edited_ids IS NULL THEN RETURN NULL; END IF;
  FOR owner IN EXECUTE 'SELECT owner_id FROM old_rows WHERE id = ANY($1)
                        UNION SELECT owner_id FROM new_rows WHERE id = ANY($2) ORDER BY 1'
               USING left_ids, edited_ids LOOP
    p := crm_next_position(owner);
    EXECUTE 'INSERT INTO calendar_changes (user_id, pos, activity_id, href)
               SELECT $1, $2, id, href FROM old_rows WHERE owner_id = $1 AND id = ANY($3)'
      USING owner, p, left_ids;
    EXECUTE 'WITH touched AS (
               UPDATE activities SET change_pos = $2, edited_pos = $2 WHERE owner_id = $1 AND id = ANY($3)
               RETURNING id, href)
             INSERT INTO calendar_changes (user_id, pos, activity_id, href) SELECT $1, $2, id, href FROM touched'
      USING owner, p, edited_ids;
  END LOOP;
  RETURN NULL;
END $$ LANGUAGE plpgsql""",
    "delete": """CREATE FUNCTION crm_track_activities_delete() RETURNS trigger AS $$
DECLARE owner integer; p integer;
BEGIN
  FOR owner IN SELECT DISTINCT owner_id FROM old_rows ORDER BY owner_id LOOP
    p := crm_next_position(owner);
    INSERT INTO calendar_changes (user_id, pos, activity_id, href)
      SELECT owner, p, id, href FROM old_rows WHERE owner_id = owner;
  END LOOP;
  RETURN NULL;
END $$ LANGUAGE plpgsql""",
}
_TABLES = {"insert": "NEW TABLE AS new_rows", "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
           "delete": "OLD TABLE AS old_rows"}
# The row triggers of 0002 (their functions, changed by 0004, stay for the downgrade).
_ROW_TRIGGERS = {
    "activities_track_write": "BEFORE INSERT OR UPDATE OF " + ", ".join(_COLUMNS),
    "activities_track_delete": "AFTER DELETE",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in _ROW_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON activities")
    for event, function in _FUNCTIONS.items():
        op.execute(function)
        op.execute(f"CREATE TRIGGER activities_track_{event} AFTER {event.upper()} ON activities "
                   f"REFERENCING {_TABLES[event]} FOR EACH STATEMENT EXECUTE FUNCTION crm_track_activities_{event}()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for event in _FUNCTIONS:
        op.execute(f"DROP TRIGGER IF EXISTS activities_track_{event} ON activities")
        op.execute(f"DROP FUNCTION IF EXISTS crm_track_activities_{event}()")
    for name, when in _ROW_TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {when} ON activities FOR EACH ROW EXECUTE FUNCTION crm_track_activity()")
