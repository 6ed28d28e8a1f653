"""A quick reply's picture

Revision ID: 0028
Revises: 0027
"""

import sqlalchemy as sa
from alembic import op

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('quick_reply') as batch:
        batch.add_column(sa.Column('image_url', sa.String(length=1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('quick_reply') as batch:
        batch.drop_column('image_url')
