"""WeCom moments (朋友圈) posts carried out and followed: a pending post is made as a task (its
pictures uploaded as moments attachments, then add_moment_task, visible to customers with the
chosen corp tags), its job read until WeCom made it (get_moment_task_result), then who published
it read each minute for a week (get_moment_task)."""

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
from crm_core.models import ChannelAccount, CorpTag, Moment
from crm_core.ports import PermanentFailure, TemporaryFailure
from hub.claiming import claim, give_up_stale

log = logging.getLogger(__name__)
FOLLOW_FOR = dt.timedelta(days=7)


class Moments:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], channels: ChannelRegistry,
                 cipher: CredentialCipher) -> None:
        self.sessions, self.channels, self.cipher = sessions, channels, cipher

    async def run_once(self) -> int:
        """One step for each post under way; how many changed."""
        changed = await give_up_stale(self.sessions, Moment, taken="making", stamp="checked_at")
        async with self.sessions() as session:
            rows = (await session.execute(select(Moment.id, Moment.status).where(
                Moment.status.in_(("pending", "creating", "created")),
                Moment.created_at > utcnow() - FOLLOW_FOR).order_by(Moment.id))).all()
        for moment_id, status in rows:
            if status == "pending" and not await claim(self.sessions, Moment, moment_id, before="pending",
                                                       after="making", stamp="checked_at"):
                continue  # another process asks WeCom for it
            async with self.sessions() as session, session.begin():
                moment = await session.get(Moment, moment_id)
                account = await session.get(ChannelAccount, moment.channel_account_id)
                adapter, ref = self.channels.get(account.kind), accounts.to_ref(account, self.cipher)
                try:
                    changed += await self._step(moment, adapter, ref, session)
                except ApiUnavailable as exc:  # a post being made is never asked for twice (hub/claiming.py)
                    log.warning("moment %s: WeCom unreachable (%s); %s", moment.id, exc,
                                "whether it was made is not known: given up in 10 minutes"
                                if moment.status == "making" else "read again next minute")
                except ApiError as exc:
                    moment.status, moment.reason = "failed", f"WeCom refused ({exc.errcode}): {exc.errmsg}"[:300]
                    changed += 1
        return changed

    async def _step(self, moment: Moment, adapter, ref, session: AsyncSession) -> int:
        if moment.status == "making":
            corp = dict((await session.execute(select(CorpTag.name, CorpTag.tag_id).where(
                CorpTag.channel_account_id == moment.channel_account_id))).all())
            missing = [tag for tag in moment.tags if tag not in corp]
            if missing:
                moment.status = "failed"
                moment.reason = f"not WeCom corp tags yet: {', '.join(missing)} (put them on a customer first)"[:300]
                return 1
            try:
                media_ids = [await adapter.moment_picture(ref, url) for url in moment.image_urls]
            except (PermanentFailure, ApiError) as exc:
                moment.status, moment.reason = "failed", f"a picture was refused: {exc}"[:300]
                return 1
            except (TemporaryFailure, ApiUnavailable) as exc:  # nothing made yet: asked again next minute
                moment.status, moment.reason = "pending", f"a picture could not be uploaded yet: {exc}"[:300]
                return 0
            link = {"title": moment.link_title or moment.text[:64], "url": moment.link_url} if moment.link_url else None
            moment.jobid = await adapter.moment_task(ref, text=moment.text, link=link, senders=list(moment.senders),
                                                     tag_ids=[corp[tag] for tag in moment.tags], media_ids=media_ids)
            moment.status = "creating"
            return 1
        if moment.status == "creating":
            result = await adapter.moment_job(ref, moment.jobid or "")
            if result is None:
                return 0  # WeCom is still making it
            if result.get("errcode"):
                moment.status, moment.reason = "failed", f"WeCom refused ({result['errcode']}): {result.get('errmsg')}"
                return 1
            moment.moment_id, moment.status = str(result.get("moment_id") or ""), "created"
            invalid = (result.get("invalid_sender_list") or {}).get("user_list") or []
            moment.reason = f"not reps of the app: {', '.join(invalid)}" if invalid else None
            return 1
        published = await adapter.moment_published(ref, moment.moment_id or "")
        if published != moment.published:
            moment.published = published
            return 1
        return 0
