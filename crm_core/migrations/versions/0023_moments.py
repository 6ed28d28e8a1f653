"""WeCom moments (朋友圈) posts for reps to publish, and who published them

Revision ID: 0023
Revises: 0022
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crm_core.db

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('moment',
    sa.Column('id', _id, nullable=False),
    sa.Column('channel_account_id', _id, nullable=False),
    sa.Column('text', sa.String(length=2000), nullable=False),
    sa.Column('link_url', sa.String(length=500), nullable=True),
    sa.Column('link_title', sa.String(length=100), nullable=True),
    sa.Column('senders', _json, nullable=False),
    sa.Column('tags', _json, nullable=False),
    sa.Column('jobid', sa.String(length=200), nullable=True),
    sa.Column('moment_id', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=True),
    sa.Column('checked_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('published', _json, nullable=False),
    sa.Column('created_by_user_id', _id, nullable=True),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_account_id'], ['channel_account.id'],
                            name=op.f('fk_moment_channel_account_id_channel_account')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['user_account.id'],
                            name=op.f('fk_moment_created_by_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_moment'))
    )


def downgrade() -> None:
    op.drop_table('moment')
