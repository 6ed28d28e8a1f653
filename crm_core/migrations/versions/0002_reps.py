"""reps: user handles in chat apps, managers and language, notes, contact stage and source, held sends, message index by identity

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import crm_core.db

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('contact') as batch:
        batch.add_column(sa.Column('is_staff', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column('stage', sa.String(length=32), server_default='new', nullable=False))
        batch.add_column(sa.Column('source', sa.String(length=200), nullable=True))
    with op.batch_alter_table('user_account') as batch:
        batch.add_column(sa.Column('manager_user_id', _id, nullable=True))
        batch.add_column(sa.Column('language', sa.String(length=16), nullable=True))
        batch.create_foreign_key(op.f('fk_user_account_manager_user_id_user_account'), 'user_account',
                                 ['manager_user_id'], ['id'])
    op.create_table('user_handle',
    sa.Column('id', _id, nullable=False),
    sa.Column('user_id', _id, nullable=False),
    sa.Column('channel_account_id', _id, nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('focus_conversation_id', _id, nullable=True),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_account_id'], ['channel_account.id'],
                            name=op.f('fk_user_handle_channel_account_id_channel_account')),
    sa.ForeignKeyConstraint(['focus_conversation_id'], ['conversation.id'],
                            name=op.f('fk_user_handle_focus_conversation_id_conversation')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_user_handle_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_handle')),
    sa.UniqueConstraint('channel_account_id', 'external_id',
                        name=op.f('uq_user_handle_channel_account_id_external_id'))
    )
    op.create_index(op.f('ix_user_handle_user_id'), 'user_handle', ['user_id'], unique=False)
    op.create_table('note',
    sa.Column('id', _id, nullable=False),
    sa.Column('conversation_id', _id, nullable=False),
    sa.Column('author_user_id', _id, nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_user_id'], ['user_account.id'], name=op.f('fk_note_author_user_id_user_account')),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], name=op.f('fk_note_conversation_id_conversation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_note'))
    )
    op.create_index(op.f('ix_note_conversation_id'), 'note', ['conversation_id'], unique=False)
    op.create_index('ix_message_identity', 'message', ['identity_id', 'id'], unique=False)
    # Enums are VARCHAR(32) without CHECK constraints: the new members
    # (message kinds voice / location / link, outbox status held) need no DDL.


def downgrade() -> None:
    op.drop_index('ix_message_identity', table_name='message')
    op.drop_index(op.f('ix_note_conversation_id'), table_name='note')
    op.drop_table('note')
    op.drop_index(op.f('ix_user_handle_user_id'), table_name='user_handle')
    op.drop_table('user_handle')
    with op.batch_alter_table('user_account') as batch:
        batch.drop_constraint(op.f('fk_user_account_manager_user_id_user_account'), type_='foreignkey')
        batch.drop_column('language')
        batch.drop_column('manager_user_id')
    with op.batch_alter_table('contact') as batch:
        batch.drop_column('source')
        batch.drop_column('stage')
        batch.drop_column('is_staff')
