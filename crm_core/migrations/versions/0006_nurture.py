"""nurture campaigns: tags, campaigns, steps, enrolments; outbox rows know their step and are indexed by person

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crm_core.db

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaign',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.Enum('draft', 'active', 'paused', 'ended', name='campaignstatus', native_enum=False, length=32), nullable=False),
    sa.Column('audience', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('exits', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_by_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['user_account.id'], name=op.f('fk_campaign_created_by_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign')),
    sa.UniqueConstraint('name', name=op.f('uq_campaign_name'))
    )
    op.create_table('contact_tag',
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tag', sa.String(length=64), nullable=False),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_contact_tag_contact_id_contact')),
    sa.PrimaryKeyConstraint('contact_id', 'tag', name=op.f('pk_contact_tag'))
    )
    with op.batch_alter_table('contact_tag', schema=None) as batch_op:
        batch_op.create_index('ix_contact_tag_tag', ['tag'], unique=False)

    op.create_table('campaign_step',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=True),
    sa.Column('template', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('delay_minutes', sa.Integer(), nullable=False),
    sa.Column('delay_from', sa.String(length=16), nullable=False),
    sa.Column('send_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('window_start', sa.String(length=5), nullable=True),
    sa.Column('window_end', sa.String(length=5), nullable=True),
    sa.Column('condition', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('else_position', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_campaign_step_campaign_id_campaign')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_step')),
    sa.UniqueConstraint('campaign_id', 'position', name=op.f('uq_campaign_step_campaign_id_position'))
    )
    with op.batch_alter_table('campaign_step', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_step_campaign_id'), ['campaign_id'], unique=False)

    op.create_table('enrolment',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rotation', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('active', 'completed', 'exited', name='enrolmentstatus', native_enum=False, length=32), nullable=False),
    sa.Column('next_position', sa.Integer(), nullable=True),
    sa.Column('next_due_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('enrolled_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_step_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('exit_reason', sa.String(length=32), nullable=True),
    sa.Column('exited_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_enrolment_campaign_id_campaign')),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_enrolment_contact_id_contact')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enrolment')),
    sa.UniqueConstraint('campaign_id', 'contact_id', 'rotation', name=op.f('uq_enrolment_campaign_id_contact_id_rotation'))
    )
    with op.batch_alter_table('enrolment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enrolment_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index('ix_enrolment_due', ['status', 'next_due_at'], unique=False)

    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('enrolment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.add_column(sa.Column('campaign_step_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_message_campaign_step_id'), ['campaign_step_id'], unique=False)
        batch_op.create_index('ix_outbox_identity', ['identity_id', 'purpose', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_message_enrolment_id'), ['enrolment_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_outbox_message_campaign_step_id_campaign_step'), 'campaign_step', ['campaign_step_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_outbox_message_enrolment_id_enrolment'), 'enrolment', ['enrolment_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outbox_message_enrolment_id_enrolment'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_outbox_message_campaign_step_id_campaign_step'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_outbox_message_enrolment_id'))
        batch_op.drop_index(batch_op.f('ix_outbox_message_campaign_step_id'))
        batch_op.drop_index('ix_outbox_identity')
        batch_op.drop_column('campaign_step_id')
        batch_op.drop_column('enrolment_id')

    with op.batch_alter_table('enrolment', schema=None) as batch_op:
        batch_op.drop_index('ix_enrolment_due')
        batch_op.drop_index(batch_op.f('ix_enrolment_contact_id'))

    op.drop_table('enrolment')
    with op.batch_alter_table('campaign_step', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_step_campaign_id'))

    op.drop_table('campaign_step')
    with op.batch_alter_table('contact_tag', schema=None) as batch_op:
        batch_op.drop_index('ix_contact_tag_tag')

    op.drop_table('contact_tag')
    op.drop_table('campaign')
