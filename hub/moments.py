"""WeCom moments (朋友圈) posts carried out and followed: a pending post is made as a task (its
pictures uploaded as moments attachments, then add_moment_task, visible to customers with the
chosen corp tags), its job read until WeCom made it (get_moment_task_result), then who published
it read each minute for a week (get_moment_task). Posts made outside the hub (in WeCom's console,
or a rep's own) are found in WeCom's list every 10 minutes (get_moment_list); every post's reach
per publishing rep (customers who can see it, likes, comments) is read hourly."""

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
from crm_core.models import ChannelAccount, CorpTag, Moment
from crm_core.ports import PermanentFailure, TemporaryFailure
from hub.claiming import claim, give_up_stale, release_listing, take_listing

log = logging.getLogger(__name__)
FOLLOW_FOR = dt.timedelta(days=7)
LIST_EVERY = dt.timedelta(minutes=10)
REACH_EVERY = dt.timedelta(hours=1)
LISTED = "moments_listed"  # a WeCom app's cursor: when its moments were last listed (ISO time)


class Moments:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], channels: ChannelRegistry,
                 cipher: CredentialCipher) -> None:
        self.sessions, self.channels, self.cipher = sessions, channels, cipher

    async def run_once(self, *, listing: bool = True) -> int:
        """Posts made outside the hub found (unless not `listing`: a request that posted one), then one
        step for each post under way; how many changed."""
        changed = await give_up_stale(self.sessions, Moment, taken="making", stamp="checked_at")
        async with self.sessions() as session:
            apps = (await session.scalars(select(ChannelAccount.id).where(
                ChannelAccount.kind == "wecom", ChannelAccount.is_active.is_(True)))).all() if listing else []
        for account_id in apps:
            try:
                changed += await self.discover(account_id)
            except (ApiError, ApiUnavailable) as exc:
                log.warning("WeCom app %s: moments not listed (%s); listed again next minute", account_id, exc)
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
                if moment is None:
                    continue  # a post listed from WeCom that turned out to be the hub's: kept once
                account = await session.get(ChannelAccount, moment.channel_account_id)
                adapter, ref = self.channels.get(account.kind), accounts.to_ref(account, self.cipher)
                try:
                    changed += await self._step(moment, adapter, ref, session)
                except ApiUnavailable as exc:  # a post being made is never asked for twice (hub/claiming.py)
                    log.warning("moment %s: WeCom unreachable (%s); %s", moment.id, exc,
                                "whether it was made is not known: given up in 10 minutes"
                                if moment.status == "making" else "read again next minute")
                except ApiError as exc:
                    if busy(exc):  # nothing was done: made (or read) again next minute
                        log.info("moment %s: WeCom busy (%s); again next minute", moment.id, exc.errcode)
                        if moment.status == "making":
                            moment.status = "pending"
                        moment.reason = f"WeCom was busy ({exc.errcode}); tried again each minute"
                        continue
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
            # Listed from WeCom before its job answered: the same post, kept once (as the hub's).
            await session.execute(delete(Moment).where(Moment.moment_id == moment.moment_id, Moment.id != moment.id)
                                  .execution_options(synchronize_session=False))
            invalid = (result.get("invalid_sender_list") or {}).get("user_list") or []
            moment.reason = f"not reps of the app: {', '.join(invalid)}" if invalid else None
            return 1
        changed = 0
        if moment.origin != "personal":  # a rep's own post is published by its creator, and only them
            published = await adapter.moment_published(ref, moment.moment_id or "")
            if published != moment.published:
                moment.published, changed = published, 1
        # Hourly, and at once when a rep has just published it.
        if changed or moment.reach_at is None or utcnow() - moment.reach_at >= REACH_EVERY:
            reach = {userid: await adapter.moment_reach(ref, moment.moment_id or "", userid)
                     for userid, done in moment.published.items() if done}
            moment.reach_at = utcnow()
            if reach != moment.reach:
                moment.reach, changed = reach, 1
        return changed

    async def discover(self, account_id: int, *, force: bool = False) -> int:
        """The app's moments WeCom lists that the hub does not know (posted in WeCom's console, or
        a rep's own), kept to be followed like the hub's; every 10 minutes. How many were new."""
        listing = await take_listing(self.sessions, account_id, LISTED, every=LIST_EVERY, window=FOLLOW_FOR,
                                     force=force)
        if listing is None:
            return 0
        now = listing.now
        async with self.sessions() as session:
            account = await session.get(ChannelAccount, account_id)
        try:
            listed = await self.channels.get(account.kind).moment_list(accounts.to_ref(account, self.cipher),
                                                                       listing.start, now)
        except Exception:
            await release_listing(self.sessions, account_id, LISTED, listing)
            raise
        found = 0
        async with self.sessions() as session, session.begin():
            known = set((await session.scalars(select(Moment.moment_id).where(
                Moment.moment_id.in_([str(m.get("moment_id")) for m in listed])))).all())
            # A company post may be the hub's own whose job has not answered yet: the next listing
            # (an hour's overlap) takes it once the job has said which post it is.
            awaiting = await session.scalar(select(Moment.id).where(
                Moment.channel_account_id == account_id, Moment.status.in_(("making", "creating"))).limit(1))
            for item in listed:
                moment_id = str(item.get("moment_id") or "")
                personal = item.get("create_type") == 1
                if not moment_id or moment_id in known or (awaiting and not personal):
                    continue
                creator = str(item.get("creator") or "") or None
                link = item.get("link") or {}
                session.add(Moment(
                    channel_account_id=account_id, origin="personal" if personal else "wecom", creator=creator,
                    text=str((item.get("text") or {}).get("content") or "")[:2000],
                    link_url=str(link.get("url") or "")[:500] or None,
                    link_title=str(link.get("title") or "")[:100] or None,
                    moment_id=moment_id, status="created", senders=[creator] if personal and creator else [],
                    published={creator: True} if personal and creator else {},
                    created_at=dt.datetime.fromtimestamp(int(item.get("create_time") or now.timestamp()), dt.UTC)))
                known.add(moment_id)
                found += 1
        if found:
            log.info("WeCom app %s: %d moments posted outside the hub found", account_id, found)
        return found
