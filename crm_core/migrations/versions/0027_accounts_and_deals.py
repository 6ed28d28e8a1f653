"""Key accounts (companies, the people who work for them) and deals

Revision ID: 0027
Revises: 0026
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crm_core.db

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, crm_core.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table('account',
    sa.Column('id', _id, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('industry', sa.String(length=100), nullable=True),
    sa.Column('region', sa.String(length=100), nullable=True),
    sa.Column('size', sa.String(length=32), nullable=True),
    sa.Column('parent_account_id', _id, nullable=True),
    sa.Column('owner_user_id', _id, nullable=True),
    sa.Column('segment', sa.String(length=1), nullable=False),
    _at('created_at'),
    _at('updated_at'),
    sa.ForeignKeyConstraint(['owner_user_id'], ['user_account.id'],
                            name=op.f('fk_account_owner_user_id_user_account')),
    sa.ForeignKeyConstraint(['parent_account_id'], ['account.id'], name=op.f('fk_account_parent_account_id_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account')),
    sa.UniqueConstraint('name', name=op.f('uq_account_name'))
    )
    op.create_index(op.f('ix_account_owner_user_id'), 'account', ['owner_user_id'])
    op.create_index(op.f('ix_account_parent_account_id'), 'account', ['parent_account_id'])
    op.create_table('account_contact',
    sa.Column('contact_id', _id, nullable=False),
    sa.Column('account_id', _id, nullable=False),
    _at('added_at'),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_account_contact_account_id_account')),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_account_contact_contact_id_contact')),
    sa.PrimaryKeyConstraint('contact_id', name=op.f('pk_account_contact'))
    )
    op.create_index(op.f('ix_account_contact_account_id'), 'account_contact', ['account_id'])
    op.create_table('deal',
    sa.Column('id', _id, nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('account_id', _id, nullable=True),
    sa.Column('contact_id', _id, nullable=True),
    sa.Column('lead_id', _id, nullable=True),
    sa.Column('owner_user_id', _id, nullable=True),
    sa.Column('amount', sa.Float(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('expected_close', sa.Date(), nullable=True),
    sa.Column('next_step', sa.String(length=300), nullable=True),
    sa.Column('lost_reason', sa.Text(), nullable=True),
    sa.Column('products', _json, nullable=False),
    _at('created_at'),
    _at('updated_at'),
    _at('closed_at', nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_deal_account_id_account')),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_deal_contact_id_contact')),
    sa.ForeignKeyConstraint(['lead_id'], ['lead.id'], name=op.f('fk_deal_lead_id_lead')),
    sa.ForeignKeyConstraint(['owner_user_id'], ['user_account.id'], name=op.f('fk_deal_owner_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deal'))
    )
    op.create_index(op.f('ix_deal_account_id'), 'deal', ['account_id'])
    op.create_index(op.f('ix_deal_contact_id'), 'deal', ['contact_id'])
    op.create_index(op.f('ix_deal_lead_id'), 'deal', ['lead_id'])
    op.create_index('ix_deal_owner_status', 'deal', ['owner_user_id', 'status'])


def downgrade() -> None:
    op.drop_table('deal')
    op.drop_table('account_contact')
    op.drop_table('account')
