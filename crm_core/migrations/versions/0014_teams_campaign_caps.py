"""teams of reps under a manager (with the channels whose leads they take first), campaign caps, per-channel step wording

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crm_core.db

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('team',
    sa.Column('id', _id, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('manager_user_id', _id, nullable=True),
    sa.Column('channels', _json, nullable=False),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['manager_user_id'], ['user_account.id'],
                            name=op.f('fk_team_manager_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team')),
    sa.UniqueConstraint('name', name=op.f('uq_team_name'))
    )
    with op.batch_alter_table('user_account') as batch:
        batch.add_column(sa.Column('team_id', _id, nullable=True))
        batch.create_foreign_key('fk_user_account_team_id_team', 'team', ['team_id'], ['id'])
    with op.batch_alter_table('campaign') as batch:
        batch.add_column(sa.Column('caps', _json, server_default='{}', nullable=False))
    with op.batch_alter_table('campaign_step') as batch:
        batch.add_column(sa.Column('channel_templates', _json, server_default='{}', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('campaign_step') as batch:
        batch.drop_column('channel_templates')
    with op.batch_alter_table('campaign') as batch:
        batch.drop_column('caps')
    with op.batch_alter_table('user_account') as batch:
        batch.drop_constraint('fk_user_account_team_id_team', type_='foreignkey')
        batch.drop_column('team_id')
    op.drop_table('team')
