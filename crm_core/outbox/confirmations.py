"""Sends a person must confirm on the platform (a WeCom 群发 task the rep taps "send" on): the
platform accepted them, the customer has nothing yet. Asked again until they are delivered or
the platform says they will not be (the rep's contact is gone, a daily limit), so the inbox
shows the truth instead of "sent". Safe to run in every process: each row is updated only while
it still awaits."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import accounts
from crm_core.crypto import CredentialCipher
from crm_core.db import utcnow
from crm_core.models import ChannelAccount, Delivery, OutboxMessage, OutboxStatus
from crm_core.ports import OutboundGateway

log = logging.getLogger(__name__)

# A task the rep never confirms is asked after for this long, then left as it is.
FOLLOW_FOR = dt.timedelta(days=7)


@dataclass
class ConfirmationReport:
    delivered: int = 0
    not_delivered: int = 0
    waiting: int = 0


class ConfirmationWatcher:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], gateway: OutboundGateway,
                 cipher: CredentialCipher, *, batch: int = 200) -> None:
        self.sessions, self.gateway, self.cipher, self.batch = sessions, gateway, cipher, batch

    async def run_once(self) -> ConfirmationReport:
        report = ConfirmationReport()
        async with self.sessions() as session:
            rows = (await session.execute(
                select(OutboxMessage.id, OutboxMessage.platform_message_id, OutboxMessage.recipient,
                       OutboxMessage.payload, ChannelAccount)
                .join(ChannelAccount, ChannelAccount.id == OutboxMessage.channel_account_id)
                .where(OutboxMessage.status == OutboxStatus.SENT,
                       OutboxMessage.accepted_as == Delivery.AWAITING_CONFIRMATION,
                       OutboxMessage.sent_at > utcnow() - FOLLOW_FOR)
                .order_by(OutboxMessage.sent_at).limit(self.batch))).all()
        for row_id, platform_id, recipient, payload, account in rows:
            try:
                answer = await self.gateway.confirmation(accounts.to_ref(account, self.cipher), platform_id or "",
                                                         recipient, dict((payload or {}).get("options") or {}))
            except Exception as exc:  # the platform cannot answer now: asked again next time
                log.warning("outbox %s: cannot ask whether it was confirmed: %s", row_id, exc)
                report.waiting += 1
                continue
            if answer is None or answer.delivered is None:
                report.waiting += 1
                continue
            values = ({"accepted_as": Delivery.CONFIRMED} if answer.delivered
                      else {"status": OutboxStatus.FAILED, "last_error": answer.reason})
            async with self.sessions() as session, session.begin():
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == row_id, OutboxMessage.status == OutboxStatus.SENT,
                           OutboxMessage.accepted_as == Delivery.AWAITING_CONFIRMATION)
                    .values(**values).execution_options(synchronize_session=False))
            if answer.delivered:
                report.delivered += 1
            else:
                report.not_delivered += 1
        return report
