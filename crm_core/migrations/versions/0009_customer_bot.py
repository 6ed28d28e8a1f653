"""customer bot: FAQ, bot sessions, CSAT, conversation handoff

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crm_core.db

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bot_session',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=True),
    sa.Column('form', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('misses', sa.Integer(), nullable=False),
    sa.Column('updated_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_bot_session_contact_id_contact')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bot_session')),
    sa.UniqueConstraint('contact_id', name=op.f('uq_bot_session_contact_id'))
    )
    op.create_table('faq_entry',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('channel_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('questions', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('answers', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('synonyms', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_account_id'], ['channel_account.id'], name=op.f('fk_faq_entry_channel_account_id_channel_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_faq_entry'))
    )
    with op.batch_alter_table('faq_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_faq_entry_channel_account_id'), ['channel_account_id'], unique=False)

    op.create_table('csat_survey',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('conversation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rep_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('asked_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('answered_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('answer_message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_csat_survey_contact_id_contact')),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], name=op.f('fk_csat_survey_conversation_id_conversation')),
    sa.ForeignKeyConstraint(['rep_user_id'], ['user_account.id'], name=op.f('fk_csat_survey_rep_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_csat_survey'))
    )
    with op.batch_alter_table('csat_survey', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_csat_survey_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_csat_survey_conversation_id'), ['conversation_id'], unique=False)

    with op.batch_alter_table('lead', schema=None) as batch_op:
        batch_op.add_column(sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
                                      nullable=False, server_default='{}'))

    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('handoff_at', crm_core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('handoff_reason', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', crm_core.db.UTCDateTime(timezone=True), nullable=True))
    # Conversations a rep owns already: a person has them, the bot stays out.
    op.execute("UPDATE conversation SET handoff_at = last_message_at, handoff_reason = 'assigned' "
               "WHERE assignee_user_id IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('lead', schema=None) as batch_op:
        batch_op.drop_column('details')

    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_column('resolved_at')
        batch_op.drop_column('handoff_reason')
        batch_op.drop_column('handoff_at')

    with op.batch_alter_table('csat_survey', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_csat_survey_conversation_id'))
        batch_op.drop_index(batch_op.f('ix_csat_survey_contact_id'))

    op.drop_table('csat_survey')
    with op.batch_alter_table('faq_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_faq_entry_channel_account_id'))

    op.drop_table('faq_entry')
    op.drop_table('bot_session')
