"""contact keys (WeChat unionid...) linking identities across channels, profile lookups, merged contacts, first-response SLA marks, thread aliases, the consent ledger, message sentiment, intents and entities, opinion alerts

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crm_core.db

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('contact') as batch:
        batch.add_column(sa.Column('merged_into_id', _id, nullable=True))
        batch.create_foreign_key(op.f('fk_contact_merged_into_id_contact'), 'contact', ['merged_into_id'], ['id'])
    with op.batch_alter_table('identity') as batch:
        batch.add_column(sa.Column('profile_checked_at', crm_core.db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('message') as batch:
        batch.add_column(sa.Column('sentiment', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('sentiment_score', sa.Float(), nullable=True))
        batch.add_column(sa.Column('sentiment_confidence', sa.Float(), nullable=True))
        batch.add_column(sa.Column('intents', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()),
                                                                     'postgresql'), nullable=True))
        batch.add_column(sa.Column('entities', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()),
                                                                      'postgresql'), nullable=True))
    with op.batch_alter_table('conversation') as batch:
        batch.add_column(sa.Column('sla_reminded_message_id', _id, nullable=True))
        batch.add_column(sa.Column('sla_escalated_message_id', _id, nullable=True))
    op.create_table('contact_key',
    sa.Column('id', _id, nullable=False),
    sa.Column('contact_id', _id, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('identity_id', _id, nullable=True),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_contact_key_contact_id_contact')),
    sa.ForeignKeyConstraint(['identity_id'], ['identity.id'], name=op.f('fk_contact_key_identity_id_identity')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_key')),
    sa.UniqueConstraint('kind', 'value', name=op.f('uq_contact_key_kind_value'))
    )
    op.create_index(op.f('ix_contact_key_contact_id'), 'contact_key', ['contact_id'], unique=False)
    op.create_table('thread_alias',
    sa.Column('id', _id, nullable=False),
    sa.Column('channel_account_id', _id, nullable=False),
    sa.Column('alias', sa.String(length=200), nullable=False),
    sa.Column('conversation_id', _id, nullable=False),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_account_id'], ['channel_account.id'],
                            name=op.f('fk_thread_alias_channel_account_id_channel_account')),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'],
                            name=op.f('fk_thread_alias_conversation_id_conversation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_thread_alias')),
    sa.UniqueConstraint('channel_account_id', 'alias', name=op.f('uq_thread_alias_channel_account_id_alias'))
    )
    op.create_index(op.f('ix_thread_alias_conversation_id'), 'thread_alias', ['conversation_id'], unique=False)
    op.create_table('consent_event',
    sa.Column('id', _id, nullable=False),
    sa.Column('contact_id', _id, nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=True),
    sa.Column('granted', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('evidence', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
              nullable=False),
    sa.Column('actor_label', sa.String(length=200), nullable=False),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_consent_event_contact_id_contact')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_event'))
    )
    op.create_index('ix_consent_event_contact', 'consent_event', ['contact_id', 'purpose', 'id'], unique=False)
    _json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
    op.create_table('opinion_alert',
    sa.Column('id', _id, nullable=False),
    sa.Column('dimension', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('first_hour', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_hour', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('peak_share', sa.Float(), nullable=False),
    sa.Column('baseline', sa.Float(), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('volume', sa.Integer(), nullable=False),
    sa.Column('top_terms', _json, nullable=False),
    sa.Column('message_ids', _json, nullable=False),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_opinion_alert'))
    )
    op.create_index('ix_opinion_alert_open', 'opinion_alert', ['dimension', 'key', 'status'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_opinion_alert_open', table_name='opinion_alert')
    op.drop_table('opinion_alert')
    op.drop_index('ix_consent_event_contact', table_name='consent_event')
    op.drop_table('consent_event')
    op.drop_index(op.f('ix_thread_alias_conversation_id'), table_name='thread_alias')
    op.drop_table('thread_alias')
    op.drop_index(op.f('ix_contact_key_contact_id'), table_name='contact_key')
    op.drop_table('contact_key')
    with op.batch_alter_table('message') as batch:
        batch.drop_column('entities')
        batch.drop_column('intents')
        batch.drop_column('sentiment_confidence')
        batch.drop_column('sentiment_score')
        batch.drop_column('sentiment')
    with op.batch_alter_table('conversation') as batch:
        batch.drop_column('sla_escalated_message_id')
        batch.drop_column('sla_reminded_message_id')
    with op.batch_alter_table('identity') as batch:
        batch.drop_column('profile_checked_at')
    with op.batch_alter_table('contact') as batch:
        batch.drop_constraint(op.f('fk_contact_merged_into_id_contact'), type_='foreignkey')
        batch.drop_column('merged_into_id')
