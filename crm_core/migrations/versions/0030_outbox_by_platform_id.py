"""The outbox found by the platform's id of a send

Revision ID: 0030
Revises: 0029
"""

from alembic import op

revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A platform's word about a send it took (微信客服's msg_send_fail, a WeCom 群发 task listed
    # back) names it by account and id: without this, each such event read the whole outbox.
    op.create_index('ix_outbox_platform_id', 'outbox_message', ['channel_account_id', 'platform_message_id'])


def downgrade() -> None:
    op.drop_index('ix_outbox_platform_id', table_name='outbox_message')
