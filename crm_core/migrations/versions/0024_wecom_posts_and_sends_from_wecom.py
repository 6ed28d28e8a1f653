"""WeCom moments: pictures on a post (up to 9, or one as its link's cover), moments made outside
the hub (a rep's own, or the company's in WeCom), and each publishing rep's reach; 群发 made
outside the hub, kept with their origin and creator; a group welcome's picture or card; who left a customer group

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

_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
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
    op.create_table('customer_group_leave',
    sa.Column('id', _id, nullable=False),
    sa.Column('group_id', _id, nullable=False),
    sa.Column('userid', sa.String(length=200), nullable=False),
    sa.Column('is_customer', sa.Boolean(), nullable=False),
    sa.Column('contact_id', _id, nullable=True),
    sa.Column('left_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_customer_group_leave_contact_id_contact')),
    sa.ForeignKeyConstraint(['group_id'], ['customer_group.id'],
                            name=op.f('fk_customer_group_leave_group_id_customer_group')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_group_leave'))
    )
    op.create_index(op.f('ix_customer_group_leave_contact_id'), 'customer_group_leave', ['contact_id'])
    op.create_index(op.f('ix_customer_group_leave_group_id'), 'customer_group_leave', ['group_id'])
    op.create_index(op.f('ix_customer_group_leave_left_at'), 'customer_group_leave', ['left_at'])


def downgrade() -> None:
    op.drop_table('customer_group_leave')
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
