"""A quick reply's document

Revision ID: 0029
Revises: 0028
"""

import sqlalchemy as sa
from alembic import op

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('quick_reply') as batch:
        batch.add_column(sa.Column('file_url', sa.String(length=1000), nullable=True))
        batch.add_column(sa.Column('file_name', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('quick_reply') as batch:
        batch.drop_column('file_name')
        batch.drop_column('file_url')
