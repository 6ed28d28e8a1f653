"""Reps' follow-up tasks

Revision ID: 0026
Revises: 0025
"""

import sqlalchemy as sa
from alembic import op

import crm_core.db

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _at(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, crm_core.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table('task',
    sa.Column('id', _id, nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    _at('due_at', nullable=False),
    _at('remind_at'),
    sa.Column('owner_user_id', _id, nullable=False),
    sa.Column('contact_id', _id, nullable=True),
    sa.Column('lead_id', _id, nullable=True),
    sa.Column('conversation_id', _id, nullable=True),
    sa.Column('origin', sa.String(length=32), nullable=False),
    sa.Column('rule_key', sa.String(length=120), nullable=True),
    sa.Column('created_by_user_id', _id, nullable=True),
    _at('created_at', nullable=False),
    _at('reminded_at'),
    _at('done_at'),
    sa.Column('done_by_user_id', _id, nullable=True),
    sa.ForeignKeyConstraint(['owner_user_id'], ['user_account.id'], name=op.f('fk_task_owner_user_id_user_account')),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_task_contact_id_contact')),
    sa.ForeignKeyConstraint(['lead_id'], ['lead.id'], name=op.f('fk_task_lead_id_lead')),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'],
                            name=op.f('fk_task_conversation_id_conversation')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['user_account.id'],
                            name=op.f('fk_task_created_by_user_id_user_account')),
    sa.ForeignKeyConstraint(['done_by_user_id'], ['user_account.id'],
                            name=op.f('fk_task_done_by_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_task')),
    sa.UniqueConstraint('rule_key', name=op.f('uq_task_rule_key'))
    )
    op.create_index(op.f('ix_task_contact_id'), 'task', ['contact_id'])
    op.create_index(op.f('ix_task_lead_id'), 'task', ['lead_id'])
    op.create_index('ix_task_owner_open', 'task', ['owner_user_id', 'done_at', 'due_at'])
    op.create_index('ix_task_remind_at', 'task', ['remind_at'])


def downgrade() -> None:
    op.drop_table('task')
