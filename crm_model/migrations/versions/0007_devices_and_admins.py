"""Per-device app passwords and admin accounts

``devices`` replaces ``app_passwords``: each row is one device's app password
(a libpass hash) with a label, its last use (time, User-Agent, address) and
its revocation time. Every existing app password becomes a device labelled
"first device" with the same hash and creation time, so every login that
worked before the upgrade works after it. ``admins`` holds the accounts of the
admin web page, apart from CalDAV users.

Downgrade copies the devices that are not revoked back into ``app_passwords``
(labels and last use are lost) and drops ``admins``.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

FIRST_DEVICE_LABEL = "first device"


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f(f"fk_{table}_user_id_users"),
                                   ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("last_user_agent", sa.String(300), nullable=True),
        sa.Column("last_address", sa.String(64), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        _user_fk("devices"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
    )
    op.create_index(op.f("ix_devices_user_id"), "devices", ["user_id"], unique=False)
    op.execute(sa.text(
        "INSERT INTO devices (user_id, label, password_hash, created_at) "
        "SELECT user_id, :label, password_hash, created_at FROM app_passwords ORDER BY id"
    ).bindparams(label=FIRST_DEVICE_LABEL))
    op.drop_index(op.f("ix_app_passwords_user_id"), table_name="app_passwords")
    op.drop_table("app_passwords")
    op.create_table(
        "admins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admins")),
        sa.UniqueConstraint("email", name=op.f("uq_admins_email")),
    )


def downgrade() -> None:
    op.drop_table("admins")
    op.create_table(
        "app_passwords",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        _user_fk("app_passwords"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_passwords")),
    )
    op.create_index(op.f("ix_app_passwords_user_id"), "app_passwords", ["user_id"], unique=False)
    op.execute(sa.text(
        "INSERT INTO app_passwords (user_id, password_hash, created_at) "
        "SELECT user_id, password_hash, created_at FROM devices WHERE revoked_at IS NULL ORDER BY id"
    ))
    op.drop_index(op.f("ix_devices_user_id"), table_name="devices")
    op.drop_table("devices")
