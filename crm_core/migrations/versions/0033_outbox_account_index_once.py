"""The outbox's account index dropped: ix_outbox_platform_id begins with the account

Revision ID: 0033
Revises: 0032
"""

from alembic import op

revision = '0033'
down_revision = '0032'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every query by account (and the foreign key's checks) can use ix_outbox_platform_id, whose
    # first column is the account; the second index only cost each queued send one more b-tree
    # insert (a campaign queues hundreds of thousands).
    with op.batch_alter_table('outbox_message') as batch_op:
        batch_op.drop_index('ix_outbox_message_channel_account_id')


def downgrade() -> None:
    with op.batch_alter_table('outbox_message') as batch_op:
        batch_op.create_index('ix_outbox_message_channel_account_id', ['channel_account_id'], unique=False)
