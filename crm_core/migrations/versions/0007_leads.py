"""leads: one open lead per contact, its history; reps' territories and when they last got a lead

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crm_core.db

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lead',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('source_kind', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=True),
    sa.Column('company', sa.String(length=200), nullable=True),
    sa.Column('region', sa.String(length=100), nullable=True),
    sa.Column('industry', sa.String(length=100), nullable=True),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('segment', sa.String(length=1), nullable=False),
    sa.Column('order_total', sa.Float(), nullable=False),
    sa.Column('order_count', sa.Integer(), nullable=False),
    sa.Column('owner_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('first_response_due_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('first_responded_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sla_reminded_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sla_escalated_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('hot_alerted_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_lead_contact_id_contact')),
    sa.ForeignKeyConstraint(['owner_user_id'], ['user_account.id'], name=op.f('fk_lead_owner_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lead'))
    )
    with op.batch_alter_table('lead', schema=None) as batch_op:
        batch_op.create_index('ix_lead_first_response', ['status', 'first_responded_at', 'first_response_due_at'], unique=False)
        batch_op.create_index('ix_lead_owner', ['owner_user_id', 'status'], unique=False)
        batch_op.create_index('uq_lead_open_contact', ['contact_id'], unique=True, sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))

    op.create_table('lead_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('actor_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_user_id'], ['user_account.id'], name=op.f('fk_lead_event_actor_user_id_user_account')),
    sa.ForeignKeyConstraint(['lead_id'], ['lead.id'], name=op.f('fk_lead_event_lead_id_lead')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lead_event'))
    )
    with op.batch_alter_table('lead_event', schema=None) as batch_op:
        batch_op.create_index('ix_lead_event_lead', ['lead_id', 'id'], unique=False)

    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('territory', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))
        batch_op.add_column(sa.Column('last_lead_at', crm_core.db.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('last_lead_at')
        batch_op.drop_column('territory')

    with op.batch_alter_table('lead_event', schema=None) as batch_op:
        batch_op.drop_index('ix_lead_event_lead')

    op.drop_table('lead_event')
    with op.batch_alter_table('lead', schema=None) as batch_op:
        batch_op.drop_index('uq_lead_open_contact', sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))
        batch_op.drop_index('ix_lead_owner')
        batch_op.drop_index('ix_lead_first_response')

    op.drop_table('lead')
