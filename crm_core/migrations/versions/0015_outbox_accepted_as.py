"""what a platform's acceptance of a send meant (in the chat, handed over, waiting for a person to confirm)

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox_message') as batch:
        batch.add_column(sa.Column('accepted_as', sa.Enum('in_chat', 'handed_over', 'awaiting_confirmation',
                                                          name='delivery', native_enum=False, length=32),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox_message') as batch:
        batch.drop_column('accepted_as')
