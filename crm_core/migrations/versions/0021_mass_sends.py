"""one-off WeCom mass sends (群发): one task per rep, and what WeCom says of each customer

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crm_core.db

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
_at = crm_core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('mass_send',
    sa.Column('id', _id, nullable=False),
    sa.Column('channel_account_id', _id, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('text', sa.String(length=4000), nullable=False),
    sa.Column('chat_type', sa.String(length=16), nullable=False),
    sa.Column('audience', _json, nullable=False),
    sa.Column('skipped', _json, nullable=False),
    sa.Column('created_by_user_id', _id, nullable=True),
    sa.Column('created_at', _at, nullable=False),
    sa.ForeignKeyConstraint(['channel_account_id'], ['channel_account.id'],
                            name=op.f('fk_mass_send_channel_account_id_channel_account')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['user_account.id'],
                            name=op.f('fk_mass_send_created_by_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mass_send'))
    )
    op.create_table('mass_send_task',
    sa.Column('id', _id, nullable=False),
    sa.Column('mass_send_id', _id, nullable=False),
    sa.Column('user_id', _id, nullable=True),
    sa.Column('sender_userid', sa.String(length=200), nullable=False),
    sa.Column('msgid', sa.String(length=200), nullable=True),
    sa.Column('targets', _json, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=True),
    sa.Column('checked_at', _at, nullable=True),
    sa.ForeignKeyConstraint(['mass_send_id'], ['mass_send.id'], name=op.f('fk_mass_send_task_mass_send_id_mass_send')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_mass_send_task_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mass_send_task'))
    )
    op.create_index(op.f('ix_mass_send_task_mass_send_id'), 'mass_send_task', ['mass_send_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_mass_send_task_mass_send_id'), table_name='mass_send_task')
    op.drop_table('mass_send_task')
    op.drop_table('mass_send')
