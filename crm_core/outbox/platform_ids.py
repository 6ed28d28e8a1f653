"""The platform's id of a send onto the message that keeps its words in the conversation.

The id (Telegram's chat:message, a WeCom msgid...) is how a reply, a receipt or a recall finds the
message again, and one message of an account holds each id (a unique key). An id another message
holds already (a platform that reuses ids, a retried send) stays on the outbox row only, and is
logged: the send happened, and a unique key must not turn it into a failed transaction that leaves
the row `sending`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import CursorResult, bindparam, exists, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.models import Message

log = logging.getLogger(__name__)

_MESSAGES = Message.__table__
_OTHER_MESSAGE = _MESSAGES.alias("other")
_SET_ID = {"platform_message_id": bindparam("new_platform_message_id")}
_STORE = _MESSAGES.update().where(_MESSAGES.c.id == bindparam("message_row")).values(_SET_ID)
# The same, unless another message of the account holds the id. Built once: an alias made at each
# group of sends copied the message table's columns each time (a few percent of a dispatcher's CPU).
_STORE_UNLESS_TAKEN = _MESSAGES.update().where(
    _MESSAGES.c.id == bindparam("message_row"),
    ~exists().where(_OTHER_MESSAGE.c.channel_account_id == _MESSAGES.c.channel_account_id,
                    _OTHER_MESSAGE.c.platform_message_id == bindparam("new_platform_message_id"),
                    _OTHER_MESSAGE.c.id != _MESSAGES.c.id)).values(_SET_ID)


@dataclass(frozen=True)
class Sent:
    outbox_id: int
    account_id: int
    message_id: int  # the message that keeps the send's words
    platform_message_id: str


async def store(sent: Sequence[Sent], session: AsyncSession) -> None:
    """Each send's platform id onto its message, in the session's transaction; a taken id logged."""
    params = [{"message_row": s.message_id, "new_platform_message_id": s.platform_message_id} for s in sent]
    connection = await session.connection()
    if connection.dialect.supports_sane_multi_rowcount:
        result: CursorResult = await connection.execute(_STORE_UNLESS_TAKEN, params)
        if result.rowcount < len(params):  # who holds them asked only then
            await _log_taken(sent, session)
        return
    # asyncpg cannot count an executemany's rows. Asking who holds the ids after every group instead,
    # PostgreSQL planned it, while its statistics lagged the growing message table, as a read of the
    # account's messages (28 ms a group). The ids go plainly, under a savepoint: the unique key says
    # whether one was taken, which is rare, and then they go as above, and the holders are asked.
    try:
        async with session.begin_nested():
            await (await session.connection()).execute(_STORE, params)  # (asked in it: its SAVEPOINT is sent then)
    except IntegrityError:
        await connection.execute(_STORE_UNLESS_TAKEN, params)
        await _log_taken(sent, session)


async def _log_taken(sent: Sequence[Sent], session: AsyncSession) -> None:
    # Each (account, id) pair, as the unique index reads them.
    taken = {(account, platform_id): message_id for account, platform_id, message_id in (await session.execute(
        select(Message.channel_account_id, Message.platform_message_id, Message.id)
        .where(tuple_(Message.channel_account_id, Message.platform_message_id).in_(
            {(s.account_id, s.platform_message_id) for s in sent})))).all()}
    for s in sent:
        holder = taken.get((s.account_id, s.platform_message_id))
        if holder is not None and holder != s.message_id:
            log.warning("outbox %s: sent, but the platform's id %r is already recorded on message %s; "
                        "kept on the outbox row only", s.outbox_id, s.platform_message_id, holder)
