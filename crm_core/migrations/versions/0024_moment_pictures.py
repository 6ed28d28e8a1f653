"""Pictures on a WeCom moments post (up to 9, or one as its link's cover)

Revision ID: 0024
Revises: 0023
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

_json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('moment') as batch:
        batch.add_column(sa.Column('image_urls', _json, server_default='[]', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('moment') as batch:
        batch.drop_column('image_urls')
