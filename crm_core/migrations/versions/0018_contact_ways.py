"""WeCom contact ways (渠道活码): the code, its rota, tags, campaign and welcome; adds and losses through it

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crm_core.db

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
_at = crm_core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('contact_way',
    sa.Column('id', _id, nullable=False),
    sa.Column('channel_account_id', _id, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=30), nullable=False),
    sa.Column('config_id', sa.String(length=100), nullable=True),
    sa.Column('qr_code', sa.String(length=500), nullable=True),
    sa.Column('rota', _json, nullable=False),
    sa.Column('on_code', _json, nullable=False),
    sa.Column('tags', _json, nullable=False),
    sa.Column('campaign_id', _id, nullable=True),
    sa.Column('welcome', _json, nullable=False),
    sa.Column('skip_verify', sa.Boolean(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', _at, nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_contact_way_campaign_id_campaign')),
    sa.ForeignKeyConstraint(['channel_account_id'], ['channel_account.id'],
                            name=op.f('fk_contact_way_channel_account_id_channel_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_way')),
    sa.UniqueConstraint('channel_account_id', 'state', name=op.f('uq_contact_way_channel_account_id_state'))
    )
    op.create_index(op.f('ix_contact_way_channel_account_id'), 'contact_way', ['channel_account_id'], unique=False)
    op.create_table('contact_way_event',
    sa.Column('id', _id, nullable=False),
    sa.Column('contact_way_id', _id, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('contact_id', _id, nullable=False),
    sa.Column('user_id', _id, nullable=True),
    sa.Column('at', _at, nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_contact_way_event_contact_id_contact')),
    sa.ForeignKeyConstraint(['contact_way_id'], ['contact_way.id'],
                            name=op.f('fk_contact_way_event_contact_way_id_contact_way')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_contact_way_event_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_way_event'))
    )
    op.create_index(op.f('ix_contact_way_event_contact_id'), 'contact_way_event', ['contact_id'], unique=False)
    op.create_index('ix_contact_way_event_way_at', 'contact_way_event', ['contact_way_id', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_contact_way_event_way_at', table_name='contact_way_event')
    op.drop_index(op.f('ix_contact_way_event_contact_id'), table_name='contact_way_event')
    op.drop_table('contact_way_event')
    op.drop_index(op.f('ix_contact_way_channel_account_id'), table_name='contact_way')
    op.drop_table('contact_way')
