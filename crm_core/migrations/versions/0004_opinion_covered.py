"""opinion alerts covered by another open alert (one burst seen in several slices is sent once); one open alert per slice

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('opinion_alert') as batch:
        batch.add_column(sa.Column('covered_by_id', _id, nullable=True))
        batch.create_foreign_key(op.f('fk_opinion_alert_covered_by_id_opinion_alert'), 'opinion_alert',
                                 ['covered_by_id'], ['id'])
    op.create_index('uq_opinion_alert_open_slice', 'opinion_alert', ['dimension', 'key'], unique=True,
                    sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))


def downgrade() -> None:
    op.drop_index('uq_opinion_alert_open_slice', table_name='opinion_alert')
    with op.batch_alter_table('opinion_alert') as batch:
        batch.drop_constraint(op.f('fk_opinion_alert_covered_by_id_opinion_alert'), type_='foreignkey')
        batch.drop_column('covered_by_id')
