"""WeCom customer transfers (在职 / 离职继承): each customer asked to move to another rep, and how it ended

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

import crm_core.db

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_at = crm_core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('customer_transfer',
    sa.Column('id', _id, nullable=False),
    sa.Column('channel_account_id', _id, nullable=False),
    sa.Column('contact_id', _id, nullable=True),
    sa.Column('external_userid', sa.String(length=200), nullable=False),
    sa.Column('handover_userid', sa.String(length=200), nullable=False),
    sa.Column('takeover_userid', sa.String(length=200), nullable=False),
    sa.Column('resigned', sa.Boolean(), nullable=False),
    sa.Column('is_group', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=True),
    sa.Column('errcode', sa.Integer(), nullable=True),
    sa.Column('created_at', _at, nullable=False),
    sa.Column('updated_at', _at, nullable=False),
    sa.ForeignKeyConstraint(['channel_account_id'], ['channel_account.id'],
                            name=op.f('fk_customer_transfer_channel_account_id_channel_account')),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_customer_transfer_contact_id_contact')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_transfer'))
    )
    op.create_index(op.f('ix_customer_transfer_contact_id'), 'customer_transfer', ['contact_id'], unique=False)
    op.create_index('ix_customer_transfer_status', 'customer_transfer', ['status', 'channel_account_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_customer_transfer_status', table_name='customer_transfer')
    op.drop_index(op.f('ix_customer_transfer_contact_id'), table_name='customer_transfer')
    op.drop_table('customer_transfer')
