"""activity renderings: a serialisation cache keyed by change position

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


def downgrade() -> None:
    op.drop_table("activity_renderings")
