"""One-off WeCom mass sends carried out and followed (crm_core/campaigns/mass_sends.py plans them):
each pending rep task is made in WeCom (add_msg_template), then each waiting one is read back
every minute (get_groupmsg_task, get_groupmsg_send_result) until the rep sent it and every
customer's fate is known, or a week has passed."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.registry import ChannelRegistry
from channels.tencent_client import ApiError, ApiUnavailable
from crm_core import accounts
from crm_core.crypto import CredentialCipher
from crm_core.db import utcnow
from crm_core.models import ChannelAccount, MassSend, MassSendTask
from hub.claiming import claim, give_up_stale

log = logging.getLogger(__name__)
FOLLOW_FOR = dt.timedelta(days=7)


class MassSends:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], channels: ChannelRegistry,
                 cipher: CredentialCipher) -> None:
        self.sessions, self.channels, self.cipher = sessions, channels, cipher

    async def run_once(self) -> int:
        """Make pending tasks and read back waiting ones; how many tasks changed."""
        changed = await give_up_stale(self.sessions, MassSendTask, taken="creating", stamp="checked_at")
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
                        targets = {e: statuses.get(e, s) for e, s in task.targets.items()}
                        if sent != (task.status == "sent") or targets != task.targets:
                            changed += 1
                        task.targets, task.status = targets, "sent" if sent else "waiting"
                    task.checked_at = utcnow()
                except ApiUnavailable as exc:  # a task being made is never asked for twice (hub/claiming.py)
                    log.warning("mass send %s, rep %s: WeCom unreachable (%s); %s", send.id, task.sender_userid, exc,
                                "read again next minute" if task.status == "waiting" else "whether the task was made "
                                "is not known: it is given up in 10 minutes")
                except ApiError as exc:
                    task.status, task.reason = "failed", f"WeCom refused ({exc.errcode}): {exc.errmsg}"[:300]
                    changed += 1
        return changed
