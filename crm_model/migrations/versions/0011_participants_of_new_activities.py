"""PostgreSQL: participants written in the transaction that already moved their activity move it no further

0005's statement triggers give every activity whose participants a statement
writes a new position: they rewrite its row (``change_pos``, ``edited_pos``)
and append a change log row. When the same transaction has just inserted or
edited that activity (the import writes activities, then their participants),
the activity already stands at a position taken in this transaction, with a
change log row there: no client has seen any other state of it, and the commit
shows the activity and its participants at once. The second move only cost a
rewrite of every new row through its indexes (about 190 ms per 5,000
activities of an import).

So an activity is moved only when it does not already stand, with both
positions equal, at a change log row written by this transaction (the row's
``xmin`` is this transaction's id; a write in a subtransaction has another id
and is simply moved again, as before). An activity whose own write in this
transaction recorded nothing (an untracked column) or that only entered the
calendar (``change_pos`` past ``edited_pos``) is moved as before, so its ETag
changes with its participants.

SQLite keeps its row triggers (nothing changes there).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_FUNCTION = """CREATE OR REPLACE FUNCTION crm_track_participants_{event}() RETURNS trigger AS $$
DECLARE owner integer; p integer;
BEGIN
  FOR owner IN SELECT DISTINCT a.owner_id FROM activities a WHERE a.id IN ({touched})
               ORDER BY a.owner_id LOOP
    p := crm_next_position(owner);
    WITH touched AS (
      UPDATE activities a SET change_pos = p, edited_pos = p
       WHERE a.owner_id = owner AND a.id IN ({touched}){unmoved}
      RETURNING a.id, a.href)
    INSERT INTO calendar_changes (user_id, pos, activity_id, href) SELECT owner, p, id, href FROM touched;
  END LOOP;
  RETURN NULL;
END $$ LANGUAGE plpgsql"""
# The activity does not already stand at a change log row of this transaction.
_UNMOVED = """
         AND NOT (a.edited_pos = a.change_pos AND EXISTS (
               SELECT 1 FROM calendar_changes c
                WHERE c.user_id = owner AND c.pos = a.change_pos AND c.activity_id = a.id
                  AND c.xmin = pg_current_xact_id()::xid))"""
# As in 0005: event -> the activity ids the statement touched.
_TOUCHED = {
    "insert": "SELECT activity_id FROM new_rows",
    "delete": "SELECT activity_id FROM old_rows",
    "update": "SELECT activity_id FROM old_rows UNION SELECT activity_id FROM new_rows",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for event, touched in _TOUCHED.items():
        op.execute(_FUNCTION.format(event=event, touched=touched, unmoved=_UNMOVED))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for event, touched in _TOUCHED.items():  # 0005's functions: every touched activity moves
        op.execute(_FUNCTION.format(event=event, touched=touched, unmoved=""))
