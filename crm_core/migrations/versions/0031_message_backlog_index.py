"""The worker's backlog indexed alone: a partial index of the messages not processed yet

Revision ID: 0031
Revises: 0030
"""

import sqlalchemy as sa
from alembic import op

revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ix_message_unprocessed (direction, processed_at) held every message ever stored, and SQLite,
    # having no statistics, led any query on a direction through it: the campaign planner's "when
    # did these customers last write" read every inbound message for each batch of 500 contacts.
    # The worker's claim needs only the backlog, in id order.
    with op.batch_alter_table('message') as batch_op:
        batch_op.drop_index('ix_message_unprocessed')
        batch_op.create_index('ix_message_backlog', ['id'], sqlite_where=sa.text('processed_at IS NULL'),
                              postgresql_where=sa.text('processed_at IS NULL'))


def downgrade() -> None:
    with op.batch_alter_table('message') as batch_op:
        batch_op.drop_index('ix_message_backlog')
        batch_op.create_index('ix_message_unprocessed', ['direction', 'processed_at'])
