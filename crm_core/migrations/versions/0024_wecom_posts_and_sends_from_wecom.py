"""WeCom moments: pictures on a post (up to 9, or one as its link's cover), moments made outside
the hub (a rep's own, or the company's in WeCom), and each publishing rep's reach; 群发 made
outside the hub, kept with their origin and creator; a group welcome's picture or card

Revision ID: 0024
Revises: 0023
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crm_core.db

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

_json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('moment') as batch:
        batch.add_column(sa.Column('image_urls', _json, server_default='[]', nullable=False))
        batch.add_column(sa.Column('origin', sa.String(length=16), server_default='hub', nullable=False))
        batch.add_column(sa.Column('creator', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('reach', _json, server_default='{}', nullable=False))
        batch.add_column(sa.Column('reach_at', crm_core.db.UTCDateTime(timezone=True), nullable=True))
        batch.create_index('ix_moment_moment_id', ['moment_id'])
    with op.batch_alter_table('mass_send') as batch:
        batch.add_column(sa.Column('origin', sa.String(length=16), server_default='hub', nullable=False))
        batch.add_column(sa.Column('creator', sa.String(length=64), nullable=True))
    with op.batch_alter_table('mass_send_task') as batch:
        batch.create_index('ix_mass_send_task_msgid', ['msgid'])
    with op.batch_alter_table('group_join_way') as batch:
        batch.add_column(sa.Column('welcome_card', _json, server_default='{}', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('group_join_way') as batch:
        batch.drop_column('welcome_card')
    with op.batch_alter_table('mass_send_task') as batch:
        batch.drop_index('ix_mass_send_task_msgid')
    with op.batch_alter_table('mass_send') as batch:
        batch.drop_column('creator')
        batch.drop_column('origin')
    with op.batch_alter_table('moment') as batch:
        batch.drop_index('ix_moment_moment_id')
        for column in ('reach_at', 'reach', 'creator', 'origin', 'image_urls'):
            batch.drop_column(column)
