"""consent requests: double opt-in, a grant waiting for the person's own yes

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crm_core.db

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('consent_request',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('purpose', sa.Enum('service', 'marketing', name='messagepurpose', native_enum=False, length=32), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=True),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('evidence', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('actor_label', sa.String(length=200), nullable=False),
    sa.Column('outbox_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('confirmed_event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['confirmed_event_id'], ['consent_event.id'], name=op.f('fk_consent_request_confirmed_event_id_consent_event')),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_consent_request_contact_id_contact')),
    sa.ForeignKeyConstraint(['outbox_id'], ['outbox_message.id'], name=op.f('fk_consent_request_outbox_id_outbox_message')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_request'))
    )
    with op.batch_alter_table('consent_request', schema=None) as batch_op:
        batch_op.create_index('ix_consent_request_contact', ['contact_id', 'status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('consent_request', schema=None) as batch_op:
        batch_op.drop_index('ix_consent_request_contact')

    op.drop_table('consent_request')
