"""The Hub: one object wiring settings, database, channels, bots and workers."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bots.consent import OptInBot, OptOutBot
from bots.customer import CustomerBot, CustomerBotSettings, FormAnswers
from bots.customer.script import InTheirScript
from bots.leads import LeadCapture
from bots.platform_sessions import PlatformSessions
from bots.rep import RepAlerts, RepWorkspace
from bots.rep.digest import RepDigest
from bots.rep.opinion import OpinionWatcher
from bots.rep.review import RepMessageReview
from bots.rep.sla import LeadSlaWatcher, SlaWatcher
from bots.rep.todo import TaskReminders
from bots.tag_rules import KeywordTags
from channels.base import ChannelAdapter
from channels.registry import ChannelRegistry, default_adapters
from crm_core import accounts, hub_settings, observe
from crm_core.campaigns import audience, events
from crm_core.campaigns.planning import NurturePlanner
from crm_core.conversations.ingest import IngestWriter
from crm_core.conversations.processing import MessageWorker, Understanding
from crm_core.crypto import CredentialCipher
from crm_core.db import create_engine, session_factory, utcnow
from crm_core.deals.service import DealRules
from crm_core.followups import tasks
from crm_core.leads.service import LeadRules
from crm_core.models import Campaign, CampaignStatus, ChannelAccount
from crm_core.outbox.confirmations import ConfirmationWatcher
from crm_core.outbox.dispatcher import Dispatcher, DispatchPolicy
from crm_core.ports import AccountRef, InboundEvent, MessageHandler, Profile, Sentiment, SentimentAnalyzer
from hub import live_settings, task_reminders
from hub.contact_ways import ContactWays
from hub.corp_tags import CorpTags
from hub.groups import CustomerGroups
from hub.mass_sends import MassSends
from hub.metrics import PrometheusObserver
from hub.moments import Moments
from hub.settings import Settings
from hub.shared_limits import RedisPacer, RedisTokens
from hub.shared_limits import connect as connect_redis
from hub.succession import Succession
from nlp.compliance import ComplianceCheck
from nlp.entities import extract as extract_entities
from nlp.entities import stated_contact_keys
from nlp.intents import detect_many as detect_intents
from nlp.opinion import ProductMatcher

log = logging.getLogger(__name__)


def load_sentiment(settings: Settings) -> SentimentAnalyzer | None:
    """The configured sentiment analyzer, or None (with the reason logged): the hub runs without it."""
    from nlp.sentiment.default import DefaultSentiment, ModelUnavailable

    try:
        if settings.sentiment_backend == "transformers":
            from nlp.sentiment.transformer import TransformerSentiment

            return TransformerSentiment(settings.resolved_sentiment_transformer_dir)
        return DefaultSentiment(settings.resolved_sentiment_model)
    except ModelUnavailable as exc:
        log.warning("sentiment analysis is off: %s", exc)
        return None


class SentimentWhenNeeded:
    """The configured sentiment analyzer, loaded when a message is first read: the serving
    process reads only what a person sends from the panel, so taking webhooks never loads the
    model (and the sentence encoder and scikit-learn under it, ~300 MB). Without a model it
    reads no sentiment (None), as the hub without one."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._loaded = False
        self._analyzer: SentimentAnalyzer | None = None

    def _get(self) -> SentimentAnalyzer | None:
        with self._lock:
            if not self._loaded:
                self._analyzer, self._loaded = load_sentiment(self.settings), True
        return self._analyzer

    def analyze(self, text: str) -> Sentiment | None:
        analyzer = self._get()
        return analyzer.analyze(text) if analyzer is not None else None

    def analyze_many(self, texts: list[str]) -> list[Sentiment | None]:
        analyzer = self._get()
        return list(analyzer.analyze_many(texts)) if analyzer is not None else [None] * len(texts)


def default_handlers(negative_alert_confidence: float = 0.7, review: RepMessageReview | None = None,
                     lead_rules: LeadRules | None = None, timezone: str = "Asia/Shanghai",
                     tag_keywords: dict[str, list[str]] | None = None,
                     deal_rules: DealRules | None = None) -> list[MessageHandler]:
    # A platform's events about a chat first (微信客服 sessions, recalls): nobody else answers them.
    # The rep bot next: it takes staff messages, which no customer bot may answer.
    # Lead capture before the alerts: a routed lead's owner gets one card, not two; answers to
    # the lead form's questions before them too (a name given is no feeling to alert on).
    return [PlatformSessions(),
            RepWorkspace(review=review or RepMessageReview(compliance=ComplianceCheck()), lead_rules=lead_rules,
                         timezone=timezone, deal_rules=deal_rules),
            LeadCapture(lead_rules), FormAnswers(), RepAlerts(negative_confidence=negative_alert_confidence),
            KeywordTags(tag_keywords),
            # What is said to the customer, in their script (Traditional characters for those who read them).
            InTheirScript([OptOutBot(), OptInBot(),
                           CustomerBot(settings=CustomerBotSettings(timezone=timezone), lead_rules=lead_rules)])]


def every_handler(handlers: Sequence[MessageHandler]) -> Iterator[MessageHandler]:
    """The worker's handlers, and those a handler runs itself (InTheirScript's)."""
    for handler in handlers:
        yield handler
        if isinstance(handler, InTheirScript):
            yield from every_handler(handler.handlers)


class Hub:
    def __init__(
        self,
        settings: Settings,
        *,
        adapters: Sequence[ChannelAdapter] | None = None,
        handlers: Sequence[MessageHandler] | None = None,
        reads_messages: bool = True,
        models_when_needed: bool = False,
    ) -> None:
        """`reads_messages=False`: a process that only sends (`scrm worker --dispatch-only`) loads
        no model (the sentence encoder alone is ~150 MB and seconds to load);
        `models_when_needed`: loads them when it first reads a message (`scrm serve`)."""
        self.settings = settings
        self.base_settings = settings  # the environment's; the panel's saved values go over it
        observe.watch(PrometheusObserver())  # what the worker and the dispatcher do, counted for /metrics
        self._settings_version: tuple[int, Any] | None = None
        settings.ensure_data_dir()
        self.engine = create_engine(settings.resolved_database_url)
        self.sessions: async_sessionmaker[AsyncSession] = session_factory(self.engine)
        self.cipher = CredentialCipher(settings.resolved_secret_key())
        self.channels = ChannelRegistry(adapters if adapters is not None else default_adapters(
            settings.base_url, allow_private=settings.allow_private_api_base, media_dir=settings.media_dir))
        self.redis = connect_redis(settings.redis_url) if settings.redis_url else None
        if self.redis is not None:
            self.channels.share_tokens(RedisTokens(self.redis))  # one WeCom / WeChat token for every process
        self.dispatcher = Dispatcher(
            self.sessions,
            self.channels,
            self.cipher,
            policy=DispatchPolicy(
                lease_seconds=settings.dispatch_lease_seconds,
                batch_size=settings.dispatch_batch_size,
                concurrency=settings.dispatch_concurrency,
                max_attempts=settings.max_send_attempts,
                marketing=settings.marketing_rules,
            ),
            pacer=RedisPacer(self.redis, fallback_share=settings.redis_fallback_share) if self.redis else None,
        )
        # Customer and rep messages are read with the same functions.
        self.understanding = Understanding()  # a process that only sends reads nothing, and loads no model
        if reads_messages:
            sentiment = SentimentWhenNeeded(settings) if models_when_needed else load_sentiment(settings)
            self.understanding = Understanding(sentiment, detect_intents, extract_entities)
        self.rep_review = RepMessageReview(self.understanding, ComplianceCheck(settings.compliance_terms))
        self.worker = MessageWorker(
            self.sessions,
            handlers if handlers is not None else default_handlers(settings.negative_alert_confidence,
                                                                   self.rep_review, settings.lead_rules,
                                                                   settings.default_timezone, settings.tag_keywords,
                                                                   settings.deal_rules),
            lease_seconds=settings.dispatch_lease_seconds,
            on_enqueued=self._processed,
            profiles=self,
            key_extractor=stated_contact_keys,
            understanding=self.understanding,
            staff_words=self.rep_review,
        )
        self.sla = SlaWatcher(
            self.sessions,
            first_response=dt.timedelta(minutes=settings.sla_first_response_minutes),
            escalate_after=dt.timedelta(minutes=settings.sla_escalate_minutes),
            on_enqueued=self.dispatcher.wake,
        )
        self.opinion = OpinionWatcher(self.sessions, k=settings.opinion_k,
                                      min_volume=settings.opinion_min_volume, products=settings.opinion_products,
                                      rule_min_messages=settings.opinion_rule_min_messages,
                                      on_enqueued=self.dispatcher.wake)
        self.lead_sla = LeadSlaWatcher(self.sessions, settings.lead_rules, on_enqueued=self.dispatcher.wake)
        self.confirmations = ConfirmationWatcher(self.sessions, self.channels, self.cipher)
        self.contact_ways = ContactWays(self.sessions, self.channels, self.cipher)
        self.succession = Succession(self.sessions, self.channels, self.cipher)
        self.corp_tags = CorpTags(self.sessions, self.channels, self.cipher)
        self.mass_sends = MassSends(self.sessions, self.channels, self.cipher)
        self.groups = CustomerGroups(self.sessions, self.channels, self.cipher)
        self.moments = Moments(self.sessions, self.channels, self.cipher)
        self.nurture = NurturePlanner(self.sessions, default_timezone=settings.default_timezone,
                                      on_enqueued=self.dispatcher.wake)
        self.digest = RepDigest(self.sessions, timezone=settings.default_timezone, on_enqueued=self.dispatcher.wake)
        self.task_reminders = TaskReminders(self.sessions, timezone=settings.default_timezone,
                                            on_enqueued=self.dispatcher.wake)
        # The webhooks' writer takes its connections unpinged on PostgreSQL (a ping was a round trip
        # and a sixth of a small batch's CPU): a batch whose connection the server dropped fails,
        # and GroupCommit writes its items again one by one, on new connections.
        self.writer_engine = self.engine if self.engine.dialect.name == "sqlite" else create_engine(
            settings.resolved_database_url, pre_ping=False, pool_size=2)
        self.ingest_writer = IngestWriter(session_factory(self.writer_engine))
        self._accounts: dict[int, tuple[float, ChannelAccount, AccountRef]] = {}
        # Set when an account is added or changed, so pollers start without waiting a tick.
        self.accounts_changed = asyncio.Event()

    def apply_settings(self, settings: Settings) -> None:
        """Use `settings` from now on where the panel may change them (hub/live_settings.py)."""
        self.settings = settings
        rules = settings.lead_rules
        self.dispatcher.policy = dataclasses.replace(self.dispatcher.policy, marketing=settings.marketing_rules)
        self.rep_review.compliance = ComplianceCheck(settings.compliance_terms)
        for handler in every_handler(self.worker.handlers):
            if isinstance(handler, (RepWorkspace, CustomerBot)):
                handler.lead_rules = rules
                if isinstance(handler, RepWorkspace):
                    handler.deal_rules = settings.deal_rules
            elif isinstance(handler, LeadCapture):
                handler.rules = rules
            elif isinstance(handler, RepAlerts):
                handler.negative_confidence = settings.negative_alert_confidence
            elif isinstance(handler, KeywordTags):
                handler.keywords = settings.tag_keywords or {}
        self.sla.first_response = dt.timedelta(minutes=settings.sla_first_response_minutes)
        self.sla.escalate_after = dt.timedelta(minutes=settings.sla_escalate_minutes)
        self.lead_sla.rules = rules
        self.opinion.products = ProductMatcher(settings.opinion_products)

    async def reload_settings(self) -> bool:
        """Apply the panel's saved settings if they changed since last time; whether they did.
        A stored value this version cannot use is logged and the rest still applied."""
        async with self.sessions() as session:
            version = await hub_settings.version(db_session=session)
            if version == self._settings_version:
                return False
            stored = await hub_settings.stored(db_session=session)
        try:
            settings = live_settings.effective(self.base_settings, stored)
        except live_settings.SettingsRefused as exc:
            log.error("saved settings refused, keeping the environment's: %s", exc)
            settings = self.base_settings
        self.apply_settings(settings)
        self._settings_version = version
        return True

    def _processed(self) -> None:
        """The worker committed messages that queued sends (an add through a contact way among
        them, maybe): the dispatcher sends now, and round-robin codes move on to their next rep."""
        self.dispatcher.wake()
        self.contact_ways.soon()

    async def campaign_tags(self) -> int:
        """Tag the contacts enrolled in campaigns the tags-by-campaign setting names."""
        if not self.settings.campaign_tags:
            return 0
        async with self.sessions() as session, session.begin():
            return await audience.tag_enrolled(self.settings.campaign_tags, db_session=session)

    async def remind_unconfirmed(self) -> int:
        """Remind reps whose WeCom 群发 tasks wait for their Send (hub/task_reminders.py)."""
        reminded = await task_reminders.remind(
            self.sessions, after=dt.timedelta(minutes=self.settings.wecom_confirm_remind_minutes),
            zone=ZoneInfo(self.settings.default_timezone))
        if reminded:
            self.dispatcher.wake()
        return reminded

    async def follow_up_rules(self) -> int:
        """Tasks for leads nobody has written to, and quotes unanswered (the follow-up rules)."""
        async with self.sessions() as session, session.begin():
            made = await tasks.apply_rules(self.settings.follow_up_rules, utcnow(),
                                           zone=ZoneInfo(self.settings.default_timezone), db_session=session)
        if made:
            log.info("follow-ups: %d tasks made by the follow-up rules", made)
        return made

    async def event_reminders(self) -> int:
        """Queue the event reminders now due (each once per registration and lead time)."""
        async with self.sessions() as session, session.begin():
            queued = await events.send_reminders(utcnow(), db_session=session, zone=self.settings.default_timezone)
        if queued:
            self.dispatcher.wake()
        return queued

    async def nurture_audiences(self) -> int:
        """Enrol contacts who have come to match an active campaign's audience since it started."""
        enrolled = 0
        async with self.sessions() as session:
            ids = (await session.scalars(select(Campaign.id).where(Campaign.status == CampaignStatus.ACTIVE))).all()
        for campaign_id in ids:
            async with self.sessions() as session, session.begin():
                campaign = await session.get(Campaign, campaign_id)
                if campaign is not None and campaign.status == CampaignStatus.ACTIVE:
                    enrolled += await audience.enrol_audience(campaign, db_session=session)
        if enrolled:
            log.info("nurture: %d contacts newly match an active campaign's audience; enrolled", enrolled)
        return enrolled

    def webhook_url(self, account: ChannelAccount | AccountRef) -> str:
        return f"{self.settings.base_url}/hooks/{account.kind}/{account.id}"

    async def account(self, account_id: int, *, max_age: float = 5.0) -> tuple[ChannelAccount, AccountRef] | None:
        """An active account with decrypted credentials, cached briefly for the webhook hot path."""
        cached = self._accounts.get(account_id)
        if cached is not None and time.monotonic() - cached[0] < max_age:
            return cached[1], cached[2]
        async with self.sessions() as session:
            row = await accounts.get(account_id, db_session=session)
        if row is None or not row.is_active:
            self._accounts.pop(account_id, None)
            return None
        ref = accounts.to_ref(row, self.cipher)
        self._accounts[account_id] = (time.monotonic(), row, ref)
        return row, ref

    @property
    def profile_kinds(self) -> frozenset[str]:
        """The worker's ProfileLookup: the channels it may ask (Telegram, DingTalk: none to ask)."""
        return self.channels.profile_kinds()

    async def fetch_profile(self, account_id: int, external_id: str) -> Profile | None:
        """The worker's ProfileLookup: the platform's profile of a customer (name, unionid)."""
        found = await self.account(account_id)
        if found is None:
            return None
        return await self.channels.fetch_profile(found[1], external_id)

    def forget_account(self, account_id: int) -> None:
        self._accounts.pop(account_id, None)
        self.accounts_changed.set()

    async def ingest(self, account_id: int, events: Sequence[InboundEvent],
                     cursor: tuple[str, str] | None = None) -> list[int]:
        """Store events (and a poller's cursor) durably, then wake the worker."""
        result = await self.ingest_writer.submit(account_id, events, cursor)
        if result.stored_message_ids:
            self.worker.wake()
        return result.stored_message_ids

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
        await self.contact_ways.close()
        await self.ingest_writer.close()
        await self.channels.close()
        if self.writer_engine is not self.engine:
            await self.writer_engine.dispose()
        await self.engine.dispose()
