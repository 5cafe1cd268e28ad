"""Subscription feeds

``feeds`` holds each user's subscription feeds (a secret iCalendar URL for
apps that cannot send a password): a label, the SHA-256 of the URL's token
(unique; the token itself is never stored), when it was made, last used and
revoked. Downgrade drops the table (every feed URL stops working).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feeds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_feeds_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feeds")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_feeds_token_hash")),
    )
    op.create_index(op.f("ix_feeds_user_id"), "feeds", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_feeds_user_id"), table_name="feeds")
    op.drop_table("feeds")
