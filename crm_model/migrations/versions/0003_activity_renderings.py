"""activity renderings: a serialisation cache keyed by change position;
case-insensitive e-mail indexes for attendee matching

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "activity_renderings",
        sa.Column("activity_id", sa.String(64), nullable=False),
        sa.Column("change_pos", sa.Integer(), nullable=False),
        sa.Column("variant", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"], ["activities.id"], ondelete="CASCADE",
            name="fk_activity_renderings_activity_id_activities",
        ),
        sa.PrimaryKeyConstraint("activity_id", name="pk_activity_renderings"),
    )
    # Attendee matching compares lower(email) (other programs may write any case):
    # without these a PUT with attendees reads every contact and lead.
    op.create_index("ix_contacts_email_lower", "contacts", [sa.text("lower(email)")])
    op.create_index("ix_leads_email_lower", "leads", [sa.text("lower(email)")])


def downgrade() -> None:
    op.drop_index("ix_leads_email_lower", "leads")
    op.drop_index("ix_contacts_email_lower", "contacts")
    op.drop_table("activity_renderings")
