"""Admin sessions and one-time profile downloads in the database

``admin_sessions`` holds the admin page's login sessions (the SHA-256 of the
cookie's token, never the token; the admin, the CSRF token, when it started
and was last seen) and ``profile_downloads`` the one-time profile links (a
hash of the link's token, the user, the device label, the device password
encrypted with a key derived from the token, when it expires), so that every
server process, and every host on one database, knows them. Downgrade drops
both tables: admins log in again and links not yet used stop working.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("admin_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["admin_id"], ["admins.id"], name=op.f("fk_admin_sessions_admin_id_admins"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_admin_sessions")),
    )
    op.create_index(op.f("ix_admin_sessions_admin_id"), "admin_sessions", ["admin_id"], unique=False)
    op.create_table(
        "profile_downloads",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("encrypted_password", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_profile_downloads_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_profile_downloads")),
    )
    op.create_index(op.f("ix_profile_downloads_user_id"), "profile_downloads", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_profile_downloads_user_id"), table_name="profile_downloads")
    op.drop_table("profile_downloads")
    op.drop_index(op.f("ix_admin_sessions_admin_id"), table_name="admin_sessions")
    op.drop_table("admin_sessions")
