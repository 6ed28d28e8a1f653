"""WeCom corp tags kept in step with the hub's contact tags; contacts whose tags are to be pushed to WeCom

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crm_core.db

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('corp_tag',
    sa.Column('id', _id, nullable=False),
    sa.Column('channel_account_id', _id, nullable=False),
    sa.Column('tag_id', sa.String(length=100), nullable=False),
    sa.Column('group_id', sa.String(length=100), nullable=False),
    sa.Column('group_name', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['channel_account_id'], ['channel_account.id'],
                            name=op.f('fk_corp_tag_channel_account_id_channel_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_corp_tag')),
    sa.UniqueConstraint('channel_account_id', 'tag_id', name=op.f('uq_corp_tag_channel_account_id_tag_id'))
    )
    op.create_table('tag_push',
    sa.Column('id', _id, nullable=False),
    sa.Column('contact_id', _id, nullable=False),
    sa.Column('removed', _json, nullable=False),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_tag_push_contact_id_contact')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tag_push'))
    )
    op.create_index(op.f('ix_tag_push_contact_id'), 'tag_push', ['contact_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_tag_push_contact_id'), table_name='tag_push')
    op.drop_table('tag_push')
    op.drop_table('corp_tag')
