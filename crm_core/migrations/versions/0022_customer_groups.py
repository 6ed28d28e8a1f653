"""WeCom customer groups (客户群) and their members, customers linked to their contacts; group QR codes

Revision ID: 0022
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crm_core.db

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_at = crm_core.db.UTCDateTime(timezone=True)
_json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('customer_group',
    sa.Column('id', _id, nullable=False),
    sa.Column('channel_account_id', _id, nullable=False),
    sa.Column('chat_id', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('owner_userid', sa.String(length=200), nullable=False),
    sa.Column('notice', sa.String(length=2000), nullable=True),
    sa.Column('created_at', _at, nullable=True),
    sa.Column('dismissed_at', _at, nullable=True),
    sa.Column('synced_at', _at, nullable=False),
    sa.ForeignKeyConstraint(['channel_account_id'], ['channel_account.id'],
                            name=op.f('fk_customer_group_channel_account_id_channel_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_group')),
    sa.UniqueConstraint('channel_account_id', 'chat_id', name=op.f('uq_customer_group_channel_account_id_chat_id'))
    )
    op.create_table('customer_group_member',
    sa.Column('id', _id, nullable=False),
    sa.Column('group_id', _id, nullable=False),
    sa.Column('userid', sa.String(length=200), nullable=False),
    sa.Column('is_customer', sa.Boolean(), nullable=False),
    sa.Column('contact_id', _id, nullable=True),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('joined_at', _at, nullable=True),
    sa.Column('join_scene', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=30), nullable=True),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_customer_group_member_contact_id_contact')),
    sa.ForeignKeyConstraint(['group_id'], ['customer_group.id'],
                            name=op.f('fk_customer_group_member_group_id_customer_group')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_group_member')),
    sa.UniqueConstraint('group_id', 'userid', name=op.f('uq_customer_group_member_group_id_userid'))
    )
    op.create_index(op.f('ix_customer_group_member_contact_id'), 'customer_group_member', ['contact_id'],
                    unique=False)
    op.create_index(op.f('ix_customer_group_member_group_id'), 'customer_group_member', ['group_id'], unique=False)
    op.create_table('group_join_way',
    sa.Column('id', _id, nullable=False),
    sa.Column('channel_account_id', _id, nullable=False),
    sa.Column('name', sa.String(length=30), nullable=False),
    sa.Column('state', sa.String(length=30), nullable=False),
    sa.Column('chat_ids', _json, nullable=False),
    sa.Column('auto_create_room', sa.Boolean(), nullable=False),
    sa.Column('room_base_name', sa.String(length=40), nullable=True),
    sa.Column('config_id', sa.String(length=100), nullable=True),
    sa.Column('qr_code', sa.String(length=500), nullable=True),
    sa.Column('welcome', sa.String(length=1000), nullable=True),
    sa.Column('welcome_template_id', sa.String(length=100), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', _at, nullable=False),
    sa.ForeignKeyConstraint(['channel_account_id'], ['channel_account.id'],
                            name=op.f('fk_group_join_way_channel_account_id_channel_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_group_join_way')),
    sa.UniqueConstraint('channel_account_id', 'state', name=op.f('uq_group_join_way_channel_account_id_state'))
    )


def downgrade() -> None:
    op.drop_table('group_join_way')
    op.drop_index(op.f('ix_customer_group_member_group_id'), table_name='customer_group_member')
    op.drop_index(op.f('ix_customer_group_member_contact_id'), table_name='customer_group_member')
    op.drop_table('customer_group_member')
    op.drop_table('customer_group')
