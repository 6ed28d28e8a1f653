"""Quick replies (话术库): shared, a team's, or a rep's own

Revision ID: 0025
Revises: 0024
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crm_core.db

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('quick_reply',
    sa.Column('id', _id, nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('texts', _json, nullable=False),
    sa.Column('shortcut', sa.String(length=30), nullable=True),
    sa.Column('link_url', sa.String(length=1000), nullable=True),
    sa.Column('team_id', _id, nullable=True),
    sa.Column('owner_user_id', _id, nullable=True),
    sa.Column('created_by_user_id', _id, nullable=True),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['user_account.id'],
                            name=op.f('fk_quick_reply_created_by_user_id_user_account')),
    sa.ForeignKeyConstraint(['owner_user_id'], ['user_account.id'],
                            name=op.f('fk_quick_reply_owner_user_id_user_account')),
    sa.ForeignKeyConstraint(['team_id'], ['team.id'], name=op.f('fk_quick_reply_team_id_team')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quick_reply'))
    )
    op.create_index(op.f('ix_quick_reply_owner_user_id'), 'quick_reply', ['owner_user_id'])
    op.create_index(op.f('ix_quick_reply_shortcut'), 'quick_reply', ['shortcut'])
    op.create_index(op.f('ix_quick_reply_team_id'), 'quick_reply', ['team_id'])


def downgrade() -> None:
    op.drop_table('quick_reply')
