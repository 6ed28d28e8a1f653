"""One-off WeCom mass sends carried out and followed (crm_core/campaigns/mass_sends.py plans them):
each pending rep task is made in WeCom (add_msg_template), then each waiting one is read back
every minute (get_groupmsg_task, get_groupmsg_send_result) until the rep sent it and every
customer's fate is known, or a week has passed. 群发 made in WeCom itself (its console, or a rep's
own) are found in WeCom's list every 10 minutes (get_groupmsg_list_v2) and followed the same way:
they count toward each customer's 4 a month, and waiting reps are reminded of them too."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.registry import ChannelRegistry
from channels.tencent_client import ApiError, ApiUnavailable, busy
from crm_core import accounts
from crm_core.crypto import CredentialCipher
from crm_core.db import utcnow
from crm_core.models import ChannelAccount, MassSend, MassSendTask, OutboxMessage, UserHandle
from hub.claiming import claim, give_up_stale, release_listing, take_listing

log = logging.getLogger(__name__)
FOLLOW_FOR = dt.timedelta(days=7)
LIST_EVERY = dt.timedelta(minutes=10)
LISTED = "groupmsgs_listed"  # a WeCom app's cursor: when its 群发 were last listed (ISO time)


class MassSends:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], channels: ChannelRegistry,
                 cipher: CredentialCipher) -> None:
        self.sessions, self.channels, self.cipher = sessions, channels, cipher

    async def run_once(self, *, listing: bool = True) -> int:
        """群发 made in WeCom found (unless not `listing`), pending tasks made and waiting ones read
        back; how many tasks changed."""
        changed = await give_up_stale(self.sessions, MassSendTask, taken="creating", stamp="checked_at")
        if listing:
            async with self.sessions() as session:
                apps = (await session.scalars(select(ChannelAccount.id).where(
                    ChannelAccount.kind == "wecom", ChannelAccount.is_active.is_(True)))).all()
            for account_id in apps:
                try:
                    changed += await self.discover(account_id)
                except (ApiError, ApiUnavailable) as exc:
                    log.warning("WeCom app %s: 群发 not listed (%s); listed again next minute", account_id, exc)
        async with self.sessions() as session:
            rows = (await session.execute(
                select(MassSendTask.id, MassSendTask.status).join(MassSend, MassSend.id == MassSendTask.mass_send_id)
                .where(MassSendTask.status.in_(("pending", "waiting")), MassSend.created_at > utcnow() - FOLLOW_FOR)
                .order_by(MassSendTask.id))).all()
        for task_id, status in rows:
            if status == "pending" and not await claim(self.sessions, MassSendTask, task_id, before="pending",
                                                       after="creating", stamp="checked_at"):
                continue  # another process makes it
            async with self.sessions() as session, session.begin():
                task = await session.get(MassSendTask, task_id)
                send = await session.get(MassSend, task.mass_send_id)
                account = await session.get(ChannelAccount, send.channel_account_id)
                adapter, ref = self.channels.get(account.kind), accounts.to_ref(account, self.cipher)
                try:
                    if task.status == "creating":
                        msgid, refused = await adapter.mass_task(ref, sender=task.sender_userid,
                                                                 externals=list(task.targets), text=send.text,
                                                                 groups=send.chat_type == "group")
                        task.msgid, task.status = msgid, "waiting"
                        task.targets = {e: (2 if e in refused else s) for e, s in task.targets.items()}
                        changed += 1
                    else:
                        sent, statuses = await adapter.mass_task_state(ref, msgid=task.msgid or "",
                                                                       sender=task.sender_userid)
                        targets = {**task.targets, **statuses}  # one made in WeCom learns its targets here
                        if sent != (task.status == "sent") or targets != task.targets:
                            changed += 1
                        task.targets, task.status = targets, "sent" if sent else "waiting"
                    task.checked_at = utcnow()
                except ApiUnavailable as exc:  # a task being made is never asked for twice (hub/claiming.py)
                    log.warning("mass send %s, rep %s: WeCom unreachable (%s); %s", send.id, task.sender_userid, exc,
                                "read again next minute" if task.status == "waiting" else "whether the task was made "
                                "is not known: it is given up in 10 minutes")
                except ApiError as exc:
                    if busy(exc):  # nothing was done: made (or read) again next minute
                        log.info("mass send %s, rep %s: WeCom busy (%s); again next minute", send.id,
                                 task.sender_userid, exc.errcode)
                        if task.status == "creating":
                            task.status = "pending"
                        task.reason = f"WeCom was busy ({exc.errcode}); tried again each minute"
                        continue
                    task.status, task.reason = "failed", f"WeCom refused ({exc.errcode}): {exc.errmsg}"[:300]
                    changed += 1
        return changed

    async def discover(self, account_id: int, *, force: bool = False) -> int:
        """The app's 群发 WeCom lists that the hub did not make (in WeCom's console, or a rep's own),
        kept with a task per rep to be followed; every 10 minutes. How many were new."""
        listing = await take_listing(self.sessions, account_id, LISTED, every=LIST_EVERY, window=FOLLOW_FOR,
                                     force=force)
        if listing is None:
            return 0
        now = listing.now
        async with self.sessions() as session:
            account = await session.get(ChannelAccount, account_id)
        adapter, ref = self.channels.get(account.kind), accounts.to_ref(account, self.cipher)
        try:
            listed = [(chat_type, item) for chat_type in ("single", "group")
                      for item in await adapter.mass_list(ref, chat_type, listing.start, now)]
            msgids = [str(item.get("msgid")) for _, item in listed]
            async with self.sessions() as session:
                # The hub's own: its mass sends' tasks, and its replies to customers sent as tasks.
                known = set((await session.scalars(select(MassSendTask.msgid).where(
                    MassSendTask.msgid.in_(msgids)))).all())
                known |= {str(p).removeprefix("task:") for p in (await session.scalars(
                    select(OutboxMessage.platform_message_id).where(
                        OutboxMessage.channel_account_id == account_id,
                        OutboxMessage.platform_message_id.in_([f"task:{m}" for m in msgids])))).all()}
                # A company 群发 may be one the hub is making, its msgid not yet kept: the next
                # listing (an hour's overlap) takes it once it is known. (A reply being sent as a
                # task at this very moment may still be taken: `_forget_own` drops it later.)
                making = await session.scalar(select(MassSendTask.id).join(MassSend).where(
                    MassSend.channel_account_id == account_id, MassSendTask.status == "creating").limit(1))
            new = [(chat_type, item) for chat_type, item in listed if item.get("msgid")
                   and str(item["msgid"]) not in known and (item.get("create_type") == 1 or not making)]
            senders = {str(item["msgid"]): await adapter.mass_senders(ref, str(item["msgid"])) for _, item in new}
        except Exception:
            await release_listing(self.sessions, account_id, LISTED, listing)
            raise
        async with self.sessions() as session, session.begin():
            forgotten = await self._forget_own(account_id, session)
            handles = dict((await session.execute(select(UserHandle.external_id, UserHandle.user_id).where(
                UserHandle.channel_account_id == account_id))).all())
            for chat_type, item in new:
                msgid, text = str(item["msgid"]), str((item.get("text") or {}).get("content") or "")
                send = MassSend(channel_account_id=account_id, name=(text.partition("\n")[0] or msgid)[:100],
                                text=text[:4000], chat_type=chat_type, audience={}, skipped={},
                                origin="personal" if item.get("create_type") == 1 else "wecom",
                                creator=str(item.get("creator") or "")[:64] or None,
                                created_at=dt.datetime.fromtimestamp(int(item.get("create_time") or now.timestamp()),
                                                                     dt.UTC))
                session.add(send)
                await session.flush()
                # Waiting, sent or not: the next step reads whether it was sent and to whom.
                session.add_all(MassSendTask(mass_send_id=send.id, user_id=handles.get(userid), sender_userid=userid,
                                             msgid=msgid, targets={}, status="waiting", checked_at=now)
                                for userid in senders[msgid])
        if new or forgotten:
            log.info("WeCom app %s: %d 群发 made in WeCom found (%d taken earlier were the hub's own)", account_id,
                     len(new), forgotten)
        return len(new)

    async def _forget_own(self, account_id: int, session: AsyncSession) -> int:
        """群发 taken from WeCom's list that turned out to be the hub's own (a reply sent as a task
        while WeCom was listed, its msgid kept a moment later): dropped; how many."""
        taken = dict((await session.execute(select(MassSendTask.msgid, MassSendTask.mass_send_id).join(MassSend).where(
            MassSend.channel_account_id == account_id, MassSend.origin != "hub",
            MassSend.created_at > utcnow() - FOLLOW_FOR))).all())
        if not taken:
            return 0
        own = set((await session.scalars(select(MassSendTask.msgid).join(MassSend).where(
            MassSend.origin == "hub", MassSendTask.msgid.in_(list(taken))))).all())
        own |= {str(p).removeprefix("task:") for p in (await session.scalars(
            select(OutboxMessage.platform_message_id).where(
                OutboxMessage.channel_account_id == account_id,
                OutboxMessage.platform_message_id.in_([f"task:{m}" for m in taken])))).all()}
        sends = {taken[msgid] for msgid in own if msgid in taken}
        if sends:
            await session.execute(delete(MassSendTask).where(MassSendTask.mass_send_id.in_(sends)))
            await session.execute(delete(MassSend).where(MassSend.id.in_(sends)))
        return len(sends)
