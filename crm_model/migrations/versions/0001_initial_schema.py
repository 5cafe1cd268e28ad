"""initial schema

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('contacts',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contacts'))
    )
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contacts_email'), ['email'], unique=False)

    op.create_table('leads',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leads'))
    )
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_leads_email'), ['email'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('caldav_enabled', sa.Boolean(), nullable=False),
    sa.Column('caldav_enabled_at', sa.DateTime(), nullable=True),
    sa.Column('sync_type', sa.String(length=16), nullable=False),
    sa.Column('synced_types', sa.String(length=200), nullable=False),
    sa.Column('sync_pos', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('window_pos', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('window_start', sa.DateTime(), nullable=True),
    sa.Column('window_end', sa.DateTime(), nullable=True),
    sa.Column('credentials_version', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('calendar_props', sa.Text(), nullable=True),
    sa.Column('last_sync_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('activities',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('starts_at', sa.DateTime(), nullable=False),
    sa.Column('ends_at', sa.DateTime(), nullable=False),
    sa.Column('all_day', sa.Boolean(), nullable=False),
    sa.Column('tzid', sa.String(length=64), nullable=True),
    sa.Column('floating', sa.Boolean(), nullable=False),
    sa.Column('location', sa.Text(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('private', sa.Boolean(), nullable=False),
    sa.Column('reminder_minutes', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('uid', sa.String(length=255), nullable=False),
    sa.Column('href', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('client_extras', sa.Text(), nullable=True),
    sa.Column('change_pos', sa.Integer(), nullable=False, server_default='0'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_activities_owner_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activities')),
    sa.UniqueConstraint('href', name=op.f('uq_activities_href')),
    sa.UniqueConstraint('uid', name=op.f('uq_activities_uid'))
    )
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.create_index('ix_activities_owner_change', ['owner_id', 'change_pos'], unique=False)
        batch_op.create_index('ix_activities_owner_start', ['owner_id', 'starts_at'], unique=False)

    op.create_table('app_passwords',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_app_passwords_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_passwords'))
    )
    with op.batch_alter_table('app_passwords', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_app_passwords_user_id'), ['user_id'], unique=False)

    op.create_table('calendar_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('pos', sa.Integer(), nullable=False),
    sa.Column('activity_id', sa.String(length=64), nullable=False),
    sa.Column('href', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'],
        name=op.f('fk_calendar_changes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calendar_changes'))
    )
    with op.batch_alter_table('calendar_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calendar_changes_activity_id'), ['activity_id'], unique=False)
        batch_op.create_index('ix_calendar_changes_user_pos', ['user_id', 'pos'], unique=True)

    op.create_table('initial_window',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('activity_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'],
        name=op.f('fk_initial_window_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'activity_id', name=op.f('pk_initial_window'))
    )
    op.create_table('participants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('activity_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.String(length=64), nullable=True),
    sa.Column('lead_id', sa.String(length=64), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['activity_id'], ['activities.id'],
        name=op.f('fk_participants_activity_id_activities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'],
        name=op.f('fk_participants_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_participants_lead_id_leads'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_participants'))
    )
    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_participants_activity_id'), ['activity_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_participants_activity_id'))

    op.drop_table('participants')
    op.drop_table('initial_window')
    with op.batch_alter_table('calendar_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_calendar_changes_user_pos')
        batch_op.drop_index(batch_op.f('ix_calendar_changes_activity_id'))

    op.drop_table('calendar_changes')
    with op.batch_alter_table('app_passwords', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_app_passwords_user_id'))

    op.drop_table('app_passwords')
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_index('ix_activities_owner_start')
        batch_op.drop_index('ix_activities_owner_change')

    op.drop_table('activities')
    op.drop_table('users')
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_leads_email'))

    op.drop_table('leads')
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contacts_email'))

    op.drop_table('contacts')
