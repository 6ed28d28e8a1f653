"""the webhook request a message came in with, and the send that answers it

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('message', 'outbox_message'):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('request_id', sa.String(64), nullable=True))


def downgrade() -> None:
    for table in ('message', 'outbox_message'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('request_id')
