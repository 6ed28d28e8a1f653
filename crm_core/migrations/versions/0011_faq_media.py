"""faq media: a picture and a link shown with an answer

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('faq_entry') as batch_op:
        batch_op.add_column(sa.Column('image_url', sa.String(length=1000), nullable=True))
        batch_op.add_column(sa.Column('link_url', sa.String(length=1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('faq_entry') as batch_op:
        batch_op.drop_column('link_url')
        batch_op.drop_column('image_url')
