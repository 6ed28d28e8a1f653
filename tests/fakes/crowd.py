"""Many customers at once, for load tests and benchmarks: contacts with a Telegram
identity and an open conversation each, marketing consent granted by a form,
each with as many messages written before as asked (a hub that has been chatting for a while),
written with bulk inserts (ingesting 100,000 messages one by one would take
longer than the work being measured)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.simulators.telegram import SimBot, TelegramSimulator
from crm_core import accounts
from crm_core.crypto import CredentialCipher
from crm_core.db import utcnow
from crm_core.models import (
    ChannelAccount,
    ConsentEvent,
    Contact,
    Conversation,
    ConversationStatus,
    Direction,
    Identity,
    Message,
    MessageKind,
    MessagePurpose,
)


async def fast_telegram_account(session: AsyncSession, simulator: TelegramSimulator, sim_base: str,
                                cipher: CredentialCipher) -> tuple[ChannelAccount, SimBot]:
    """A simulated bot without Telegram's rate limits, connected as a channel account paced at
    the most the hub allows, so a load test measures the hub, not the platform's pacing."""
    bot = simulator.create_bot()
    bot.enforce_limits = False
    return await load_account(session, bot.token, sim_base, cipher), bot


async def load_account(session: AsyncSession, token: str, sim_base: str, cipher: CredentialCipher) -> ChannelAccount:
    """The channel account of a simulated bot (`token`) that keeps no rate limits, paced at the
    most the hub allows."""
    return await accounts.create(
        kind="telegram", name="load", platform_account_id=token.split(":", 1)[0],
        credentials={"bot_token": token, "webhook_secret": "x" * 32}, api_base=sim_base,
        settings={"mode": "webhook", "messages_per_second": 1000, "per_chat_per_second": 100},
        cipher=cipher, actor=None, db_session=session)


async def seed_crowd(sessions: async_sessionmaker[AsyncSession], account_id: int, count: int, *,
                     simulator: TelegramSimulator | None = None, bot: SimBot | None = None,
                     first_user: int = 1_000_000, chunk: int = 5000, history: int = 0) -> dict[str, int]:
    """`count` Telegram customers of the account, each with `history` messages written a month
    ago, processed; returns chat id -> contact id.

    With a simulator, each is a user of it who has started the bot."""
    chats: dict[str, int] = {}
    now = utcnow()
    for start in range(0, count, chunk):
        users = range(first_user + start, first_user + min(count, start + chunk))
        async with sessions() as session, session.begin():
            contacts = (await session.execute(insert(Contact).returning(Contact.id, Contact.origin), [
                {"display_name": f"Customer {u}", "origin": f"{account_id}:{u}", "language": "en",
                 "stage": "new", "is_staff": False, "created_at": now, "updated_at": now} for u in users])).all()
            by_user = {int(origin.split(":")[1]): contact_id for contact_id, origin in contacts}
            identities = (await session.execute(insert(Identity).returning(Identity.id, Identity.external_id), [
                {"contact_id": by_user[u], "channel_account_id": account_id, "external_id": str(u),
                 "display_name": f"Customer {u}", "reachable": True, "created_at": now} for u in users])).all()
            conversations = dict((await session.execute(
                insert(Conversation).returning(Conversation.identity_id, Conversation.id), [
                {"contact_id": by_user[int(external)], "identity_id": identity_id, "channel_account_id": account_id,
                 "external_thread_id": external, "status": ConversationStatus.OPEN, "created_at": now,
                 "last_message_at": now} for identity_id, external in identities])).all())
            then = now - dt.timedelta(days=30)
            for n in range(history):
                await session.execute(insert(Message), [
                    {"conversation_id": conversations[identity_id], "channel_account_id": account_id,
                     "identity_id": identity_id, "direction": Direction.INBOUND, "kind": MessageKind.TEXT,
                     "text": "hello", "attachments": [], "platform_message_id": f"history:{external}:{n}",
                     "created_at": then, "processed_at": then, "processing_attempts": 1}
                    for identity_id, external in identities])
            await session.execute(insert(ConsentEvent), [
                {"contact_id": contact_id, "purpose": MessagePurpose.MARKETING, "channel": None, "granted": True,
                 "source": "form", "evidence": {"form": "load test"}, "actor_label": "system", "created_at": now}
                for contact_id in by_user.values()])
        for user, contact_id in by_user.items():
            chats[str(user)] = contact_id
            if simulator is not None and bot is not None:
                simulator.user(user)
                bot.started_by.add(user)
    return chats
