"""the message that opened a lead (its channel and date name the source), filled in for leads
whose source said "message N"

Revision ID: 0017
Revises: 0016
"""

import re

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

_MESSAGE = re.compile(r"message (\d+)$")


def upgrade() -> None:
    with op.batch_alter_table('lead') as batch:
        batch.add_column(sa.Column('source_message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                                   nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, source FROM lead WHERE source_kind IN ('signal', 'form')")).all()
    for lead_id, source in rows:
        found = _MESSAGE.search(source or "")
        if found:
            bind.execute(sa.text("UPDATE lead SET source_message_id = :m WHERE id = :id"
                                 " AND EXISTS (SELECT 1 FROM message WHERE message.id = :m)"),
                         {"m": int(found.group(1)), "id": lead_id})


def downgrade() -> None:
    with op.batch_alter_table('lead') as batch:
        batch.drop_column('source_message_id')
